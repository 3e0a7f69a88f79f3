//! A linearizability checker for histories of calls on etcd keys, in the
//! manner of Wing & Gong and Lowe (as porcupine does it): a depth-first
//! search for an order of the calls that respects real time and a model
//! of one etcd key, with a memo of (set of calls placed, model state) so
//! that no such pair is explored twice. Keys are independent in the
//! model, so a history is checked one key at a time (per-key
//! decomposition).
//!
//! A call's outcome is `Ok` (with what it returned), `Refused` (etcd said
//! no: compare failed, not found) or `Unknown` (any other error). An
//! unknown call may take effect at any point after its invocation, or
//! never: it has no completion, and its result is unconstrained.
//!
//! The model of one key: exists or not, value, version, create revision,
//! mod revision. A write whose revision nobody told us (`SetIfValue`,
//! which returns none, and unknown writes) leaves the revision as a range
//! (`lo..=hi`): greater than the one before, fixed by the next read or
//! compare that names it. When unsure the model allows (sound: it never
//! rejects a history etcd could have produced), and reads narrow the
//! ranges (a read at store revision R: every write placed before it is at
//! most R, every write placed after it above R).
//!
//! A two-key transaction (compare both keys' mod revisions; then put
//! both, otherwise get both) is recorded as two calls, one per key, that
//! share an id ([`Call::Txn`]). On its key each is a conditional put
//! when it succeeded (acked at the transaction's revision) or when its
//! outcome is unknown, and a read at the transaction's revision when it
//! failed: a failed transaction does not say which compare failed, so
//! it is never taken as a refusal on either key. Per-key decomposition
//! cannot see whether both keys changed together; [`check_txns`] checks
//! that against the key history.
//!
//! The watch check ([`check_watch`]) compares what a watch delivered with
//! the key history read afterwards from a healthy member.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

