//! Credentials that go stale (SPEC section 2, 2026-12-08) and the leader
//! for a user without admin rights (section 4), as user `staff`: not
//! root, read-write on every key. A member restart drops the simple
//! tokens it handed out; `--auth-token-ttl` expires an idle one. On
//! etcd 3.5.30 a keep-alive with a stale token is answered HTTP 401 with
//! the status nested (`{"error":{"code":16,...}}`), and status is for
//! admins only: a kept lease, a lock and a leadership must outlive both,
//! and `etcd_leader` must still name the leader. The same tests run on
//! every etcd make check starts.

mod common;

use std::thread::sleep;
use std::time::Duration;

use common::cluster::Cluster;
use common::secure::{Etcd, Setup, ROOT_PASSWORD, STAFF_PASSWORD};
use etcdapi::{Client, Config, Credentials};

fn staff() -> Option<Credentials> {
    Some(Credentials::new("staff", STAFF_PASSWORD))
}

fn with_auth(token_ttl: Option<u32>) -> Etcd {
    Etcd::start(Setup {
        auth: true,
        token_ttl,
        ..Setup::default()
    })
}

/// How long after the restart the lease must still be there: three times
/// its ttl, so that a keeper that stopped would have lost it.
const AFTER: Duration = Duration::from_secs(15);
const LEASE_TTL: i64 = 5;

/// A key on a kept lease is there `AFTER` the token went stale, and the
/// lease still has time left.
fn assert_kept(c: &Client, lease: i64, key: &str) {
    assert_eq!(
        c.get(key).unwrap().as_deref(),
        Some(&b"on a kept lease"[..]),
        "the key on the kept lease is gone"
    );
    let left = c.lease_ttl(lease).unwrap();
    assert!(left.remaining > 0, "{left:?}");
    c.lease_revoke(lease).unwrap();
    assert_eq!(c.get(key).unwrap(), None);
}

fn kept_lease(c: &Client, key: &str) -> i64 {
    let lease = c.lease_grant(LEASE_TTL).unwrap();
    c.lease_keep(lease).unwrap();
    c.put(key, "on a kept lease", lease).unwrap();
    lease
}

/// A session of its own: sessions with the same servers and settings
/// share their connections and their token, so each holder below gets a
/// request time-out no other session has, and meets the stale token
/// itself.
fn own_session(etcd: &Etcd, n: u64) -> Client {
    let config = Config {
        request_timeout: Duration::from_millis(3000 + n),
        ..etcd.config(staff())
    };
    Client::new(etcd.endpoints(), config).unwrap()
}

/// One restart for three holders, each with a session of its own (the
/// restart and the wait are the test's time): a key on a kept lease, a
/// lock renewed by its index, a leadership won on a kept lease, and a
/// watch.
#[test]
fn a_kept_lease_a_lock_a_leadership_and_a_watch_outlive_a_member_restart() {
    let mut etcd = with_auth(None);
    let keeper = own_session(&etcd, 1);
    let lease = kept_lease(&keeper, "/stale/kept");
    let locker = own_session(&etcd, 2);
    let index = locker.lock("/stale/lock", 30).unwrap();
    let candidate = own_session(&etcd, 3);
    let candidacy = candidate.lease_grant(LEASE_TTL).unwrap();
    candidate.lease_keep(candidacy).unwrap();
    let won = candidate
        .campaign(
            "/stale/election",
            "me",
            candidacy,
            Some(Duration::from_secs(5)),
        )
        .unwrap();
    // A watch stream open across the restart, reopened with a new token.
    let watcher = own_session(&etcd, 5);
    let before = watcher.put("/stale/watched/k", "before", 0).unwrap();
    let first = watcher
        .watch_events("/stale/watched", Some(before), Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(first.revision, before);

    etcd.restart();

    let after = own_session(&etcd, 6)
        .put("/stale/watched/k", "after", 0)
        .unwrap();
    let next = watcher
        .watch_events(
            "/stale/watched",
            Some(before + 1),
            Some(Duration::from_secs(10)),
        )
        .unwrap();
    assert_eq!(next.revision, after);
    assert_eq!(next.events[0].kv.value, b"after");

    // The lock, renewed by its index with the stale token, is still held:
    // another session cannot take it within a second, and gets it once
    // it is released.
    locker.renew("/stale/lock", 30, &index).unwrap();
    let other = own_session(&etcd, 4);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(other.lock("/stale/lock", 10));
    });
    assert!(
        rx.recv_timeout(Duration::from_secs(1)).is_err(),
        "another session took the renewed lock"
    );
    locker.unlock("/stale/lock", &index).unwrap();
    let theirs = rx.recv_timeout(Duration::from_secs(10)).unwrap().unwrap();
    assert_ne!(theirs, index);

    sleep(AFTER);
    assert_kept(&keeper, lease, "/stale/kept");
    let now = candidate.election_leader("/stale/election").unwrap();
    assert_eq!(now.key, won.key, "the leadership was lost");
    assert_eq!(now.value, b"me");
    candidate.proclaim(&won, "still me").unwrap();
    candidate.resign(&won).unwrap();
    candidate.lease_revoke(candidacy).unwrap();
}

#[test]
fn a_kept_lease_outlives_token_expiry() {
    let etcd = with_auth(Some(2));
    let c = etcd.client(staff());
    // Each use renews a simple token: with a lease of 12 s the keeper
    // refreshes every 4 s, so each refresh comes with a token idle longer
    // than its 2 s (etcd checks the tokens' ages once a second). After
    // 15 s the lease lives only if those refreshes went through.
    let lease = c.lease_grant(12).unwrap();
    c.lease_keep(lease).unwrap();
    c.put("/stale/expiry", "on a kept lease", lease).unwrap();
    sleep(AFTER);
    assert_kept(&c, lease, "/stale/expiry");
}

#[test]
fn the_leader_for_a_user_without_admin_rights() {
    let etcd = with_auth(None);
    let root = etcd.root().leader().unwrap();
    assert_eq!(etcd.client(staff()).leader().unwrap(), root);
    // A session that cannot log in still hears its refusal.
    let wrong = etcd.client(Some(Credentials::new("staff", "wrong")));
    assert!(wrong.leader().unwrap_err().is_refusal());
}

#[test]
fn the_leader_for_a_user_without_admin_rights_after_a_leader_member_kill() {
    let cl = Cluster::start(3);
    let first = cl.wait_leader(Duration::from_secs(10));
    cl.enable_auth();
    let config = |user: &str, password: &str| Config {
        credentials: Some(Credentials::new(user, password)),
        connect_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_millis(2000),
        ..Config::default()
    };
    let servers = common::endpoints(&cl.endpoints());
    let root = Client::new(servers.clone(), config("root", ROOT_PASSWORD)).unwrap();
    let staff = Client::new(servers, config("staff", STAFF_PASSWORD)).unwrap();
    assert_eq!(staff.leader().unwrap(), cl.member_hex_id(first));
    cl.kill(first);
    let next = common::wait_for(Duration::from_secs(15), "a new leader", || {
        root.leader().ok()
    });
    assert_ne!(next, cl.member_hex_id(first));
    assert_eq!(staff.leader().unwrap(), next);
}
