//! Leader election on the Rust `Client` (etcd v3): campaign, proclaim,
//! resign, leader, observe; hand-over times; a campaign time-out that
//! withdraws its candidacy; a leader whose lease lapses; a v2 session
//! refusing; and, on a three-member cluster, a campaign and an observer
//! carried over a member kill.
//!
//! Run with `c-tests/etcd-local run -- cargo test --release --test election`;
//! `-- --nocapture` shows the figures.

mod common;

use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::*;
use etcdapi::{Client, Config, ErrorKind, Leadership, ProtocolKind};

fn v3() -> Client {
    client_on(ProtocolKind::V3)
}

const LONG: Option<Duration> = Some(Duration::from_secs(20));

/// A kept lease of `ttl` seconds.
fn kept(c: &Client, ttl: i64) -> i64 {
    let lease = c.lease_grant(ttl).unwrap();
    c.lease_keep(lease).unwrap();
    lease
}

#[test]
fn campaign_proclaim_resign_and_leader() {
    let c = v3();
    let e = unique("el");
    assert_eq!(
        c.election_leader(&e).unwrap_err().kind(),
        ErrorKind::Refused,
        "nobody leads yet"
    );
    let lease = kept(&c, 10);
    let won = c.campaign(&e, "one", lease, LONG).unwrap();
    assert!(won.name.starts_with(b"/_elections/rt-"));
    assert!(!won.name[12..].contains(&b'/'), "escaped: {:?}", won.key);
    let l = c.election_leader(&e).unwrap();
    assert_eq!(
        (l.key.clone(), l.value.clone(), l.lease),
        (won.key.clone(), b"one".to_vec(), lease)
    );
    assert_eq!(l.create_revision, won.revision);
    // The token round-trips.
    assert_eq!(
        Leadership::from_token(won.to_token().as_bytes()),
        Some(won.clone())
    );
    let rev = c.proclaim(&won, "two").unwrap();
    let l = c.election_leader(&e).unwrap();
    assert_eq!((l.value, l.mod_revision), (b"two".to_vec(), rev));
    // Campaigning again on the same lease is the same candidate: at once.
    let again = c
        .campaign(&e, "two", lease, Some(Duration::from_secs(2)))
        .unwrap();
    assert_eq!(again, won);
    c.resign(&won).unwrap();
    assert_eq!(
        c.election_leader(&e).unwrap_err().kind(),
        ErrorKind::Refused
    );
    assert!(c.resign(&won).unwrap_err().is_refusal(), "already lost");
    assert!(
        c.proclaim(&won, "x").unwrap_err().is_refusal(),
        "no longer leads"
    );
    c.lease_revoke(lease).unwrap();
}

