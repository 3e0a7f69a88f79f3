//! Watch and lock against a real etcd, each on both protocols (v3 through
//! the gateway, v2 through the legacy keys API), and what only v3 can do.

mod common;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use etcdapi::{Client, ErrorKind, ProtocolKind};

both_protocols!(
    live_watch_wakes_and_ignores_siblings,
    watch_from_now_skips_earlier_changes,
    history_replay_set_set_delete_expire_and_the_key_itself,
    drain_1000_events_no_gap_no_repeat,
    cut_stream_continues_without_gap,
    cut_wait_continues_on_the_next_server_without_gap,
    waits_outlive_the_request_timeout,
    lock_renew_unlock_cycle,
    contention_between_threads,
    expired_lock_cannot_be_renewed_and_is_taken_by_another,
    many_threads_take_turns,
);

fn live_watch_wakes_and_ignores_siblings(p: ProtocolKind) {
    let _h = v2_history(p);
    let c = client_on(p);
    let pfx = unique("pfx");
    let writer = client_on(p);
    let p2 = pfx.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        for sib in ["-x", ".x", "y"] {
            writer.set(format!("{p2}{sib}"), "sibling").unwrap();
        }
        // etcd's v2 watch leaves hidden keys out; a v3 watch delivers
        // them (only listings hide them there).
        if p == ProtocolKind::V2 {
            writer.set(format!("{p2}/_hidden"), "hidden").unwrap();
        }
        writer.set(format!("{p2}/k"), "v").unwrap();
        Instant::now()
    });
    let e = c.watch(&pfx, None).unwrap();
    let woke = Instant::now();
    let written = t.join().unwrap();
    assert_eq!(kv(&e), event(&format!("{pfx}/k"), Some("v")));
    assert!(e.revision > 0);
    assert!(woke.duration_since(written) < Duration::from_secs(1));
}

fn watch_from_now_skips_earlier_changes(p: ProtocolKind) {
    let _h = v2_history(p);
    let c = client_on(p);
    let pfx = unique("now");
    c.set(format!("{pfx}/before"), "old").unwrap();
    let writer = client_on(p);
    let p2 = pfx.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        writer.set(format!("{p2}/after"), "new").unwrap();
    });
    let e = c.watch(&pfx, None).unwrap();
    t.join().unwrap();
    assert_eq!(kv(&e), event(&format!("{pfx}/after"), Some("new")));
}

fn history_replay_set_set_delete_expire_and_the_key_itself(p: ProtocolKind) {
    let _h = v2_history(p);
    let c = client_on(p);
    let k = unique("hist");
    let start = next_change(p);
    c.set(&k, "one").unwrap();
    c.set(format!("{k}-sibling"), "no").unwrap();
    c.set(&k, "two").unwrap();
    c.delete(&k).unwrap();
    c.set_with(format!("{k}/ttl"), "t", None, 1).unwrap();
    let mut got = Vec::new();
    let mut next = start;
    for _ in 0..5 {
        let e = c.watch(&k, Some(next)).unwrap();
        assert!(e.revision >= next);
        next = e.revision + 1;
        got.push(kv(&e));
    }
    assert_eq!(
        got,
        vec![
            event(&k, Some("one")),
            event(&k, Some("two")),
            event(&k, None),
            event(&format!("{k}/ttl"), Some("t")),
            event(&format!("{k}/ttl"), None), // the expiry
        ]
    );
}

fn drain_1000_events_no_gap_no_repeat(p: ProtocolKind) {
    let _h = v2_history(p);
    let proxy = Proxy::start(&endpoint());
    let c = Client::new(endpoints(&proxy.endpoint()), config_on(p)).unwrap();
    let pfx = unique("burst");
    let first = next_change(p);
    // v3 keeps every change until compacted: all 1000 are written before
    // the first is read, and the backlog is drained. v2 keeps the last
    // 1000 changes of the whole store: the writer stays at most 300
    // changes ahead of the reader, so none leaves before it is read.
    let ahead = match p {
        ProtocolKind::V3 => i64::MAX,
        ProtocolKind::V2 => 300,
    };
    let read = Arc::new(AtomicI64::new(0));
    let (p2, read2) = (pfx.clone(), read.clone());
    let writer = std::thread::spawn(move || {
        let w = client_on(p);
        for i in 0..1000i64 {
            while i - read2.load(Ordering::SeqCst) > ahead {
                std::thread::sleep(Duration::from_millis(1));
            }
            w.set(format!("{p2}/k"), i.to_string()).unwrap();
        }
    });
    let mut writer = Some(writer);
    if p == ProtocolKind::V3 {
        writer.take().unwrap().join().unwrap();
    }
    let t = Instant::now();
    let mut next = first;
    let mut last = 0;
    for i in 0..1000i64 {
        let e = c.watch(&pfx, Some(next)).unwrap();
        assert_eq!(
            kv(&e),
            event(&format!("{pfx}/k"), Some(&i.to_string())),
            "event {i}"
        );
        // Other tests write too, so revisions may jump; the values prove
        // that none of ours was skipped or repeated.
        assert!(e.revision >= next, "event {i} went backwards");
        assert!(e.revision > last, "a repeat at event {i}");
        last = e.revision;
        next = e.revision + 1;
        read.store(i + 1, Ordering::SeqCst);
    }
    if let Some(w) = writer {
        w.join().unwrap();
    }
    let requests = proxy.watch_requests();
    println!("{p:?}: 1000 events drained in {:?}", t.elapsed());
    println!("{p:?}: 1000-event drain: {requests} v3 watch requests");
    // v3 streams: every watch request of the test, the first included.
    if p == ProtocolKind::V3 {
        assert!(requests <= 2, "{requests} watch requests for 1000 events");
    }
}