/// A key as a read returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kv {
    pub value: Vec<u8>,
    pub version: i64,
    pub create_revision: i64,
    pub mod_revision: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    /// `get_kv`.
    Get,
    /// `put(value)`, no lease.
    Put(Vec<u8>),
    /// `put_if(value, if_revision)`; 0: only if the key does not exist.
    PutIf(Vec<u8>, i64),
    /// `delete_if(Some(mod revision) | None)`.
    DeleteIf(Option<i64>),
    /// `set_with(value, Some(prev))`: put only if the value is `prev`.
    SetIfValue(Vec<u8>, Vec<u8>),
    /// This key's part of the two-key transaction `txn` (an id its two
    /// parts share, unique per client): compare "mod revision ==
    /// `if_revision`" (0: the key does not exist); then put `value`;
    /// otherwise get the key. `with` is the other key. Outcomes: `Ok`
    /// with `Ret::Revision` (succeeded, at that revision), `Ok` with
    /// `Ret::Read` (failed: what the key held at the transaction's
    /// revision), `Refused` (etcd refused the whole transaction: nothing
    /// applied), `Unknown`.
    Txn {
        txn: u64,
        value: Vec<u8>,
        if_revision: i64,
        with: Vec<u8>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ret {
    /// A read: the key (`None`: missing) and the store's revision at the
    /// read (0: not known).
    Read { kv: Option<Kv>, revision: i64 },
    /// A write's revision.
    Revision(i64),
    /// A write that returns nothing (`SetIfValue`).
    Done,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok(Ret),
    Refused,
    Unknown,
}

/// One call of a history. Times are nanoseconds from a common start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    pub client: usize,
    pub key: Vec<u8>,
    pub call: Call,
    pub outcome: Outcome,
    pub invoke: u64,
    /// Ignored for an `Unknown` outcome (it completes at +infinity).
    pub complete: u64,
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let call = match &self.call {
            Call::Get => "Get".to_string(),
            Call::Put(v) => format!("Put({})", text(v)),
            Call::PutIf(v, r) => format!("PutIf({}, if {r})", text(v)),
            Call::DeleteIf(Some(r)) => format!("DeleteIf(if {r})"),
            Call::DeleteIf(None) => "DeleteIf(any)".to_string(),
            Call::SetIfValue(v, p) => format!("SetIfValue({}, prev {})", text(v), text(p)),
            Call::Txn {
                txn,
                value,
                if_revision,
                with,
            } => format!(
                "Txn#{txn}(put {}, if {if_revision}; with {})",
                text(value),
                text(with)
            ),
        };
        let outcome = match &self.outcome {
            Outcome::Ok(Ret::Read { kv: None, revision }) => format!("missing @{revision}"),
            Outcome::Ok(Ret::Read {
                kv: Some(kv),
                revision,
            }) => format!(
                "{} ver {} create {} mod {} @{revision}",
                text(&kv.value),
                kv.version,
                kv.create_revision,
                kv.mod_revision
            ),
            Outcome::Ok(Ret::Revision(r)) => format!("ok rev {r}"),
            Outcome::Ok(Ret::Done) => "ok".to_string(),
            Outcome::Refused => "refused".to_string(),
            Outcome::Unknown => "unknown".to_string(),
        };
        let end = match self.outcome {
            Outcome::Unknown => "inf".to_string(),
            _ => format!("{:.3}", self.complete as f64 / 1e9),
        };
        write!(
            f,
            "c{} {} -> {} [{:.3}s..{end}]",
            self.client,
            call,
            outcome,
            self.invoke as f64 / 1e9
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Linearizable,
    /// Not linearizable: a short explanation naming the calls involved.
    Violation(String),
    /// The search ran out of its step budget.
    TooHard,
}

#[derive(Clone, Debug)]
pub struct KeyVerdict {
    pub key: Vec<u8>,
    pub ops: usize,
    pub unknown: usize,
    pub verdict: Verdict,
}

/// Steps the search may take per key by default before it says "too hard".
pub const DEFAULT_BUDGET: u64 = 5_000_000;

/// Checks every key of `history` (per-key decomposition); one verdict per
/// key, in key order.
pub fn check(history: &[Op], budget: u64) -> Vec<KeyVerdict> {
    let mut by_key: HashMap<&[u8], Vec<&Op>> = HashMap::new();
    for op in history {
        by_key.entry(&op.key).or_default().push(op);
    }
    let mut keys: Vec<&[u8]> = by_key.keys().copied().collect();
    keys.sort();
    keys.into_iter()
        .map(|k| {
            let ops = &by_key[k];
            KeyVerdict {
                key: k.to_vec(),
                ops: ops.len(),
                unknown: ops.iter().filter(|o| o.outcome == Outcome::Unknown).count(),
                verdict: check_key(ops, budget),
            }
        })
        .collect()
}

/// The verdict for a history that holds one key's calls only.
pub fn check_one(history: &[Op]) -> Verdict {
    let ops: Vec<&Op> = history.iter().collect();
    check_key(&ops, DEFAULT_BUDGET)
}

// ---------------------------------------------------------------- the model

/// A revision known to lie in `lo..=hi` (`lo == hi`: known).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Rev {
    lo: i64,
    hi: i64,
}

impl Rev {
    fn known(r: i64) -> Rev {
        Rev { lo: r, hi: r }
    }
    fn may_be(self, r: i64) -> bool {
        self.lo <= r && r <= self.hi
    }
    fn is(self, r: i64) -> bool {
        self.lo == r && self.hi == r
    }
}

/// One key. Values are interned: 0 is "no value".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct State {
    exists: bool,
    value: u32,
    version: i64,
    create: Rev,
    /// The revision of the key's last change (its mod revision while it
    /// exists; the delete's revision after a delete; 0 before any).
    last: Rev,
    /// The highest store revision a read placed so far saw: every write
    /// placed after it is above.
    floor: i64,
}

const INITIAL: State = State {
    exists: false,
    value: 0,
    version: 0,
    create: Rev { lo: 0, hi: 0 },
    last: Rev { lo: 0, hi: 0 },
    floor: 0,
};

#[derive(Clone, Copy, Debug)]
enum ICall {
    Get,
    Put(u32),
    PutIf(u32, i64),
    DeleteIf(Option<i64>),
    SetIfValue(u32, u32),
    /// A transaction's part: put `.0` if mod revision == `.1`.
    Txn(u32, i64),
}

#[derive(Clone, Debug)]
enum IOut {
    Read(Option<(u32, i64, i64, i64)>, i64),
    Revision(i64),
    Done,
    Refused,
    /// Unknown: applied (an unknown call not applied is one left out).
    Applied,
}

impl State {
    /// The least revision the next write can have, minus one.
    fn base(&self) -> i64 {
        self.last.lo.max(self.floor)
    }