#[test]
fn hand_over_after_resign_is_quick() {
    let a = v3();
    let b = v3();
    let e = unique("handover");
    let (la, lb) = (kept(&a, 10), kept(&b, 10));
    let won = a.campaign(&e, "a", la, LONG).unwrap();
    let waiter = std::thread::spawn(move || {
        let won = b.campaign(&e, "b", lb, LONG).unwrap();
        (Instant::now(), won, b, lb)
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(!waiter.is_finished(), "b waits while a leads");
    let resigned = Instant::now();
    a.resign(&won).unwrap();
    let (elected, bwon, b, lb) = waiter.join().unwrap();
    let took = elected.duration_since(resigned);
    eprintln!("hand-over after resign: {} ms", took.as_millis());
    assert!(took < Duration::from_secs(3), "{took:?}");
    b.resign(&bwon).unwrap();
    a.lease_revoke(la).unwrap();
    b.lease_revoke(lb).unwrap();
}

#[test]
fn campaign_time_out_withdraws_the_candidacy() {
    let a = v3();
    let b = v3();
    let e = unique("timeout");
    let (la, lb) = (kept(&a, 10), kept(&b, 10));
    let won = a.campaign(&e, "a", la, LONG).unwrap();
    let t = Instant::now();
    let err = b
        .campaign(&e, "b", lb, Some(Duration::from_millis(300)))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    assert!(t.elapsed() >= Duration::from_millis(300));
    // The candidacy is gone: a third candidate wins at once after a resigns.
    let c = v3();
    let lc = kept(&c, 10);
    let e2 = e.clone();
    let third = std::thread::spawn(move || (c.campaign(&e2, "c", lc, LONG), c, lc));
    std::thread::sleep(Duration::from_millis(300));
    a.resign(&won).unwrap();
    let (r, c, lc) = third.join().unwrap();
    let cwon = r.unwrap();
    assert_eq!(c.election_leader(&e).unwrap().value, b"c");
    c.resign(&cwon).unwrap();
    for (s, l) in [(&a, la), (&b, lb), (&c, lc)] {
        s.lease_revoke(l).unwrap();
    }
}

#[test]
fn a_leader_whose_lease_lapses_loses() {
    let c = v3();
    let e = unique("lapse");
    let lease = c.lease_grant(2).unwrap();
    let won = c.campaign(&e, "me", lease, LONG).unwrap();
    let other = v3();
    let lo = kept(&other, 10);
    let e2 = e.clone();
    let t = Instant::now();
    let next =
        std::thread::spawn(move || (other.campaign(&e2, "next", lo, LONG), Instant::now(), other));
    let (r, at, other) = next.join().unwrap();
    let owon = r.unwrap();
    eprintln!(
        "hand-over after a lease of 2 s lapsed: {} ms after the campaign began",
        at.duration_since(t).as_millis()
    );
    assert!(c.proclaim(&won, "still?").unwrap_err().is_refusal());
    assert_eq!(c.election_leader(&e).unwrap().value, b"next");
    other.resign(&owon).unwrap();
    other.lease_revoke(lo).unwrap();
}

#[test]
fn campaign_on_a_lost_lease_is_refused() {
    let c = v3();
    let lease = c.lease_grant(5).unwrap();
    c.lease_revoke(lease).unwrap();
    let err = c.campaign(unique("gone"), "v", lease, LONG).unwrap_err();
    assert!(err.is_refusal(), "{err}");
    assert_eq!(
        c.campaign(unique("zero"), "v", 0, LONG).unwrap_err().kind(),
        ErrorKind::BadArgument
    );
}

#[test]
fn observe_sees_leaders_and_proclamations_once_each() {
    let c = v3();
    let e = unique("observe");
    assert_eq!(
        c.observe(&e, None, Some(Duration::from_millis(200)))
            .unwrap_err()
            .kind(),
        ErrorKind::TimedOut
    );
    let (la, lb) = (kept(&c, 10), kept(&c, 10));
    let a = c.campaign(&e, "a1", la, LONG).unwrap();
    let first = c.observe(&e, None, LONG).unwrap();
    assert_eq!(first.value, b"a1");
    let mut from = first.mod_revision + 1;
    assert_eq!(
        c.observe(&e, Some(from), Some(Duration::from_millis(200)))
            .unwrap_err()
            .kind(),
        ErrorKind::TimedOut,
        "nothing new"
    );
    // b queues behind a (not a leadership change), a proclaims, resigns.
    let b2 = v3();
    let e2 = e.clone();
    let bt = std::thread::spawn(move || b2.campaign(&e2, "b1", lb, LONG).map(|w| (w, b2)));
    std::thread::sleep(Duration::from_millis(300));
    c.proclaim(&a, "a2").unwrap();
    let seen = c.observe(&e, Some(from), LONG).unwrap();
    assert_eq!(seen.value, b"a2");
    from = seen.mod_revision + 1;
    c.resign(&a).unwrap();
    let seen = c.observe(&e, Some(from), LONG).unwrap();
    assert_eq!(seen.value, b"b1", "the waiting candidate took over");
    assert!(
        seen.mod_revision > seen.create_revision,
        "its revision is the hand-over's"
    );
    from = seen.mod_revision + 1;
    let (bwon, b2) = bt.join().unwrap().unwrap();
    assert_eq!(
        c.observe(&e, Some(from), Some(Duration::from_millis(300)))
            .unwrap_err()
            .kind(),
        ErrorKind::TimedOut,
        "no repeat"
    );
    // The current leader, asked with from <= 0, carries the hand-over
    // revision too: continuing from it repeats nothing.
    let now = c.observe(&e, None, LONG).unwrap();
    assert_eq!(
        (now.value.as_slice(), now.mod_revision),
        (&b"b1"[..], seen.mod_revision)
    );
    // From an old revision: the first change at or after it.
    let replay = c.observe(&e, Some(first.mod_revision + 1), LONG).unwrap();
    assert_eq!(replay.value, b"a2");
    b2.resign(&bwon).unwrap();
    c.lease_revoke(la).unwrap();
    c.lease_revoke(lb).unwrap();
}

#[test]
fn v2_sessions_refuse_elections() {
    let c = client_on(ProtocolKind::V2);
    let won = Leadership::new(b"/_elections/x", 5, 7);
    let kinds = [
        c.campaign("x", "v", 7, LONG).unwrap_err().kind(),
        c.proclaim(&won, "v").unwrap_err().kind(),
        c.resign(&won).unwrap_err().kind(),
        c.election_leader("x").unwrap_err().kind(),
        c.observe("x", None, LONG).unwrap_err().kind(),
    ];
    assert!(
        kinds.iter().all(|&k| k == ErrorKind::BadArgument),
        "{kinds:?}"
    );
}

// ---------------------------------------------------------------------
// A three-member cluster: a campaign and an observer cut by a member kill.

fn cluster_session(cl: &Cluster, order: &[usize]) -> Client {
    let config = Config {
        connect_timeout: Duration::from_millis(300),
        request_timeout: Duration::from_secs(2),
        ..Config::default()
    };
    Client::new(endpoints(&cl.endpoints_in_order(order)), config).unwrap()
}

#[test]
fn cluster_campaign_and_observe_survive_a_member_kill() {
    let cl = Cluster::start(3);
    let victim = cl.follower_index();
    let order = cl.order_with_first(victim);
    let waiter = cluster_session(&cl, &order);
    let observer = cluster_session(&cl, &order);
    let leader = cluster_session(&cl, &[(victim + 1) % 3, (victim + 2) % 3]);
    let e = "/cluster-election";
    let ll = kept(&leader, 5);
    let lw = kept(&waiter, 5);
    let won = leader.campaign(e, "first", ll, LONG).unwrap();
    let seen = observer.observe(e, None, LONG).unwrap();
    assert_eq!(seen.value, b"first");
    let from = seen.mod_revision + 1;
    let campaign = std::thread::spawn(move || {
        (
            waiter.campaign(e, "second", lw, Some(Duration::from_secs(30))),
            waiter,
        )
    });
    let watch = std::thread::spawn(move || {
        (
            observer.observe(e, Some(from), Some(Duration::from_secs(30))),
            observer,
        )
    });
    std::thread::sleep(Duration::from_millis(500));
    cl.kill(victim);
    std::thread::sleep(Duration::from_secs(2));
    let resigned = Instant::now();
    resign_soon(&leader, &won);
    let (r, waiter) = campaign.join().unwrap();
    let wwon = r.expect("the campaign carried on elsewhere");
    let (r, _observer) = watch.join().unwrap();
    let seen = r.expect("the observer carried on elsewhere");
    assert_eq!(seen.value, b"second");
    eprintln!(
        "cluster: campaign and observe moved off the killed member; elected {} ms after the resign",
        resigned.elapsed().as_millis()
    );
    waiter.resign(&wwon).unwrap();
}

fn resign_soon(c: &Client, won: &Leadership) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match c.resign(won) {
            Ok(()) => return,
            Err(e) if Instant::now() < deadline && !e.is_refusal() => {
                std::thread::sleep(Duration::from_millis(200))
            }
            Err(e) => panic!("resign: {e}"),
        }
    }
}
