//! The v3 key/value calls against a real etcd.

mod common;

use common::*;
use etcdapi::{Client, Config, Error};

#[test]
fn set_get_overwrite_and_canonical_keys() {
    let c = client();
    let k = unique("a");
    c.set(&k, "one").unwrap();
    assert_eq!(c.get(&k).unwrap().as_deref(), Some(&b"one"[..]));
    c.set(format!("{k}/"), "two").unwrap();
    for form in [
        k.clone(),
        format!("/{k}"),
        format!("{k}//"),
        k.trim_start_matches('/').to_string(),
    ] {
        assert_eq!(
            c.get(&form).unwrap().as_deref(),
            Some(&b"two"[..]),
            "{form}"
        );
    }
    c.set(&k, "").unwrap();
    assert_eq!(c.get(&k).unwrap().as_deref(), Some(&b""[..]));
    assert_eq!(c.get(unique("missing")).unwrap(), None);
}

#[test]
fn non_utf8_and_large_values() {
    let c = client();
    let k = unique("bytes");
    let all: Vec<u8> = (1..=255u8).collect();
    c.set(&k, &all).unwrap();
    assert_eq!(c.get(&k).unwrap().unwrap(), all);
    let big = vec![b'x'; 1_000_000];
    c.set(&k, &big).unwrap();
    assert_eq!(c.get(&k).unwrap().unwrap(), big);
    let too_big = vec![b'y'; 1_600_000];
    let e = c.set(&k, &too_big).unwrap_err();
    assert!(e.is_refusal(), "{e:?}");
    assert!(e.message().contains("too large"), "{e}");
}

#[test]
fn listing_is_one_level_sorted_without_hidden_or_siblings() {
    let c = client();
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
    c.set(format!("{d}-x"), "sib").unwrap();
    c.set(format!("{d}x"), "sib").unwrap();
    let listing = String::from_utf8(c.get(&d).unwrap().unwrap()).unwrap();
    assert_eq!(listing, format!("{d}/a\n{d}/b\n{d}/c"));
    assert_eq!(
        c.get(format!("{d}/_hidden")).unwrap().as_deref(),
        Some(&b"5"[..])
    );
    // Deleting a directory-only key deletes nothing.
    assert!(c.delete(&d).unwrap_err().is_refusal());
    assert_eq!(
        c.get(format!("{d}/c/x")).unwrap().as_deref(),
        Some(&b"3"[..])
    );
}

#[test]
fn compare_and_swap() {
    let c = client();
    let k = unique("cas");
    c.set(&k, "v1").unwrap();
    c.set_with(&k, "v2", Some(b"v1"), 0).unwrap();
    assert_eq!(c.get(&k).unwrap().as_deref(), Some(&b"v2"[..]));
    let e = c.set_with(&k, "v3", Some(b"v1"), 0).unwrap_err();
    assert!(e.is_refusal(), "{e:?}");
    assert_eq!(c.get(&k).unwrap().as_deref(), Some(&b"v2"[..]));
    let missing = unique("cas-missing");
    assert!(c
        .set_with(&missing, "x", Some(b""), 0)
        .unwrap_err()
        .is_refusal());
    assert_eq!(c.get(&missing).unwrap(), None);
}

#[test]
fn ttl_expires() {
    let c = client();
    let k = unique("ttl");
    c.set_with(&k, "short", None, 2).unwrap();
    assert_eq!(c.get(&k).unwrap().as_deref(), Some(&b"short"[..]));
    std::thread::sleep(std::time::Duration::from_millis(3500));
    assert_eq!(c.get(&k).unwrap(), None);
}

#[test]
fn delete_once() {
    let c = client();
    let k = unique("del");
    c.set(&k, "x").unwrap();
    c.delete(&k).unwrap();
    assert_eq!(c.get(&k).unwrap(), None);
    let e = c.delete(&k).unwrap_err();
    assert!(matches!(e, Error::Refused(_)), "{e:?}");
}

#[test]
fn leader_is_lowercase_hex() {
    let id = client().leader().unwrap();
    assert!(!id.is_empty() && id.len() <= 16);
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{id}"
    );
    assert_ne!(u64::from_str_radix(&id, 16).unwrap(), 0);
}

#[test]
fn failover_past_dead_servers_and_all_dead() {
    let live = endpoint();
    let list = format!("127.0.0.1:{} {live}", dead_port());
    let c = Client::open(&list).unwrap();
    let k = unique("fo");
    c.set(&k, "v").unwrap();
    assert_eq!(c.get(&k).unwrap().as_deref(), Some(&b"v"[..]));

    let dead = Client::new(
        endpoints(&format!(
            "127.0.0.1:{},127.0.0.1:{}",
            dead_port(),
            dead_port()
        )),
        Config::default(),
    )
    .unwrap();
    let t = std::time::Instant::now();
    let e = dead.set(&k, "v").unwrap_err();
    assert!(matches!(e, Error::Unavailable(_)), "{e:?}");
    assert!(e.message().contains("127.0.0.1"), "{e}");
    assert!(dead.get(&k).is_err());
    assert!(t.elapsed() < std::time::Duration::from_secs(10));
}
