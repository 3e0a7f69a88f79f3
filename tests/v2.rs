//! The v2 protocol (`ETCDAPI_PROTOCOL=v2`) against a real etcd started with
//! `--enable-v2=true` (`c-tests/etcd-local run -- cargo test --test v2`).

mod common;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::*;
use etcdapi::{Client, Config, Error, Event, ProtocolKind};

fn v2() -> Client {
    client_with(Config {
        protocol: ProtocolKind::V2,
        ..Config::default()
    })
}

fn v3() -> Client {
    client_with(Config::default())
}

/// etcd's v2 history holds the last 1000 changes of the whole store:
/// tests that replay it or write many changes run one at a time, so one
/// does not push another's changes out.
fn history() -> MutexGuard<'static, ()> {
    static HISTORY: Mutex<()> = Mutex::new(());
    HISTORY.lock().unwrap_or_else(|e| e.into_inner())
}

fn get(c: &Client, k: &str) -> Option<String> {
    c.get(k)
        .unwrap()
        .map(|v| String::from_utf8(v).expect("utf-8"))
}

fn event(key: &str, value: Option<&str>) -> (String, Option<String>) {
    (key.to_string(), value.map(str::to_string))
}

fn kv(e: &Event) -> (String, Option<String>) {
    (
        String::from_utf8(e.key.clone()).unwrap(),
        e.value.clone().map(|v| String::from_utf8(v).unwrap()),
    )
}

