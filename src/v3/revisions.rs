//! The extended API's key/value calls: reads that tell revisions, a
//! prefix listing, puts on a lease, writes conditional on a revision, a
//! prefix delete. Conditional writes whose answer was lost are settled by
//! reading back (SPEC section 2), never repeated blindly.

use serde_json::{json, Value};

use super::gateway::{probe, Gateway};
use super::json::{encode, RangeResponse, TxnResponse};
use super::settle::{self, Made, Next};
use crate::error::{Error, ErrorKind, Result};
use crate::keys::{children_prefix, prefix_range_end};
use crate::kv::{Deleted, KeyValue, Listing};
use crate::transport::Retry;

/// `key` with its revisions, and the store's revision at the read.
pub fn get_kv(g: &Gateway, key: &[u8]) -> Result<(Option<KeyValue>, i64)> {
    let r: RangeResponse = g.call("/v3/kv/range", &json!({"key": encode(key)}), Retry::Always)?;
    let kv = r
        .kvs
        .into_iter()
        .find(|kv| kv.key == key)
        .map(KeyValue::from);
    Ok((kv, r.header.revision))
}

/// etcd's range for every key strictly below `prefix/`.
fn below(prefix: &[u8]) -> Value {
    let start = children_prefix(prefix);
    json!({"key": encode(&start), "range_end": encode(&prefix_range_end(&start))})
}

pub fn list(g: &Gateway, prefix: &[u8]) -> Result<Listing> {
    let r: RangeResponse = g.call("/v3/kv/range", &below(prefix), Retry::Always)?;
    let below = children_prefix(prefix);
    let kvs = r
        .kvs
        .into_iter()
        .filter(|kv| kv.key.starts_with(&below) && kv.key != prefix)
        .map(KeyValue::from)
        .collect();
    Ok(Listing {
        kvs,
        revision: r.header.revision,
    })
}

fn put_op(key: &[u8], value: &[u8], lease: i64) -> Value {
    let mut put = json!({"key": encode(key), "value": encode(value)});
    if lease != 0 {
        put["lease"] = Value::from(lease.to_string());
    }
    put
}

/// A plain put: fenced while the key exists ("mod revision below X, and
/// the key exists"; see [`settle`]), a create while it does not.
pub fn put(g: &Gateway, key: &[u8], value: &[u8], lease: i64) -> Result<i64> {
    put_with(g, key, value, lease, false)
}

/// How many times a put goes between "exists" and "does not exist" while
/// other clients create and delete the key.
const PUT_ROUNDS: usize = 4;

/// [`put`]; `own_lease`: `lease` is this call's alone (a fresh one), so a
/// change carrying it is this write's.
pub fn put_with(g: &Gateway, key: &[u8], value: &[u8], lease: i64, own_lease: bool) -> Result<i64> {
    let put = vec![json!({"request_put": put_op(key, value, lease)})];
    for _ in 0..PUT_ROUNDS {
        let over_existing = settle::fenced_below(
            g,
            key,
            |x| vec![settle::mod_below(key, x), exists(key)],
            &put,
            |o| o.succeeded,
            |before, first| match (before, settle::puts(first, value, lease)) {
                (Some(_), true) if own_lease => Made::This(Some(first.kv.mod_revision)),
                (Some(_), true) => Made::Maybe,
                _ => Made::NotThis,
            },
            |o| match (o.succeeded, &o.current) {
                (true, _) => Next::Done(Ok(Some(o.revision))),
                (false, None) => Next::Done(Ok(None)),
                (false, Some(_)) => Next::Again,
            },
        )?;
        if let Some(revision) = over_existing {
            return Ok(revision);
        }
        // Absent: a create, which cannot be fenced (sent once).
        let o = settle::unfenced_txn(g, key, vec![revision_is(key, 0)], put.clone())?;
        if o.succeeded {
            return Ok(o.revision);
        }
        // Created meanwhile by another client: a put over it, then.
    }
    Err(Error::unavailable(format!(
        "put of {}: the key kept being created and deleted while it was tried; nothing was written",
        String::from_utf8_lossy(key)
    )))
}

/// The compare "the key exists".
fn exists(key: &[u8]) -> Value {
    json!({"key": encode(key), "target": "VERSION", "result": "GREATER", "version": "0"})
}

/// The compare "mod revision is `if_revision`", or "does not exist" for 0.
fn revision_is(key: &[u8], if_revision: i64) -> Value {
    if if_revision == 0 {
        json!({"key": encode(key), "target": "CREATE", "result": "EQUAL", "create_revision": "0"})
    } else {
        json!({"key": encode(key), "target": "MOD", "result": "EQUAL",
               "mod_revision": if_revision.to_string()})
    }
}

