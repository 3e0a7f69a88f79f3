//! A throw-away three-member etcd cluster in network namespaces of its
//! own, for partition tests: one member can be cut off from the other two
//! while the client still reaches every member, and healed again.
//!
//! # Topology
//!
//! Each member runs in a namespace of its own, joined by a veth pair to a
//! "hub" namespace that routes between them (ip_forward on). The calling
//! test thread enters the hub (`setns`), so the client, and every thread
//! and process the test starts after that, live in the hub and reach each
//! member directly, while traffic between members passes the hub's
//! FORWARD chain, where `iptables` cuts it:
//!
//! ```text
//!   member 0 (198.18.N.2) ──veth── hub (client) ──veth── member 1 (198.18.N+1.2)
//!                                   │ FORWARD: -s A -d B -j DROP
//!                                   └──veth── member 2 (198.18.N+2.2)
//! ```
//!
//! Why not three members on 127.0.0.1/.2/.3 in one namespace: a
//! connection to any loopback address leaves from 127.0.0.1 (the route
//! `local 127.0.0.0/8 ... src 127.0.0.1`; etcd does not bind its peer
//! dials), so `-s 127.0.0.3` never names member 3's packets, and
//! `-s 127.0.0.1 -d 127.0.0.3` drops the client's packets to member 3 as
//! well: that cuts the member off from everyone, not from its cluster
//! only. With a namespace per member, a packet's source is its sender.
//!
//! The client can be cut off from one member instead ([`NetCluster::cut_client`]):
//! the hub's own INPUT and OUTPUT chains drop its traffic with that
//! member, while FORWARD, between members, stays open.
//!
//! Addresses come from 198.18.0.0/15 (the benchmarking range, RFC 2544),
//! each cluster of the process on its own subnets so that no session state
//! is shared between clusters; nothing leaves the namespaces. Without the
//! rights to make namespaces (not root, no `ip`), [`NetCluster::start`]
//! says so and returns `None`: the test skips.
//!
//! Clusters are started one at a time in a test process (a global lock is
//! held for each cluster's life), as in `cluster.rs`.

use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
static CLUSTERS: AtomicUsize = AtomicUsize::new(0);

const MEMBERS: usize = 3;
const CLIENT_PORT: u16 = 2379;
const PEER_PORT: u16 = 2380;
const START_BUDGET: Duration = Duration::from_secs(30);

struct Member {
    ns: String,
    addr: String,
    data_dir: PathBuf,
    child: Option<Child>,
}

pub struct NetCluster {
    hub: String,
    members: Vec<Member>,
    root: PathBuf,
    /// The test thread's namespace before it entered the hub.
    home: Option<File>,
    http: ureq::Agent,
    /// Namespaces made so far (deleted on drop).
    made: Vec<String>,
    _turn: MutexGuard<'static, ()>,
}

