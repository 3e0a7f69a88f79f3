//! The key/value calls against a real etcd, each on both protocols (v3
//! through the gateway, v2 through the legacy keys API), and what only
//! v3 can do.

mod common;

use std::time::{Duration, Instant};

use common::*;
use etcdapi::{Client, ErrorKind, ProtocolKind};

both_protocols!(
    set_get_overwrite_empty_and_canonical_keys,
    awkward_values_and_keys_round_trip,
    large_value_and_large_listing,
    listing_is_one_level_sorted_without_hidden_or_siblings,
    compare_and_swap,
    compare_and_swap_against_empty_previous_value,
    ttl_expires,
    delete_twice_and_directories,
    leader_is_lowercase_hex_and_the_same_on_both_protocols,
    failover_past_dead_servers_and_all_dead,
);

fn set_get_overwrite_empty_and_canonical_keys(p: ProtocolKind) {
    let c = client_on(p);
    let k = unique("a");
    c.set(&k, "one").unwrap();
    assert_eq!(get_str(&c, &k).as_deref(), Some("one"));
    c.set(format!("{k}/"), "two").unwrap();
    for form in [
        k.clone(),
        format!("/{k}"),
        format!("{k}//"),
        k.trim_start_matches('/').to_string(),
    ] {
        assert_eq!(get_str(&c, &form).as_deref(), Some("two"), "{form}");
    }
    c.set(&k, "").unwrap();
    assert_eq!(get_str(&c, &k).as_deref(), Some(""));
    assert_eq!(c.get(unique("missing")).unwrap(), None);
    // Below a key that is a file: nothing there.
    assert_eq!(c.get(format!("{k}/below")).unwrap(), None);
    assert!(c.set("/", "x").unwrap_err().is_refusal());
}

/// Values and key names that need escaping in a URL (v2) or JSON (v3).
fn awkward_values_and_keys_round_trip(p: ProtocolKind) {
    let c = client_on(p);
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
        assert_eq!(get_str(&c, &k).as_deref(), Some(*v), "{v:?}");
    }
    let names = [
        "a b",
        "q?z",
        "h#sh",
        "pct%41",
        "plus+",
        "semi;colon",
        "amp&=",
        "x%2Fy",
    ];
    for name in names {
        let k = format!("{d}/keys/{name}");
        c.set(&k, name).unwrap();
        assert_eq!(get_str(&c, &k).as_deref(), Some(name), "{name:?}");
    }
    let listing = get_str(&c, &format!("{d}/keys")).unwrap();
    let mut expected: Vec<String> = names.iter().map(|n| format!("{d}/keys/{n}")).collect();
    expected.sort();
    assert_eq!(listing, expected.join("\n"));
    c.delete(format!("{d}/keys/x%2Fy")).unwrap();
}

fn large_value_and_large_listing(p: ProtocolKind) {
    let c = client_on(p);
    let k = unique("big");
    let big: String = (0..100 * 1024)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    c.set(&k, &big).unwrap();
    assert_eq!(get_str(&c, &k).unwrap(), big);
    let d = unique("many");
    let mut names: Vec<String> = (0..200).map(|i| format!("{d}/key-{i:03}")).collect();
    for n in &names {
        c.set(n, "v").unwrap();
    }
    names.sort();
    assert_eq!(get_str(&c, &d).unwrap(), names.join("\n"));
}

