//! Transactions through `Client::txn` (SPEC section 8.3): both branches,
//! results in op order, prefix reads and deletes, etcd's refusals as
//! refusals, a v2 session refusing; and fencing: a lock holder and a
//! leader whose lease lapsed while a member of the cluster was killed
//! cannot write once a successor holds the lock or the leadership.

mod common;

use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::{client, client_on, unique};
use etcdapi::{
    Client, Compare, CompareOp, Config, ErrorKind, Op, OpResult, ProtocolKind, Target, TxnOutcome,
};

fn put(key: &str, value: &str) -> Op {
    Op::Put {
        key: key.into(),
        value: value.into(),
        lease: 0,
    }
}

fn get(key: &str, prefix: bool) -> Op {
    Op::Get {
        key: key.into(),
        prefix,
        keys_only: false,
        count_only: false,
    }
}

fn cmp(key: &str, target: Target, op: CompareOp) -> Compare {
    Compare::Key {
        key: key.into(),
        target,
        op,
    }
}

/// The values a GET result read, as strings.
fn values(r: &OpResult) -> Vec<(String, String)> {
    match r {
        OpResult::Get { kvs, .. } => kvs
            .iter()
            .map(|kv| {
                (
                    String::from_utf8_lossy(&kv.key).into_owned(),
                    String::from_utf8_lossy(&kv.value).into_owned(),
                )
            })
            .collect(),
        other => panic!("not a GET result: {other:?}"),
    }
}

#[test]
fn both_branches_results_in_order_and_one_revision() {
    let c = client();
    let k = unique("txn/k");
    let missing = cmp(&k, Target::Version(0), CompareOp::Equal);
    let then = [put(&k, "one"), get(&k, false)];
    let otherwise = [get(&k, false)];
    let t = c
        .txn(std::slice::from_ref(&missing), &then, &otherwise)
        .unwrap();
    assert!(t.succeeded);
    assert_eq!(t.results.len(), 2);
    assert_eq!(t.results[0], OpResult::Put);
    assert_eq!(values(&t.results[1]), vec![(k.clone(), "one".to_string())]);
    let (kv, _) = c.get_kv(&k).unwrap();
    assert_eq!(
        kv.unwrap().mod_revision,
        t.revision,
        "written at the txn's revision"
    );
    // Now present: the else branch runs and reads.
    let t = c.txn(&[missing], &then, &otherwise).unwrap();
    assert!(!t.succeeded);
    assert_eq!(values(&t.results[0]), vec![(k.clone(), "one".to_string())]);
    // Keys are canonical: "//k/" is "/k".
    let t = c
        .txn(
            &[cmp(
                &format!("/{k}/"),
                Target::Value(b"one".to_vec()),
                CompareOp::Equal,
            )],
            &[get(&format!("/{k}//"), false)],
            &[],
        )
        .unwrap();
    assert!(
        t.succeeded,
        "a compare on a non-canonical spelling of the key"
    );
    assert_eq!(values(&t.results[0]).len(), 1);
}

#[test]
fn prefix_get_and_delete() {
    let c = client();
    let p = unique("txn/p");
    for k in ["a", "b/c", "d"] {
        c.put(format!("{p}/{k}"), "x", 0).unwrap();
    }
    c.put(&p, "self", 0).unwrap();
    c.put(format!("{p}-sibling"), "s", 0).unwrap();
    let t = c.txn(&[], &[get(&p, true)], &[]).unwrap();
    let keys: Vec<String> = values(&t.results[0]).into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys,
        vec![format!("{p}/a"), format!("{p}/b/c"), format!("{p}/d")]
    );
    let counted = c
        .txn(
            &[],
            &[Op::Get {
                key: p.clone().into(),
                prefix: true,
                keys_only: false,
                count_only: true,
            }],
            &[],
        )
        .unwrap();
    assert_eq!(
        counted.results,
        vec![OpResult::Get {
            kvs: vec![],
            count: 3
        }]
    );
    let deleted = c
        .txn(
            &[],
            &[Op::Delete {
                key: p.clone().into(),
                prefix: true,
            }],
            &[],
        )
        .unwrap();
    assert_eq!(deleted.results, vec![OpResult::Delete { deleted: 4 }]);
    assert!(c.get_kv(format!("{p}-sibling")).unwrap().0.is_some());
    // A prefix delete of the root is refused before anything is sent.
    let e = c
        .txn(
            &[],
            &[Op::Delete {
                key: b"/".to_vec(),
                prefix: true,
            }],
            &[],
        )
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadArgument);
}