    /// A write of `value` at revision `rev` (`None`: not known).
    fn write(mut self, value: u32, rev: Option<i64>) -> Option<State> {
        let r = match rev {
            Some(r) if r > self.base() => Rev::known(r),
            Some(_) => return None,
            None => Rev {
                lo: self.base() + 1,
                hi: i64::MAX,
            },
        };
        if self.exists {
            self.version += 1;
        } else {
            self.exists = true;
            self.version = 1;
            self.create = r;
        }
        self.value = value;
        self.last = r;
        Some(self)
    }

    fn delete(mut self, rev: Option<i64>) -> Option<State> {
        let r = match rev {
            Some(r) if r > self.base() => Rev::known(r),
            Some(_) => return None,
            None => Rev {
                lo: self.base() + 1,
                hi: i64::MAX,
            },
        };
        self.exists = false;
        self.value = 0;
        self.version = 0;
        self.create = Rev::known(0);
        self.last = r;
        Some(self)
    }

    /// Can the compare "mod revision == c" (0: "does not exist") hold?
    /// If it can, the state with the revision fixed to `c`.
    fn compare_may_hold(self, c: i64) -> Option<State> {
        if c == 0 {
            return (!self.exists).then_some(self);
        }
        if self.exists && self.last.may_be(c) {
            let mut s = self;
            s.last = Rev::known(c);
            if s.version == 1 {
                // The key's only write is its creation.
                if !s.create.may_be(c) {
                    return None;
                }
                s.create = Rev::known(c);
            }
            return Some(s);
        }
        None
    }

    /// Can the compare "mod revision == c" fail?
    fn compare_may_fail(self, c: i64) -> bool {
        if c == 0 {
            return self.exists;
        }
        !(self.exists && self.last.is(c))
    }

    /// What a read placed now learns: the store was at `revision`.
    fn read_at(mut self, revision: i64) -> Option<State> {
        if revision > 0 {
            if self.last.lo > revision {
                return None;
            }
            self.last.hi = self.last.hi.min(revision);
            if self.exists {
                self.create.hi = self.create.hi.min(revision);
            }
            self.floor = self.floor.max(revision);
        }
        Some(self)
    }