/// The stream (v3) or wait (v2) is cut between two calls: the next call
/// continues on the next server, from where the last one stopped.
fn cut_stream_continues_without_gap(p: ProtocolKind) {
    let _h = v2_history(p);
    let proxy = Proxy::start(&endpoint());
    // The proxy first, the real server second: after the cut the stream
    // continues on the next server.
    let servers = format!("{} {}", proxy.endpoint(), endpoint());
    let c = Client::new(endpoints(&servers), config_on(p)).unwrap();
    let writer = client_on(p);
    let pfx = unique("cut");
    let start = next_change(p);
    writer.set(format!("{pfx}/a"), "1").unwrap();
    let first = c.watch(&pfx, Some(start)).unwrap();
    writer.set(format!("{pfx}/a"), "2").unwrap();
    proxy.cut_all();
    writer.set(format!("{pfx}/a"), "3").unwrap();
    let second = c.watch(&pfx, Some(first.revision + 1)).unwrap();
    let third = c.watch(&pfx, Some(second.revision + 1)).unwrap();
    assert_eq!(kv(&second).1.as_deref(), Some("2"));
    assert_eq!(kv(&third).1.as_deref(), Some("3"));
}

/// The connection is cut during a wait: the wait continues on the next
/// server, from the same point.
fn cut_wait_continues_on_the_next_server_without_gap(p: ProtocolKind) {
    let _h = v2_history(p);
    let proxy = Proxy::start(&endpoint());
    // The proxy first, the real server second: after the cut the wait
    // continues on the next server, from the same index.
    let c = client_at(p, &format!("{} {}", proxy.endpoint(), endpoint()), 2000);
    let pfx = unique("cut");
    let writer = client_on(p);
    let start = next_change(p);
    writer.set(format!("{pfx}/a"), "1").unwrap();
    let first = c.watch(&pfx, Some(start)).unwrap();
    assert_eq!(kv(&first), event(&format!("{pfx}/a"), Some("1")));
    let (p2, proxy2) = (pfx.clone(), Arc::new(proxy));
    let cutter = proxy2.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        cutter.cut_all();
        // Written while the wait has no server: not lost.
        writer.set(format!("{p2}/a"), "2").unwrap();
        writer.set(format!("{p2}/a"), "3").unwrap();
    });
    // from = None, so "now" is learned first and kept across the cut.
    let second = c.watch(&pfx, None).unwrap();
    t.join().unwrap();
    let third = c.watch(&pfx, Some(second.revision + 1)).unwrap();
    assert_eq!(kv(&second).1.as_deref(), Some("2"));
    assert_eq!(kv(&third).1.as_deref(), Some("3"));
}

fn waits_outlive_the_request_timeout(p: ProtocolKind) {
    let _h = v2_history(p);
    let c = client_at(p, &endpoint(), 1000);
    let pfx = unique("long-wait");
    let p2 = pfx.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(2500));
        client_on(p).set(format!("{p2}/late"), "v").unwrap();
    });
    let e = c.watch(&pfx, None).unwrap();
    t.join().unwrap();
    assert_eq!(kv(&e), event(&format!("{pfx}/late"), Some("v")));
    // A lock wait too.
    let k = unique("long-lock");
    let holder = client_on(p);
    let idx = holder.lock(&k, 5).unwrap();
    let k2 = k.clone();
    let waiter = std::thread::spawn(move || {
        let c = client_at(p, &endpoint(), 1000);
        let idx = c.lock(&k2, 5).unwrap();
        c.unlock(&k2, &idx).unwrap();
    });
    std::thread::sleep(Duration::from_millis(2500));
    holder.unlock(&k, &idx).unwrap();
    waiter.join().unwrap();
}

