//! The extended API on the Rust `Client` (etcd v3): revisions, prefix
//! reads, conditional writes, leases, revision-exact watches; a v2 session
//! refusing every call; and, on a three-member cluster, a watch and a kept
//! lease across a member kill (through the Rust API and the C exports).
//!
//! Run with `c-tests/etcd-local run -- cargo test --release --test extended`;
//! `-- --nocapture` shows the figures.

mod common;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::*;
use etcdapi::{Client, Config, ErrorKind, ProtocolKind};

/// Watches from old revisions and the compaction test do not mix: the
/// compaction test holds this alone, the others share it.
static HISTORY: Mutex<()> = Mutex::new(());

fn history() -> MutexGuard<'static, ()> {
    HISTORY.lock().unwrap_or_else(|e| e.into_inner())
}

fn v3() -> Client {
    client_on(ProtocolKind::V3)
}

fn kind<T: std::fmt::Debug>(r: etcdapi::Result<T>) -> ErrorKind {
    r.expect_err("an error").kind()
}

#[test]
fn put_and_get_kv_tell_revisions() {
    let c = v3();
    let k = unique("kv");
    let (none, rev0) = c.get_kv(&k).unwrap();
    assert!(none.is_none());
    assert!(rev0 > 0);
    let value = b"a\0b\xffc".to_vec();
    let r1 = c.put(&k, &value, 0).unwrap();
    assert!(r1 > rev0);
    let (kv, rev) = c.get_kv(format!("/{k}//")).unwrap();
    let kv = kv.expect("the key");
    assert_eq!(kv.key, k.as_bytes());
    assert_eq!(kv.value, value);
    assert_eq!(
        (kv.create_revision, kv.mod_revision, kv.version, kv.lease),
        (r1, r1, 1, 0)
    );
    assert!(rev >= r1);
    let r2 = c.put(&k, "", 0).unwrap();
    let kv = c.get_kv(&k).unwrap().0.unwrap();
    assert_eq!(
        (
            kv.value.len(),
            kv.create_revision,
            kv.mod_revision,
            kv.version
        ),
        (0, r1, r2, 2)
    );
    assert_eq!(kind(c.put("/", "x", 0)), ErrorKind::Refused);
    assert_eq!(kind(c.put(&k, "x", 0x7fff_ffff_0000)), ErrorKind::NotFound);
    assert_eq!(
        kind(c.put(&k, vec![b'x'; 1_600_000], 0)),
        ErrorKind::Refused
    );
}

#[test]
fn list_is_every_depth_sorted_from_one_revision() {
    let c = v3();
    let d = unique("list");
    for k in ["b", "a", "c/x", "c/y/z", "_hidden"] {
        c.put(format!("{d}/{k}"), k, 0).unwrap();
    }
    c.put(&d, "the prefix itself", 0).unwrap();
    c.put(format!("{d}-x"), "sibling", 0).unwrap();
    c.put(format!("{d}x"), "sibling", 0).unwrap();
    let last = c.put(format!("{d}/a"), "a2", 0).unwrap();
    let listing = c.list(format!("{d}/")).unwrap();
    let keys: Vec<String> = listing
        .kvs
        .iter()
        .map(|kv| String::from_utf8(kv.key.clone()).unwrap())
        .collect();
    let want: Vec<String> = ["_hidden", "a", "b", "c/x", "c/y/z"]
        .iter()
        .map(|k| format!("{d}/{k}"))
        .collect();
    assert_eq!(keys, want);
    assert_eq!(listing.kvs[1].value, b"a2");
    assert_eq!(listing.kvs[1].version, 2);
    assert!(listing.revision >= last);
    assert!(c.list(unique("empty")).unwrap().kvs.is_empty());
}

#[test]
fn put_if_on_revisions() {
    let c = v3();
    let k = unique("put-if");
    let r1 = c.put_if(&k, "one", 0, 0).unwrap();
    assert_eq!(kind(c.put_if(&k, "again", 0, 0)), ErrorKind::CompareFailed);
    assert_eq!(
        kind(c.put_if(&k, "stale", 0, r1 - 1)),
        ErrorKind::CompareFailed
    );
    let r2 = c.put_if(&k, "two", 0, r1).unwrap();
    assert!(r2 > r1);
    assert_eq!(kind(c.put_if(&k, "old", 0, r1)), ErrorKind::CompareFailed);
    assert_eq!(c.get_kv(&k).unwrap().0.unwrap().value, b"two");
    assert_eq!(
        kind(c.put_if(unique("missing"), "x", 0, r2)),
        ErrorKind::CompareFailed
    );
    assert_eq!(kind(c.put_if(&k, "x", 0, -1)), ErrorKind::BadArgument);
}