    fn step(self, call: ICall, out: &IOut) -> Option<State> {
        use ICall as C;
        use IOut as O;
        match (call, out) {
            (C::Get, O::Read(None, at)) => {
                if self.exists {
                    return None;
                }
                self.read_at(*at)
            }
            (C::Get, O::Read(Some((value, version, create, modr)), at)) => {
                if !self.exists
                    || self.value != *value
                    || self.version != *version
                    || !self.create.may_be(*create)
                    || !self.last.may_be(*modr)
                {
                    return None;
                }
                let mut s = self;
                s.create = Rev::known(*create);
                s.last = Rev::known(*modr);
                s.read_at(*at)
            }
            (C::Get, _) => None,
            (C::Put(v), O::Revision(r)) => self.write(v, Some(*r)),
            (C::Put(v), O::Applied) => self.write(v, None),
            (C::Put(_), O::Refused) => Some(self),
            (C::PutIf(v, c), O::Revision(r)) => self.compare_may_hold(c)?.write(v, Some(*r)),
            (C::PutIf(v, c), O::Applied) => self.compare_may_hold(c)?.write(v, None),
            (C::PutIf(_, c), O::Refused) => self.compare_may_fail(c).then_some(self),
            (C::DeleteIf(Some(c)), O::Revision(r)) => {
                let s = self.compare_may_hold(c).filter(|s| s.exists)?;
                s.delete(Some(*r))
            }
            (C::DeleteIf(Some(c)), O::Applied) => {
                let s = self.compare_may_hold(c).filter(|s| s.exists)?;
                s.delete(None)
            }
            (C::DeleteIf(Some(c)), O::Refused) => {
                (!self.exists || self.compare_may_fail(c)).then_some(self)
            }
            (C::DeleteIf(None), O::Revision(r)) => {
                if !self.exists {
                    return None;
                }
                self.delete(Some(*r))
            }
            (C::DeleteIf(None), O::Applied) => {
                if !self.exists {
                    return None;
                }
                self.delete(None)
            }
            (C::DeleteIf(None), O::Refused) => (!self.exists).then_some(self),
            (C::SetIfValue(v, prev), O::Done | O::Applied) => {
                if !self.exists || self.value != prev {
                    return None;
                }
                self.write(v, None)
            }
            (C::SetIfValue(_, prev), O::Refused) => {
                (!self.exists || self.value != prev).then_some(self)
            }
            // Succeeded: the compare held, and the put is at the
            // transaction's revision; unknown: the same, at a revision
            // not known (left out: not applied).
            (C::Txn(v, c), O::Revision(r)) => self.compare_may_hold(c)?.write(v, Some(*r)),
            (C::Txn(v, c), O::Applied) => self.compare_may_hold(c)?.write(v, None),
            // Failed: a read at the transaction's revision, nothing
            // written. Which compare failed is not known, so nothing is
            // claimed of this key's.
            (C::Txn(..), O::Read(..)) => self.step(C::Get, out),
            // Refused by etcd: nothing applied.
            (C::Txn(..), O::Refused) => Some(self),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------- the search

/// One event of the list the search walks: a call's invocation, or its
/// completion (unknown calls have none).
#[derive(Clone, Copy)]
struct Node {
    op: usize,
    call: bool,
    prev: usize,
    next: usize,
}

const NIL: usize = usize::MAX;

fn check_key(ops: &[&Op], budget: u64) -> Verdict {
    // Intern values (0: none).
    let mut ids: HashMap<Vec<u8>, u32> = HashMap::new();
    let mut id = |v: &[u8]| -> u32 {
        let n = ids.len() as u32 + 1;
        *ids.entry(v.to_vec()).or_insert(n)
    };
    let mut calls = Vec::with_capacity(ops.len());
    let mut outs = Vec::with_capacity(ops.len());
    for op in ops {
        calls.push(match &op.call {
            Call::Get => ICall::Get,
            Call::Put(v) => ICall::Put(id(v)),
            Call::PutIf(v, r) => ICall::PutIf(id(v), *r),
            Call::DeleteIf(r) => ICall::DeleteIf(*r),
            Call::SetIfValue(v, p) => {
                let v = id(v);
                ICall::SetIfValue(v, id(p))
            }
            Call::Txn {
                value, if_revision, ..
            } => ICall::Txn(id(value), *if_revision),
        });
        outs.push(match &op.outcome {
            Outcome::Ok(Ret::Read { kv, revision }) => IOut::Read(
                kv.as_ref().map(|kv| {
                    (
                        id(&kv.value),
                        kv.version,
                        kv.create_revision,
                        kv.mod_revision,
                    )
                }),
                *revision,
            ),
            Outcome::Ok(Ret::Revision(r)) => IOut::Revision(*r),
            Outcome::Ok(Ret::Done) => IOut::Done,
            Outcome::Refused => IOut::Refused,
            Outcome::Unknown => IOut::Applied,
        });
    }
    let definite: Vec<bool> = ops.iter().map(|o| o.outcome != Outcome::Unknown).collect();

    // The events in time order (an invocation before a completion at the
    // same instant: such calls count as concurrent).
    let mut events: Vec<(u64, bool, usize)> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        events.push((op.invoke, true, i));
        if definite[i] {
            events.push((op.complete.max(op.invoke), false, i));
        }
    }
    events.sort_by_key(|&(t, call, i)| (t, !call, i));
    // nodes[0] is the head; event k is node k + 1.
    let mut nodes = vec![Node {
        op: NIL,
        call: false,
        prev: NIL,
        next: if events.is_empty() { NIL } else { 1 },
    }];
    let mut call_node = vec![NIL; ops.len()];
    let mut ret_node = vec![NIL; ops.len()];
    for (k, &(_, call, i)) in events.iter().enumerate() {
        let n = k + 1;
        nodes.push(Node {
            op: i,
            call,
            prev: k,
            next: if n == events.len() { NIL } else { n + 1 },
        });
        if call {
            call_node[i] = n;
        } else {
            ret_node[i] = n;
        }
    }
    let unlink = |nodes: &mut Vec<Node>, n: usize| {
        let (p, x) = (nodes[n].prev, nodes[n].next);
        nodes[p].next = x;
        if x != NIL {
            nodes[x].prev = p;
        }
    };
    let relink = |nodes: &mut Vec<Node>, n: usize| {
        let (p, x) = (nodes[n].prev, nodes[n].next);
        nodes[p].next = n;
        if x != NIL {
            nodes[x].prev = n;
        }
    };

    let mut remaining = definite.iter().filter(|&&d| d).count();
    let words = ops.len().div_ceil(64);
    let mut placed = vec![0u64; words];
    let mut memo: HashSet<(Vec<u64>, State)> = HashSet::new();
    let mut stack: Vec<(usize, State)> = Vec::new();
    let mut state = INITIAL;
    let mut steps: u64 = 0;
    // The deepest point reached: (depth, the call that could not be
    // placed there, the state, the calls placed last).
    let mut deepest: Option<(usize, usize, State, Vec<usize>)> = None;
    let mut entry = nodes[0].next;
    loop {
        if remaining == 0 {
            return Verdict::Linearizable;
        }
        steps += 1;
        if steps > budget {
            return Verdict::TooHard;
        }
        if entry == NIL {
            // Only unknown calls ahead, yet a completed call is still to
            // place: cannot happen (its completion is in the list).
            unreachable!("search ran off the list with {remaining} calls to place");
        }
        let node = nodes[entry];
        if node.call {
            let i = node.op;
            if let Some(next) = state.step(calls[i], &outs[i]) {
                placed[i / 64] |= 1 << (i % 64);
                if memo.insert((placed.clone(), next)) {
                    stack.push((i, state));
                    state = next;
                    unlink(&mut nodes, call_node[i]);
                    if definite[i] {
                        unlink(&mut nodes, ret_node[i]);
                        remaining -= 1;
                    }
                    entry = nodes[0].next;
                    continue;
                }
                placed[i / 64] &= !(1 << (i % 64));
            }
            entry = node.next;
        } else {
            // A completion: the call it closes had to be placed by now.
            if deepest.as_ref().is_none_or(|d| stack.len() > d.0) {
                let last: Vec<usize> = stack.iter().rev().take(3).map(|&(i, _)| i).collect();
                deepest = Some((stack.len(), node.op, state, last));
            }
            let Some((i, prev)) = stack.pop() else {
                return Verdict::Violation(explain(ops, &deepest.unwrap()));
            };
            state = prev;
            placed[i / 64] &= !(1 << (i % 64));
            if definite[i] {
                relink(&mut nodes, ret_node[i]);
                remaining += 1;
            }
            relink(&mut nodes, call_node[i]);
            entry = nodes[call_node[i]].next;
        }
    }
}

fn explain(ops: &[&Op], deepest: &(usize, usize, State, Vec<usize>)) -> String {
    let (depth, stuck, state, last) = deepest;
    let op = ops[*stuck];
    let concurrent: Vec<String> = ops
        .iter()
        .enumerate()
        .filter(|&(i, o)| {
            i != *stuck
                && o.invoke <= op.complete
                && (o.outcome == Outcome::Unknown || o.complete >= op.invoke)
        })
        .take(6)
        .map(|(_, o)| o.to_string())
        .collect();
    let model = if state.exists {
        format!(
            "exists, version {}, mod revision {}",
            state.version,
            show(state.last)
        )
    } else {
        format!("missing, last change {}", show(state.last))
    };
    let before: Vec<String> = last.iter().map(|&i| ops[i].to_string()).collect();
    format!(
        "no order fits: at best {depth} of {} calls placed (model: {model}; placed last: {}), \
         then {op} cannot be placed; concurrent with it: {}",
        ops.len(),
        if before.is_empty() {
            "none".to_string()
        } else {
            before.join("; ")
        },
        if concurrent.is_empty() {
            "none".to_string()
        } else {
            concurrent.join("; ")
        }
    )
}

fn show(r: Rev) -> String {
    if r.lo == r.hi {
        r.lo.to_string()
    } else if r.hi == i64::MAX {
        format!("> {}", r.lo - 1)
    } else {
        format!("{}..={}", r.lo, r.hi)
    }
}

// ---------------------------------------------------------------- watches

/// One change, as a watch delivers it or a key history tells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub revision: i64,
    pub key: Vec<u8>,
    /// `None` for a delete.
    pub value: Option<Vec<u8>>,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(
                f,
                "rev {} put {} = {}",
                self.revision,
                text(&self.key),
                text(v)
            ),
            None => write!(f, "rev {} delete {}", self.revision, text(&self.key)),
        }
    }
}

