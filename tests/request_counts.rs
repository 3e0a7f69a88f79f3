//! What each call costs etcd where no answer is lost (SPEC section 2,
//! "What a call costs"): every call run 100 times against the test etcd,
//! the gRPC requests etcd served counted from its `/metrics`
//! (`grpc_server_started_total`, per method; the gateway turns each HTTP
//! request into one), and the requests per call compared with the table
//! below. A change that adds a request to a fault-free path fails here.

mod common;

use std::collections::BTreeMap;
use std::sync::Mutex;

use etcdapi::Client;

const CALLS: usize = 100;

/// One measurement at a time: the counts are the whole member's.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// `grpc_server_started_total` per gRPC method, from the member's page.
fn started() -> BTreeMap<String, f64> {
    let url = format!("http://{}/metrics", common::endpoint());
    let page = ureq::get(&url)
        .call()
        .expect("GET /metrics")
        .into_body()
        .read_to_string()
        .expect("metrics text");
    let mut counts = BTreeMap::new();
    for line in page.lines() {
        let Some(rest) = line.strip_prefix("grpc_server_started_total{") else {
            continue;
        };
        let Some(method) = rest
            .split("grpc_method=\"")
            .nth(1)
            .and_then(|m| m.split('"').next())
        else {
            continue;
        };
        let n: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0.0);
        *counts.entry(method.to_string()).or_insert(0.0) += n;
    }
    counts
}

/// Runs `call(i)` for i in 0..CALLS and answers the requests per call,
/// per method (methods etcd served none of are left out).
fn per_call(mut call: impl FnMut(usize)) -> BTreeMap<String, f64> {
    let before = started();
    for i in 0..CALLS {
        call(i);
    }
    let after = started();
    after
        .into_iter()
        .filter_map(|(m, n)| {
            let d = n - before.get(&m).copied().unwrap_or(0.0);
            (d > 0.0).then(|| (m, d / CALLS as f64))
        })
        .collect()
}

/// `per_call` is exactly `expected` (method, requests per call).
fn assert_costs(what: &str, measured: BTreeMap<String, f64>, expected: &[(&str, f64)]) {
    let expected: BTreeMap<String, f64> =
        expected.iter().map(|&(m, n)| (m.to_string(), n)).collect();
    println!("{what}: {measured:?}");
    assert_eq!(measured, expected, "requests per call of {what}");
}

fn client() -> Client {
    common::client_on(etcdapi::ProtocolKind::V3)
}

#[test]
fn reads_and_plain_writes() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let c = client();
    let p = common::unique("/counts/plain");
    c.set(format!("{p}/over"), "0").unwrap();
    c.set(format!("{p}/swap"), "0").unwrap();
    c.set(format!("{p}/get"), "v").unwrap();
    for i in 0..CALLS {
        c.set(format!("{p}/del/{i}"), "v").unwrap();
    }
    // Today's costs (2026-12-08): a set of a new key is a fenced Txn that
    // fails, then a create Txn (issue: one request per write).
    let new = per_call(|i| c.set(format!("{p}/new/{i}"), "v").unwrap());
    assert_costs("etcd_set of a new key", new, &[("Txn", 2.0)]);
    let over = per_call(|i| c.set(format!("{p}/over"), i.to_string()).unwrap());
    assert_costs("etcd_set over an existing key", over, &[("Txn", 1.0)]);
    let swap = per_call(|i| {
        c.set_with(
            format!("{p}/swap"),
            (i + 1).to_string(),
            Some(i.to_string().as_bytes()),
            0,
        )
        .unwrap()
    });
    assert_costs("etcd_set with a previous value", swap, &[("Txn", 1.0)]);
    let get = per_call(|_| assert!(c.get(format!("{p}/get")).unwrap().is_some()));
    assert_costs("etcd_get", get, &[("Range", 1.0)]);
    let del = per_call(|i| c.delete(format!("{p}/del/{i}")).unwrap());
    assert_costs("etcd_delete", del, &[("Txn", 1.0)]);
}

