//! Connection hygiene. Alone in its test binary: it counts this process's
//! connections, which other tests running beside it would add to.

mod common;

use common::*;

#[test]
fn connections_are_reused() {
    // Steady state: the same keep-alive connection serves call after call.
    // Sampled every 50 calls, the local ports of our connections to the
    // server stay the same; a connection per call would show a new one at
    // every sample.
    let c = client();
    let k = unique("reuse");
    let port: u16 = endpoint().rsplit(':').next().unwrap().parse().unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..1000 {
        c.set(&k, i.to_string()).unwrap();
        if i % 50 == 49 {
            seen.extend(local_ports_connected_to(port));
        }
    }
    println!("1000 sequential calls: local ports seen {seen:?}");
    assert!(
        (1..=2).contains(&seen.len()),
        "{} connections for 1000 calls",
        seen.len()
    );
}

/// Local ports of this process's established TCP connections to `port`.
fn local_ports_connected_to(port: u16) -> Vec<u16> {
    let pid = std::process::id();
    let inodes: std::collections::HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|p| {
            p.to_str()?
                .strip_prefix("socket:[")?
                .strip_suffix(']')
                .map(String::from)
        })
        .collect();
    let hex_port = |addr: &str| {
        addr.rsplit(':')
            .next()
            .and_then(|p| u16::from_str_radix(p, 16).ok())
    };
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let ours = hex_port(f[2]) == Some(port) && f[3] == "01" && inodes.contains(f[9]);
            if ours {
                hex_port(f[1])
            } else {
                None
            }
        })
        .collect()
}