/// v3 stores any bytes, up to etcd's request size limit (v2 refuses
/// non-UTF-8: see v2.rs).
#[test]
fn non_utf8_and_large_values() {
    let c = client_on(ProtocolKind::V3);
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

fn listing_is_one_level_sorted_without_hidden_or_siblings(p: ProtocolKind) {
    let c = client_on(p);
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
    for sibling in ["-x", "x", "-sibling", ".x"] {
        c.set(format!("{d}{sibling}"), "sib").unwrap();
    }
    assert_eq!(get_str(&c, &d).unwrap(), format!("{d}/a\n{d}/b\n{d}/c"));
    assert_eq!(
        get_str(&c, &format!("{d}/c")).unwrap(),
        format!("{d}/c/x\n{d}/c/y")
    );
    // Hidden keys can still be read by their full path.
    assert_eq!(get_str(&c, &format!("{d}/_hidden")).as_deref(), Some("5"));
    // Deleting a directory-only key deletes nothing.
    assert!(c.delete(&d).unwrap_err().is_refusal());
    assert_eq!(get_str(&c, &format!("{d}/c/x")).as_deref(), Some("3"));
    // A directory left empty by its last delete lists as nothing.
    let e = unique("emptied");
    c.set(format!("{e}/only"), "x").unwrap();
    c.delete(format!("{e}/only")).unwrap();
    assert_eq!(c.get(&e).unwrap(), None);
}

fn compare_and_swap(p: ProtocolKind) {
    let c = client_on(p);
    let k = unique("cas");
    c.set(&k, "one").unwrap();
    c.set_with(&k, "two", Some(b"one"), 0).unwrap();
    assert_eq!(get_str(&c, &k).as_deref(), Some("two"));
    let e = c.set_with(&k, "three", Some(b"one"), 0).unwrap_err();
    assert!(e.is_refusal(), "{e:?}");
    assert_eq!(get_str(&c, &k).as_deref(), Some("two"));
    // A missing key matches no previous value, empty or not.
    let missing = unique("cas-missing");
    for prev in [&b""[..], b"anything"] {
        let e = c.set_with(&missing, "x", Some(prev), 0).unwrap_err();
        assert!(e.is_refusal(), "{e:?}");
        assert_eq!(c.get(&missing).unwrap(), None);
    }
    // Values needing encoding compare as themselves.
    c.set(&k, "a&b=c+d %").unwrap();
    c.set_with(&k, "ok", Some(b"a&b=c+d %"), 0).unwrap();
    assert_eq!(get_str(&c, &k).as_deref(), Some("ok"));
    // A CAS with a ttl keeps the ttl.
    c.set_with(&k, "short", Some(b"ok"), 2).unwrap();
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(c.get(&k).unwrap(), None);
}

/// An empty previous value is a value like any other (v2 compares it by
/// the key's index, as etcd's prevValue cannot be empty).
fn compare_and_swap_against_empty_previous_value(p: ProtocolKind) {
    let c = client_on(p);
    let k = unique("cas-empty");
    // Missing key: an empty previous value does not match "nothing".
    assert!(c.set_with(&k, "x", Some(b""), 0).unwrap_err().is_refusal());
    assert_eq!(c.get(&k).unwrap(), None);
    c.set(&k, "").unwrap();
    c.set_with(&k, "filled", Some(b""), 0).unwrap();
    assert_eq!(get_str(&c, &k).as_deref(), Some("filled"));
    assert!(c
        .set_with(&k, "again", Some(b""), 0)
        .unwrap_err()
        .is_refusal());
    assert_eq!(get_str(&c, &k).as_deref(), Some("filled"));
    // Back to empty by CAS, then from empty with a ttl.
    c.set_with(&k, "", Some(b"filled"), 0).unwrap();
    assert_eq!(get_str(&c, &k).as_deref(), Some(""));
    c.set_with(&k, "brief", Some(b""), 2).unwrap();
    assert_eq!(get_str(&c, &k).as_deref(), Some("brief"));
    // A directory is not an empty value.
    let d = unique("cas-dir");
    c.set(format!("{d}/child"), "x").unwrap();
    assert!(c.set_with(&d, "x", Some(b""), 0).unwrap_err().is_refusal());
}

fn ttl_expires(p: ProtocolKind) {
    // etcd grants no v3 lease shorter than its minimum TTL (1.5 s with the
    // default heartbeat), so v3 uses 2 s where v2 can use 1 s.
    let (ttl, wait) = match p {
        ProtocolKind::V3 => (2, Duration::from_millis(3500)),
        ProtocolKind::V2 => (1, Duration::from_millis(2500)),
    };
    let c = client_on(p);
    let k = unique("ttl");
    c.set_with(&k, "soon gone", None, ttl).unwrap();
    assert_eq!(get_str(&c, &k).as_deref(), Some("soon gone"));
    std::thread::sleep(wait);
    assert_eq!(c.get(&k).unwrap(), None);
    // A plain set after a ttl set makes the key permanent again.
    c.set_with(&k, "brief", None, ttl).unwrap();
    c.set(&k, "stays").unwrap();
    std::thread::sleep(wait);
    assert_eq!(get_str(&c, &k).as_deref(), Some("stays"));
}

fn delete_twice_and_directories(p: ProtocolKind) {
    let c = client_on(p);
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
    assert_eq!(get_str(&c, &format!("{d}/child")).as_deref(), Some("x"));
    // v2's store is a tree: setting a value on a directory, or below a
    // file, is refused. v3's keys are flat: a key may have a value and
    // keys below it at once.
    if p == ProtocolKind::V2 {
        assert!(c.set(&d, "x").unwrap_err().is_refusal());
        assert!(c
            .set(format!("{d}/child/grandchild"), "x")
            .unwrap_err()
            .is_refusal());
    }
}

fn leader_is_lowercase_hex_and_the_same_on_both_protocols(p: ProtocolKind) {
    let id = client_on(p).leader().unwrap();
    assert!(!id.is_empty() && id.len() <= 16, "{id}");
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{id}"
    );
    assert_ne!(u64::from_str_radix(&id, 16).unwrap(), 0);
    assert_eq!(id, client_on(other(p)).leader().unwrap());
}

fn failover_past_dead_servers_and_all_dead(p: ProtocolKind) {
    let config = config_on(p);
    let list = format!("127.0.0.1:{} {}", dead_port(), endpoint());
    let c = Client::new(endpoints(&list), config.clone()).unwrap();
    let k = unique("failover");
    c.set(&k, "v").unwrap();
    assert_eq!(get_str(&c, &k).as_deref(), Some("v"));
    assert!(!c.leader().unwrap().is_empty());

    let all_dead = format!("127.0.0.1:{},127.0.0.1:{}", dead_port(), dead_port());
    let dead = Client::new(endpoints(&all_dead), config).unwrap();
    let t = Instant::now();
    let e = dead.set(&k, "v").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e:?}");
    assert!(e.message().contains("127.0.0.1"), "{e}");
    assert_eq!(dead.get(&k).unwrap_err().kind(), ErrorKind::Unavailable);
    assert!(t.elapsed() < Duration::from_secs(10));
    assert_eq!(
        dead.watch(&k, None).unwrap_err().kind(),
        ErrorKind::Unavailable
    );
}
