//! Watch and lock against a real etcd.

mod common;

use std::time::{Duration, Instant};

use common::*;
use etcdapi::{Client, Error, Event};

fn event(key: &str, value: Option<&str>) -> (Vec<u8>, Option<Vec<u8>>) {
    (
        key.as_bytes().to_vec(),
        value.map(|v| v.as_bytes().to_vec()),
    )
}

fn kv(e: &Event) -> (Vec<u8>, Option<Vec<u8>>) {
    (e.key.clone(), e.value.clone())
}

#[test]
fn live_watch_wakes_and_ignores_siblings() {
    let c = client();
    let p = unique("pfx");
    let writer = client();
    let p2 = p.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        for sib in ["-x", ".x", "y"] {
            writer.set(format!("{p2}{sib}"), "sibling").unwrap();
        }
        writer.set(format!("{p2}/k"), "v").unwrap();
        Instant::now()
    });
    let e = c.watch(&p, None).unwrap();
    let woke = Instant::now();
    let written = t.join().unwrap();
    assert_eq!(kv(&e), event(&format!("{p}/k"), Some("v")));
    assert!(e.revision > 0);
    assert!(woke.duration_since(written) < Duration::from_secs(1));
}

#[test]
fn history_replay_set_set_delete_and_the_key_itself() {
    let c = client();
    let p = unique("hist");
    let rev = current_revision();
    c.set(&p, "one").unwrap();
    let first = c.watch(&p, Some(rev + 1)).unwrap();
    assert_eq!(kv(&first).0, p.as_bytes());
    let from = first.revision;
    c.set(&p, "two").unwrap();
    c.delete(&p).unwrap();
    let mut got = Vec::new();
    let mut next = from;
    for _ in 0..3 {
        let e = c.watch(&p, Some(next)).unwrap();
        assert!(e.revision >= next);
        next = e.revision + 1;
        got.push(kv(&e));
    }
    assert_eq!(
        got,
        vec![
            event(&p, Some("one")),
            event(&p, Some("two")),
            event(&p, None)
        ]
    );
}

#[test]
fn drain_1000_with_few_requests_no_gap_no_repeat() {
    let proxy = Proxy::start(&endpoint());
    let c = Client::open(&proxy.endpoint()).unwrap();
    let writer = client();
    let p = unique("burst");
    let rev = current_revision();
    writer.set(format!("{p}/start"), "0").unwrap();
    let start = c.watch(&p, Some(rev + 1)).unwrap();
    for i in 0..1000 {
        writer.set(format!("{p}/k"), i.to_string()).unwrap();
    }
    let mut next = start.revision + 1;
    for i in 0..1000 {
        let e = c.watch(&p, Some(next)).unwrap();
        assert_eq!(
            kv(&e),
            event(&format!("{p}/k"), Some(&i.to_string())),
            "event {i}"
        );
        // Other tests write too, so revisions may jump; the values prove
        // that none of ours was skipped or repeated.
        assert!(e.revision >= next, "event {i} went backwards");
        next = e.revision + 1;
    }
    // Every watch request of the test, the one that found the start included.
    let requests = proxy.watch_requests();
    println!("1000-event drain: {requests} watch requests");
    assert!(requests <= 2, "{requests} watch requests for 1000 events");
}

#[test]
fn cut_stream_continues_without_gap() {
    let proxy = Proxy::start(&endpoint());
    // The proxy first, the real server second: after the cut the stream
    // continues on the next server.
    let c = Client::open(&format!("{} {}", proxy.endpoint(), endpoint())).unwrap();
    let writer = client();
    let p = unique("cut");
    let rev = current_revision();
    writer.set(format!("{p}/a"), "1").unwrap();
    let first = c.watch(&p, Some(rev + 1)).unwrap();
    writer.set(format!("{p}/a"), "2").unwrap();
    proxy.cut_all();
    writer.set(format!("{p}/a"), "3").unwrap();
    let second = c.watch(&p, Some(first.revision + 1)).unwrap();
    let third = c.watch(&p, Some(second.revision + 1)).unwrap();
    assert_eq!(kv(&second).1.unwrap(), b"2");
    assert_eq!(kv(&third).1.unwrap(), b"3");
}

#[test]
fn lock_renew_unlock_cycle() {
    let c = client();
    let k = unique("lock");
    let idx = c.lock(&k, 5).unwrap();
    assert!(
        idx.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
        "{idx}"
    );
    c.renew(&k, 5, &idx).unwrap();
    c.unlock(&k, &idx).unwrap();
    assert!(c.unlock(&k, &idx).unwrap_err().is_refusal());
    assert!(c.renew(&k, 5, &idx).unwrap_err().is_refusal());
    assert!(c.unlock(&k, "zz").unwrap_err().is_refusal());
    assert!(matches!(c.lock(&k, 0), Err(Error::BadArgument(_))));
    // Lock keys stay out of listings and nested names are independent.
    let a = c.lock(&k, 5).unwrap();
    let b = c.lock(format!("{k}/42"), 5).unwrap();
    c.unlock(format!("{k}/42"), &b).unwrap();
    c.unlock(&k, &a).unwrap();
}

#[test]
fn contention_between_threads() {
    let k = unique("contend");
    let holder = client();
    let idx = holder.lock(&k, 10).unwrap();
    let k2 = k.clone();
    let waiter = std::thread::spawn(move || {
        let c = client();
        let t = Instant::now();
        let idx = c.lock(&k2, 10).unwrap();
        let got = Instant::now();
        c.unlock(&k2, &idx).unwrap();
        (t.elapsed(), got)
    });
    std::thread::sleep(Duration::from_millis(1500));
    let released = Instant::now();
    holder.unlock(&k, &idx).unwrap();
    let (waited, got) = waiter.join().unwrap();
    assert!(
        waited >= Duration::from_millis(1400),
        "waiter did not wait: {waited:?}"
    );
    let handover = got.duration_since(released);
    println!("lock hand-over: {handover:?}");
    assert!(handover < Duration::from_secs(1));
}

#[test]
fn expired_lock_cannot_be_renewed_and_is_taken_by_another() {
    let k = unique("expire");
    let a = client();
    let idx = a.lock(&k, 2).unwrap();
    let b = client();
    let t = Instant::now();
    let idx_b = b.lock(&k, 5).unwrap();
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert!(a.renew(&k, 2, &idx).unwrap_err().is_refusal());
    assert!(a.unlock(&k, &idx).unwrap_err().is_refusal());
    b.unlock(&k, &idx_b).unwrap();
}

#[test]
fn changes_of_one_transaction_are_each_delivered() {
    // Two puts in one txn share a revision; a caller continuing on the same
    // stream still gets both.
    let c = client();
    let p = unique("txn");
    let rev = current_revision();
    let (a, b) = (format!("{p}/a"), format!("{p}/b"));
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
    let first = c.watch(&p, Some(rev + 1)).unwrap();
    let second = c.watch(&p, Some(first.revision + 1)).unwrap();
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
