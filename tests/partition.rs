//! A member cut off from its cluster while the client still reaches it
//! (`common::netns`: namespaces and iptables, so these tests need root;
//! without it they say so and pass).
//!
//! Sessions use the default time-outs (1 s connect, 5 s request), as a
//! program that sets nothing would. Correctness is asserted exactly
//! (every change once, in order; a lock never held twice); times loosely
//! (about three times the targets, so a slow shared machine does not
//! fail them), and printed: run with
//! `cargo test --release --test partition -- --nocapture` for the figures.

mod common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::netns::NetCluster;
use common::{ms, timed};
use etcdapi::{Client, Config, ErrorKind, ProtocolKind};

/// A session on `order` with the default settings, speaking `p`.
fn session(cl: &NetCluster, order: &[usize], p: ProtocolKind) -> Client {
    let servers = etcdapi::parse_server_list(&cl.endpoints_in_order(order)).unwrap();
    let config = Config {
        protocol: p,
        ..Config::default()
    };
    Client::new(servers, config).unwrap()
}

fn text(v: Option<Vec<u8>>) -> Option<String> {
    v.map(|v| String::from_utf8(v).unwrap())
}

/// The session order `[first, the others in reverse]`: a list no other
/// session of the test uses, so it shares no state with them.
fn reversed_tail(cl: &NetCluster, first: usize) -> Vec<usize> {
    let mut order = cl.order_with_first(first);
    order[1..].reverse();
    order
}

/// What a lock call made on a thread of its own gave: when it returned,
/// and the session with the lock's index.
type Locked = (Instant, etcdapi::Result<(Client, String)>);

/// Takes the lock `key` through `c` on a thread of its own.
fn lock_in_thread(c: Client, key: &'static str, ttl: u32) -> mpsc::Receiver<Locked> {
    let (got, acquired) = mpsc::channel();
    std::thread::spawn(move || {
        let r = c.lock(key, ttl);
        let _ = got.send((Instant::now(), r.map(|i| (c, i))));
    });
    acquired
}

#[derive(Clone, Copy, Debug)]
enum Victim {
    Follower,
    Leader,
}

fn victim(cl: &NetCluster, v: Victim) -> usize {
    match v {
        Victim::Follower => cl.follower_index(),
        Victim::Leader => cl.wait_leader(Duration::from_secs(10)),
    }
}

// ---------------------------------------------------------------- writes and reads

/// Writes and linearizable reads through sessions that prefer the
/// isolated member move to a healthy one within 2 s (asserted: 6 s).
fn writes_and_reads(p: ProtocolKind, v: Victim) {
    let Some(cl) = NetCluster::start() else {
        return;
    };
    let iso = victim(&cl, v);
    let tag = format!("{p:?} {v:?} m{iso}");
    let key = "/part/wr";
    let w = session(&cl, &cl.order_with_first(iso), p);
    w.set(key, "before").unwrap();
    assert_eq!(text(w.get(key).unwrap()).as_deref(), Some("before"));

    cl.isolate(iso);
    // Cut off from its cluster, not from us: it still answers a status.
    assert!(
        cl.status(iso).is_some(),
        "{tag}: the client no longer reaches the isolated member"
    );
    let (first_put, r) = timed(|| w.set(key, "after-0"));
    r.unwrap_or_else(|e| panic!("{tag}: first put after the cut: {e}"));
    let mut slowest_put = Duration::ZERO;
    for i in 1..20 {
        let (d, r) = timed(|| w.set(key, format!("after-{i}")));
        r.unwrap_or_else(|e| panic!("{tag}: put {i} after the cut: {e}"));
        slowest_put = slowest_put.max(d);
    }

    // A session that has not learned anything yet, preferring the
    // isolated member: its first read must leave it too.
    let r = session(&cl, &reversed_tail(&cl, iso), p);
    let (first_get, got) = timed(|| r.get(key));
    let got = got.unwrap_or_else(|e| panic!("{tag}: first get after the cut: {e}"));
    assert_eq!(text(got).as_deref(), Some("after-19"), "{tag}: stale read");
    let mut slowest_get = Duration::ZERO;
    for _ in 0..20 {
        let (d, got) = timed(|| r.get(key));
        assert_eq!(text(got.unwrap()).as_deref(), Some("after-19"));
        slowest_get = slowest_get.max(d);
    }
    println!(
        "partition {tag}: first put {}, later puts at most {}; first get {}, later gets at most {}",
        ms(first_put),
        ms(slowest_put),
        ms(first_get),
        ms(slowest_get)
    );
    let bound = Duration::from_secs(6);
    assert!(first_put < bound, "{tag}: first put took {}", ms(first_put));
    assert!(first_get < bound, "{tag}: first get took {}", ms(first_get));
    assert!(
        slowest_put < bound && slowest_get < bound,
        "{tag}: a later call stalled"
    );
}