#[test]
fn refusals_are_refusals() {
    let c = client();
    let k = unique("txn/r");
    let e = c.txn(&[], &[put(&k, "1"), put(&k, "2")], &[]).unwrap_err();
    assert!(e.is_refusal(), "{e:?}");
    assert!(e.message().contains("duplicate key"), "{e}");
    let e = c
        .txn(
            &[],
            &[Op::Put {
                key: k.clone().into(),
                value: b"v".to_vec(),
                lease: 0x7fff_ffff_0000,
            }],
            &[],
        )
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e:?}");
    let many: Vec<Op> = (0..129).map(|i| put(&format!("{k}/{i}"), "m")).collect();
    let e = c.txn(&[], &many, &[]).unwrap_err();
    assert!(
        e.is_refusal() && e.message().contains("too many operations"),
        "{e:?}"
    );
    assert_eq!(c.get_kv(&k).unwrap().0, None, "nothing was written");
    let e = client_on(ProtocolKind::V2)
        .txn(&[], &[put(&k, "v2")], &[])
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadArgument);
}

fn session(cl: &Cluster, first: usize) -> Client {
    let servers =
        etcdapi::parse_server_list(&cl.endpoints_in_order(&cl.order_with_first(first))).unwrap();
    Client::new(servers, Config::default()).unwrap()
}

fn fenced_put(c: &Client, fence: &Compare, key: &str, value: &str) -> TxnOutcome {
    c.txn(std::slice::from_ref(fence), &[put(key, value)], &[])
        .unwrap()
}

#[test]
fn fenced_writes_after_a_lapse_through_a_member_kill() {
    let cl = Cluster::start(3);
    let leader = cl.wait_leader(Duration::from_secs(20));
    let old = session(&cl, (leader + 1) % 3);
    let next = session(&cl, (leader + 2) % 3);
    let data = "/txn-fence/data";

    // A lock holder (ttl 2, never renewed) and a leader (a 2 s lease
    // nobody keeps), each writing under its fence.
    let lock = "/txn-fence/lock";
    let index = old.lock(lock, 2).unwrap();
    let held = Compare::LockHeld {
        key: lock.into(),
        index: index.clone(),
    };
    assert!(fenced_put(&old, &held, data, "holder").succeeded);
    let lease = old.lease_grant(2).unwrap();
    let leadership = old
        .campaign("/txn-fence/election", "old", lease, None)
        .unwrap();
    let leading = Compare::Leader(leadership);
    assert!(fenced_put(&old, &leading, data, "leader").succeeded);
    let lapse = Instant::now() + Duration::from_secs(2);

    // The cluster's leader is killed while both leases run out.
    cl.kill(leader);
    let successor_index = next.lock(lock, 30).unwrap();
    println!(
        "successor took the lock {} ms after the lapse",
        Instant::now().saturating_duration_since(lapse).as_millis()
    );
    let kept = next.lease_grant(30).unwrap();
    let successor = next
        .campaign(
            "/txn-fence/election",
            "new",
            kept,
            Some(Duration::from_secs(20)),
        )
        .unwrap();
    println!(
        "successor elected {} ms after the lapse",
        Instant::now().saturating_duration_since(lapse).as_millis()
    );
    let successor_held = Compare::LockHeld {
        key: lock.into(),
        index: successor_index,
    };
    assert!(fenced_put(&next, &successor_held, data, "successor holder").succeeded);
    assert!(!fenced_put(&old, &held, data, "stale holder").succeeded);
    assert!(fenced_put(&next, &Compare::Leader(successor), data, "successor leader").succeeded);
    assert!(!fenced_put(&old, &leading, data, "stale leader").succeeded);
    let (kv, _) = next.get_kv(data).unwrap();
    assert_eq!(kv.unwrap().value, b"successor leader");
    cl.restart(leader);
}
