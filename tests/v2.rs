//! What only the v2 protocol (`ETCDAPI_PROTOCOL=v2`) has, against a real
//! etcd started with `--enable-v2=true`: its UTF-8-only keys and values, its
//! store (separate from v3's, a tree, with a history of 1000 changes), its
//! lock waiters, and answers lost on the way back. What v2 and v3 share is
//! tested on both, in kv.rs and watch_lock.rs.

mod common;

use std::time::Duration;

use common::*;
use etcdapi::{Client, ErrorKind, ProtocolKind};

fn v2() -> Client {
    client_on(ProtocolKind::V2)
}

fn v3() -> Client {
    client_on(ProtocolKind::V3)
}

#[test]
fn non_utf8_is_refused_clearly() {
    let c = v2();
    let k = unique("bytes");
    let e = c.set(&k, b"\xff\xfe").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadArgument, "{e:?}");
    assert!(e.message().contains("UTF-8"), "{e}");
    let mut bad_key = k.clone().into_bytes();
    bad_key.extend_from_slice(b"/\xc3");
    let e = c.set(&bad_key, "v").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadArgument, "{e:?}");
    assert_eq!(c.get(&bad_key).unwrap_err().kind(), ErrorKind::BadArgument);
    assert_eq!(
        c.delete(&bad_key).unwrap_err().kind(),
        ErrorKind::BadArgument
    );
    assert_eq!(
        c.watch(&bad_key, None).unwrap_err().kind(),
        ErrorKind::BadArgument
    );
    assert_eq!(
        c.lock(&bad_key, 5).unwrap_err().kind(),
        ErrorKind::BadArgument
    );
    // Nothing was written.
    assert_eq!(c.get(&k).unwrap(), None);
    // v2 cannot address "." and ".." segments (etcd would clean the path).
    assert_eq!(
        c.set(format!("{k}/../x"), "v").unwrap_err().kind(),
        ErrorKind::BadArgument
    );
}

#[test]
fn v2_and_v3_stores_are_separate() {
    let (c2, c3) = (v2(), v3());
    let k = unique("sep");
    c2.set(&k, "from v2").unwrap();
    assert_eq!(c3.get(&k).unwrap(), None);
    c3.set(&k, "from v3").unwrap();
    assert_eq!(get_str(&c2, &k).as_deref(), Some("from v2"));
    assert_eq!(get_str(&c3, &k).as_deref(), Some("from v3"));
    let only3 = unique("only-v3");
    c3.set(&only3, "x").unwrap();
    assert_eq!(c2.get(&only3).unwrap(), None);
}

#[test]
fn history_cleared_is_refused() {
    let _h = v2_history(ProtocolKind::V2);
    let c = v2();
    let p = unique("cleared");
    let old = v2_index() + 1;
    c.set(&p, "first").unwrap();
    let fill = unique("fill");
    for i in 0..1010 {
        c.set(&fill, i.to_string()).unwrap();
    }
    let e = c.watch(&p, Some(old)).unwrap_err();
    assert!(e.is_refusal(), "{e:?}");
    assert!(e.message().contains("history"), "{e}");
}

#[test]
fn watch_sees_parent_directory_removed() {
    let _h = v2_history(ProtocolKind::V2);
    let c = v2();
    let d = unique("parent");
    c.set(format!("{d}/sub/leaf"), "x").unwrap();
    let start = v2_index() + 1;
    // Removed by another v2 client, recursively (our delete never does that).
    let url = format!(
        "http://{}/v2/keys{}?recursive=true",
        endpoint(),
        d.split('/').take(2).collect::<Vec<_>>().join("/")
    );
    ureq::delete(&url).call().unwrap();
    let leaf = format!("{d}/sub/leaf");
    let e = c.watch(&leaf, Some(start)).unwrap();
    assert_eq!(kv(&e), event(&leaf, None));
}