#[test]
fn v3_writes_and_reads_leave_isolated_follower() {
    writes_and_reads(ProtocolKind::V3, Victim::Follower);
}

#[test]
fn v3_writes_and_reads_leave_isolated_leader() {
    writes_and_reads(ProtocolKind::V3, Victim::Leader);
}

#[test]
fn v2_writes_and_reads_leave_isolated_follower() {
    writes_and_reads(ProtocolKind::V2, Victim::Follower);
}

// ---------------------------------------------------------------- watches

/// How a watcher reads: `Client::watch` on the caller's thread, or
/// `watch_events` (a reader thread of its own) with a time-out.
#[derive(Clone, Copy, Debug)]
enum Reading {
    Direct,
    Threaded,
}

const WRITES: usize = 80;
const WRITE_EVERY: Duration = Duration::from_millis(100);

/// Watches `prefix` through `c` from `from` until the value `last`
/// arrives: each value seen, with when it arrived.
fn watch_until(c: &Client, reading: Reading, prefix: &str, last: &str) -> Vec<(String, Instant)> {
    let mut seen = Vec::new();
    // watch_events from "now" that times out has no revision to go on
    // from (a call without one opens a new stream): start at a known one.
    let mut from = match reading {
        Reading::Direct => None,
        Reading::Threaded => Some(c.get_kv(prefix).expect("revision").1 + 1),
    };
    loop {
        let batch: Vec<(String, i64)> = match reading {
            Reading::Direct => {
                let ev = c.watch(prefix, from).expect("watch");
                vec![(text(ev.value).unwrap_or_default(), ev.revision)]
            }
            Reading::Threaded => match c.watch_events(prefix, from, Some(Duration::from_secs(1))) {
                Ok(ch) => ch
                    .events
                    .into_iter()
                    .map(|e| (text(Some(e.kv.value)).unwrap(), ch.revision))
                    .collect(),
                Err(e) if e.kind() == ErrorKind::TimedOut => continue,
                Err(e) => panic!("watch_events: {e}"),
            },
        };
        for (value, revision) in batch {
            from = Some(revision + 1);
            let done = value == last;
            seen.push((value, Instant::now()));
            if done {
                return seen;
            }
        }
    }
}