#[test]
fn delete_if_and_delete_prefix() {
    let c = v3();
    let k = unique("del-if");
    let r1 = c.put(&k, "v", 0).unwrap();
    assert_eq!(
        kind(c.delete_if(&k, Some(r1 - 1))),
        ErrorKind::CompareFailed
    );
    let r2 = c.delete_if(&k, Some(r1)).unwrap();
    assert!(r2 > r1);
    assert_eq!(kind(c.delete_if(&k, Some(r1))), ErrorKind::NotFound);
    assert_eq!(kind(c.delete_if(&k, None)), ErrorKind::NotFound);
    c.put(&k, "v", 0).unwrap();
    c.delete_if(&k, None).unwrap();

    let d = unique("del-prefix");
    for k in ["a", "b/c", "_h"] {
        c.put(format!("{d}/{k}"), "v", 0).unwrap();
    }
    c.put(&d, "itself", 0).unwrap();
    c.put(format!("{d}-x"), "sibling", 0).unwrap();
    let done = c.delete_prefix(&d).unwrap();
    assert_eq!(done.count, 4);
    assert!(c.get_kv(&d).unwrap().0.is_none());
    assert!(c.list(&d).unwrap().kvs.is_empty());
    assert!(c.get_kv(format!("{d}-x")).unwrap().0.is_some());
    assert_eq!(c.delete_prefix(&d).unwrap().count, 0);
    assert_eq!(kind(c.delete_prefix("/")), ErrorKind::BadArgument);
    assert_eq!(kind(c.delete_prefix("")), ErrorKind::BadArgument);
}