/// The first pair of `changes` out of order, with what is wrong: each
/// change at a later revision than the one before, or at the same one (a
/// transaction's changes, in its operations' order) on a key not yet seen
/// at that revision.
fn first_out_of_order(changes: &[Change]) -> Option<(&Change, &Change, &'static str)> {
    let mut keys: HashSet<&[u8]> = HashSet::new();
    for w in changes.windows(2) {
        keys.insert(&w[0].key);
        if w[1].revision < w[0].revision {
            return Some((&w[0], &w[1], "out of order"));
        }
        if w[1].revision > w[0].revision {
            keys.clear();
        } else if keys.contains(w[1].key.as_slice()) {
            return Some((&w[0], &w[1], "repeated"));
        }
    }
    None
}

/// What a transaction's puts did: (key, value) of each.
type TxnEffect<'a> = Vec<(&'a [u8], &'a [u8])>;

/// What a watch opened before the run `delivered` must be: in revision
/// order (the changes of one revision, a transaction's, in its
/// operations' order), nothing repeated, exactly `history`
/// (read afterwards from a healthy member), and holding every `Ok` write
/// of `ops` at its revision with its effect. And every change of
/// `history` must be some call's doing: those not at an acked write's
/// revision are matched, by key and effect, with the calls that could
/// have made them (acked value compares, unknown writes). A revision
/// that changes several keys is a transaction's: those are left to
/// [`check_txns`], and an unknown transaction explains no change of
/// one key alone.
pub fn check_watch(delivered: &[Change], history: &[Change], ops: &[Op]) -> Result<(), String> {
    if let Some((a, b, what)) = first_out_of_order(delivered) {
        return Err(format!("watch: {a} then {b}: {what}"));
    }
    if let Some((a, b, what)) = first_out_of_order(history) {
        return Err(format!("key history: {a} then {b}: {what}"));
    }
    let n = delivered.len().min(history.len());
    if let Some(k) = (0..n).find(|&k| delivered[k] != history[k]) {
        let (d, h) = (&delivered[k], &history[k]);
        return Err(if d.revision > h.revision {
            format!("watch skipped {h} (delivered {d} next)")
        } else {
            format!("watch delivered {d}, the history has {h} there")
        });
    }
    if delivered.len() < history.len() {
        return Err(format!(
            "watch ended after {} changes; the history goes on with {}",
            delivered.len(),
            history[delivered.len()]
        ));
    }
    if delivered.len() > history.len() {
        return Err(format!(
            "watch delivered {} beyond the history's {} changes",
            delivered[history.len()],
            history.len()
        ));
    }
    let at: HashMap<(i64, &[u8]), &Change> = history
        .iter()
        .map(|c| ((c.revision, c.key.as_slice()), c))
        .collect();
    /// A key and what a change did to it (`None`: deleted).
    type Effect<'a> = (&'a [u8], Option<&'a [u8]>);
    let mut claimed: HashSet<(i64, &[u8])> = HashSet::new();
    // Those of them claimed by a transaction's part.
    let mut by_txn: HashSet<(i64, &[u8])> = HashSet::new();
    // Unknown transactions, by client and id: their parts' effects.
    let mut unknown_txns: HashMap<(usize, u64), TxnEffect> = HashMap::new();
    // Calls that may have made a change of such an effect unseen.
    let mut could: HashMap<Effect, usize> = HashMap::new();
    for op in ops {
        let (rev, value) = match (&op.call, &op.outcome) {
            (
                Call::Put(v) | Call::PutIf(v, _) | Call::Txn { value: v, .. },
                Outcome::Ok(Ret::Revision(r)),
            ) => (*r, Some(v)),
            (Call::DeleteIf(_), Outcome::Ok(Ret::Revision(r))) => (*r, None),
            (Call::SetIfValue(v, _), Outcome::Ok(_))
            | (Call::Put(v) | Call::PutIf(v, _) | Call::SetIfValue(v, _), Outcome::Unknown) => {
                *could.entry((&op.key, Some(v.as_slice()))).or_default() += 1;
                continue;
            }
            (Call::DeleteIf(_), Outcome::Unknown) => {
                *could.entry((&op.key, None)).or_default() += 1;
                continue;
            }
            (Call::Txn { txn, value, .. }, Outcome::Unknown) => {
                unknown_txns
                    .entry((op.client, *txn))
                    .or_default()
                    .push((&op.key, value));
                continue;
            }
            _ => continue,
        };
        match at.get(&(rev, op.key.as_slice())) {
            Some(c) if c.value.as_ref() == value => {
                claimed.insert((rev, &op.key));
                if matches!(op.call, Call::Txn { .. }) {
                    by_txn.insert((rev, &op.key));
                }
            }
            Some(c) => return Err(format!("{op}: the history has {c} at that revision")),
            None => return Err(format!("{op}: no change of its key at that revision")),
        }
    }
    let mut per_revision: BTreeMap<i64, Vec<&Change>> = BTreeMap::new();
    for c in history {
        per_revision.entry(c.revision).or_default().push(c);
    }
    // A revision that changes several keys: a succeeded transaction's
    // (its puts all claimed by its parts; `check_txns` sees that they are
    // exactly its two), or an unknown transaction's of those keys and
    // values (one such transaction for each).
    let mut could_txn: HashMap<TxnEffect, usize> = HashMap::new();
    for mut effect in unknown_txns.into_values() {
        effect.sort();
        *could_txn.entry(effect).or_default() += 1;
    }
    for (r, changes) in per_revision.iter().filter(|(_, c)| c.len() > 1) {
        let list = || {
            changes
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        };
        if changes
            .iter()
            .all(|c| by_txn.contains(&(*r, c.key.as_slice())))
        {
            continue;
        }
        if changes
            .iter()
            .any(|c| claimed.contains(&(*r, c.key.as_slice())))
        {
            return Err(format!(
                "rev {r} changes {} keys ({}): more than the acked call of that revision made",
                changes.len(),
                list()
            ));
        }
        let effect: Option<TxnEffect> = changes
            .iter()
            .map(|c| c.value.as_deref().map(|v| (c.key.as_slice(), v)))
            .collect();
        let explained = effect.is_some_and(|mut e| {
            e.sort();
            could_txn.get_mut(&e).is_some_and(|n| {
                let left = *n > 0;
                *n = n.saturating_sub(1);
                left
            })
        });
        if !explained {
            return Err(format!(
                "rev {r} changes {} keys ({}) at no acked write's revision, and no transaction \
                 whose outcome is unknown is left that could have made them",
                changes.len(),
                list()
            ));
        }
    }
    let mut unexplained: HashMap<Effect, Vec<&Change>> = HashMap::new();
    for c in history {
        if !claimed.contains(&(c.revision, c.key.as_slice()))
            && per_revision[&c.revision].len() == 1
        {
            unexplained
                .entry((&c.key, c.value.as_deref()))
                .or_default()
                .push(c);
        }
    }
    let mut worst: Option<(&Change, usize, usize)> = None;
    for (effect, changes) in &unexplained {
        let n = could.get(effect).copied().unwrap_or(0);
        if changes.len() > n && worst.is_none_or(|w| changes[0].revision < w.0.revision) {
            worst = Some((changes[0], changes.len(), n));
        }
    }
    if let Some((c, many, calls)) = worst {
        return Err(format!(
            "{many} changes like {c} (the first) at no acked write's revision, but only {calls} \
             calls (acked value compares, unknown writes) that could have made them"
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------- transactions

/// What a key held at one revision: (value, version, create, mod), or
/// `None` for missing.
type Held<'a> = Option<(&'a [u8], i64, i64, i64)>;

/// What `key` held at `revision`, from `history` (every change of the key
/// since before it first existed, in revision order).
fn held_at<'a>(history: &'a [Change], key: &[u8], revision: i64) -> Held<'a> {
    let mut held: Held = None;
    for c in history
        .iter()
        .filter(|c| c.key == key && c.revision <= revision)
    {
        held = c.value.as_deref().map(|v| match held {
            Some((_, version, create, _)) => (v, version + 1, create, c.revision),
            None => (v, 1, c.revision, c.revision),
        });
    }
    held
}

fn show_held(h: Held) -> String {
    match h {
        None => "missing".to_string(),
        Some((v, version, create, modr)) => {
            format!("{} ver {version} create {create} mod {modr}", text(v))
        }
    }
}

/// The cross-key checks of the two-key transactions of `ops` against the
/// key history `history` (every change of the calls' keys from before
/// their first, in revision order, up to at least every revision the
/// calls name; nothing else writes them). Sound: each holds of any
/// history etcd can produce.
///
/// - Each transaction has two parts, on two keys, with one outcome.
/// - A succeeded one at revision R: the history's changes at R are
///   exactly its two puts, and at R - 1 each key's mod revision (0:
///   missing) was the one compared.
/// - A failed one at R: each key held at R, in the history, what its get
///   returned; and not both compares held there (one failed).
///
/// (That every revision changing several keys is a transaction's is
/// [`check_watch`]'s.)
pub fn check_txns(history: &[Change], ops: &[Op]) -> Result<(), String> {
    let mut txns: HashMap<(usize, u64), Vec<&Op>> = HashMap::new();
    for op in ops {
        if let Call::Txn { txn, .. } = op.call {
            txns.entry((op.client, txn)).or_default().push(op);
        }
    }
    let mut ids: Vec<(usize, u64)> = txns.keys().copied().collect();
    ids.sort();
    let mut at: HashMap<i64, Vec<&Change>> = HashMap::new();
    for c in history {
        at.entry(c.revision).or_default().push(c);
    }
    let part = |op: &Op| -> (Vec<u8>, i64) {
        match &op.call {
            Call::Txn {
                value, if_revision, ..
            } => (value.clone(), *if_revision),
            _ => unreachable!(),
        }
    };
    let mod_of = |h: Held| h.map_or(0, |(_, _, _, m)| m);
    for id in ids {
        let parts = &txns[&id];
        let (p, q) = match parts.as_slice() {
            [p, q] if p.key != q.key => (*p, *q),
            _ => {
                let all: Vec<String> = parts.iter().map(|o| o.to_string()).collect();
                return Err(format!(
                    "transaction {} of c{}: not two parts on two keys: {}",
                    id.1,
                    id.0,
                    all.join("; ")
                ));
            }
        };
        let both = format!("{p} and {q}");
        match (&p.outcome, &q.outcome) {
            (Outcome::Ok(Ret::Revision(r)), Outcome::Ok(Ret::Revision(s))) if r == s => {
                let r = *r;
                let mut got: Vec<String> = at
                    .get(&r)
                    .into_iter()
                    .flatten()
                    .map(|c| c.to_string())
                    .collect();
                let mut want: Vec<String> = [p, q]
                    .iter()
                    .map(|o| {
                        Change {
                            revision: r,
                            key: o.key.clone(),
                            value: Some(part(o).0),
                        }
                        .to_string()
                    })
                    .collect();
                got.sort();
                want.sort();
                if got != want {
                    return Err(format!(
                        "{both}: succeeded at rev {r}, but the history has at rev {r}: {}",
                        if got.is_empty() {
                            "nothing".to_string()
                        } else {
                            got.join("; ")
                        }
                    ));
                }
                for o in [p, q] {
                    let before = held_at(history, &o.key, r - 1);
                    if mod_of(before) != part(o).1 {
                        return Err(format!(
                            "{o}: succeeded at rev {r}, but the history has its key {} at rev {}",
                            show_held(before),
                            r - 1
                        ));
                    }
                }
            }
            (
                Outcome::Ok(Ret::Read { kv: a, revision: r }),
                Outcome::Ok(Ret::Read { kv: b, revision: s }),
            ) if r == s => {
                let r = *r;
                let mut all_held = true;
                for (o, kv) in [(p, a), (q, b)] {
                    let read: Held = kv.as_ref().map(|kv| {
                        (
                            kv.value.as_slice(),
                            kv.version,
                            kv.create_revision,
                            kv.mod_revision,
                        )
                    });
                    let truth = held_at(history, &o.key, r);
                    if read != truth {
                        return Err(format!(
                            "{o}: failed, its get at rev {r} read {}, but the history has {} there",
                            show_held(read),
                            show_held(truth)
                        ));
                    }
                    all_held &= mod_of(read) == part(o).1;
                }
                if all_held {
                    return Err(format!(
                        "{both}: failed, yet both compares held at rev {r} (its gets)"
                    ));
                }
            }
            (Outcome::Unknown, Outcome::Unknown) | (Outcome::Refused, Outcome::Refused) => {}
            _ => return Err(format!("{both}: the parts' outcomes disagree")),
        }
    }
    Ok(())
}