/// A watch open on the isolated member moves to a healthy one within 5 s
/// of the cut (asserted: 15 s) and delivers every later change exactly
/// once, in order.
fn watch_moves(p: ProtocolKind, readings: &[Reading]) {
    let Some(cl) = NetCluster::start() else {
        return;
    };
    let iso = cl.follower_index();
    let healthy = (iso + 1) % 3;
    let prefix = "/part/watch";
    let last = format!("v{}", WRITES - 1);
    let (done, results) = mpsc::channel();
    let orders = [cl.order_with_first(iso), reversed_tail(&cl, iso)];
    for (n, &reading) in readings.iter().enumerate() {
        let c = session(&cl, &orders[n], p);
        let (done, last) = (done.clone(), last.clone());
        std::thread::spawn(move || {
            let seen = watch_until(&c, reading, prefix, &last);
            let _ = done.send((reading, seen));
        });
    }
    // Let the watches open on the member about to be cut.
    std::thread::sleep(Duration::from_millis(1500));
    let writer = session(&cl, &cl.order_with_first(healthy), p);
    let mut written = Vec::new();
    let mut cut = None;
    for i in 0..WRITES {
        if i == 15 {
            cl.isolate(iso);
            cut = Some(Instant::now());
        }
        let t = Instant::now();
        writer
            .set(format!("{prefix}/k"), format!("v{i}"))
            .unwrap_or_else(|e| panic!("write {i}: {e}"));
        written.push(t);
        std::thread::sleep(WRITE_EVERY);
    }
    let cut = cut.unwrap();
    let wrote_all = Instant::now();
    for _ in readings {
        let (reading, seen) = results
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                panic!("{p:?}: a watch on the isolated member never delivered v{} (30 s after the last write)", WRITES - 1)
            });
        let values: Vec<&str> = seen.iter().map(|(v, _)| v.as_str()).collect();
        // The first value seen is one written before the cut (the watch
        // opened before the writes); from there, every value once, in order.
        let first: usize = values[0][1..].parse().unwrap();
        assert!(
            first < 15,
            "{p:?} {reading:?}: first value seen v{first} (after the cut)"
        );
        let want: Vec<String> = (first..WRITES).map(|i| format!("v{i}")).collect();
        assert_eq!(
            values, want,
            "{p:?} {reading:?}: not every change once, in order"
        );
        // The first change written after the cut: when it arrived.
        let after = seen.iter().find(|(v, _)| v == "v15").unwrap().1;
        let moved = after.duration_since(cut);
        let lag_before = seen
            .iter()
            .filter(|(v, _)| v[1..].parse::<usize>().unwrap() < 15)
            .map(|(v, at)| at.duration_since(written[v[1..].parse::<usize>().unwrap()]))
            .max()
            .unwrap_or_default();
        let tail = seen.last().unwrap().1.saturating_duration_since(wrote_all);
        println!(
            "partition {p:?} watch ({reading:?}) on isolated m{iso}: first change after the cut arrived {} after the cut \
             (before the cut: lag at most {}); {} changes, each once, in order; last one {} after the last write",
            ms(moved),
            ms(lag_before),
            values.len(),
            ms(tail)
        );
        assert!(
            moved < Duration::from_secs(15),
            "{p:?} {reading:?}: the watch took {} to move",
            ms(moved)
        );
    }
}

#[test]
fn v3_watch_leaves_isolated_member() {
    watch_moves(ProtocolKind::V3, &[Reading::Direct, Reading::Threaded]);
}

#[test]
fn v2_watch_leaves_isolated_member() {
    watch_moves(ProtocolKind::V2, &[Reading::Direct]);
}

// ---------------------------------------------------------------- locks

/// A lock holder whose keep-alives went to the member that is then cut
/// off keeps its lock: every renew succeeds, nobody else gets the lock
/// until it is released, and then the waiter does.
fn holder_keeps_lock(p: ProtocolKind) {
    let Some(cl) = NetCluster::start() else {
        return;
    };
    let iso = cl.follower_index();
    let healthy = (iso + 1) % 3;
    let key = "/part/lock-held";
    let ttl = 5;
    let h = session(&cl, &cl.order_with_first(iso), p);
    let idx = h
        .lock(key, ttl)
        .expect("lock on the member about to be cut");
    h.renew(key, ttl, &idx).expect("renew before the cut");

    cl.isolate(iso);
    let cut = Instant::now();
    let contender = session(&cl, &cl.order_with_first(healthy), p);
    let acquired = lock_in_thread(contender, key, ttl);
    let mut renews = Vec::new();
    while cut.elapsed() < Duration::from_secs(3 * u64::from(ttl)) {
        std::thread::sleep(Duration::from_secs(1));
        let (d, r) = timed(|| h.renew(key, ttl, &idx));
        r.unwrap_or_else(|e| {
            panic!(
                "{p:?}: renew {} s after the cut: {e}",
                cut.elapsed().as_secs()
            )
        });
        renews.push(d);
        assert!(
            acquired.try_recv().is_err(),
            "{p:?}: the contender got the lock while the holder still held it"
        );
    }
    let (d_unlock, r) = timed(|| h.unlock(key, &idx));
    r.expect("unlock after the cut");
    let released = Instant::now();
    let (at, r) = acquired
        .recv_timeout(Duration::from_secs(20))
        .expect("the contender never got the released lock");
    let (contender, cidx) = r.expect("contender's lock");
    contender.unlock(key, &cidx).unwrap();
    println!(
        "partition {p:?} lock holder on isolated m{iso}: {} renews over {} s, each ok, slowest {} (first {}); \
         unlock {}; the contender got the lock {} after the release",
        renews.len(),
        3 * ttl,
        ms(renews.iter().copied().max().unwrap()),
        ms(renews[0]),
        ms(d_unlock),
        ms(at.saturating_duration_since(released))
    );
}