/// The v2 store's current index (from a raw GET's X-Etcd-Index).
fn v2_index() -> i64 {
    let url = format!("http://{}/v2/keys/", endpoint());
    let resp = ureq::get(&url).call().unwrap();
    resp.headers()["X-Etcd-Index"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn set_get_overwrite_empty_and_canonical_keys() {
    let c = v2();
    let k = unique("a");
    c.set(&k, "one").unwrap();
    assert_eq!(get(&c, &k).as_deref(), Some("one"));
    c.set(format!("{k}/"), "two").unwrap();
    for form in [k.clone(), format!("/{k}"), format!("{k}//")] {
        assert_eq!(get(&c, &form).as_deref(), Some("two"), "{form}");
    }
    c.set(&k, "").unwrap();
    assert_eq!(get(&c, &k).as_deref(), Some(""));
    assert_eq!(c.get(unique("missing")).unwrap(), None);
    // Below a key that is a file: nothing there.
    assert_eq!(c.get(format!("{k}/below")).unwrap(), None);
    assert!(c.set("/", "x").unwrap_err().is_refusal());
}

#[test]
fn awkward_values_and_keys_round_trip() {
    let c = v2();
    let d = unique("awkward");
    let values = [
        "a&b=c",
        "1+1=2",
        "100%",
        "%2F%zz",
        "x;y;z",
        "  spaced  out  ",
        "line1\nline2\r\n",
        "tab\there",
        "quote\" back\\slash",
        "ünïcødé ✓",
        "?#[]@!$'()*,",
    ];
    for (i, v) in values.iter().enumerate() {
        let k = format!("{d}/v{i}");
        c.set(&k, v).unwrap();
        assert_eq!(get(&c, &k).as_deref(), Some(*v), "{v:?}");
    }
    for name in [
        "a b",
        "q?z",
        "h#sh",
        "pct%41",
        "plus+",
        "semi;colon",
        "amp&=",
        "x%2Fy",
    ] {
        let k = format!("{d}/keys/{name}");
        c.set(&k, name).unwrap();
        assert_eq!(get(&c, &k).as_deref(), Some(name), "{name:?}");
    }
    let listing = get(&c, &format!("{d}/keys")).unwrap();
    let mut expected: Vec<String> = [
        "a b",
        "q?z",
        "h#sh",
        "pct%41",
        "plus+",
        "semi;colon",
        "amp&=",
        "x%2Fy",
    ]
    .iter()
    .map(|n| format!("{d}/keys/{n}"))
    .collect();
    expected.sort();
    assert_eq!(listing, expected.join("\n"));
    c.delete(format!("{d}/keys/x%2Fy")).unwrap();
}

#[test]
fn non_utf8_is_refused_clearly() {
    let c = v2();
    let k = unique("bytes");
    let e = c.set(&k, b"\xff\xfe").unwrap_err();
    assert!(matches!(e, Error::BadArgument(_)), "{e:?}");
    assert!(e.message().contains("UTF-8"), "{e}");
    let mut bad_key = k.clone().into_bytes();
    bad_key.extend_from_slice(b"/\xc3");
    let e = c.set(&bad_key, "v").unwrap_err();
    assert!(matches!(e, Error::BadArgument(_)), "{e:?}");
    assert!(matches!(c.get(&bad_key), Err(Error::BadArgument(_))));
    assert!(matches!(c.delete(&bad_key), Err(Error::BadArgument(_))));
    assert!(matches!(
        c.watch(&bad_key, None),
        Err(Error::BadArgument(_))
    ));
    assert!(matches!(c.lock(&bad_key, 5), Err(Error::BadArgument(_))));
    // Nothing was written.
    assert_eq!(c.get(&k).unwrap(), None);
    // v2 cannot address "." and ".." segments (etcd would clean the path).
    assert!(matches!(
        c.set(format!("{k}/../x"), "v"),
        Err(Error::BadArgument(_))
    ));
}

#[test]
fn large_value_and_large_listing() {
    let c = v2();
    let k = unique("big");
    let big: String = (0..100 * 1024)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    c.set(&k, &big).unwrap();
    assert_eq!(get(&c, &k).unwrap(), big);
    let d = unique("many");
    let mut names: Vec<String> = (0..200).map(|i| format!("{d}/key-{i:03}")).collect();
    for n in &names {
        c.set(n, "v").unwrap();
    }
    names.sort();
    assert_eq!(get(&c, &d).unwrap(), names.join("\n"));
}

#[test]
fn listing_is_one_level_sorted_without_hidden_or_siblings() {
    let c = v2();
    let d = unique("d");
    for (k, v) in [
        ("b", "1"),
        ("a", "2"),
        ("c/x", "3"),
        ("c/y", "4"),
        ("_hidden", "5"),
    ] {
        c.set(format!("{d}/{k}"), v).unwrap();
    }
    c.set(format!("{d}-sibling"), "s").unwrap();
    c.set(format!("{d}.x"), "s").unwrap();
    assert_eq!(
        get(&c, &d).unwrap(),
        format!("{d}/a\n{d}/b\n{d}/c").as_str()
    );
    assert_eq!(
        get(&c, &format!("{d}/c")).unwrap(),
        format!("{d}/c/x\n{d}/c/y")
    );
    // Hidden keys can still be read by their full path.
    assert_eq!(get(&c, &format!("{d}/_hidden")).as_deref(), Some("5"));
    // A directory left empty by its last delete lists as nothing, as on v3.
    let e = unique("emptied");
    c.set(format!("{e}/only"), "x").unwrap();
    c.delete(format!("{e}/only")).unwrap();
    assert_eq!(c.get(&e).unwrap(), None);
}

#[test]
fn compare_and_swap() {
    let c = v2();
    let k = unique("cas");
    c.set(&k, "one").unwrap();
    c.set_with(&k, "two", Some(b"one"), 0).unwrap();
    assert_eq!(get(&c, &k).as_deref(), Some("two"));
    let e = c.set_with(&k, "three", Some(b"one"), 0).unwrap_err();
    assert!(e.is_refusal(), "{e:?}");
    assert_eq!(get(&c, &k).as_deref(), Some("two"));
    let missing = unique("cas-missing");
    let e = c.set_with(&missing, "x", Some(b"anything"), 0).unwrap_err();
    assert!(e.is_refusal(), "{e:?}");
    assert_eq!(c.get(&missing).unwrap(), None);
    // Values needing encoding compare as themselves.
    c.set(&k, "a&b=c+d %").unwrap();
    c.set_with(&k, "ok", Some(b"a&b=c+d %"), 0).unwrap();
    assert_eq!(get(&c, &k).as_deref(), Some("ok"));
    // A CAS with a ttl keeps the ttl.
    c.set_with(&k, "short", Some(b"ok"), 2).unwrap();
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(c.get(&k).unwrap(), None);
}

#[test]
fn compare_and_swap_against_empty_previous_value() {
    let c = v2();
    let k = unique("cas-empty");
    // Missing key: an empty previous value does not match "nothing".
    assert!(c.set_with(&k, "x", Some(b""), 0).unwrap_err().is_refusal());
    assert_eq!(c.get(&k).unwrap(), None);
    c.set(&k, "").unwrap();
    c.set_with(&k, "filled", Some(b""), 0).unwrap();
    assert_eq!(get(&c, &k).as_deref(), Some("filled"));
    assert!(c
        .set_with(&k, "again", Some(b""), 0)
        .unwrap_err()
        .is_refusal());
    assert_eq!(get(&c, &k).as_deref(), Some("filled"));
    // Back to empty by CAS, then from empty with a ttl.
    c.set_with(&k, "", Some(b"filled"), 0).unwrap();
    assert_eq!(get(&c, &k).as_deref(), Some(""));
    c.set_with(&k, "brief", Some(b""), 2).unwrap();
    assert_eq!(get(&c, &k).as_deref(), Some("brief"));
    // A directory is not an empty value.
    let d = unique("cas-dir");
    c.set(format!("{d}/child"), "x").unwrap();
    assert!(c.set_with(&d, "x", Some(b""), 0).unwrap_err().is_refusal());
}

#[test]
fn ttl_expires() {
    let c = v2();
    let k = unique("ttl");
    c.set_with(&k, "soon gone", None, 1).unwrap();
    assert_eq!(get(&c, &k).as_deref(), Some("soon gone"));
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(c.get(&k).unwrap(), None);
    // A plain set after a ttl set makes the key permanent again.
    c.set_with(&k, "brief", None, 1).unwrap();
    c.set(&k, "stays").unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(get(&c, &k).as_deref(), Some("stays"));
}

#[test]
fn delete_twice_and_directories() {
    let c = v2();
    let k = unique("del");
    c.set(&k, "x").unwrap();
    c.delete(&k).unwrap();
    assert_eq!(c.get(&k).unwrap(), None);
    let e = c.delete(&k).unwrap_err();
    assert!(e.is_refusal(), "{e:?}");
    assert!(e.message().contains("not found"), "{e}");
    let d = unique("deldir");
    c.set(format!("{d}/child"), "x").unwrap();
    let e = c.delete(&d).unwrap_err();
    assert!(e.is_refusal(), "{e:?}");
    assert_eq!(get(&c, &format!("{d}/child")).as_deref(), Some("x"));
    // Setting a value on a directory, or below a file, is refused too.
    assert!(c.set(&d, "x").unwrap_err().is_refusal());
    assert!(c
        .set(format!("{d}/child/grandchild"), "x")
        .unwrap_err()
        .is_refusal());
}

#[test]
fn leader_is_lowercase_hex_and_matches_v3() {
    let id = v2().leader().unwrap();
    assert!(!id.is_empty() && id.len() <= 16, "{id}");
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
        "{id}"
    );
    assert_eq!(id, v3().leader().unwrap());
}

#[test]
fn v2_and_v3_stores_are_separate() {
    let (c2, c3) = (v2(), v3());
    let k = unique("sep");
    c2.set(&k, "from v2").unwrap();
    assert_eq!(c3.get(&k).unwrap(), None);
    c3.set(&k, "from v3").unwrap();
    assert_eq!(get(&c2, &k).as_deref(), Some("from v2"));
    assert_eq!(get(&c3, &k).as_deref(), Some("from v3"));
    let only3 = unique("only-v3");
    c3.set(&only3, "x").unwrap();
    assert_eq!(c2.get(&only3).unwrap(), None);
}

#[test]
fn failover_past_dead_servers() {
    let dead = dead_port();
    let servers = endpoints(&format!("127.0.0.1:{dead} {}", endpoint()));
    let c = Client::new(
        servers,
        Config {
            protocol: ProtocolKind::V2,
            ..Config::default()
        },
    )
    .unwrap();
    let k = unique("failover");
    c.set(&k, "v").unwrap();
    assert_eq!(get(&c, &k).as_deref(), Some("v"));
    assert!(!c.leader().unwrap().is_empty());
    let all_dead = Client::new(
        endpoints(&format!("127.0.0.1:{}", dead_port())),
        Config {
            protocol: ProtocolKind::V2,
            ..Config::default()
        },
    )
    .unwrap();
    assert!(matches!(all_dead.get(&k), Err(Error::Unavailable(_))));
    assert!(matches!(
        all_dead.watch(&k, None),
        Err(Error::Unavailable(_))
    ));
}

#[test]
fn live_watch_wakes_and_ignores_siblings() {
    let _h = history();
    let c = v2();
    let p = unique("pfx");
    let writer = v2();
    let p2 = p.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        for sib in ["-x", ".x", "y"] {
            writer.set(format!("{p2}{sib}"), "sibling").unwrap();
        }
        writer.set(format!("{p2}/_hidden"), "hidden").unwrap();
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
fn watch_from_now_skips_earlier_changes() {
    let _h = history();
    let c = v2();
    let p = unique("now");
    c.set(format!("{p}/before"), "old").unwrap();
    let writer = v2();
    let p2 = p.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        writer.set(format!("{p2}/after"), "new").unwrap();
    });
    let e = c.watch(&p, None).unwrap();
    t.join().unwrap();
    assert_eq!(kv(&e), event(&format!("{p}/after"), Some("new")));
}