#[test]
fn ttl_sets() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let c = client();
    let p = common::unique("/counts/ttl");
    let first = per_call(|i| c.set_with(format!("{p}/first/{i}"), "v", None, 30).unwrap());
    assert_costs(
        "a first ttl'd etcd_set of a key",
        first,
        &[("LeaseGrant", 1.0), ("Range", 1.0), ("Txn", 2.0)],
    );
    c.set_with(format!("{p}/again"), "v", None, 30).unwrap();
    let again = per_call(|i| {
        c.set_with(format!("{p}/again"), i.to_string(), None, 30)
            .unwrap()
    });
    assert_costs(
        "a ttl'd etcd_set refreshing a key",
        again,
        &[
            ("LeaseGrant", 1.0),
            ("LeaseRevoke", 1.0),
            ("LeaseTimeToLive", 1.0),
            ("Range", 1.0),
            ("Txn", 1.0),
        ],
    );
}

#[test]
fn extended_writes() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let c = client();
    let p = common::unique("/counts/ext");
    let put = per_call(|i| {
        c.put(format!("{p}/put/{i}"), "v", 0).unwrap();
    });
    assert_costs("etcd_put", put, &[("Txn", 2.0)]);
    let mut rev = c.put(format!("{p}/cas"), "0", 0).unwrap();
    let put_if = per_call(|i| rev = c.put_if(format!("{p}/cas"), i.to_string(), 0, rev).unwrap());
    assert_costs("etcd_put_if", put_if, &[("Txn", 1.0)]);
    let revs: Vec<i64> = (0..CALLS)
        .map(|i| c.put(format!("{p}/del/{i}"), "v", 0).unwrap())
        .collect();
    let delete_if = per_call(|i| {
        c.delete_if(format!("{p}/del/{i}"), Some(revs[i])).unwrap();
    });
    assert_costs("etcd_delete_if", delete_if, &[("Txn", 1.0)]);
}

#[test]
fn locks_watches_leader_and_leases() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let c = client();
    let p = common::unique("/counts/other");
    let mut indexes = Vec::new();
    let lock = per_call(|i| indexes.push(c.lock(format!("{p}/lock/{i}"), 30).unwrap()));
    assert_costs("etcd_lock", lock, &[("LeaseGrant", 1.0), ("Lock", 1.0)]);
    let renew = per_call(|i| c.renew(format!("{p}/lock/{i}"), 30, &indexes[i]).unwrap());
    assert_costs(
        "etcd_lock renewing",
        renew,
        &[("LeaseKeepAlive", 1.0), ("Range", 1.0)],
    );
    let unlock = per_call(|i| c.unlock(format!("{p}/lock/{i}"), &indexes[i]).unwrap());
    assert_costs(
        "etcd_unlock",
        unlock,
        &[("LeaseRevoke", 1.0), ("Range", 1.0), ("Unlock", 1.0)],
    );

    let first = c.put(format!("{p}/w"), "v", 0).unwrap();
    let watch = per_call(|_| {
        assert_eq!(
            c.watch(format!("{p}/w"), Some(first)).unwrap().revision,
            first
        )
    });
    // A change already handed out: a stream of its own each time.
    assert_costs("etcd_watch from an index", watch, &[("Watch", 1.0)]);

    let leader = per_call(|_| {
        c.leader().unwrap();
    });
    assert_costs("etcd_leader", leader, &[("Status", 1.0)]);

    let leases: Vec<i64> = (0..CALLS).map(|_| c.lease_grant(30).unwrap()).collect();
    let keep = per_call(|i| c.lease_keep(leases[i]).unwrap());
    assert_costs("etcd_lease_keep", keep, &[("LeaseKeepAlive", 1.0)]);
    for l in leases {
        c.lease_revoke(l).unwrap();
    }
}