#[test]
fn v3_lock_holder_on_isolated_member_keeps_it() {
    holder_keeps_lock(ProtocolKind::V3);
}

#[test]
fn v2_lock_holder_on_isolated_member_keeps_it() {
    holder_keeps_lock(ProtocolKind::V2);
}

/// A lock waiter whose wait is on the member then cut off gets the lock
/// once the holder releases it; with `after_heal`, it also still holds it
/// for two TTLs after the cut heals, and a third session waits for it.
fn waiter_gets_lock(p: ProtocolKind, after_heal: bool) {
    let Some(cl) = NetCluster::start() else {
        return;
    };
    let iso = cl.follower_index();
    let healthy = (iso + 1) % 3;
    let key = "/part/lock-wait";
    let ttl = 5;
    let holder = session(&cl, &cl.order_with_first(healthy), p);
    let idx = holder.lock(key, 10).unwrap();
    let w = session(&cl, &cl.order_with_first(iso), p);
    let acquired = lock_in_thread(w, key, ttl);
    // The waiter's wait is now open on the member about to be cut.
    std::thread::sleep(Duration::from_millis(1500));
    cl.isolate(iso);
    std::thread::sleep(Duration::from_secs(6));
    assert!(
        acquired.try_recv().is_err(),
        "{p:?}: the waiter got a held lock"
    );
    holder
        .renew(key, 10, &idx)
        .expect("the holder still holds it");
    holder.unlock(key, &idx).unwrap();
    let released = Instant::now();
    let (at, r) = acquired
        .recv_timeout(Duration::from_secs(30))
        .expect("the waiter never got the released lock");
    let (w, widx) = r.unwrap_or_else(|e| panic!("{p:?}: the waiter's lock failed: {e}"));
    let waited = at.saturating_duration_since(released);
    println!(
        "partition {p:?} lock waiter on isolated m{iso}: got the lock {} after the holder released it",
        ms(waited)
    );
    assert!(
        waited < Duration::from_secs(15),
        "{p:?}: the waiter took {}",
        ms(waited)
    );
    if !after_heal {
        return w.unlock(key, &widx).unwrap();
    }

    // Healed, the member that held the first wait must not take the lock
    // from the waiter (say, by cleaning up after the abandoned wait).
    cl.heal();
    let healed = Instant::now();
    while healed.elapsed() < Duration::from_secs(2 * u64::from(ttl)) {
        std::thread::sleep(Duration::from_secs(1));
        if let Err(e) = w.renew(key, ttl, &widx) {
            let history = cl.history(healthy, b"/_locks/").join("\n  ");
            let lease = match p {
                ProtocolKind::V3 => format!(
                    "{:?}",
                    w.lease_ttl(u64::from_str_radix(&widx, 16).unwrap() as i64)
                ),
                ProtocolKind::V2 => "(v2: no lease)".into(),
            };
            panic!(
                "{p:?}: the waiter (index {widx}) lost the lock {} s after the heal: {e}\n\
                 its lease: {lease}\nchanges below /_locks/:\n  {history}",
                healed.elapsed().as_secs()
            );
        }
    }
    let other = session(&cl, &reversed_tail(&cl, healthy), p);
    let rx = lock_in_thread(other, key, ttl);
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        rx.try_recv().is_err(),
        "{p:?}: a third session got the waiter's lock"
    );
    w.unlock(key, &widx).unwrap();
    let (other, oidx) = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("third session never got the lock")
        .1
        .unwrap();
    other.unlock(key, &oidx).unwrap();
    println!(
        "partition {p:?} lock waiter on isolated m{iso}: still held {} s after the heal",
        2 * ttl
    );
}