/// Runs `program args`, returning its stderr on failure.
fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {}: {} {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn must(program: &str, args: &[&str]) {
    if let Err(e) = run(program, args) {
        panic!("{e}");
    }
}

fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// iptables, installed from Debian when missing (as root).
fn ensure_iptables() -> bool {
    if have("iptables") {
        return true;
    }
    eprintln!("netns: installing iptables");
    let _ = Command::new("apt-get")
        .arg("update")
        .stdout(Stdio::null())
        .status();
    let _ = Command::new("apt-get")
        .args(["install", "-y", "iptables"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(Stdio::null())
        .status();
    have("iptables")
}

/// Moves the calling thread into network namespace `file`.
fn enter(file: &File) -> std::io::Result<()> {
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

impl NetCluster {
    /// Starts a three-member cluster in namespaces of its own and moves
    /// the calling thread into the hub. `None` (with a line saying why)
    /// when this process cannot make namespaces.
    pub fn start() -> Option<NetCluster> {
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIP: partition tests need root (network namespaces, iptables)");
            return None;
        }
        if !have("ip") || !ensure_iptables() {
            eprintln!("SKIP: partition tests need `ip` and `iptables`");
            return None;
        }
        let n = CLUSTERS.fetch_add(1, Ordering::Relaxed);
        let name = format!("eapi{}-{n}", std::process::id());
        let hub = format!("{name}-hub");
        if let Err(e) = run("ip", &["netns", "add", &hub]) {
            eprintln!("SKIP: cannot make a network namespace: {e}");
            return None;
        }
        let root = std::env::temp_dir().join(format!("etcdapi-netns-{name}"));
        fs::create_dir_all(&root).unwrap();
        let home = File::open("/proc/thread-self/ns/net").expect("this thread's namespace");
        let http: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_millis(300)))
            .timeout_global(Some(Duration::from_secs(2)))
            .build()
            .into();
        let subnet = |k: usize| (n % 60) * 4 + k;
        let mut cluster = NetCluster {
            hub: hub.clone(),
            members: (0..MEMBERS)
                .map(|k| Member {
                    ns: format!("{name}-m{k}"),
                    addr: format!("198.18.{}.2", subnet(k)),
                    data_dir: root.join(format!("m{k}")),
                    child: None,
                })
                .collect(),
            root,
            home: Some(home),
            http,
            made: vec![hub.clone()],
            _turn: turn,
        };
        let hub_file = File::open(format!("/run/netns/{hub}")).expect("the hub namespace");
        enter(&hub_file).expect("setns into the hub namespace");
        must("ip", &["link", "set", "lo", "up"]);
        must("sysctl", &["-q", "-w", "net.ipv4.ip_forward=1"]);
        for k in 0..MEMBERS {
            let ns = cluster.members[k].ns.clone();
            must("ip", &["netns", "add", &ns]);
            cluster.made.push(ns.clone());
            let link = format!("h{k}");
            let gateway = format!("198.18.{}.1", subnet(k));
            let addr = format!("{}/24", cluster.members[k].addr);
            must(
                "ip",
                &[
                    "link", "add", &link, "type", "veth", "peer", "name", "eth0", "netns", &ns,
                ],
            );
            must(
                "ip",
                &["addr", "add", &format!("{gateway}/24"), "dev", &link],
            );
            must("ip", &["link", "set", &link, "up"]);
            must("ip", &["-n", &ns, "link", "set", "lo", "up"]);
            must("ip", &["-n", &ns, "addr", "add", &addr, "dev", "eth0"]);
            must("ip", &["-n", &ns, "link", "set", "eth0", "up"]);
            must(
                "ip",
                &["-n", &ns, "route", "add", "default", "via", &gateway],
            );
        }
        for k in 0..MEMBERS {
            cluster.spawn(k);
        }
        cluster.wait_healthy(START_BUDGET);
        Some(cluster)
    }

    fn spawn(&mut self, k: usize) {
        let initial = self
            .members
            .iter()
            .enumerate()
            .map(|(i, m)| format!("m{i}=http://{}:{PEER_PORT}", m.addr))
            .collect::<Vec<_>>()
            .join(",");
        let m = &mut self.members[k];
        fs::create_dir_all(&m.data_dir).unwrap();
        let log = File::create(m.data_dir.join("etcd.log")).unwrap();
        let client = format!("http://{}:{CLIENT_PORT}", m.addr);
        let peer = format!("http://{}:{PEER_PORT}", m.addr);
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &m.ns])
            .arg(super::etcd_bin())
            .args(["--name", &format!("m{k}")])
            .arg("--data-dir")
            .arg(m.data_dir.join("data"))
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &initial])
            .args(["--initial-cluster-token", &self.hub])
            .args(["--initial-cluster-state", "new"])
            .arg("--enable-v2=true")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // etcd reads every ETCD_* variable as a flag.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("ETCD_") {
                cmd.env_remove(key);
            }
        }
        // `ip netns exec` execs etcd: the child's PID is etcd's.
        m.child = Some(cmd.spawn().expect("start etcd in its namespace"));
    }

    /// Member `k`'s client address, `host:port`.
    pub fn member_endpoint(&self, k: usize) -> String {
        format!("{}:{CLIENT_PORT}", self.members[k].addr)
    }

    /// The addresses of members `order`, in that order.
    pub fn endpoints_in_order(&self, order: &[usize]) -> String {
        order
            .iter()
            .map(|&k| self.member_endpoint(k))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `[first, the others...]`.
    pub fn order_with_first(&self, first: usize) -> Vec<usize> {
        std::iter::once(first)
            .chain((0..MEMBERS).filter(|&k| k != first))
            .collect()
    }

    /// Cuts member `k` off from the other members, both ways; the client
    /// still reaches it.
    pub fn isolate(&self, k: usize) {
        let me = &self.members[k].addr;
        for (j, other) in self.members.iter().enumerate() {
            if j == k {
                continue;
            }
            for (from, to) in [(me, &other.addr), (&other.addr, me)] {
                must(
                    "iptables",
                    &["-A", "FORWARD", "-s", from, "-d", to, "-j", "DROP"],
                );
            }
        }
    }

    /// Cuts the hub, where the client runs, off from member `k`, both
    /// ways: the hub's own traffic to and from the member is dropped
    /// (OUTPUT and INPUT), while the members still reach each other
    /// through the hub (FORWARD is left open).
    pub fn cut_client(&self, k: usize) {
        let addr = &self.members[k].addr;
        must("iptables", &["-A", "OUTPUT", "-d", addr, "-j", "DROP"]);
        must("iptables", &["-A", "INPUT", "-s", addr, "-j", "DROP"]);
    }

    /// Removes every cut.
    pub fn heal(&self) {
        for chain in ["FORWARD", "INPUT", "OUTPUT"] {
            must("iptables", &["-F", chain]);
        }
    }

    /// `POST /v3/maintenance/status` on member `k`, if it answers 200 in time.
    pub fn status(&self, k: usize) -> Option<Value> {
        let url = format!("http://{}/v3/maintenance/status", self.member_endpoint(k));
        let resp = self.http.post(&url).send(&b"{}"[..]).ok()?;
        if resp.status() != 200 {
            return None;
        }
        serde_json::from_str(&resp.into_body().read_to_string().ok()?).ok()
    }

    /// The member whose status names itself leader (`None` during an
    /// election).
    pub fn leader_index(&self) -> Option<usize> {
        (0..MEMBERS).find(|&k| {
            self.status(k).is_some_and(|s| {
                let id = &s["header"]["member_id"];
                s["leader"] == *id && !id.is_null()
            })
        })
    }

    pub fn wait_leader(&self, timeout: Duration) -> usize {
        super::wait_for(timeout, "no leader", || self.leader_index())
    }

    /// A member that is not the leader now.
    pub fn follower_index(&self) -> usize {
        let leader = self.wait_leader(Duration::from_secs(10));
        (leader + 1) % MEMBERS
    }

    /// Member `k`'s Prometheus metrics (`GET /metrics`).
    pub fn metrics(&self, k: usize) -> String {
        let url = format!("http://{}/metrics", self.member_endpoint(k));
        self.http
            .get(&url)
            .call()
            .expect("metrics")
            .into_body()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .expect("metrics text")
    }

    /// Every change below `prefix` since revision 1, as member `k` tells
    /// it (a raw gateway watch read until it has been silent for a
    /// second): `rev N PUT|DELETE key lease L` lines, for a failure's
    /// message.
    pub fn history(&self, k: usize, prefix: &[u8]) -> Vec<String> {
        use base64::Engine;
        use std::io::{BufRead, BufReader, Read};
        use std::net::TcpStream;
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut end = prefix.to_vec();
        *end.last_mut().unwrap() += 1;
        let body = format!(
            r#"{{"create_request":{{"key":"{}","range_end":"{}","start_revision":"1"}}}}"#,
            b64.encode(prefix),
            b64.encode(&end)
        );
        let Ok(mut conn) = TcpStream::connect(self.member_endpoint(k)) else {
            return vec!["(member unreachable)".into()];
        };
        let request = format!(
            "POST /v3/watch HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        std::io::Write::write_all(&mut conn, request.as_bytes()).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let mut out = Vec::new();
        let mut reader = BufReader::new(conn.by_ref());
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
            let Ok(v) = serde_json::from_str::<Value>(line.trim()) else {
                line.clear();
                continue;
            };
            line.clear();
            for ev in v["result"]["events"].as_array().into_iter().flatten() {
                let key = b64
                    .decode(ev["kv"]["key"].as_str().unwrap_or(""))
                    .unwrap_or_default();
                out.push(format!(
                    "rev {} {} {} lease {}",
                    ev["kv"]["mod_revision"].as_str().unwrap_or("?"),
                    ev["type"].as_str().unwrap_or("PUT"),
                    String::from_utf8_lossy(&key),
                    ev["kv"]["lease"].as_str().unwrap_or("0")
                ));
            }
        }
        out
    }

    /// Waits until every member's `/health` says true.
    pub fn wait_healthy(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let bad: Vec<usize> = (0..MEMBERS)
                .filter(|&k| {
                    let url = format!("http://{}/health", self.member_endpoint(k));
                    !self
                        .http
                        .get(&url)
                        .call()
                        .ok()
                        .and_then(|r| r.into_body().read_to_string().ok())
                        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                        .is_some_and(|v| v["health"] == "true")
                })
                .collect();
            if bad.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "members {bad:?} not healthy within {timeout:?} (logs in {})",
                self.root.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for NetCluster {
    fn drop(&mut self) {
        for chain in ["FORWARD", "INPUT", "OUTPUT"] {
            let _ = run("iptables", &["-F", chain]);
        }
        for m in &mut self.members {
            if let Some(mut child) = m.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if let Some(home) = self.home.take() {
            let _ = enter(&home);
        }
        for ns in self.made.drain(..).rev() {
            let _ = run("ip", &["netns", "del", &ns]);
        }
        if std::thread::panicking() {
            eprintln!(
                "test failed: etcd logs kept in {}/m*/etcd.log",
                self.root.display()
            );
        } else {
            let _ = fs::remove_dir_all(&self.root);
        }
    }
}
