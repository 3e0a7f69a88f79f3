//! Linearizability under faults: several clients, each a thread with a
//! session of its own on a three-member cluster, run a random mix of
//! `get_kv`, `put`, `put_if`, `delete_if`, `set_with(prev)` and a
//! two-key `txn` on a few keys, with values from a small set (so that
//! clients write the same values), while a nemesis kills, freezes or
//! cuts off a member. Every call's invocation, completion and outcome
//! (ok, refused, unknown) is recorded, and each history is checked key
//! by key against a model of an etcd key (`common::linearizable`; a
//! transaction is one call on each of its keys). A watch opened before
//! the run must deliver exactly the key history read afterwards, every
//! acked write in it; each transaction must agree with that history
//! (both puts at its revision, or what its gets read).
//!
//! One test per nemesis; each runs `ETCDAPI_TORTURE_HISTORIES` histories
//! (default 2) of about `ETCDAPI_TORTURE_OPS` calls (default 300) and
//! prints one `TORTURE` line (nemesis, histories, operations, unknown
//! outcomes, violations, too hard). `make torture` runs long ones. Also:
//! `ETCDAPI_TORTURE_CLIENTS` (5), `ETCDAPI_TORTURE_KEYS` (4),
//! `ETCDAPI_TORTURE_SEED` (default: from the clock; printed).
//!
//! The partition tests (names holding `isolated`) need root and network
//! namespaces (`common::netns`); without them they print SKIP and pass.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::cluster::{prefix_history, revision, Cluster};
use common::linearizable::{
    check, check_txns, check_watch, Call, Change, Kv, Op, Outcome, Ret, Verdict, DEFAULT_BUDGET,
};
use common::netns::NetCluster;
use etcdapi::{Client, Compare, CompareOp, Config, ErrorKind, KeyValue, OpResult};

/// One test at a time in this file (plain clusters and namespace
/// clusters have locks of their own).
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// The small value set: different clients write the same values.
const VALUES: [&str; 3] = ["0", "1", "2"];

/// The six orders of three members: each session a list of its own, so
/// no two share the library's per-process state.
const ORDERS: [[usize; 3]; 6] = [
    [0, 1, 2],
    [1, 2, 0],
    [2, 0, 1],
    [0, 2, 1],
    [2, 1, 0],
    [1, 0, 2],
];

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v}: expected a number")),
        _ => default,
    }
}

#[derive(Clone, Copy, Debug)]
struct Settings {
    histories: u64,
    ops: u64,
    clients: usize,
    keys: usize,
    seed: u64,
}

fn settings() -> Settings {
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    Settings {
        histories: env_u64("ETCDAPI_TORTURE_HISTORIES", 2),
        ops: env_u64("ETCDAPI_TORTURE_OPS", 300).max(10),
        clients: env_u64("ETCDAPI_TORTURE_CLIENTS", 5).clamp(2, 6) as usize,
        keys: env_u64("ETCDAPI_TORTURE_KEYS", 4).clamp(1, 10) as usize,
        seed: env_u64("ETCDAPI_TORTURE_SEED", clock % 1_000_000_000),
    }
}

/// SplitMix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.below(hi - lo + 1))
    }
}

// ---------------------------------------------------------------- the cluster under test

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// No fault (the planted-violation test's baseline).
    None,
    KillLeader,
    KillFollower,
    PauseLeader,
    PauseFollower,
    /// A member (the leader, then a follower, in turn) cut off from the
    /// other two; the client still reaches it.
    IsolateMember,
    /// The client cut off from the leader; the members still reach each other.
    CutClientFromLeader,
}