#[test]
fn a_counter_loses_no_update() {
    const THREADS: usize = 4;
    const EACH: usize = 25;
    let c = Arc::new(v3());
    let k = unique("counter");
    c.put(&k, "0", 0).unwrap();
    let conflicts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let (c, k, conflicts) = (c.clone(), k.clone(), conflicts.clone());
            std::thread::spawn(move || {
                for _ in 0..EACH {
                    loop {
                        let kv = c.get_kv(&k).unwrap().0.unwrap();
                        let n: u64 = std::str::from_utf8(&kv.value).unwrap().parse().unwrap();
                        match c.put_if(&k, (n + 1).to_string(), 0, kv.mod_revision) {
                            Ok(_) => break,
                            Err(e) if e.kind() == ErrorKind::CompareFailed => {
                                conflicts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let n = c.get_kv(&k).unwrap().0.unwrap().value;
    eprintln!(
        "counter: {} after {THREADS}x{EACH} increments ({} conflicts retried)",
        String::from_utf8_lossy(&n),
        conflicts.load(std::sync::atomic::Ordering::Relaxed)
    );
    assert_eq!(n, (THREADS * EACH).to_string().as_bytes());
}

#[test]
fn watch_events_from_a_read_revision_batches_and_drains_on_one_stream() {
    let _h = history();
    let proxy = Proxy::start(&endpoint());
    let c = client_at(ProtocolKind::V3, &proxy.endpoint(), 5000);
    let d = unique("watch-ev");
    c.put(format!("{d}/a"), "1", 0).unwrap();
    let (_, read_at) = c.get_kv(format!("{d}/a")).unwrap();
    const N: usize = 50;
    let keys: Vec<String> = (0..N)
        .map(|i| format!("{d}/k{i}"))
        .chain(["x", "y", "z"].map(|n| format!("{d}/batch/{n}")))
        .collect();
    for (i, k) in keys.iter().enumerate() {
        c.put(k, i.to_string(), 0).unwrap();
    }
    c.put(format!("{d}-sibling"), "no", 0).unwrap();
    // One revision deleting several keys: one batch.
    let deleted = c.delete_prefix(format!("{d}/batch")).unwrap();
    let mut from = read_at + 1;
    let mut seen = 0;
    let before = proxy.watch_requests();
    for k in &keys {
        let ch = c
            .watch_events(&d, Some(from), Some(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(ch.events.len(), 1);
        assert_eq!(ch.events[0].kv.key, k.as_bytes());
        assert_eq!(ch.events[0].kv.mod_revision, ch.revision);
        assert!(!ch.events[0].deleted);
        from = ch.revision + 1;
        seen += 1;
    }
    let batch = c
        .watch_events(&d, Some(from), Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(batch.revision, deleted.revision);
    assert_eq!(batch.events.len() as i64, deleted.count);
    assert_eq!(batch.events.len(), 3);
    assert!(batch
        .events
        .iter()
        .all(|e| e.deleted && e.kv.value.is_empty()));
    let requests = proxy.watch_requests() - before;
    eprintln!(
        "watch_events: drained {} changes (+1 batch of {}) with {requests} watch request(s)",
        seen,
        batch.events.len()
    );
    assert_eq!(requests, 1);
}

#[test]
fn watch_events_time_out_and_keep_what_comes_after() {
    let _h = history();
    let c = Arc::new(v3());
    let d = unique("watch-timeout");
    let from = c.put(format!("{d}/start"), "s", 0).unwrap() + 1;
    let t = Instant::now();
    let e = c
        .watch_events(&d, Some(from), Some(Duration::from_millis(300)))
        .unwrap_err();
    let waited = t.elapsed();
    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
    assert!(waited >= Duration::from_millis(290) && waited < Duration::from_secs(2));
    // A change lands right after a time-out: the next call gets it.
    let writer = {
        let (c, d) = (c.clone(), d.clone());
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(40));
            c.put(format!("{d}/late"), "l", 0).unwrap()
        })
    };
    let _ = c.watch_events(&d, Some(from), Some(Duration::from_millis(40)));
    let rev = writer.join().unwrap();
    let ch = c
        .watch_events(&d, Some(from), Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!((ch.revision, ch.events.len()), (rev, 1));
    assert_eq!(ch.events[0].kv.value, b"l");
    // From now (no revision): only what happens after the call.
    let c2 = c.clone();
    let d2 = d.clone();
    let waiter = std::thread::spawn(move || c2.watch_events(&d2, None, None));
    std::thread::sleep(Duration::from_millis(300));
    let rev = c.put(format!("{d}/now"), "n", 0).unwrap();
    let ch = waiter.join().unwrap().unwrap();
    assert_eq!(ch.revision, rev);
}

#[test]
fn watch_events_on_a_compacted_revision_names_the_oldest() {
    let _h = history();
    let c = v3();
    let k = unique("compacted");
    let old = c.put(&k, "1", 0).unwrap();
    let newer = c.put(&k, "2", 0).unwrap();
    let url = format!("http://{}/v3/kv/compaction", endpoint());
    ureq::post(&url)
        .send(format!(r#"{{"revision":"{newer}"}}"#).as_bytes())
        .unwrap();
    let e = c
        .watch_events(&k, Some(old), Some(Duration::from_secs(5)))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Compacted, "{e}");
    assert!(e.message().contains(&newer.to_string()), "{e}");
}

#[test]
fn leases_grant_refresh_time_revoke() {
    let c = v3();
    let k = unique("leased");
    assert_eq!(kind(c.lease_grant(0)), ErrorKind::BadArgument);
    assert_eq!(kind(c.lease_grant(-5)), ErrorKind::BadArgument);
    let lease = c.lease_grant(30).unwrap();
    assert!(lease > 0);
    c.put(&k, "v", lease).unwrap();
    assert_eq!(c.get_kv(&k).unwrap().0.unwrap().lease, lease);
    let t = c.lease_ttl(lease).unwrap();
    assert_eq!(t.granted, 30);
    assert!(t.remaining > 0 && t.remaining <= 30);
    assert_eq!(c.lease_keepalive(lease).unwrap(), 30);
    c.lease_revoke(lease).unwrap();
    assert!(c.get_kv(&k).unwrap().0.is_none(), "revoke deletes the key");
    assert_eq!(kind(c.lease_revoke(lease)), ErrorKind::NotFound);
    assert_eq!(kind(c.lease_keepalive(lease)), ErrorKind::NotFound);
    assert_eq!(kind(c.lease_ttl(lease)), ErrorKind::NotFound);
    assert_eq!(kind(c.lease_keep(lease)), ErrorKind::NotFound);
    assert_eq!(kind(c.put(&k, "v", lease)), ErrorKind::NotFound);
}

#[test]
fn a_lease_expires_unless_kept() {
    let c = v3();
    let (dropped, kept) = (unique("expires"), unique("kept"));
    let short = c.lease_grant(2).unwrap();
    let long = c.lease_grant(2).unwrap();
    c.put(&dropped, "v", short).unwrap();
    c.put(&kept, "v", long).unwrap();
    c.lease_keep(long).unwrap();
    c.lease_keep(long).unwrap(); // twice is fine
    std::thread::sleep(Duration::from_millis(4500));
    assert!(c.get_kv(&dropped).unwrap().0.is_none(), "expired");
    assert_eq!(kind(c.lease_ttl(short)), ErrorKind::NotFound);
    assert!(c.get_kv(&kept).unwrap().0.is_some(), "kept alive");
    assert!(c.lease_ttl(long).unwrap().remaining > 0);
    c.lease_revoke(long).unwrap();
    assert!(c.get_kv(&kept).unwrap().0.is_none());
}

#[test]
fn closing_a_session_stops_its_keepers_and_readers() {
    let c = v3();
    let d = unique("close");
    let lease = c.lease_grant(2).unwrap();
    c.lease_keep(lease).unwrap();
    let _ = c.watch_events(&d, None, Some(Duration::from_millis(50)));
    let t = Instant::now();
    drop(c);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(kind(v3().lease_ttl(lease)), ErrorKind::NotFound);
}

#[test]
fn a_v2_session_refuses_every_extended_call() {
    let c = client_with(Config {
        protocol: ProtocolKind::V2,
        ..Config::default()
    });
    let k = unique("v2");
    let t = Some(Duration::from_millis(10));
    let kinds = [
        kind(c.get_kv(&k)),
        kind(c.list(&k)),
        kind(c.put(&k, "v", 0)),
        kind(c.put_if(&k, "v", 0, 0)),
        kind(c.delete_if(&k, None)),
        kind(c.delete_prefix(&k)),
        kind(c.watch_events(&k, None, t)),
        kind(c.lease_grant(5)),
        kind(c.lease_keepalive(1)),
        kind(c.lease_keep(1)),
        kind(c.lease_ttl(1)),
        kind(c.lease_revoke(1)),
    ];
    assert!(
        kinds.iter().all(|&k| k == ErrorKind::BadArgument),
        "{kinds:?}"
    );
    assert!(c.get_kv(&k).unwrap_err().message().contains("v3"));
}

// ---------------------------------------------------------------------
// A three-member cluster: a member killed under a watch and a kept lease.

const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

fn cluster_session(cl: &Cluster, order: &[usize]) -> Client {
    let config = Config {
        connect_timeout: Duration::from_millis(300),
        request_timeout: REQUEST_TIMEOUT,
        ..Config::default()
    };
    Client::new(endpoints(&cl.endpoints_in_order(order)), config).unwrap()
}

#[test]
fn cluster_watch_events_and_a_kept_lease_survive_a_member_kill() {
    let cl = Cluster::start(3);
    let victim = cl.follower_index();
    let order = cl.order_with_first(victim);
    let watcher = cluster_session(&cl, &order);
    let writer = cluster_session(&cl, &[(victim + 1) % 3, (victim + 2) % 3]);
    let d = "/ext-cluster";
    let lease = watcher.lease_grant(2).unwrap();
    watcher.put(format!("{d}/leased"), "v", lease).unwrap();
    watcher.lease_keep(lease).unwrap();
    let first = writer.put(format!("{d}/0"), "0", 0).unwrap();
    // Open the stream on the victim (first in the watcher's list).
    let ch = watcher
        .watch_events(d, Some(first), Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(ch.revision, first);
    let mut from = ch.revision + 1;
    let mut written = Vec::new();
    for i in 1..=5 {
        written.push(writer.put(format!("{d}/{i}"), i.to_string(), 0).unwrap());
    }
    // Two read before the kill, the rest after.
    for _ in 0..2 {
        let ch = watcher
            .watch_events(d, Some(from), Some(Duration::from_secs(5)))
            .unwrap();
        from = ch.revision + 1;
    }
    cl.kill(victim);
    let killed = Instant::now();
    for i in 6..=8 {
        written.push(put_soon(&writer, &format!("{d}/{i}")));
    }
    let mut got = Vec::new();
    let mut gap = Duration::ZERO;
    while got.len() < written.len() - 2 {
        let t = Instant::now();
        let ch = watcher
            .watch_events(d, Some(from), Some(Duration::from_secs(10)))
            .unwrap();
        gap = gap.max(t.elapsed());
        got.push(ch.revision);
        from = ch.revision + 1;
    }
    assert_eq!(got, written[2..].to_vec(), "no gap, no repeat");
    eprintln!(
        "cluster: watch resumed after the kill; longest wait {} ms, all {} changes after it, in order",
        gap.as_millis(),
        got.len()
    );
    // The kept lease outlives several of its TTLs across the kill.
    std::thread::sleep(Duration::from_secs(5).saturating_sub(killed.elapsed()));
    assert!(writer.get_kv(format!("{d}/leased")).unwrap().0.is_some());
    assert!(writer.lease_ttl(lease).unwrap().remaining > 0);

    // The same through the C export, resumed across a second kill (of
    // another member, once the first is back).
    cl.restart(victim);
    cl.wait_healthy(Duration::from_secs(10));
    c_abi::watch_across_a_kill(&cl, d, from, &writer);
    watcher.lease_revoke(lease).unwrap();
}

/// A put that may have to wait out a member's death (the writer's own
/// failover is not what is tested here).
fn put_soon(writer: &Client, key: &str) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match writer.put(key, "v", 0) {
            Ok(rev) => return rev,
            Err(e) if Instant::now() < deadline => eprintln!("put {key}: {e}; again"),
            Err(e) => panic!("put {key}: {e}"),
        }
    }
}

/// The C exports, called as a C program would (the symbols are in the
/// library this test links).
mod c_abi {
    use super::*;
    use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};

    #[repr(C)]
    struct EtcdKv {
        key: *mut c_char,
        value: *mut c_char,
        value_len: usize,
        create_revision: i64,
        mod_revision: i64,
        version: i64,
        lease: i64,
    }

    #[repr(C)]
    struct EtcdEvent {
        deleted: c_int,
        kv: EtcdKv,
    }

    extern "C" {
        fn etcd_open_str(servers: *mut c_char) -> *mut c_void;
        fn etcd_close(s: *mut c_void);
        fn etcd_errmsg() -> *const c_char;
        fn etcd_watch_events(
            s: *mut c_void,
            prefix: *const c_char,
            from: i64,
            timeout_ms: c_uint,
            events: *mut *mut EtcdEvent,
            count: *mut usize,
            revision: *mut i64,
        ) -> c_int;
        fn etcd_events_free(events: *mut EtcdEvent, count: usize);
    }

    /// A C session on two live members, the first killed between two
    /// calls of etcd_watch_events: the second call continues on the other.
    pub fn watch_across_a_kill(cl: &Cluster, d: &str, from: i64, writer: &Client) {
        // A follower goes: no election to wait for.
        let victim = cl.follower_index();
        let servers = CString::new(cl.endpoints_in_order(&cl.order_with_first(victim))).unwrap();
        let prefix = CString::new(d).unwrap();
        let next = |s: *mut c_void, from: i64| {
            let (mut ev, mut n, mut rev) = (std::ptr::null_mut(), 0usize, 0i64);
            // SAFETY: an open session, C strings and out-pointers as the C API wants them.
            unsafe {
                let rc =
                    etcd_watch_events(s, prefix.as_ptr(), from, 10_000, &mut ev, &mut n, &mut rev);
                assert_eq!(rc, 0, "{:?}", CStr::from_ptr(etcd_errmsg()));
                assert_eq!(n, 1);
                let key = CStr::from_ptr((*ev).kv.key).to_bytes().to_vec();
                etcd_events_free(ev, n);
                (rev, key)
            }
        };
        // SAFETY: a C string.
        let s = unsafe { etcd_open_str(servers.as_ptr() as *mut c_char) };
        assert!(!s.is_null());
        let a = writer.put(format!("{d}/c1"), "1", 0).unwrap();
        assert_eq!(next(s, from), (a, format!("{d}/c1").into_bytes()));
        cl.kill(victim);
        let b = put_soon(writer, &format!("{d}/c2"));
        assert_eq!(next(s, a + 1), (b, format!("{d}/c2").into_bytes()));
        // SAFETY: the session opened above.
        unsafe { etcd_close(s) };
    }
}
