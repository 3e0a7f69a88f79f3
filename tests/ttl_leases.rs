//! A set with a ttl (the original API's `etcd_set(..., ttl)`) puts the
//! value under a lease of its own; the lease the key had before is revoked
//! when the library made it for that key and no key is attached to it any
//! more, so that repeated ttl'd sets leave one lease alive, not one per
//! set. Leases the program made (`etcd_lease_grant`), or that still hold
//! another key, are left alone.
//!
//! Run under `c-tests/etcd-local run -- cargo test --release --test
//! ttl_leases` (make test-rust): the lease counts are of the whole etcd,
//! so the tests of this file take turns (one lock).

mod common;

use std::sync::Mutex;
use std::time::Instant;

use common::{client, endpoint, unique};
use serde_json::{json, Value};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn post(path: &str, body: Value) -> Value {
    let url = format!("http://{}{path}", endpoint());
    let mut reply = ureq::post(&url)
        .send(body.to_string().as_bytes())
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    serde_json::from_reader(reply.body_mut().as_reader()).unwrap()
}

/// The IDs of the leases etcd holds now.
fn leases() -> Vec<i64> {
    let r = post("/v3/lease/leases", json!({}));
    r["leases"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|l| l["ID"].as_str().unwrap().parse().unwrap())
                .collect()
        })
        .unwrap_or_default()
}

/// The keys attached to `lease`, and its granted ttl; None when it is gone.
fn lease_keys(lease: i64) -> Option<(Vec<String>, i64)> {
    let r = post(
        "/v3/lease/timetolive",
        json!({"ID": lease.to_string(), "keys": true}),
    );
    let ttl: i64 = r["TTL"].as_str().unwrap_or("-1").parse().unwrap();
    if ttl < 0 {
        return None;
    }
    use base64::Engine;
    let keys = r["keys"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|k| {
                    let b = base64::engine::general_purpose::STANDARD
                        .decode(k.as_str().unwrap())
                        .unwrap();
                    String::from_utf8(b).unwrap()
                })
                .collect()
        })
        .unwrap_or_default();
    let granted: i64 = r["grantedTTL"].as_str().unwrap_or("0").parse().unwrap();
    Some((keys, granted))
}

/// The lease `key` is attached to (0: none).
fn lease_of(key: &str) -> i64 {
    use base64::Engine;
    let k = base64::engine::general_purpose::STANDARD.encode(key);
    let r = post("/v3/kv/range", json!({"key": k}));
    r["kvs"][0]["lease"]
        .as_str()
        .map(|l| l.parse().unwrap())
        .unwrap_or(0)
}

#[test]
fn a_thousand_ttl_sets_leave_one_lease() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let c = client();
    let key = unique("ttl-leases/k");
    // Leases other tests left may expire meanwhile: count the new ones.
    let before = leases();
    let started = Instant::now();
    for i in 0..1000 {
        c.set_with(&key, format!("v{i}"), None, 30).unwrap();
    }
    let took = started.elapsed();
    let after = leases();
    let new: Vec<i64> = after
        .iter()
        .copied()
        .filter(|l| !before.contains(l))
        .collect();
    println!(
        "leases alive: {} before, {} after 1000 sets with ttl=30, {} of them new ({:.1} ms a set)",
        before.len(),
        after.len(),
        new.len(),
        took.as_secs_f64() * 1000.0 / 1000.0
    );
    assert_eq!(new.len(), 1, "new leases alive after 1000 ttl'd sets");
    // The one left is the key's, granted for 30 s, holding only it.
    let lease = lease_of(&key);
    assert_eq!(lease, new[0]);
    assert_eq!(lease_keys(lease), Some((vec![key.clone()], 30)));
    assert_eq!(c.get(&key).unwrap(), Some(b"v999".to_vec()));
    // A plain set (no ttl) keeps no lease; the old one expires on its own.
    c.delete(&key).unwrap();
}

#[test]
fn a_lease_the_program_made_is_not_revoked() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let c = client();
    let key = unique("ttl-leases/program");
    let mine = c.lease_grant(60).unwrap();
    c.put(&key, "on my lease", mine).unwrap();
    c.set_with(&key, "ttl'd", None, 30).unwrap();
    // The key moved to the set's lease; the program's lease lives on,
    // with no key, for the program to use again.
    assert_ne!(lease_of(&key), mine);
    assert_eq!(lease_keys(mine), Some((vec![], 60)));
    c.lease_revoke(mine).unwrap();
    c.delete(&key).unwrap();
}

#[test]
fn a_lease_that_still_holds_another_key_is_not_revoked() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let c = client();
    let key = unique("ttl-leases/shared");
    let other = unique("ttl-leases/other");
    c.set_with(&key, "first", None, 30).unwrap();
    let first = lease_of(&key);
    // Another key attached to the lease the first set made.
    c.put(&other, "rides along", first).unwrap();
    c.set_with(&key, "second", None, 30).unwrap();
    assert_ne!(lease_of(&key), first);
    assert_eq!(lease_keys(first), Some((vec![other.clone()], 30)));
    assert_eq!(c.get(&other).unwrap(), Some(b"rides along".to_vec()));
    // A third set revokes the second set's lease (nothing else on it).
    let second = lease_of(&key);
    c.set_with(&key, "third", None, 30).unwrap();
    assert_eq!(lease_keys(second), None);
    assert_eq!(c.get(&key).unwrap(), Some(b"third".to_vec()));
    c.lease_revoke(first).unwrap();
    c.delete(&key).unwrap();
}

#[test]
fn a_ttl_set_over_a_different_keys_lease_leaves_it() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let c = client();
    // The lease a ttl'd set made for key a, attached (by the extended
    // API) to key b alone once a is gone: a ttl'd set on b does not revoke
    // it, since the library made it for a, not for b.
    let a = unique("ttl-leases/a");
    let b = unique("ttl-leases/b");
    c.set_with(&a, "x", None, 30).unwrap();
    let la = lease_of(&a);
    c.put(&b, "on a's lease", la).unwrap();
    c.delete(&a).unwrap();
    c.set_with(&b, "ttl'd", None, 30).unwrap();
    assert_eq!(lease_keys(la), Some((vec![], 30)));
    c.lease_revoke(la).unwrap();
    c.delete(&b).unwrap();
}