enum Target<'a> {
    Plain(&'a Cluster),
    Net(&'a NetCluster),
}

impl Target<'_> {
    fn endpoints_in_order(&self, order: &[usize]) -> String {
        match self {
            Target::Plain(c) => c.endpoints_in_order(order),
            Target::Net(c) => c.endpoints_in_order(order),
        }
    }
    fn member_endpoint(&self, k: usize) -> String {
        match self {
            Target::Plain(c) => c.member_endpoint(k),
            Target::Net(c) => c.member_endpoint(k),
        }
    }
    fn leader(&self) -> usize {
        match self {
            Target::Plain(c) => c.wait_leader(Duration::from_secs(20)),
            Target::Net(c) => c.wait_leader(Duration::from_secs(20)),
        }
    }
    fn follower(&self) -> usize {
        match self {
            Target::Plain(c) => c.follower_index(),
            Target::Net(c) => c.follower_index(),
        }
    }
    fn wait_healthy(&self) {
        match self {
            Target::Plain(c) => c.wait_healthy(Duration::from_secs(30)),
            Target::Net(c) => c.wait_healthy(Duration::from_secs(30)),
        }
    }
    fn plain(&self) -> &Cluster {
        match self {
            Target::Plain(c) => c,
            Target::Net(_) => panic!("this nemesis needs a plain cluster"),
        }
    }
    fn net(&self) -> &NetCluster {
        match self {
            Target::Net(c) => c,
            Target::Plain(_) => panic!("this nemesis needs a namespace cluster"),
        }
    }

    /// A session on `order` with the default settings.
    fn session(&self, order: &[usize]) -> Client {
        let servers = etcdapi::parse_server_list(&self.endpoints_in_order(order)).unwrap();
        Client::new(servers, Config::default()).unwrap()
    }
}

/// Hits the cluster once, heals it, waits until every member is healthy.
/// Returns what it did, for the report.
fn nemesis(t: &Target, fault: Fault, n: u64, rng: &mut Rng) -> String {
    std::thread::sleep(rng.millis(500, 1000));
    let what = match fault {
        Fault::None => {
            std::thread::sleep(rng.millis(1500, 2500));
            "nothing".to_string()
        }
        Fault::KillLeader | Fault::KillFollower => {
            let i = if fault == Fault::KillLeader {
                t.leader()
            } else {
                t.follower()
            };
            let down = rng.millis(1500, 3000);
            t.plain().kill(i);
            std::thread::sleep(down);
            t.plain().restart(i);
            format!("killed m{i} for {} ms", down.as_millis())
        }
        Fault::PauseLeader | Fault::PauseFollower => {
            let i = if fault == Fault::PauseLeader {
                t.leader()
            } else {
                t.follower()
            };
            let down = rng.millis(2000, 4000);
            t.plain().pause(i);
            std::thread::sleep(down);
            t.plain().resume(i);
            format!("paused m{i} for {} ms", down.as_millis())
        }
        Fault::IsolateMember => {
            let (i, role) = if n.is_multiple_of(2) {
                (t.leader(), "leader")
            } else {
                (t.follower(), "follower")
            };
            let down = rng.millis(2500, 4000);
            t.net().isolate(i);
            std::thread::sleep(down);
            t.net().heal();
            format!("isolated m{i} ({role}) for {} ms", down.as_millis())
        }
        Fault::CutClientFromLeader => {
            let i = t.leader();
            let down = rng.millis(2500, 4000);
            t.net().cut_client(i);
            std::thread::sleep(down);
            t.net().heal();
            format!("cut the client from m{i} for {} ms", down.as_millis())
        }
    };
    t.wait_healthy();
    t.leader();
    // Calls go on a while on the healed cluster: their reads see what the
    // calls with unknown outcomes did.
    std::thread::sleep(rng.millis(1000, 1500));
    what
}

// ---------------------------------------------------------------- one client

/// What a client believes of a key: its value and mod revision (`None`:
/// not known), or missing.
type Belief = Option<(Vec<u8>, Option<i64>)>;

fn outcome_of<T>(r: &etcdapi::Result<T>, ok: impl FnOnce(&T) -> Ret) -> Outcome {
    match r {
        Ok(v) => Outcome::Ok(ok(v)),
        Err(e) if e.is_refusal() => Outcome::Refused,
        Err(_) => Outcome::Unknown,
    }
}

fn kv_of(kv: KeyValue) -> Kv {
    Kv {
        value: kv.value,
        version: kv.version,
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
    }
}

/// A call recorded: the index of its key, the call, its outcome.
type Part = (usize, Call, Outcome);