fn lock_renew_unlock_cycle(p: ProtocolKind) {
    let c = client_on(p);
    let k = unique("lock");
    let idx = c.lock(&k, 5).unwrap();
    // The index is the lock's lease ID in lowercase hex on v3, the
    // waiter's createdIndex in decimal on v2.
    let well_formed = match p {
        ProtocolKind::V3 => idx
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
        ProtocolKind::V2 => !idx.is_empty() && idx.bytes().all(|b| b.is_ascii_digit()),
    };
    assert!(well_formed, "{idx}");
    c.renew(&k, 5, &idx).unwrap();
    c.unlock(&k, &idx).unwrap();
    assert!(c.unlock(&k, &idx).unwrap_err().is_refusal());
    assert!(c.renew(&k, 5, &idx).unwrap_err().is_refusal());
    assert!(c.unlock(&k, "zz").unwrap_err().is_refusal());
    assert!(c.unlock(&k, "0").unwrap_err().is_refusal());
    assert_eq!(c.lock(&k, 0).unwrap_err().kind(), ErrorKind::BadArgument);
    // Lock keys stay out of listings; nested names are independent.
    c.set(&k, "the key itself").unwrap();
    let a = c.lock(&k, 5).unwrap();
    let b = c.lock(format!("{k}/42"), 5).unwrap();
    let parent = k.rsplit_once('/').unwrap().0;
    assert_eq!(get_str(&c, parent).unwrap(), k);
    assert!(!get_str(&c, "/").unwrap().contains("_locks"));
    assert_eq!(get_str(&c, &k).as_deref(), Some("the key itself"));
    c.unlock(format!("{k}/42"), &b).unwrap();
    c.unlock(&k, &a).unwrap();
    // Even the root can be locked.
    let r = c.lock("/", 5).unwrap();
    c.renew("/", 5, &r).unwrap();
    c.unlock("/", &r).unwrap();
    // Locks on v2 and v3 are separate.
    let theirs = client_on(other(p));
    let i_other = theirs.lock(&k, 5).unwrap();
    let i = c.lock(&k, 5).unwrap();
    c.unlock(&k, &i).unwrap();
    theirs.unlock(&k, &i_other).unwrap();
}

fn contention_between_threads(p: ProtocolKind) {
    // The waiter's ttl longer than the hold, then shorter: its place is
    // kept by refreshing.
    for (waiter_ttl, hold_ms) in [(10, 1500), (2, 4000)] {
        let k = unique("contend");
        let holder = client_on(p);
        let idx = holder.lock(&k, 10).unwrap();
        let k2 = k.clone();
        let waiter = std::thread::spawn(move || {
            let c = client_on(p);
            let t = Instant::now();
            let idx = c.lock(&k2, waiter_ttl).unwrap();
            let got = Instant::now();
            c.unlock(&k2, &idx).unwrap();
            (t.elapsed(), got)
        });
        std::thread::sleep(Duration::from_millis(hold_ms));
        let released = Instant::now();
        holder.unlock(&k, &idx).unwrap();
        let (waited, got) = waiter.join().unwrap();
        assert!(
            waited >= Duration::from_millis(hold_ms - 100),
            "waiter did not wait: {waited:?}"
        );
        let handover = got.duration_since(released);
        println!("{p:?} lock hand-over: {handover:?}");
        assert!(handover < Duration::from_secs(1));
    }
}

fn expired_lock_cannot_be_renewed_and_is_taken_by_another(p: ProtocolKind) {
    let k = unique("expire");
    let a = client_on(p);
    let idx = a.lock(&k, 2).unwrap();
    let b = client_on(p);
    let t = Instant::now();
    let idx_b = b.lock(&k, 5).unwrap();
    let waited = t.elapsed();
    assert!(
        waited > Duration::from_millis(1500) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    assert!(a.renew(&k, 2, &idx).unwrap_err().is_refusal());
    assert!(a.unlock(&k, &idx).unwrap_err().is_refusal());
    b.renew(&k, 5, &idx_b).unwrap();
    b.unlock(&k, &idx_b).unwrap();
}

fn many_threads_take_turns(p: ProtocolKind) {
    let k = unique("turns");
    let inside = Arc::new(AtomicI64::new(0));
    let threads: Vec<_> = (0..5)
        .map(|_| {
            let (k, inside) = (k.clone(), inside.clone());
            std::thread::spawn(move || {
                let c = client_on(p);
                for _ in 0..3 {
                    let idx = c.lock(&k, 5).unwrap();
                    assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                    std::thread::sleep(Duration::from_millis(20));
                    inside.fetch_sub(1, Ordering::SeqCst);
                    c.unlock(&k, &idx).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

/// Two puts in one v3 transaction share a revision; a caller continuing
/// on the same stream still gets both. (v2 has no transactions.)
#[test]
fn changes_of_one_transaction_are_each_delivered() {
    let c = client_on(ProtocolKind::V3);
    let pfx = unique("txn");
    let rev = current_revision();
    let (a, b) = (format!("{pfx}/a"), format!("{pfx}/b"));
    let b64 = |s: &str| base64_std(s.as_bytes());
    let body = format!(
        r#"{{"success":[{{"request_put":{{"key":"{}","value":"{}"}}}},{{"request_put":{{"key":"{}","value":"{}"}}}}]}}"#,
        b64(&a),
        b64("1"),
        b64(&b),
        b64("2")
    );
    let url = format!("http://{}/v3/kv/txn", endpoint());
    assert_eq!(
        ureq::post(&url).send(body.as_bytes()).unwrap().status(),
        200
    );
    let first = c.watch(&pfx, Some(rev + 1)).unwrap();
    let second = c.watch(&pfx, Some(first.revision + 1)).unwrap();
    assert_eq!(first.revision, second.revision);
    assert_eq!(
        (kv(&first), kv(&second)),
        (event(&a, Some("1")), event(&b, Some("2")))
    );
}

fn base64_std(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
