//! Failure tests on a real three-member etcd cluster: a member killed
//! (SIGKILL) or frozen (SIGSTOP) under writes, a watch, a lock; quorum
//! lost and regained; the preferred server moving off a dead member.
//!
//! Each test starts its own cluster (`common::cluster`), one at a time.
//! Run with `cargo test --release --test cluster -- --nocapture` to see
//! the figures.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use common::cluster::{key_history, raw_get, revision, Cluster};
use common::{ms, timed};
use etcdapi::{Client, Config, Error, ErrorKind};

const CONNECT_TIMEOUT: Duration = Duration::from_millis(300);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// The most a single call may take: the short rounds of a stalled
/// repeatable request (about one request time-out), then every server
/// tried once, each for up to a request time-out, plus slack.
fn call_budget() -> Duration {
    (REQUEST_TIMEOUT + CONNECT_TIMEOUT) * 4 + Duration::from_secs(2)
}

fn config() -> Config {
    Config {
        connect_timeout: CONNECT_TIMEOUT,
        request_timeout: REQUEST_TIMEOUT,
        ..Config::default()
    }
}

/// A session on the cluster's members in the order `order`.
fn session(cl: &Cluster, order: &[usize]) -> Client {
    let servers = etcdapi::parse_server_list(&cl.endpoints_in_order(order)).unwrap();
    Client::new(servers, config()).unwrap()
}

fn kind(e: &Error) -> String {
    format!("{:?}", e.kind())
}

/// A running member's endpoint (for raw checks).
fn live_endpoint(cl: &Cluster) -> String {
    let i = (0..cl.len()).find(|&i| cl.is_running(i)).unwrap();
    cl.member_endpoint(i)
}

struct Write {
    value: u64,
    start: Instant,
    end: Instant,
    result: Result<(), Error>,
}

#[test]
fn writes_survive_leader_kill_and_restart() {
    leader_kill_under_a_writer(config(), call_budget());
}

/// The same with the library's default time-outs (1 s connect, 5 s
/// request): a write held by a follower for the dead leader must not hold
/// the writer for the whole request time-out.
#[test]
fn writes_survive_leader_kill_with_default_timeouts() {
    let defaults = Config::default();
    leader_kill_under_a_writer(
        defaults.clone(),
        (defaults.request_timeout + defaults.connect_timeout) * 2,
    );
}