#[test]
fn history_replay_set_set_delete_expire_and_the_key_itself() {
    let _h = history();
    let c = v2();
    let p = unique("hist");
    let start = v2_index() + 1;
    c.set(&p, "one").unwrap();
    c.set(format!("{p}-sibling"), "no").unwrap();
    c.set(&p, "two").unwrap();
    c.delete(&p).unwrap();
    c.set_with(format!("{p}/ttl"), "t", None, 1).unwrap();
    let mut got = Vec::new();
    let mut next = start;
    for _ in 0..5 {
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
            event(&p, None),
            event(&format!("{p}/ttl"), Some("t")),
            event(&format!("{p}/ttl"), None), // the expiry
        ]
    );
}

#[test]
fn drain_1000_events_no_gap_no_repeat() {
    let _h = history();
    let c = v2();
    let p = unique("burst");
    let first = v2_index() + 1;
    // The writer stays at most 300 changes ahead of the reader, so none
    // leaves etcd's 1000-change history before it is read.
    let read = Arc::new(AtomicI64::new(0));
    let (p2, read2) = (p.clone(), read.clone());
    let writer = std::thread::spawn(move || {
        let w = v2();
        for i in 0..1000i64 {
            while i - read2.load(Ordering::SeqCst) > 300 {
                std::thread::sleep(Duration::from_millis(1));
            }
            w.set(format!("{p2}/k"), i.to_string()).unwrap();
        }
    });
    let t = Instant::now();
    let mut next = first;
    let mut last = 0;
    for i in 0..1000i64 {
        let e = c.watch(&p, Some(next)).unwrap();
        assert_eq!(
            kv(&e),
            event(&format!("{p}/k"), Some(&i.to_string())),
            "event {i}"
        );
        assert!(e.revision > last, "a repeat at event {i}");
        last = e.revision;
        next = e.revision + 1;
        read.store(i + 1, Ordering::SeqCst);
    }
    writer.join().unwrap();
    println!("v2: 1000 events drained in {:?}", t.elapsed());
}