#[test]
fn v3_lock_waiter_on_isolated_member_gets_it() {
    waiter_gets_lock(ProtocolKind::V3, false);
}

/// etcd's lock service on the isolated member, whose wait we gave up,
/// deletes its waiter key (`Mutex.Lock` cleans up when its context ends);
/// that delete waits for a leader and commits after the heal. Were the
/// wait repeated on a healthy member with the same lease, the key it
/// deletes would be the one that holds our lock (renew would then fail
/// "not held" and another session could take the lock): the library
/// repeats it with a new lease.
#[test]
fn v3_lock_waiter_on_isolated_member_keeps_it_after_heal() {
    waiter_gets_lock(ProtocolKind::V3, true);
}

#[test]
fn v2_lock_waiter_on_isolated_member_keeps_it_after_heal() {
    waiter_gets_lock(ProtocolKind::V2, true);
}

// ---------------------------------------------------------------- cost

/// The sum of the samples of metric `name` whose labels contain `labels`.
fn metric(text: &str, name: &str, labels: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// What a healthy idle watch costs: the requests its member serves over
/// 30 s with nothing changing (the liveness questions), per minute.
#[test]
fn idle_watch_cost_on_a_healthy_cluster() {
    let Some(cl) = NetCluster::start() else {
        return;
    };
    const IDLE: Duration = Duration::from_secs(30);
    let prefix = "/part/idle";
    let (done, finished) = mpsc::channel();
    for (k, reading) in [(0, Reading::Direct), (1, Reading::Threaded)] {
        let c = session(&cl, &cl.order_with_first(k), ProtocolKind::V3);
        let done = done.clone();
        std::thread::spawn(move || {
            let seen = watch_until(&c, reading, prefix, "wake");
            let _ = done.send(seen);
        });
    }
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        cl.metrics(0).contains("grpc_server_handled_total{"),
        "no gRPC request counts in etcd's /metrics"
    );
    let ranges = |k: usize| {
        metric(
            &cl.metrics(k),
            "grpc_server_handled_total",
            "grpc_method=\"Range\"",
        )
    };
    let all = |k: usize| metric(&cl.metrics(k), "grpc_server_started_total", "");
    let before: Vec<(f64, f64)> = (0..3).map(|k| (ranges(k), all(k))).collect();
    let t = Instant::now();
    std::thread::sleep(IDLE);
    let after: Vec<(f64, f64)> = (0..3).map(|k| (ranges(k), all(k))).collect();
    let minutes = t.elapsed().as_secs_f64() / 60.0;
    let per_min = |k: usize| {
        (
            (after[k].0 - before[k].0) / minutes,
            (after[k].1 - before[k].1) / minutes,
        )
    };
    let (direct, direct_all) = per_min(0);
    let (threaded, threaded_all) = per_min(1);
    let (none, none_all) = per_min(2);
    println!(
        "partition idle v3 watch cost: Range requests per minute on the member of a direct watch {direct:.1} \
         (all gRPC calls {direct_all:.1}), of a threaded watch {threaded:.1} ({threaded_all:.1}), \
         on a member without a watch {none:.1} ({none_all:.1})"
    );
    Client::new(
        etcdapi::parse_server_list(&cl.member_endpoint(2)).unwrap(),
        Config::default(),
    )
    .unwrap()
    .set(format!("{prefix}/k"), "wake")
    .unwrap();
    for _ in 0..2 {
        finished
            .recv_timeout(Duration::from_secs(15))
            .expect("idle watches woke");
    }
    // One question per 3 s of silence is 20 a minute; allow for slack.
    assert!(
        direct <= 30.0 && threaded <= 30.0,
        "an idle watch asks too often"
    );
}
