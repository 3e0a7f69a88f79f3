//! "The next change from now" is the moment of the call (issue: sound
//! outcomes, item 2): a watch without a starting revision must not miss
//! changes made while its first servers keep it waiting. Before, "now" was
//! whenever a stream finally opened: behind a first server that accepts
//! connections and never answers, that was after the stream's 5 s header
//! time-out, and every change of those 5 s was lost.
//!
//! Each test starts the watch (`etcd_watch`'s `Client::watch`, and
//! `watch_events`) with a silent first server, writes a change every
//! 200 ms from the moment the call starts, and checks that the first
//! change reported is one of those written in the call's first 2.5 s
//! (the read that fixes "now" gives up on the silent server after its
//! stall limit, 0.5 s on a fresh session), and that the watch continues
//! from there without a gap.

mod common;

use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use etcdapi::{Client, Config};

/// A server that accepts connections and never answers (a frozen member,
/// as the kernel keeps accepting for it).
struct Silent {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Silent {
    fn start() -> Silent {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            let mut held: Vec<TcpStream> = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => held.push(conn),
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Silent { port, stop }
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Writes `prefix/k<i>` every 200 ms from now until `stop`, recording
/// when each write was sent and its revision.
fn writer(
    c: Client,
    prefix: String,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<(Instant, i64)>>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut i = 0;
        while !stop.load(Ordering::Relaxed) {
            i += 1;
            let sent = Instant::now();
            let rev = c.put(format!("{prefix}/k{i}"), "v", 0).unwrap();
            log.lock().unwrap().push((sent, rev));
            std::thread::sleep(Duration::from_millis(200));
        }
    })
}

/// Which watch call is tested.
#[derive(Clone, Copy, Debug)]
enum Call {
    Watch,
    WatchEvents,
}

/// Starts `call` on `watcher` (whose first server is silent) for changes
/// below `prefix`, with `writes` (on a healthy session) writing from the
/// moment the call starts; checks the first change reported and the next
/// one.
fn first_change_is_not_lost(watcher: Client, writes: Client, prefix: &str, call: Call) {
    let stop = Arc::new(AtomicBool::new(false));
    let log = Arc::new(Mutex::new(Vec::new()));
    let called = Instant::now();
    let w = writer(writes, prefix.to_string(), stop.clone(), log.clone());
    let first = match call {
        Call::Watch => watcher.watch(prefix, None).unwrap().revision,
        Call::WatchEvents => {
            watcher
                .watch_events(prefix, None, Some(Duration::from_secs(30)))
                .unwrap()
                .revision
        }
    };
    let second = match call {
        Call::Watch => watcher.watch(prefix, Some(first + 1)).unwrap().revision,
        Call::WatchEvents => {
            watcher
                .watch_events(prefix, Some(first + 1), Some(Duration::from_secs(30)))
                .unwrap()
                .revision
        }
    };
    stop.store(true, Ordering::Relaxed);
    w.join().unwrap();
    let log = log.lock().unwrap();
    let written: Vec<i64> = log.iter().map(|&(_, rev)| rev).collect();
    let early: Vec<i64> = log
        .iter()
        .filter(|(sent, _)| sent.duration_since(called) < Duration::from_millis(2500))
        .map(|&(_, rev)| rev)
        .collect();
    println!(
        "{call:?}: first change reported at revision {first}; written in the first 2.5 s: {early:?}"
    );
    assert!(
        early.contains(&first),
        "{call:?} reported {first} first: the changes written in the call's first 2.5 s ({early:?}) were missed"
    );
    // The next change written after it, none skipped.
    let at = written.iter().position(|&r| r == first).unwrap();
    assert_eq!(
        Some(&second),
        written.get(at + 1),
        "{call:?} skipped a change"
    );
}

fn session(servers: &str) -> Client {
    Client::new(
        etcdapi::parse_server_list(servers).unwrap(),
        Config::default(),
    )
    .unwrap()
}

#[test]
fn watch_from_now_behind_a_server_that_never_answers() {
    for call in [Call::Watch, Call::WatchEvents] {
        let silent = Silent::start();
        let prefix = common::unique("from-now");
        let watcher = session(&format!("127.0.0.1:{},{}", silent.port, common::endpoint()));
        first_change_is_not_lost(watcher, common::client(), &prefix, call);
    }
}

#[test]
fn watch_from_now_behind_a_frozen_member() {
    let cl = Cluster::start(3);
    for call in [Call::Watch, Call::WatchEvents] {
        let leader = cl.wait_leader(Duration::from_secs(20));
        let frozen = cl.follower_index();
        let writes_to = (0..cl.len())
            .find(|&i| i != frozen && i != leader)
            .unwrap_or(leader);
        cl.pause(frozen);
        let prefix = common::unique("from-now-frozen");
        let watcher = session(&cl.endpoints_in_order(&cl.order_with_first(frozen)));
        let writes = session(&cl.member_endpoint(writes_to));
        first_change_is_not_lost(watcher, writes, &prefix, call);
        cl.resume(frozen);
        cl.wait_healthy(Duration::from_secs(30));
    }
}