#[test]
fn history_cleared_is_refused() {
    let _h = history();
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
    let _h = history();
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
fn lock_renew_unlock_cycle() {
    let c = v2();
    let k = unique("lock");
    let idx = c.lock(&k, 5).unwrap();
    assert!(
        !idx.is_empty() && idx.bytes().all(|b| b.is_ascii_digit()),
        "{idx}"
    );
    c.renew(&k, 5, &idx).unwrap();
    c.unlock(&k, &idx).unwrap();
    assert!(c.unlock(&k, &idx).unwrap_err().is_refusal());
    assert!(c.renew(&k, 5, &idx).unwrap_err().is_refusal());
    assert!(c.unlock(&k, "zz").unwrap_err().is_refusal());
    assert!(c.unlock(&k, "0").unwrap_err().is_refusal());
    assert!(matches!(c.lock(&k, 0), Err(Error::BadArgument(_))));
    // Lock keys stay out of listings; nested names are independent.
    c.set(&k, "the key itself").unwrap();
    let a = c.lock(&k, 5).unwrap();
    let b = c.lock(format!("{k}/42"), 5).unwrap();
    let parent = k.rsplit_once('/').unwrap().0;
    assert_eq!(get(&c, parent).unwrap(), k);
    assert!(!get(&c, "/").unwrap().contains("_locks"));
    assert_eq!(get(&c, &k).as_deref(), Some("the key itself"));
    c.unlock(format!("{k}/42"), &b).unwrap();
    c.unlock(&k, &a).unwrap();
    // Even the root can be locked (its lock directory is /_locks itself).
    let r = c.lock("/", 5).unwrap();
    c.renew("/", 5, &r).unwrap();
    c.unlock("/", &r).unwrap();
    // Locks on v2 and v3 are separate too.
    let i3 = v3().lock(&k, 5).unwrap();
    let i2 = c.lock(&k, 5).unwrap();
    c.unlock(&k, &i2).unwrap();
    v3().unlock(&k, &i3).unwrap();
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

#[test]
fn contention_between_threads() {
    let k = unique("contend");
    let holder = v2();
    let idx = holder.lock(&k, 10).unwrap();
    let k2 = k.clone();
    let waiter = std::thread::spawn(move || {
        let c = v2();
        let t = Instant::now();
        let idx = c.lock(&k2, 2).unwrap();
        let got = Instant::now();
        c.unlock(&k2, &idx).unwrap();
        (t.elapsed(), got)
    });
    // Longer than the waiter's ttl: its place is kept by refreshing.
    std::thread::sleep(Duration::from_millis(4000));
    let released = Instant::now();
    holder.unlock(&k, &idx).unwrap();
    let (waited, got) = waiter.join().unwrap();
    assert!(
        waited >= Duration::from_millis(3900),
        "waiter did not wait: {waited:?}"
    );
    let handover = got.duration_since(released);
    println!("v2 lock hand-over: {handover:?}");
    assert!(handover < Duration::from_secs(1));
}

#[test]
fn expired_lock_cannot_be_renewed_and_is_taken_by_another() {
    let k = unique("expire");
    let a = v2();
    let idx = a.lock(&k, 2).unwrap();
    let b = v2();
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

#[test]
fn many_threads_take_turns() {
    let k = unique("turns");
    let inside = Arc::new(AtomicI64::new(0));
    let threads: Vec<_> = (0..5)
        .map(|_| {
            let (k, inside) = (k.clone(), inside.clone());
            std::thread::spawn(move || {
                let c = v2();
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

fn v2_with_timeout(servers: &str, ms: u64) -> Client {
    Client::new(
        endpoints(servers),
        Config {
            protocol: ProtocolKind::V2,
            request_timeout: Duration::from_millis(ms),
            ..Config::default()
        },
    )
    .unwrap()
}

#[test]
fn waits_outlive_the_request_timeout() {
    let _h = history();
    let c = v2_with_timeout(&endpoint(), 1000);
    let p = unique("long-wait");
    let p2 = p.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(2500));
        v2().set(format!("{p2}/late"), "v").unwrap();
    });
    let e = c.watch(&p, None).unwrap();
    t.join().unwrap();
    assert_eq!(kv(&e), event(&format!("{p}/late"), Some("v")));
    // A lock wait too.
    let k = unique("long-lock");
    let holder = v2();
    let idx = holder.lock(&k, 5).unwrap();
    let k2 = k.clone();
    let waiter = std::thread::spawn(move || {
        let c = v2_with_timeout(&endpoint(), 1000);
        let idx = c.lock(&k2, 5).unwrap();
        c.unlock(&k2, &idx).unwrap();
    });
    std::thread::sleep(Duration::from_millis(2500));
    holder.unlock(&k, &idx).unwrap();
    waiter.join().unwrap();
}

#[test]
fn cut_wait_continues_on_the_next_server_without_gap() {
    let _h = history();
    let proxy = Proxy::start(&endpoint());
    // The proxy first, the real server second: after the cut the wait
    // continues on the next server, from the same index.
    let c = v2_with_timeout(&format!("{} {}", proxy.endpoint(), endpoint()), 2000);
    let p = unique("cut");
    let writer = v2();
    writer.set(format!("{p}/a"), "1").unwrap();
    let first = c.watch(&p, Some(v2_index())).unwrap();
    assert_eq!(kv(&first), event(&format!("{p}/a"), Some("1")));
    let (p2, proxy2) = (p.clone(), std::sync::Arc::new(proxy));
    let cutter = proxy2.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        cutter.cut_all();
        // Written while the wait has no server: not lost.
        writer.set(format!("{p2}/a"), "2").unwrap();
        writer.set(format!("{p2}/a"), "3").unwrap();
    });
    // from = None, so "now" is learned first and kept across the cut.
    let second = c.watch(&p, None).unwrap();
    t.join().unwrap();
    let third = c.watch(&p, Some(second.revision + 1)).unwrap();
    assert_eq!(kv(&second).1.as_deref(), Some("2"));
    assert_eq!(kv(&third).1.as_deref(), Some("3"));
}

/// A proxy that passes requests on to etcd but never passes an answer
/// back: it closes the client's connection once etcd has answered, so
/// every request through it has an unknown outcome.
struct BlackHole {
    port: u16,
}

impl BlackHole {
    fn start(target: &str) -> BlackHole {
        use std::io::{Read, Write};
        use std::net::{TcpListener, TcpStream};
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
                std::thread::spawn(move || {
                    let mut buf = [0u8; 65536];
                    while let Ok(n) = c_in.read(&mut buf) {
                        if n == 0 || s_out.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
                let mut s_in = server;
                std::thread::spawn(move || {
                    let mut buf = [0u8; 65536];
                    // etcd has answered (so the request was applied): cut.
                    let _ = s_in.read(&mut buf);
                    let _ = client.shutdown(std::net::Shutdown::Both);
                    let _ = s_in.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        BlackHole { port }
    }

    /// A fresh v2 session trying the black hole first, then the real etcd.
    fn client(&self) -> Client {
        v2_with_timeout(&format!("127.0.0.1:{} {}", self.port, endpoint()), 2000)
    }
}

#[test]
fn lost_answers_are_settled_by_reading_back() {
    let hole = BlackHole::start(&endpoint());
    let k = unique("lost");
    v2().set(&k, "one").unwrap();
    // Applied, answer lost: a blind resend would fail its compare against
    // our own first attempt; reading back shows it went through.
    hole.client().set_with(&k, "two", Some(b"one"), 0).unwrap();
    assert_eq!(get(&v2(), &k).as_deref(), Some("two"));
    v2().set(&k, "").unwrap();
    hole.client().set_with(&k, "three", Some(b""), 0).unwrap();
    assert_eq!(get(&v2(), &k).as_deref(), Some("three"));
    // A compare that failed, answer lost: the outcome stays unknown.
    let e = hole
        .client()
        .set_with(&k, "four", Some(b"nope"), 0)
        .unwrap_err();
    assert!(matches!(e, Error::OutcomeUnknown(_)), "{e:?}");
    // A delete that went through is not reported as "not found".
    hole.client().delete(&k).unwrap();
    assert_eq!(v2().get(&k).unwrap(), None);
    // Plain puts and reads are simply sent again elsewhere.
    hole.client().set(&k, "five").unwrap();
    assert_eq!(get(&hole.client(), &k).as_deref(), Some("five"));
    // A lock waiter whose creation answer was lost is found again by its
    // token: one waiter, not two.
    let l = unique("lost-lock");
    let c = hole.client();
    let idx = c.lock(&l, 5).unwrap();
    assert_eq!(lock_waiters(&l), vec![idx.parse::<u64>().unwrap()]);
    c.unlock(&l, &idx).unwrap();
}