/// One two-key transaction on `keys[a]` and `keys[b]`: if each key's mod
/// revision is `if_revs`' (0: it does not exist, said as "create
/// revision 0" when `by_create`), put the values, else get both keys.
/// Its two parts, one per key (`Call::Txn` with id `txn`), and what the
/// client now believes of the keys (`None`: unchanged).
#[allow(clippy::too_many_arguments)]
fn two_key_txn(
    c: &Client,
    keys: &[String],
    (a, b): (usize, usize),
    values: [&[u8]; 2],
    if_revs: [i64; 2],
    by_create: bool,
    txn: u64,
) -> (Vec<Part>, [Option<Belief>; 2], Option<ErrorKind>) {
    let ks = [keys[a].as_bytes(), keys[b].as_bytes()];
    let compares: Vec<Compare> = (0..2)
        .map(|i| Compare::Key {
            key: ks[i].to_vec(),
            target: if if_revs[i] == 0 && by_create {
                etcdapi::Target::CreateRevision(0)
            } else {
                etcdapi::Target::ModRevision(if_revs[i])
            },
            op: CompareOp::Equal,
        })
        .collect();
    let then: Vec<etcdapi::Op> = (0..2)
        .map(|i| etcdapi::Op::Put {
            key: ks[i].to_vec(),
            value: values[i].to_vec(),
            lease: 0,
        })
        .collect();
    let otherwise: Vec<etcdapi::Op> = (0..2)
        .map(|i| etcdapi::Op::Get {
            key: ks[i].to_vec(),
            prefix: false,
            keys_only: false,
            count_only: false,
        })
        .collect();
    let r = c.txn(&compares, &then, &otherwise);
    let mut beliefs: [Option<Belief>; 2] = [None, None];
    let outcomes: [Outcome; 2] = match &r {
        Ok(t) if t.succeeded => {
            for i in 0..2 {
                beliefs[i] = Some(Some((values[i].to_vec(), Some(t.revision))));
            }
            [0, 1].map(|_| Outcome::Ok(Ret::Revision(t.revision)))
        }
        Ok(t) => {
            assert_eq!(t.results.len(), 2, "a failed transaction's results: {t:?}");
            [0, 1].map(|i| {
                let kv = match &t.results[i] {
                    OpResult::Get { kvs, .. } => {
                        assert!(
                            kvs.len() <= 1 && kvs.iter().all(|kv| kv.key == ks[i]),
                            "a failed transaction's get of {}: {kvs:?}",
                            keys[[a, b][i]]
                        );
                        kvs.first().cloned()
                    }
                    other => panic!("a failed transaction's result {i}: {other:?}"),
                };
                beliefs[i] = Some(
                    kv.as_ref()
                        .map(|kv| (kv.value.clone(), Some(kv.mod_revision))),
                );
                Outcome::Ok(Ret::Read {
                    kv: kv.map(kv_of),
                    revision: t.revision,
                })
            })
        }
        Err(e) if e.is_refusal() => [Outcome::Refused, Outcome::Refused],
        Err(_) => [Outcome::Unknown, Outcome::Unknown],
    };
    let [oa, ob] = outcomes;
    let parts = vec![
        (
            a,
            Call::Txn {
                txn,
                value: values[0].to_vec(),
                if_revision: if_revs[0],
                with: ks[1].to_vec(),
            },
            oa,
        ),
        (
            b,
            Call::Txn {
                txn,
                value: values[1].to_vec(),
                if_revision: if_revs[1],
                with: ks[0].to_vec(),
            },
            ob,
        ),
    ];
    (parts, beliefs, r.err().map(|e| e.kind()))
}