fn leader_kill_under_a_writer(config: Config, budget: Duration) {
    let cl = Cluster::start(3);
    let servers = etcdapi::parse_server_list(&cl.endpoints_in_order(&[0, 1, 2])).unwrap();
    let c = Client::new(servers, config).unwrap();
    let key = "/cluster/writer";
    let from = revision(&cl.member_endpoint(0)) + 1;
    let began = Instant::now();
    let mut writes: Vec<Write> = Vec::new();
    let (leader, killed_at, restarted_at) = std::thread::scope(|s| {
        let chaos = s.spawn(|| {
            std::thread::sleep(Duration::from_secs(1));
            let leader = cl.wait_leader(Duration::from_secs(5));
            let killed_at = Instant::now();
            cl.kill(leader);
            std::thread::sleep(Duration::from_secs(4));
            cl.restart(leader);
            (leader, killed_at, Instant::now())
        });
        let mut value = 0u64;
        while began.elapsed() < Duration::from_secs(10) {
            value += 1;
            let start = Instant::now();
            let result = c.set(key, value.to_string());
            writes.push(Write {
                value,
                start,
                end: Instant::now(),
                result,
            });
        }
        chaos.join().unwrap()
    });
    cl.wait_healthy(Duration::from_secs(20));

    let ok: Vec<u64> = writes
        .iter()
        .filter(|w| w.result.is_ok())
        .map(|w| w.value)
        .collect();
    let failed: Vec<&Write> = writes.iter().filter(|w| w.result.is_err()).collect();
    let longest = writes.iter().map(|w| w.end - w.start).max().unwrap();
    let first_ok_after_kill = writes
        .iter()
        .find(|w| w.start >= killed_at && w.result.is_ok())
        .map(|w| w.end - killed_at);
    println!(
        "writer: leader m{leader} killed at {} ms, restarted at {} ms; {} writes, {} Ok, {} failed",
        (killed_at - began).as_millis(),
        (restarted_at - began).as_millis(),
        writes.len(),
        ok.len(),
        failed.len()
    );
    for w in &failed {
        let e = w.result.as_ref().unwrap_err();
        println!(
            "writer: value {} failed after {} (started {} ms after the kill): {}: {e}",
            w.value,
            ms(w.end - w.start),
            w.start.saturating_duration_since(killed_at).as_millis(),
            kind(e)
        );
    }
    println!(
        "writer: write gap after the leader kill: {}",
        first_ok_after_kill.map_or("no Ok write after the kill".into(), ms)
    );
    // The longest stretch without an acknowledged write, from the kill on.
    let mut acked: Vec<Instant> = writes
        .iter()
        .filter(|w| w.result.is_ok() && w.end >= killed_at)
        .map(|w| w.end)
        .collect();
    acked.insert(0, killed_at);
    let stretch = acked
        .windows(2)
        .map(|p| p[1] - p[0])
        .max()
        .unwrap_or_default();
    println!(
        "writer: longest stretch without an acknowledged write: {}",
        ms(stretch)
    );
    println!("writer: longest call: {}", ms(longest));

    // Every failure says something, and none is a refusal: etcd never says
    // no to a plain put; a member that cannot serve is not a "no".
    for w in &failed {
        let e = w.result.as_ref().unwrap_err();
        assert!(!e.message().is_empty(), "value {}: empty message", w.value);
        assert!(!e.is_refusal(), "value {}: a put refused: {e:?}", w.value);
    }
    assert!(
        longest <= budget,
        "a write blocked {longest:?} (budget {budget:?})"
    );
    let gap = first_ok_after_kill.expect("no write succeeded after the leader kill");
    assert!(
        gap < Duration::from_secs(10),
        "writes resumed only after {gap:?}"
    );
    assert!(
        ok.iter()
            .any(|&v| writes[v as usize - 1].start > restarted_at),
        "no Ok write after the restart"
    );

    // Every acknowledged value is in the key's history, in order; the
    // history holds nothing that was not attempted; the key's value now is
    // the last acknowledged one or a later attempted one.
    let ep = live_endpoint(&cl);
    let (now, mod_rev) = raw_get(&ep, key.as_bytes()).expect("the key exists");
    let now: u64 = String::from_utf8(now).unwrap().parse().unwrap();
    let via_lib: u64 = String::from_utf8(c.get(key).unwrap().unwrap())
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(now, via_lib, "the library reads another value than etcd");
    let last_ok = *ok.last().unwrap();
    let failed_values: std::collections::HashSet<u64> = failed.iter().map(|w| w.value).collect();
    assert!(
        now == last_ok || (now > last_ok && failed_values.contains(&now)),
        "the key holds {now}; last acknowledged {last_ok}"
    );
    let history: Vec<u64> = key_history(&ep, key.as_bytes(), from, mod_rev)
        .into_iter()
        .map(|(_, v)| {
            String::from_utf8(v.expect("no delete"))
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(
        history.windows(2).all(|w| w[0] <= w[1]),
        "history goes backwards"
    );
    let landed: std::collections::HashSet<u64> = history.iter().copied().collect();
    for v in &ok {
        assert!(
            landed.contains(v),
            "acknowledged value {v} is not in the history: lost"
        );
    }
    for v in &landed {
        assert!(*v as usize <= writes.len(), "{v} was never written");
    }
    let unknown_landed = failed_values.intersection(&landed).count();
    let repeats = history.len() - landed.len();
    println!(
        "writer: history {} changes; {unknown_landed} failed writes landed anyway; {repeats} repeated puts",
        history.len()
    );
}

#[test]
fn watcher_sees_every_value_once_through_member_kill() {
    const N: usize = 200;
    let cl = Cluster::start(3);
    // The watcher's member is a follower, so that the writer (on the other
    // two) is not disturbed by an election and writes each value once.
    let victim = cl.follower_index();
    let watcher = session(&cl, &cl.order_with_first(victim));
    let survivors: Vec<usize> = (0..3).filter(|&i| i != victim).collect();
    let writer = session(&cl, &survivors);
    let prefix = "/cluster/watch";
    let from = revision(&cl.member_endpoint(survivors[0])) + 1;

    let seen = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel::<Result<(u64, Instant), Error>>();
    let seen2 = seen.clone();
    // Not scoped: if the library hangs, the test fails instead of hanging.
    std::thread::spawn(move || {
        let mut next = from;
        for _ in 0..N {
            match watcher.watch(prefix, Some(next)) {
                Ok(e) => {
                    next = e.revision + 1;
                    let v = String::from_utf8(e.value.unwrap_or_default())
                        .unwrap()
                        .parse()
                        .unwrap_or(u64::MAX);
                    seen2.fetch_add(1, Ordering::SeqCst);
                    if tx.send(Ok((v, Instant::now()))).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        }
    });

    let mut acked = vec![None; N];
    let mut killed_at = None;
    for (i, ack) in acked.iter_mut().enumerate() {
        writer
            .set(format!("{prefix}/k{}", i % 4), i.to_string())
            .unwrap_or_else(|e| panic!("write {i}: {e:?}"));
        *ack = Some(Instant::now());
        std::thread::sleep(Duration::from_millis(5));
        // Mid-way, while the stream is busy: kill the watcher's member.
        if killed_at.is_none() && seen.load(Ordering::SeqCst) >= N / 2 {
            killed_at = Some(Instant::now());
            cl.kill(victim);
        }
    }
    let killed_at = killed_at.expect("the watcher fell behind: never reached half-way");

    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while got.len() < N {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Ok(x)) => got.push(x),
            Ok(Err(e)) => panic!("watch failed after {} events: {}: {e}", got.len(), kind(&e)),
            Err(_) => panic!("watch stalled after {} of {N} events", got.len()),
        }
    }
    let values: Vec<u64> = got.iter().map(|&(v, _)| v).collect();
    let expected: Vec<u64> = (0..N as u64).collect();
    let catch_up = got
        .iter()
        .find(|&&(_, t)| t >= killed_at)
        .map(|&(_, t)| t - killed_at);
    // The first value written after the kill: from its ack to its delivery
    // (this one cannot have been in the dead member's stream).
    let first_after = (0..N).find(|&i| acked[i].unwrap() > killed_at);
    let lag_after = first_after.map(|i| got[i].1.saturating_duration_since(acked[i].unwrap()));
    let at_kill = got.iter().filter(|&&(_, t)| t < killed_at).count();
    println!(
        "watch: member m{victim} killed after {at_kill} events; catch-up (kill -> next event): {}; \
         first value written after the kill ({:?}) delivered {} after its ack",
        catch_up.map_or("none".into(), ms),
        first_after,
        lag_after.map_or("n/a".into(), ms)
    );
    assert_eq!(values, expected, "values missing, repeated or out of order");
    let catch_up = catch_up.expect("no event after the kill");
    assert!(
        catch_up < Duration::from_secs(5),
        "catch-up took {catch_up:?}"
    );
}

/// A holder renews a ttl-6 lock every ttl/3 through a kill of the leader
/// (listed first in its session) and must keep it; a waiter whose session
/// lists the killed member first joins after the new leader is elected
/// and gets the lock soon after the holder unlocks.
#[test]
fn lock_held_through_leader_kill_and_handed_over() {
    lock_through_leader_kill(false);
}

/// As above, but the waiter is already waiting on the leader when it is
/// killed: its cut lock wait must carry on on another member, and it must
/// neither get the lock while the holder has it nor give up.
#[test]
fn lock_wait_survives_leader_kill() {
    lock_through_leader_kill(true);
}

fn lock_through_leader_kill(waiter_before_kill: bool) {
    const TTL: u32 = 6;
    const RENEWALS: u32 = 6;
    let cl = Cluster::start(3);
    // The leader holds the leases: killing it is the hard case for a lock.
    let victim = cl.wait_leader(Duration::from_secs(5));
    let order = cl.order_with_first(victim);
    let holder = session(&cl, &order);
    let key = "/cluster/lock";
    let idx = holder.lock(key, TTL).unwrap();
    let locked_at = Instant::now();

    let (tx, rx) = mpsc::channel();
    let start_waiter = || {
        let waiter = session(&cl, &order);
        let tx = tx.clone();
        std::thread::spawn(move || {
            let r = waiter.lock(key, TTL);
            let got_at = Instant::now();
            if let Ok(i) = &r {
                let _ = waiter.unlock(key, i);
            }
            let _ = tx.send((r, got_at));
        });
        Instant::now()
    };
    let mut waiter_started = None;
    if waiter_before_kill {
        // Its lock wait stream is on the member that gets killed.
        waiter_started = Some(start_waiter());
    }

    // Renew every ttl/3; kill the leader just before the second renewal.
    let period = Duration::from_millis(u64::from(TTL) * 1000 / 3);
    let mut renewals: Vec<(Duration, Duration, Result<(), Error>)> = Vec::new();
    let mut killed_at = None;
    let mut early = None;
    for n in 1..=RENEWALS {
        let due = locked_at + period * n;
        if n == 2 {
            std::thread::sleep(
                (due - Duration::from_millis(100)).saturating_duration_since(Instant::now()),
            );
            killed_at = Some(Instant::now());
            cl.kill(victim);
        }
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let start = Instant::now();
        let r = holder.renew(key, TTL, &idx);
        renewals.push((start - locked_at, start.elapsed(), r));
        if n == 3 && waiter_started.is_none() {
            let leader = cl.wait_leader(Duration::from_secs(10));
            assert_ne!(leader, victim);
            waiter_started = Some(start_waiter());
        }
        if early.is_none() {
            early = rx.try_recv().ok();
        }
    }
    let killed_at = killed_at.unwrap();
    println!(
        "lock: leader m{victim} killed at {}; waiter started at {}",
        ms(killed_at - locked_at),
        ms(waiter_started.unwrap() - locked_at)
    );
    for (at, took, r) in &renewals {
        println!(
            "lock: renewal at {} took {}: {}",
            ms(*at),
            ms(*took),
            match r {
                Ok(()) => "Ok".to_string(),
                Err(e) => format!("{}: {e}", kind(e)),
            }
        );
    }
    // The waiter must still be waiting: neither holding the lock (two
    // holders) nor given up (etcd never said no; two members were alive).
    if let Some((r, at)) = early {
        panic!(
            "the waiter's lock call returned while the holder held the lock, {} after the \
             holder took it ({} after the kill): {}",
            ms(at - locked_at),
            ms(at.saturating_duration_since(killed_at)),
            match &r {
                Ok(i) => format!("Ok({i}): two holders"),
                Err(e) => format!("{}: {e}", kind(e)),
            }
        );
    }

    // The renewals: never Refused (the lock was never lost); at most one
    // failure, Unavailable (no server answered), followed only by Ok ones.
    for (at, took, r) in &renewals {
        assert!(*took <= call_budget(), "renewal at {at:?} blocked {took:?}");
        if let Err(e) = r {
            assert!(!e.message().is_empty());
            assert!(
                e.kind() == ErrorKind::Unavailable,
                "renewal at {at:?}: lock reported lost or wrong error: {e:?}"
            );
        }
    }
    let failures: Vec<usize> = (0..renewals.len())
        .filter(|&i| renewals[i].2.is_err())
        .collect();
    assert!(failures.len() <= 1, "{} renewals failed", failures.len());
    if let Some(&f) = failures.first() {
        assert!(f + 1 < renewals.len(), "the last renewal failed");
    }

    // Still ours: unlock checks the lock key is there with our lease.
    // The waiter may get the lock before unlock returns (unlock deletes the
    // lock key, then revokes the lease), not before it starts.
    let unlocking_at = Instant::now();
    let (took, r) = timed(|| holder.unlock(key, &idx));
    r.unwrap_or_else(|e| panic!("unlock after the kill: {}: {e}", kind(&e)));
    let (r, got_at) = rx
        .recv_timeout(Duration::from_secs(15))
        .expect("the waiter never got the lock");
    let widx = r.unwrap_or_else(|e| panic!("the waiter failed: {}: {e}", kind(&e)));
    assert_ne!(widx, idx);
    assert!(
        got_at >= unlocking_at,
        "the waiter got the lock before it was released"
    );
    let handover = got_at - unlocking_at;
    println!(
        "lock: unlock took {}; hand-over to the waiter (from the start of unlock): {}",
        ms(took),
        ms(handover)
    );
    assert!(
        handover < Duration::from_secs(3),
        "hand-over took {handover:?}"
    );
}

#[test]
fn quorum_loss_fails_fast_and_recovers() {
    let cl = Cluster::start(3);
    let c = session(&cl, &[0, 1, 2]);
    let key = "/cluster/quorum";
    let doomed = "/cluster/quorum-delete";
    c.set(key, "before").unwrap();
    c.set(doomed, "x").unwrap();
    c.leader().unwrap();
    // Kill two; the survivor is last in the session's list.
    cl.kill(0);
    cl.kill(1);

    let mut results: Vec<(&str, Duration, Result<(), Error>)> = Vec::new();
    let (d, r) = timed(|| c.set(key, "during"));
    results.push(("set", d, r));
    let (d, r) = timed(|| c.get(key).map(|_| ()));
    results.push(("get", d, r));
    let (d, r) = timed(|| c.delete(doomed));
    results.push(("delete", d, r));
    let (d, r) = timed(|| c.leader().map(|_| ()));
    results.push(("leader", d, r));
    for (op, d, r) in &results {
        println!(
            "quorum lost: {op} took {}: {}",
            ms(*d),
            match r {
                Ok(()) => "Ok".to_string(),
                Err(e) => format!("{}: {e}", kind(e)),
            }
        );
    }
    for (op, d, r) in &results {
        let e = r
            .as_ref()
            .err()
            .unwrap_or_else(|| panic!("{op} succeeded without quorum"));
        assert!(!e.message().is_empty(), "{op}: empty message");
        assert!(!e.is_refusal(), "{op}: etcd did not say no, yet {e:?}");
        assert!(*d <= call_budget(), "{op} took {d:?}");
    }

    cl.restart(0);
    cl.restart(1);
    let (healthy_in, ()) = timed(|| cl.wait_healthy(Duration::from_secs(20)));
    let (d, r) = timed(|| c.set(key, "after"));
    r.unwrap_or_else(|e| panic!("set after recovery: {}: {e}", kind(&e)));
    assert_eq!(c.get(key).unwrap().as_deref(), Some(&b"after"[..]));
    println!(
        "quorum back: healthy {} after the restarts; first set took {}",
        ms(healthy_in),
        ms(d)
    );
}

/// 100 sequential gets: how long they take.
fn hundred_gets(c: &Client, key: &str) -> Duration {
    let t = Instant::now();
    for _ in 0..100 {
        assert_eq!(c.get(key).unwrap().as_deref(), Some(&b"v"[..]));
    }
    t.elapsed()
}

/// How a member is taken out for the preferred-server tests.
#[derive(Clone, Copy, PartialEq)]
enum Outage {
    /// Killed: its port refuses connections at once.
    Killed,
    /// Stopped with SIGSTOP: it accepts connections and never answers, so
    /// retrying it first on every call would cost a request time-out each
    /// time.
    Frozen,
}

/// A session listing the downed member first pays for it once, then keeps
/// to a member that answers.
fn preferred_server_moves_off(outage: Outage) {
    let cl = Cluster::start(3);
    let victim = cl.follower_index();
    let others: Vec<usize> = (0..3).filter(|&i| i != victim).collect();
    let healthy = session(&cl, &others);
    let key = "/cluster/preferred";
    healthy.set(key, "v").unwrap();
    match outage {
        Outage::Killed => cl.kill(victim),
        Outage::Frozen => cl.pause(victim),
    }

    let c = session(&cl, &cl.order_with_first(victim));
    let (first, r) = timed(|| c.get(key));
    assert_eq!(r.unwrap().as_deref(), Some(&b"v"[..]));
    let down_first = hundred_gets(&c, key);
    let baseline = hundred_gets(&healthy, key);
    let how = if outage == Outage::Killed {
        "killed"
    } else {
        "frozen"
    };
    println!(
        "preferred ({how} m{victim} listed first): first call {}, 100 gets {}; healthy list: 100 gets {}",
        ms(first),
        ms(down_first),
        ms(baseline)
    );
    assert!(first <= call_budget(), "first call took {first:?}");
    assert!(
        down_first < Duration::from_secs(3),
        "100 gets took {down_first:?}"
    );
    if outage == Outage::Frozen {
        cl.resume(victim);
    }
}

#[test]
fn preferred_server_moves_off_a_killed_member() {
    preferred_server_moves_off(Outage::Killed);
}

#[test]
fn preferred_server_moves_off_a_frozen_member() {
    preferred_server_moves_off(Outage::Frozen);
}