#[test]
fn unlock_or_renew_by_a_non_holder_is_refused() {
    let k = unique("nonholder");
    let holder = v2();
    let idx = holder.lock(&k, 10).unwrap();
    let other = v2();
    // A waiter queued behind the holder holds nothing.
    let k2 = k.clone();
    let waiter = std::thread::spawn(move || {
        let c = v2();
        let idx = c.lock(&k2, 10).unwrap();
        c.unlock(&k2, &idx).unwrap();
        idx
    });
    let waiting_idx = loop {
        let queued = lock_waiters(&k);
        if queued.len() == 2 {
            break queued[1].to_string();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(lock_waiters(&k)[0].to_string(), idx);
    assert!(other.unlock(&k, &waiting_idx).unwrap_err().is_refusal());
    assert!(other.renew(&k, 10, &waiting_idx).unwrap_err().is_refusal());
    assert!(other.unlock(&k, "123456789").unwrap_err().is_refusal());
    assert!(other
        .unlock(format!("{k}-other"), &idx)
        .unwrap_err()
        .is_refusal());
    // The holder still holds it.
    holder.renew(&k, 10, &idx).unwrap();
    holder.unlock(&k, &idx).unwrap();
    let got = waiter.join().unwrap();
    assert_eq!(got, waiting_idx);
}

/// How many of the last 100 changes in v2's history set `k` to `value`
/// (read raw, one `waitIndex` long poll per change, up to the key's
/// modifiedIndex).
fn set_count(k: &str, value: &str) -> usize {
    let url = format!("http://{}/v2/keys{k}", endpoint());
    let node: serde_json::Value = serde_json::from_str(
        &ureq::get(&url)
            .call()
            .unwrap()
            .into_body()
            .read_to_string()
            .unwrap(),
    )
    .unwrap();
    let last = node["node"]["modifiedIndex"].as_u64().unwrap();
    let mut next = last.saturating_sub(100).max(1);
    let mut count = 0;
    loop {
        let body = ureq::get(&format!("{url}?wait=true&waitIndex={next}"))
            .call()
            .unwrap()
            .into_body()
            .read_to_string()
            .unwrap();
        let change: serde_json::Value = serde_json::from_str(&body).unwrap();
        let index = change["node"]["modifiedIndex"].as_u64().unwrap();
        let action = change["action"].as_str().unwrap_or("");
        if matches!(action, "set" | "create" | "compareAndSwap") && change["node"]["value"] == value
        {
            count += 1;
        }
        if index >= last {
            return count;
        }
        next = index + 1;
    }
}

/// The createdIndex of every waiter queued on lock `k`, oldest first,
/// read raw from `/v2/keys/_locks/<name>`.
fn lock_waiters(k: &str) -> Vec<u64> {
    let name = k.trim_start_matches('/').replace('/', "%2F");
    let url = format!(
        "http://{}/v2/keys/_locks/{}?sorted=true",
        endpoint(),
        name.replace('%', "%25")
    );
    let body = ureq::get(&url)
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut out: Vec<u64> = v["node"]["nodes"]
        .as_array()
        .map(|nodes| {
            nodes
                .iter()
                .map(|n| n["createdIndex"].as_u64().unwrap())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// A proxy that passes requests on to etcd but never passes the answer to
/// a write back: it closes the client's connection once etcd has answered
/// a PUT, POST or DELETE, so every write through it has an unknown
/// outcome. Answers to reads pass (the library reads before some writes,
/// and a session's first write learns the store's index first).
struct BlackHole {
    port: u16,
}

impl BlackHole {
    fn start(target: &str) -> BlackHole {
        use std::io::{Read, Write};
        use std::net::{TcpListener, TcpStream};
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let target = target.to_string();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { break };
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                let (mut c_in, mut s_out) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                // The request on its way is a read: its answer may pass.
                let read = Arc::new(AtomicBool::new(false));
                let reading = read.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 65536];
                    while let Ok(n) = c_in.read(&mut buf) {
                        // The library writes each request in one piece.
                        reading.store(buf[..n].starts_with(b"GET "), Ordering::SeqCst);
                        if n == 0 || s_out.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
                let (mut s_in, mut c_out) = (server, client);
                std::thread::spawn(move || {
                    let mut buf = [0u8; 65536];
                    loop {
                        let n = s_in.read(&mut buf).unwrap_or(0);
                        if n > 0
                            && read.load(Ordering::SeqCst)
                            && c_out.write_all(&buf[..n]).is_ok()
                        {
                            continue;
                        }
                        // etcd has answered a write (so it was applied): cut.
                        let _ = c_out.shutdown(std::net::Shutdown::Both);
                        let _ = s_in.shutdown(std::net::Shutdown::Both);
                        break;
                    }
                });
            }
        });
        BlackHole { port }
    }

    /// A fresh v2 session trying the black hole first, then the real etcd.
    /// Sessions with the same settings share the member that last
    /// answered (the real etcd, after the first call): each gets a
    /// request time-out of its own so that it starts at the black hole.
    fn client(&self) -> Client {
        static FRESH: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = FRESH.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        client_at(
            ProtocolKind::V2,
            &format!("127.0.0.1:{} {}", self.port, endpoint()),
            2000 + n,
        )
    }
}

#[test]
fn lost_answers_are_settled_by_reading_back() {
    let hole = BlackHole::start(&endpoint());
    let k = unique("lost");
    v2().set(&k, "one").unwrap();
    // Applied, answer lost: a blind resend would fail its compare against
    // our own first attempt. The copy sent again (the compare names the
    // index read, so at most one copy can apply) fails, and the key's
    // first change after that index is a set of "two": this call's, or
    // another client's with the same value: the outcome is unknown, and
    // the value is there once.
    let e = hole
        .client()
        .set_with(&k, "two", Some(b"one"), 0)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::OutcomeUnknown, "{e:?}");
    assert_eq!(get_str(&v2(), &k).as_deref(), Some("two"));
    assert_eq!(
        set_count(&k, "two"),
        1,
        "a lost compare-and-swap was applied twice"
    );
    v2().set(&k, "").unwrap();
    let e = hole
        .client()
        .set_with(&k, "three", Some(b""), 0)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::OutcomeUnknown, "{e:?}");
    assert_eq!(get_str(&v2(), &k).as_deref(), Some("three"));
    // A compare-and-swap reads the key first (a lost read is sent again
    // elsewhere): a value other than the expected one is a refusal proven
    // by that read, with nothing written.
    let e = hole
        .client()
        .set_with(&k, "four", Some(b"nope"), 0)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::CompareFailed, "{e:?}");
    assert_eq!(get_str(&v2(), &k).as_deref(), Some("three"));
    // A delete that went through is not reported as "not found", nor as
    // done: the key being gone is no proof that this delete removed it
    // (another client's delete looks the same), and a plain delete is not
    // sent again on v2: the outcome is unknown.
    let e = hole.client().delete(&k).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::OutcomeUnknown, "{e:?}");
    assert!(e.message().starts_with("outcome unknown"), "{e}");
    assert_eq!(v2().get(&k).unwrap(), None);
    // A plain set of an absent key (a create) that went through: no
    // compare can stop a stray copy of a create ("does not exist" holds
    // again after a delete), so it is not sent again: unknown, once.
    let e = hole.client().set(&k, "five").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::OutcomeUnknown, "{e:?}");
    assert_eq!(get_str(&v2(), &k).as_deref(), Some("five"));
    assert_eq!(set_count(&k, "five"), 1, "a lost set was applied twice");
    // A plain set over an existing key is fenced (prevIndex): sent again,
    // its copy fails, and the first change after that index is a set of
    // the same value: another client's or ours, unknown; applied once.
    let e = hole.client().set(&k, "six").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::OutcomeUnknown, "{e:?}");
    assert_eq!(get_str(&v2(), &k).as_deref(), Some("six"));
    assert_eq!(set_count(&k, "six"), 1, "a lost set was applied twice");
    // Reads through it are answered (only writes lose their answers).
    assert_eq!(get_str(&hole.client(), &k).as_deref(), Some("six"));
    // A lock waiter whose creation answer was lost is found again by its
    // token: one waiter, not two.
    let l = unique("lost-lock");
    let c = hole.client();
    let idx = c.lock(&l, 5).unwrap();
    assert_eq!(lock_waiters(&l), vec![idx.parse::<u64>().unwrap()]);
    c.unlock(&l, &idx).unwrap();
}