fn condition_failed(key: &[u8], if_revision: i64) -> Error {
    if if_revision == 0 {
        Error::compare_failed(key, "already exists")
    } else {
        Error::compare_failed(
            key,
            &format!("is missing or was written after revision {if_revision}"),
        )
    }
}

pub fn put_if(g: &Gateway, key: &[u8], value: &[u8], lease: i64, if_revision: i64) -> Result<i64> {
    let put = vec![json!({"request_put": put_op(key, value, lease)})];
    if if_revision == 0 {
        return create(g, key, put);
    }
    let o = settle::fenced_txn(g, key, vec![revision_is(key, if_revision)], put)?;
    if o.succeeded {
        return Ok(o.revision);
    }
    if o.earlier_lost {
        // A lost copy can only have made the key's first change after
        // `if_revision`.
        if let Some((before, first)) =
            settle::first_change_above(g, key, if_revision, o.current.as_ref())?
        {
            let fence_held = before.is_some_and(|kv| kv.mod_revision == if_revision);
            if fence_held && settle::puts(&first, value, lease) {
                return Err(settle::unknown(
                    key,
                    format!("the first write after revision {if_revision} (at {}) put the same value; another client may have written it", first.kv.mod_revision),
                ));
            }
        }
    }
    Err(condition_failed(key, if_revision))
}

/// Creates `key` only if it does not exist. "Does not exist" can hold
/// again after a delete: no fence; sent once (see [`settle`]).
fn create(g: &Gateway, key: &[u8], put: Vec<Value>) -> Result<i64> {
    let o = settle::unfenced_txn(g, key, vec![revision_is(key, 0)], put)?;
    if o.succeeded {
        return Ok(o.revision);
    }
    Err(condition_failed(key, 0))
}

pub fn delete_if(g: &Gateway, key: &[u8], if_revision: Option<i64>) -> Result<i64> {
    let delete = vec![json!({"request_delete_range": {"key": encode(key)}})];
    let Some(rev) = if_revision else {
        return delete_unconditionally(g, key, delete);
    };
    let o = settle::fenced_txn(g, key, vec![revision_is(key, rev)], delete)?;
    if o.succeeded && o.deleted > 0 {
        return Ok(o.revision);
    }
    if o.earlier_lost {
        if let Some((before, first)) = settle::first_change_above(g, key, rev, o.current.as_ref())?
        {
            let fence_held = before.is_some_and(|kv| kv.mod_revision == rev);
            if fence_held && first.deleted {
                return Err(settle::unknown(
                    key,
                    format!(
                        "it was deleted after revision {rev} (at {}), by this call or another",
                        first.kv.mod_revision
                    ),
                ));
            }
        }
    }
    match o.current {
        Some(_) => Err(condition_failed(key, rev)),
        None => Err(Error::not_found(key)),
    }
}

/// A delete with no condition, fenced by "mod revision below X" (a copy
/// that finds the key absent deletes nothing; see [`settle`]).
fn delete_unconditionally(g: &Gateway, key: &[u8], delete: Vec<Value>) -> Result<i64> {
    settle::fenced_below(
        g,
        key,
        |x| vec![settle::mod_below(key, x)],
        &delete,
        |o| o.succeeded && o.deleted > 0,
        |before, first| match (before, first.deleted) {
            (Some(_), true) => Made::Maybe,
            _ => Made::NotThis,
        },
        |o| match (o.succeeded, o.deleted) {
            (true, 0) => Next::Done(Err(Error::not_found(key))),
            (true, _) => Next::Done(Ok(o.revision)),
            (false, _) => Next::Again,
        },
    )
}

pub fn delete_prefix(g: &Gateway, prefix: &[u8]) -> Result<Deleted> {
    // Two ranges in one txn: the key itself, and what is below `prefix/`
    // (one range from `prefix` would take `prefix-x` along).
    let body = json!({"success": [
        {"request_delete_range": {"key": encode(prefix)}},
        {"request_delete_range": below(prefix)},
    ]});
    // Not sent again (how many the lost copy deleted could not be told),
    // but given up early on a member that stopped serving.
    let once = g.transport.while_writing(probe(prefix), || {
        g.call::<TxnResponse>("/v3/kv/txn", &body, Retry::IfNotSent)
    });
    match once {
        Ok(r) => Ok(Deleted {
            revision: r.header.revision,
            count: settle::deleted_count(&r.responses),
        }),
        Err(lost) if lost.kind() == ErrorKind::OutcomeUnknown => {
            // Whatever is left can be deleted again safely, but how many
            // the lost attempt deleted cannot be learned: say so.
            Err(Error::outcome_unknown(format!(
                "outcome unknown: {lost}; some keys below {} may have been deleted, how many cannot be told",
                String::from_utf8_lossy(prefix)
            )))
        }
        Err(e) => Err(e),
    }
}
