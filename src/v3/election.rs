//! Leader election on etcd's election service (`/v3/election/*`).
//!
//! A candidate is a key `name/<lease hex>` on the candidate's lease; the
//! leader is the candidate whose key is oldest (lowest create revision).
//! `campaign` waits in etcd's campaign call, which answers only once the
//! candidate leads; the wait has the caller's time-out, and a candidacy
//! whose time ran out is withdrawn (its key deleted, also when etcd
//! elected it just as we stopped waiting). `proclaim`, `resign` and
//! `leader` are etcd's calls. `observe` follows the candidates' keys with
//! a revision-exact watch (etcd's own observe cannot start from a
//! revision): it keeps the candidates as of the revision before
//! `from`, applies each later revision, and reports the first one that
//! changes the leader or its value.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{json, Value};

use super::gateway::{probe, read_answer, reply_rejects_token, Gateway};
use super::json::{encode, int, Header, KeyValue as WireKv, RangeResponse};
use super::settle::{self, Made, Next};
use super::status::{self, refusal, Code};
use super::watch::{self, Streams};
use crate::error::{Error, ErrorKind, Result};
use crate::keys::{children_prefix, prefix_range_end};
use crate::kv::{KeyValue, Leadership};
use crate::transport::{Opened, Reply, Request, Retry, Servers, Wait};

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct LeaderKey {
    #[serde(deserialize_with = "int")]
    pub(crate) rev: i64,
    #[serde(deserialize_with = "int")]
    pub(crate) lease: i64,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct CampaignResponse {
    pub(crate) leader: Option<LeaderKey>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct LeaderResponse {
    pub(crate) kv: Option<WireKv>,
}

fn leader_key(l: &Leadership) -> Value {
    json!({"name": encode(&l.name), "key": encode(&l.key),
           "rev": l.revision.to_string(), "lease": l.lease.to_string()})
}

/// Becomes the leader of `name` with `value`, on `lease`; waits while
/// another candidate leads, at most `timeout` (`None`: for ever).
pub fn campaign(
    g: &Gateway,
    name: &[u8],
    value: &[u8],
    lease: i64,
    timeout: Option<Duration>,
) -> Result<Leadership> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let body = serde_json::to_vec(&json!({
        "name": encode(name), "lease": lease.to_string(), "value": encode(value)}))
    .expect("json");
    let candidate = Leadership::new(name, 0, lease);
    let mut failures = 0;
    loop {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if left == Some(Duration::ZERO) {
            return Err(withdraw(g, &candidate, timeout));
        }
        // Repeating the campaign with the same lease is the same
        // candidate (etcd finds its key and waits on), so a cut wait is
        // asked again, starting with the next server.
        let servers = if failures == 0 {
            Servers::Preferred
        } else {
            Servers::From(failures)
        };
        let request = Request::post("/v3/election/campaign", &body)
            .wait(Wait::Stream(left))
            .retry(Retry::IfNotSent)
            .servers(servers);
        let opened = g.authorized(
            || {
                g.transport
                    .while_serving(None, probe(name), || g.transport.open(&request))
            },
            |o| matches!(o, Opened::Answer(reply) if reply_rejects_token(reply)),
        );
        let failure = match opened {
            Ok(Opened::Answer(reply)) => return Err(refused(&reply)),
            Ok(Opened::Stream(mut stream)) => match read_answer(&mut stream) {
                Ok(reply) => {
                    let r: CampaignResponse = status::value(&reply)?;
                    let Some(won) = r.leader else {
                        return Err(Error::bad_response(format!(
                            "{}: campaign answered without a leader key",
                            stream.server
                        )));
                    };
                    let leadership = Leadership::new(name, won.rev, won.lease);
                    return still_ours(g, leadership);
                }
                Err(e) => format!("{}: campaign cut: {e}", stream.server),
            },
            Err(e) if e.is_refusal() || e.kind() == ErrorKind::BadArgument => return Err(e),
            Err(e) => e.message().to_string(),
        };
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(withdraw(g, &candidate, timeout));
        }
        failures += 1;
        if failures > g.transport.servers().len() * 3 {
            let _ = delete_key(g, &candidate.key);
            return Err(Error::unavailable(failure));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn refused(reply: &Reply) -> Error {
    match refusal(reply) {
        e if e.is_refusal() => e,
        _ => Error::refused(reply.to_string()),
    }
}

/// A campaign answered: the candidate's key must still be there (a lease
/// that lapsed while it waited took the key along, and etcd's campaign
/// answers all the same).
fn still_ours(g: &Gateway, leadership: Leadership) -> Result<Leadership> {
    match read_key(g, &leadership.key)? {
        Some(kv) if kv.create_revision == leadership.revision => Ok(leadership),
        _ => Err(Error::refused(format!(
            "campaign for {}: the candidacy's lease {:x} expired or was revoked while it waited",
            String::from_utf8_lossy(&leadership.name),
            leadership.lease as u64
        ))),
    }
}

/// Gives a timed-out candidacy up: deletes the candidate's key (etcd
/// deletes it too when it sees the wait cut, but not if it elected the
/// candidate just before), again a little later in case the campaign was
/// still on its way when we stopped waiting. The error to return.
fn withdraw(g: &Gateway, candidate: &Leadership, timeout: Option<Duration>) -> Error {
    let first = delete_key(g, &candidate.key);
    std::thread::sleep(Duration::from_millis(50));
    let second = delete_key(g, &candidate.key);
    let note = match first.and(second) {
        Ok(()) => String::new(),
        Err(e) => format!(" (withdrawing the candidacy failed: {e}; it ends with its lease)"),
    };
    Error::timed_out(format!(
        "campaign for {}: not elected within {} ms; candidacy withdrawn{note}",
        String::from_utf8_lossy(&candidate.name),
        timeout.unwrap_or_default().as_millis()
    ))
}

fn delete_key(g: &Gateway, key: &[u8]) -> Result<()> {
    let _: Value = g.call(
        "/v3/kv/deleterange",
        &json!({"key": encode(key)}),
        Retry::Always,
    )?;
    Ok(())
}

fn read_key(g: &Gateway, key: &[u8]) -> Result<Option<WireKv>> {
    let r: RangeResponse = g.call("/v3/kv/range", &json!({"key": encode(key)}), Retry::Always)?;
    Ok(r.kvs.into_iter().find(|kv| kv.key == key))
}

/// Changes the leader's value; `Refused` when no longer the leader. The
/// txn etcd's own proclaim sends ("the leader key still has the
/// leadership's create revision: put the value on its lease"), fenced as a
/// compare-and-swap is ([`settle::fenced_below`]), so that a copy sent
/// again after a lost answer cannot put the value twice.
pub fn proclaim(g: &Gateway, leadership: &Leadership, value: &[u8]) -> Result<i64> {
    let key = &leadership.key;
    let put = json!({"request_put": {"key": encode(key), "value": encode(value),
                                     "lease": leadership.lease.to_string()}});
    let leading = json!({"key": encode(key), "target": "CREATE", "result": "EQUAL",
                         "create_revision": leadership.revision.to_string()});
    let holds =
        |kv: Option<&KeyValue>| kv.is_some_and(|kv| kv.create_revision == leadership.revision);
    settle::fenced_below(
        g,
        key,
        |x| vec![leading.clone(), settle::mod_below(key, x)],
        &[put],
        |o| o.succeeded,
        |before, first| match holds(before) && settle::puts(first, value, leadership.lease) {
            true => Made::Maybe,
            false => Made::NotThis,
        },
        |o| match (o.succeeded, holds(o.current.as_ref())) {
            (true, _) => Next::Done(Ok(o.revision)),
            (false, true) => Next::Again,
            (false, false) => Next::Done(Err(Error::refused(format!(
                "proclaim in {}: no longer the leader (its key {} is gone)",
                String::from_utf8_lossy(&leadership.name),
                String::from_utf8_lossy(key)
            )))),
        },
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Written {
    header: Header,
}

/// Gives the leadership up; `Refused` when it was already lost (etcd's own
/// resign says OK for that: check first).
pub fn resign(g: &Gateway, leadership: &Leadership) -> Result<()> {
    match read_key(g, &leadership.key)? {
        Some(kv) if kv.create_revision == leadership.revision => {}
        _ => {
            return Err(Error::refused(format!(
                "leadership of {} already lost (its key {} is gone)",
                String::from_utf8_lossy(&leadership.name),
                String::from_utf8_lossy(&leadership.key)
            )))
        }
    }
    let body = json!({"leader": leader_key(leadership)});
    let _: Written = g.call("/v3/election/resign", &body, Retry::Always)?;
    Ok(())
}

/// Who leads `name` now; `Refused` when nobody does.
pub fn leader(g: &Gateway, name: &[u8]) -> Result<KeyValue> {
    let r = g.call_status::<LeaderResponse>(
        "/v3/election/leader",
        &json!({"name": encode(name)}),
        Retry::Always,
    )?;
    match r {
        Ok(LeaderResponse { kv: Some(kv) }) => Ok(kv.into()),
        Ok(LeaderResponse { kv: None }) => Err(nobody(name)),
        Err(s) if s.message.contains("no leader") => Err(nobody(name)),
        Err(s) => Err(s.into()),
    }
}

fn nobody(name: &[u8]) -> Error {
    Error::refused(format!(
        "election {}: nobody leads",
        String::from_utf8_lossy(name)
    ))
}

/// The candidates of `name` (keys below `name/`), at `revision` (`None`:
/// now), by key; and the revision read.
fn candidates(
    g: &Gateway,
    name: &[u8],
    revision: Option<i64>,
) -> Result<(BTreeMap<Vec<u8>, KeyValue>, i64)> {
    let start = children_prefix(name);
    let mut body = json!({"key": encode(&start), "range_end": encode(&prefix_range_end(&start))});
    if let Some(rev) = revision {
        body["revision"] = json!(rev.to_string());
    }
    let r = g.call_status::<RangeResponse>("/v3/kv/range", &body, Retry::Always)?;
    let r = match r {
        Ok(r) => r,
        Err(s) if s.code == Code::OutOfRange && s.message.contains("compacted") => {
            return Err(Error::new(
                ErrorKind::Compacted,
                format!(
                    "{}: revision {} has been compacted: {}",
                    s.server,
                    revision.unwrap_or_default(),
                    s.message
                ),
            ))
        }
        Err(s) => return Err(s.into()),
    };
    let kvs = r
        .kvs
        .into_iter()
        .filter(|kv| kv.key.starts_with(&start))
        .map(|kv| (kv.key.clone(), KeyValue::from(kv)))
        .collect();
    Ok((kvs, r.header.revision))
}

/// The leader among `candidates`: the oldest key.
fn leader_of(candidates: &BTreeMap<Vec<u8>, KeyValue>) -> Option<&KeyValue> {
    candidates.values().min_by_key(|kv| kv.create_revision)
}

/// The first change of `name`'s leader or of its value at revision >=
/// `from` (`None`: the current leader at once if there is one). The
/// answer's `mod_revision` is the revision of that change (for a
/// candidate that took over, the revision at which it came to lead).
pub fn observe(
    g: &Gateway,
    streams: &Streams,
    name: &[u8],
    from: Option<i64>,
    timeout: Option<Duration>,
) -> Result<KeyValue> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let (now, current) = candidates(g, name, None)?;
    let (mut cands, mut next, from) = match from {
        None => {
            if let Some(l) = leader_of(&now) {
                let mut kv = l.clone();
                kv.mod_revision = led_since(g, name, l, current);
                return Ok(kv);
            }
            (now, current + 1, current + 1)
        }
        // The candidates as of the revision before `from` (or now, if
        // that is still to come), followed from there.
        Some(from) if from > current => (now, current + 1, from),
        Some(from) => {
            let (then, _) = candidates(g, name, Some(from - 1))?;
            (then, from, from)
        }
    };
    let below = children_prefix(name);
    loop {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let changes = match watch::watch_events(g, streams, name, Some(next), left) {
            Err(e) if e.kind() == ErrorKind::TimedOut => {
                return Err(Error::timed_out(format!(
                    "no leadership change in {} within {} ms",
                    String::from_utf8_lossy(name),
                    timeout.unwrap_or_default().as_millis()
                )))
            }
            other => other?,
        };
        let before = leader_of(&cands).map(|kv| (kv.key.clone(), kv.mod_revision));
        for e in changes.events {
            if !e.kv.key.starts_with(&below) {
                continue;
            }
            if e.deleted {
                cands.remove(&e.kv.key);
            } else {
                cands.insert(e.kv.key.clone(), e.kv);
            }
        }
        next = changes.revision + 1;
        if changes.revision < from {
            continue;
        }
        if let Some(l) = leader_of(&cands) {
            if before.as_ref() != Some(&(l.key.clone(), l.mod_revision)) {
                let mut kv = l.clone();
                kv.mod_revision = changes.revision;
                return Ok(kv);
            }
        }
    }
}

/// The revision since which `leader` has led with its value, as far as
/// history tells (at most `now`, the revision it was seen leading at):
/// its last write if it already led then, else the first revision after
/// it at which it led (found by halving). Compacted history: `now`.
fn led_since(g: &Gateway, name: &[u8], leader: &KeyValue, now: i64) -> i64 {
    let leads_at = |rev: i64| -> Option<bool> {
        let (cands, _) = candidates(g, name, Some(rev)).ok()?;
        Some(leader_of(&cands).is_some_and(|l| l.key == leader.key))
    };
    let (mut lo, mut hi) = (leader.mod_revision, now);
    match leads_at(lo) {
        Some(true) => return lo,
        Some(false) => {}
        None => return now,
    }
    // It did not lead at `lo`, it leads at `hi`.
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        match leads_at(mid) {
            Some(true) => hi = mid,
            Some(false) => lo = mid,
            None => return now,
        }
    }
    hi
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers() {
        let c: CampaignResponse = serde_json::from_str(
            r#"{"header":{"revision":"2"},"leader":{"name":"ZWw=","key":"ZWwvODk=","rev":"2","lease":"621112092146410502"}}"#,
        )
        .unwrap();
        let l = c.leader.unwrap();
        assert_eq!((l.rev, l.lease), (2, 621112092146410502));
        let r: LeaderResponse =
            serde_json::from_str(r#"{"header":{},"kv":{"key":"ZWwv","create_revision":"2"}}"#)
                .unwrap();
        assert_eq!(r.kv.unwrap().create_revision, 2);
    }
}