/// Runs calls until `stop`; returns them (a transaction as two, one per
/// key), and the unknown outcomes' kinds (one per call recorded).
#[allow(clippy::too_many_arguments)]
fn client_loop(
    id: usize,
    c: &Client,
    keys: &[String],
    seed: u64,
    start: Instant,
    pause: Duration,
    stop: &AtomicBool,
) -> (Vec<Op>, Vec<ErrorKind>) {
    let mut rng = Rng(seed);
    let mut belief: Vec<Belief> = vec![None; keys.len()];
    let mut ops = Vec::new();
    let mut kinds = Vec::new();
    let mut txns = 0u64;
    let nanos = |t: Instant| t.duration_since(start).as_nanos() as u64;
    while !stop.load(Ordering::SeqCst) {
        let k = rng.below(keys.len() as u64) as usize;
        let key = &keys[k];
        let value = VALUES[rng.below(VALUES.len() as u64) as usize].as_bytes();
        let known_rev = belief[k].as_ref().and_then(|(_, r)| *r);
        let choice = rng.below(100);
        let invoke = Instant::now();
        let one = |call: Call, outcome: Outcome| vec![(k, call, outcome)];
        let (parts, err) = match choice {
            0..=26 => {
                let r = c.get_kv(key);
                match r {
                    Ok((kv, revision)) => {
                        belief[k] = kv
                            .as_ref()
                            .map(|kv| (kv.value.clone(), Some(kv.mod_revision)));
                        let kv = kv.map(kv_of);
                        (
                            one(Call::Get, Outcome::Ok(Ret::Read { kv, revision })),
                            None,
                        )
                    }
                    // A failed read is simply dropped.
                    Err(_) => continue,
                }
            }
            27..=40 => {
                let r = c.put(key, value, 0);
                if let Ok(rev) = r {
                    belief[k] = Some((value.to_vec(), Some(rev)));
                }
                let o = outcome_of(&r, |&rev| Ret::Revision(rev));
                (one(Call::Put(value.to_vec()), o), r.err().map(|e| e.kind()))
            }
            41..=62 => {
                let if_rev = if rng.below(100) < 15 {
                    0
                } else {
                    known_rev.unwrap_or(0)
                };
                let r = c.put_if(key, value, 0, if_rev);
                if let Ok(rev) = r {
                    belief[k] = Some((value.to_vec(), Some(rev)));
                }
                let o = outcome_of(&r, |&rev| Ret::Revision(rev));
                (
                    one(Call::PutIf(value.to_vec(), if_rev), o),
                    r.err().map(|e| e.kind()),
                )
            }
            63..=72 => {
                let if_rev = if rng.below(2) == 0 { known_rev } else { None };
                let r = c.delete_if(key, if_rev);
                if r.is_ok() {
                    belief[k] = None;
                }
                let o = outcome_of(&r, |&rev| Ret::Revision(rev));
                (one(Call::DeleteIf(if_rev), o), r.err().map(|e| e.kind()))
            }
            // About one call in eight: a two-key transaction on k and
            // another key, on the mod revisions last read (0 when not
            // known: the key must not exist).
            88..=99 if keys.len() > 1 => {
                let other = (k + 1 + rng.below(keys.len() as u64 - 1) as usize) % keys.len();
                let value2 = VALUES[rng.below(VALUES.len() as u64) as usize].as_bytes();
                let if_other = belief[other].as_ref().and_then(|(_, r)| *r);
                let by_create = rng.below(2) == 0;
                txns += 1;
                let (parts, beliefs, err) = two_key_txn(
                    c,
                    keys,
                    (k, other),
                    [value, value2],
                    [known_rev.unwrap_or(0), if_other.unwrap_or(0)],
                    by_create,
                    txns,
                );
                for (i, b) in [k, other].into_iter().zip(beliefs) {
                    if let Some(b) = b {
                        belief[i] = b;
                    }
                }
                (parts, err)
            }
            _ => {
                let prev = match &belief[k] {
                    Some((v, _)) => v.clone(),
                    None => VALUES[rng.below(VALUES.len() as u64) as usize]
                        .as_bytes()
                        .to_vec(),
                };
                let r = c.set_with(key, value, Some(&prev), 0);
                if r.is_ok() {
                    belief[k] = Some((value.to_vec(), None));
                }
                let o = outcome_of(&r, |_| Ret::Done);
                (
                    one(Call::SetIfValue(value.to_vec(), prev), o),
                    r.err().map(|e| e.kind()),
                )
            }
        };
        let complete = Instant::now();
        for (k, call, outcome) in parts {
            if outcome == Outcome::Unknown {
                kinds.push(err.unwrap());
            }
            ops.push(Op {
                client: id,
                key: keys[k].as_bytes().to_vec(),
                call,
                outcome,
                invoke: nanos(invoke),
                complete: nanos(complete),
            });
        }
        std::thread::sleep(Duration::from_micros(
            rng.below(2 * pause.as_micros() as u64 + 1),
        ));
    }
    (ops, kinds)
}

/// Drains a watch on `prefix` from revision `from` until it delivers a
/// change of `end_key`, or until `give_up` says so (and it is past).
fn watch_loop(
    c: &Client,
    prefix: &str,
    from: i64,
    end_key: &str,
    give_up: &Mutex<Option<Instant>>,
) -> (Vec<Change>, usize) {
    let mut next = from;
    let mut out = Vec::new();
    let mut errors = 0;
    loop {
        if give_up.lock().unwrap().is_some_and(|t| Instant::now() >= t) {
            return (out, errors);
        }
        match c.watch_events(prefix, Some(next), Some(Duration::from_millis(500))) {
            Ok(changes) => {
                let mut end = false;
                for e in changes.events {
                    end |= e.kv.key == end_key.as_bytes();
                    out.push(Change {
                        revision: e.kv.mod_revision,
                        key: e.kv.key,
                        value: (!e.deleted).then_some(e.kv.value),
                    });
                }
                next = changes.revision + 1;
                if end {
                    return (out, errors);
                }
            }
            Err(e) if e.kind() == ErrorKind::TimedOut => {}
            Err(_) => {
                errors += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

// ---------------------------------------------------------------- one history

struct History {
    ops: Vec<Op>,
    unknown_kinds: Vec<ErrorKind>,
    delivered: Vec<Change>,
    changes: Vec<Change>,
    watch_errors: usize,
    what: String,
}

/// Runs one history: clients and a watch on a fresh prefix while the
/// nemesis does `fault`; then the final reads, an end marker, the key
/// history from a healthy member.
fn run_history(t: &Target, fault: Fault, n: u64, s: &Settings) -> History {
    let seed = s.seed ^ (n + 1).wrapping_mul(0x2545_f491_4f6c_dd1d) ^ fault as u64;
    let mut rng = Rng(seed);
    let prefix = format!("/lin-{}", common::unique_tag());
    let keys: Vec<String> = (0..s.keys).map(|k| format!("{prefix}/k{k}")).collect();
    let end_key = format!("{prefix}/~end");
    let leader = t.leader();
    let from = revision(&t.member_endpoint(leader)) + 1;
    // A run lasts about 6 s, half of it with calls held up by the fault:
    // calls paced to give about s.ops in all.
    let pause = Duration::from_millis(3000 * s.clients as u64 / s.ops);
    let start = Instant::now();
    let stop = AtomicBool::new(false);
    let give_up: Mutex<Option<Instant>> = Mutex::new(None);
    let sessions: Vec<Client> = (0..s.clients).map(|c| t.session(&ORDERS[c])).collect();
    let watcher = t.session(&ORDERS[5]);
    // The watch is open before the first call.
    let first = watcher.watch_events(&prefix, Some(from), Some(Duration::from_millis(10)));
    assert!(
        matches!(&first, Err(e) if e.kind() == ErrorKind::TimedOut),
        "the watch before the run: {first:?}"
    );
    let (mut ops, mut unknown_kinds, what, delivered, watch_errors) = std::thread::scope(|sc| {
        let w = sc.spawn(|| watch_loop(&watcher, &prefix, from, &end_key, &give_up));
        let clients: Vec<_> = sessions
            .iter()
            .enumerate()
            .map(|(id, c)| {
                let (keys, stop) = (&keys, &stop);
                let seed = rng.next();
                sc.spawn(move || client_loop(id, c, keys, seed, start, pause, stop))
            })
            .collect();
        let what = nemesis(t, fault, n, &mut rng);
        stop.store(true, Ordering::SeqCst);
        let mut ops = Vec::new();
        let mut kinds = Vec::new();
        for h in clients {
            let (o, k) = h.join().expect("client thread");
            ops.extend(o);
            kinds.extend(k);
        }
        // Final reads of every key, and the end marker, on the healed cluster.
        let last = t.session(&ORDERS[0]);
        for key in &keys {
            let invoke = start.elapsed().as_nanos() as u64;
            let (kv, revision) = common::wait_for(Duration::from_secs(30), "a final read", || {
                last.get_kv(key).ok()
            });
            ops.push(Op {
                client: s.clients,
                key: key.as_bytes().to_vec(),
                call: Call::Get,
                outcome: Outcome::Ok(Ret::Read {
                    kv: kv.map(kv_of),
                    revision,
                }),
                invoke,
                complete: start.elapsed().as_nanos() as u64,
            });
        }
        let invoke = start.elapsed().as_nanos() as u64;
        let end_rev = common::wait_for(Duration::from_secs(30), "the end marker", || {
            last.put(&end_key, "end", 0).ok()
        });
        ops.push(Op {
            client: s.clients,
            key: end_key.as_bytes().to_vec(),
            call: Call::Put(b"end".to_vec()),
            outcome: Outcome::Ok(Ret::Revision(end_rev)),
            invoke,
            complete: start.elapsed().as_nanos() as u64,
        });
        *give_up.lock().unwrap() = Some(Instant::now() + Duration::from_secs(30));
        let (delivered, errors) = w.join().expect("watch thread");
        (ops, kinds, what, delivered, errors)
    });
    ops.sort_by_key(|o| o.invoke);
    unknown_kinds.sort_by_key(|k| format!("{k:?}"));
    let healthy = t.member_endpoint(t.leader());
    let until = delivered
        .iter()
        .find(|c| c.key == end_key.as_bytes())
        .map(|c| c.revision)
        .unwrap_or_else(|| revision(&healthy));
    let changes = prefix_history(&healthy, prefix.as_bytes(), from, until);
    History {
        ops,
        unknown_kinds,
        delivered,
        changes,
        watch_errors,
        what,
    }
}

/// Writes `key`'s calls and its changes (from the key history) to a
/// file for a look (`$ETCDAPI_TORTURE_DUMP`, else the temp dir); its path.
fn dump(h: &History, key: &[u8], fault: Fault, n: u64) -> String {
    use std::fmt::Write;
    let dir = std::env::var_os("ETCDAPI_TORTURE_DUMP")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("etcdapi-torture"));
    let _ = std::fs::create_dir_all(&dir);
    let name = String::from_utf8_lossy(key).replace('/', "_");
    let path = dir.join(format!("{fault:?}-{n}{name}.txt"));
    let mut text = String::new();
    // Calls in invocation order, each with its key's changes (etcd's
    // truth) interleaved by completion.
    for op in h.ops.iter().filter(|o| o.key == key) {
        let _ = writeln!(text, "{op}");
    }
    let _ = writeln!(text, "-- changes of the key (key history):");
    for c in h.changes.iter().filter(|c| c.key == key) {
        let _ = writeln!(text, "{c}");
    }
    match std::fs::write(&path, text) {
        Ok(()) => path.display().to_string(),
        Err(e) => format!("(not written: {e})"),
    }
}

#[derive(Default)]
struct Tally {
    histories: u64,
    ops: usize,
    unknown: usize,
    violations: usize,
    too_hard: usize,
    watch_failures: usize,
    txn_failures: usize,
    examples: Vec<String>,
}

/// Checks `h` and adds it to `tally`, printing one line (and the
/// violations found).
fn judge(h: &History, fault: Fault, n: u64, tally: &mut Tally) {
    let verdicts = check(&h.ops, DEFAULT_BUDGET);
    let unknown: usize = verdicts.iter().map(|v| v.unknown).sum();
    let mut violations = 0;
    let mut too_hard = 0;
    for v in &verdicts {
        match &v.verdict {
            Verdict::Linearizable => {}
            Verdict::TooHard => too_hard += 1,
            Verdict::Violation(why) => {
                violations += 1;
                let line = format!(
                    "{fault:?} history {n}: key {} ({} calls, {} unknown): {why}",
                    String::from_utf8_lossy(&v.key),
                    v.ops,
                    v.unknown
                );
                eprintln!("VIOLATION {line}");
                eprintln!(
                    "  the key's calls and changes: {}",
                    dump(h, &v.key, fault, n)
                );
                tally.examples.push(line);
            }
        }
    }
    let watch = check_watch(&h.delivered, &h.changes, &h.ops);
    if let Err(why) = &watch {
        eprintln!("WATCH VIOLATION {fault:?} history {n}: {why}");
        tally
            .examples
            .push(format!("{fault:?} history {n}: watch: {why}"));
        tally.watch_failures += 1;
    }
    let txns = check_txns(&h.changes, &h.ops);
    if let Err(why) = &txns {
        eprintln!("TXN VIOLATION {fault:?} history {n}: {why}");
        tally
            .examples
            .push(format!("{fault:?} history {n}: transactions: {why}"));
        tally.txn_failures += 1;
    }
    // Transactions (two calls each): succeeded, failed, unknown, refused.
    let mut txn_calls = [0usize; 4];
    for o in h.ops.iter().filter(|o| matches!(o.call, Call::Txn { .. })) {
        txn_calls[match o.outcome {
            Outcome::Ok(Ret::Revision(_)) => 0,
            Outcome::Ok(_) => 1,
            Outcome::Unknown => 2,
            Outcome::Refused => 3,
        }] += 1;
    }
    let [t_ok, t_failed, t_unknown, t_refused] = txn_calls.map(|n| n / 2);
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for k in &h.unknown_kinds {
        *kinds.entry(format!("{k:?}")).or_default() += 1;
    }
    let refused = h
        .ops
        .iter()
        .filter(|o| o.outcome == Outcome::Refused)
        .count();
    eprintln!(
        "{fault:?} history {n} ({}): {} calls ({refused} refused, {unknown} unknown {kinds:?}; \
         transactions, two calls each: {t_ok} succeeded, {t_failed} failed, \
         {t_unknown} unknown, {t_refused} refused) on {} keys, {} changes watched \
         ({} watch errors), violations {violations}, too hard {too_hard}, watch {}, \
         transactions {}",
        h.what,
        h.ops.len(),
        verdicts.len(),
        h.delivered.len(),
        h.watch_errors,
        if watch.is_ok() { "ok" } else { "FAILED" },
        if txns.is_ok() { "ok" } else { "FAILED" }
    );
    tally.histories += 1;
    tally.ops += h.ops.len();
    tally.unknown += unknown;
    tally.violations += violations;
    tally.too_hard += too_hard;
}

fn report(fault: Fault, s: &Settings, tally: &Tally, started: Instant) {
    eprintln!(
        "TORTURE nemesis={fault:?} histories={} operations={} unknown={} violations={} \
         too_hard={} watch_failures={} txn_failures={} seed={} seconds={:.0}",
        tally.histories,
        tally.ops,
        tally.unknown,
        tally.violations,
        tally.too_hard,
        tally.watch_failures,
        tally.txn_failures,
        s.seed,
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        (tally.violations, tally.watch_failures, tally.txn_failures),
        (0, 0, 0),
        "{fault:?}: histories that are not linearizable (seed {}):\n{}",
        s.seed,
        tally.examples.join("\n")
    );
}

fn torture(fault: Fault) {
    let _turn = one_at_a_time();
    let s = settings();
    eprintln!("{fault:?}: seed {} ({s:?})", s.seed);
    let started = Instant::now();
    let mut tally = Tally::default();
    match fault {
        Fault::IsolateMember | Fault::CutClientFromLeader => {
            let Some(cl) = NetCluster::start() else {
                eprintln!("SKIP {fault:?}: no network namespaces here");
                return;
            };
            for n in 0..s.histories {
                let h = run_history(&Target::Net(&cl), fault, n, &s);
                judge(&h, fault, n, &mut tally);
            }
        }
        _ => {
            let cl = Cluster::start(3);
            for n in 0..s.histories {
                let h = run_history(&Target::Plain(&cl), fault, n, &s);
                judge(&h, fault, n, &mut tally);
            }
        }
    }
    report(fault, &s, &tally, started);
}

#[test]
fn linearizable_under_leader_kill() {
    torture(Fault::KillLeader);
}

#[test]
fn linearizable_under_follower_kill() {
    torture(Fault::KillFollower);
}

#[test]
fn linearizable_under_leader_pause() {
    torture(Fault::PauseLeader);
}

#[test]
fn linearizable_under_follower_pause() {
    torture(Fault::PauseFollower);
}

#[test]
fn linearizable_with_a_member_isolated() {
    torture(Fault::IsolateMember);
}

#[test]
fn linearizable_with_the_client_isolated_from_the_leader() {
    torture(Fault::CutClientFromLeader);
}

/// A history recorded on a live cluster (no fault) passes; the same
/// history with a lost update planted in it (an acked compare-and-put's
/// success reported to a second client too) is rejected, and so is its
/// watch with a change left out or repeated.
#[test]
fn a_recorded_history_with_a_planted_lost_update_is_rejected() {
    let _turn = one_at_a_time();
    let s = Settings {
        histories: 1,
        ..settings()
    };
    eprintln!("seed {}", s.seed);
    let cl = Cluster::start(3);
    let h = run_history(&Target::Plain(&cl), Fault::None, 0, &s);
    let mut tally = Tally::default();
    judge(&h, Fault::None, 0, &mut tally);
    assert_eq!(
        (
            tally.violations,
            tally.watch_failures,
            tally.txn_failures,
            tally.unknown
        ),
        (0, 0, 0, 0),
        "a history without faults: {:?}",
        tally.examples
    );
    assert!(h.ops.len() >= 100, "only {} calls recorded", h.ops.len());

    let i = h
        .ops
        .iter()
        .position(|o| matches!((&o.call, &o.outcome), (Call::PutIf(..), Outcome::Ok(_))))
        .expect("an acked put_if in the history");
    let mut planted = h.ops.clone();
    let mut twin = h.ops[i].clone();
    twin.client = 99;
    planted.push(twin);
    let key = &h.ops[i].key;
    let verdict = check(&planted, DEFAULT_BUDGET)
        .into_iter()
        .find(|v| &v.key == key)
        .unwrap()
        .verdict;
    match verdict {
        Verdict::Violation(why) => eprintln!("planted lost update rejected: {why}"),
        v => panic!("planted lost update not rejected: {v:?}"),
    }

    // A change alone in its revision (not half of a transaction's, whose
    // removal the checker reports as a mismatch at that revision instead).
    let alone = |k: usize| {
        let d = &h.delivered;
        (k == 0 || d[k - 1].revision != d[k].revision)
            && d.get(k + 1).is_none_or(|n| n.revision != d[k].revision)
    };
    let k = (h.delivered.len() / 2..h.delivered.len())
        .chain(0..h.delivered.len() / 2)
        .find(|&k| alone(k))
        .expect("a change alone in its revision");
    let mut skipped = h.delivered.clone();
    skipped.remove(k);
    let e = check_watch(&skipped, &h.changes, &h.ops).unwrap_err();
    assert!(e.contains("skipped"), "{e}");
    let mut repeated = h.delivered.clone();
    repeated.insert(k, repeated[k].clone());
    let e = check_watch(&repeated, &h.changes, &h.ops).unwrap_err();
    assert!(e.contains("repeated"), "{e}");

    // A succeeded transaction: its success reported to a second client
    // too is a lost update on its first key; one of its two puts left out
    // of the key history breaks its atomicity.
    let t = h
        .ops
        .iter()
        .position(|o| {
            matches!(
                (&o.call, &o.outcome),
                (Call::Txn { .. }, Outcome::Ok(Ret::Revision(_)))
            )
        })
        .expect("a succeeded transaction in the history");
    let mut planted = h.ops.clone();
    let mut twin = h.ops[t].clone();
    twin.client = 99;
    planted.push(twin);
    let key = &h.ops[t].key;
    match check(&planted, DEFAULT_BUDGET)
        .into_iter()
        .find(|v| &v.key == key)
        .unwrap()
        .verdict
    {
        Verdict::Violation(why) => eprintln!("planted transaction lost update rejected: {why}"),
        v => panic!("planted transaction lost update not rejected: {v:?}"),
    }
    let Outcome::Ok(Ret::Revision(r)) = h.ops[t].outcome else {
        unreachable!()
    };
    let mut half = h.changes.clone();
    half.retain(|c| !(c.revision == r && &c.key == key));
    // That transaction's parts alone (later reads of the key, its
    // version now one short, are rejected too).
    let Call::Txn { txn, .. } = h.ops[t].call else {
        unreachable!()
    };
    let parts: Vec<Op> = h
        .ops
        .iter()
        .filter(|o| {
            o.client == h.ops[t].client && matches!(o.call, Call::Txn { txn: x, .. } if x == txn)
        })
        .cloned()
        .collect();
    let e = check_txns(&half, &parts).unwrap_err();
    eprintln!("transaction with one put left out rejected: {e}");
    assert!(e.contains(&format!("succeeded at rev {r}")), "{e}");
}
