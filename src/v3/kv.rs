//! Key/value calls: get (with directory listing), put, compare-and-swap,
//! delete.

use serde_json::{json, Value};

use super::gateway::Gateway;
use super::json::{encode, KeyValue, RangeResponse};
use super::lease;
use super::revisions;
use super::settle::{self, Made, Next};
use crate::error::{Error, ErrorKind, Result};
use crate::keys::{children_prefix, immediate_children, prefix_range_end};
use crate::transport::Retry;

/// The key's value: one range read (linearizable). Only when the key has
/// none is the listing of the keys below it read (`keys_only`).
pub fn get(g: &Gateway, key: &[u8]) -> Result<Option<Vec<u8>>> {
    if let Some(kv) = read(g, key)? {
        return Ok(Some(kv.value));
    }
    let prefix = children_prefix(key);
    let body = json!({
        "key": encode(&prefix),
        "range_end": encode(&prefix_range_end(&prefix)),
        "keys_only": true,
    });
    let below: RangeResponse = g.call("/v3/kv/range", &body, Retry::Always)?;
    let children = immediate_children(key, below.kvs.iter().map(|kv| kv.key.as_slice()));
    if children.is_empty() {
        return Ok(None);
    }
    Ok(Some(children.join(&b'\n')))
}

/// Reads the single key `key` (no listing).
pub fn read(g: &Gateway, key: &[u8]) -> Result<Option<KeyValue>> {
    let r: RangeResponse = g.call("/v3/kv/range", &json!({"key": encode(key)}), Retry::Always)?;
    Ok(r.kvs.into_iter().find(|kv| kv.key == key))
}

/// The put request for `key`, under a fresh lease of `ttl` seconds when
/// `ttl > 0`; with the lease (0: none).
fn put_request(g: &Gateway, key: &[u8], value: &[u8], ttl: u32) -> Result<(Value, i64)> {
    let lease = if ttl > 0 {
        lease::grant_for_key(g, ttl, key)?
    } else {
        0
    };
    let mut put = json!({"key": encode(key), "value": encode(value)});
    if lease != 0 {
        put["lease"] = Value::from(lease.to_string());
    }
    Ok((put, lease))
}

/// The original API's set: a plain put ([`revisions::put_with`]), under a
/// fresh lease when `ttl > 0` (a change carrying it is this call's alone).
/// A ttl'd set then retires the lease
/// the key had before ([`retire_previous`]), so that repeated ttl'd sets
/// of a key leave one lease alive, not one per set.
pub fn put(g: &Gateway, key: &[u8], value: &[u8], ttl: u32) -> Result<()> {
    if ttl == 0 {
        return revisions::put(g, key, value, 0).map(drop);
    }
    let lease = lease::grant_for_key(g, ttl, key)?;
    let revision = revisions::put_with(g, key, value, lease, true)?;
    // The set is done; failing to tidy up after it is not its failure
    // (the old lease then expires at the end of its ttl, as before).
    let _ = retire_previous(g, key, revision, lease);
    Ok(())
}

/// After the ttl'd put of `key` at `revision` under `lease`: revokes the
/// lease the key had just before that put, when the library granted it
/// for this key's ttl'd sets ([`lease::made_for_key`]: its ID has the
/// library's mark and this key's bits) and no key is attached to it any
/// more. A lease the program granted (`etcd_lease_grant`), a lock's or an
/// election's, or one still holding another key, is left alone.
///
/// The key as it was before the put is read at `revision - 1` (the
/// put's `prev_kv`, without changing how the put is sent and settled); a
/// compacted revision or any failure leaves the old lease to expire.
fn retire_previous(g: &Gateway, key: &[u8], revision: i64, lease: i64) -> Result<()> {
    if revision <= 1 {
        return Ok(());
    }
    let body = json!({"key": encode(key), "revision": (revision - 1).to_string()});
    let before: RangeResponse = g.call("/v3/kv/range", &body, Retry::Always)?;
    let Some(old) = before.kvs.into_iter().find(|kv| kv.key == key) else {
        return Ok(());
    };
    if old.lease == 0 || old.lease == lease || !lease::made_for_key(old.lease, key) {
        return Ok(());
    }
    if lease::attached_keys(g, old.lease)? == Some(0) {
        lease::revoke(g, old.lease)?;
    }
    Ok(())
}

/// Puts only if the current value is `prev`. "Value is `prev`" can hold
/// again after the key changed, so the txn is fenced by "mod revision
/// below X" as well ([`settle::fenced_below`]); when the key holds `prev`
/// but was written at X or later, it is sent again with a higher X.
pub fn swap(g: &Gateway, key: &[u8], value: &[u8], prev: &[u8], ttl: u32) -> Result<()> {
    let (put, lease) = put_request(g, key, value, ttl)?;
    let value_is_prev =
        json!({"key": encode(key), "target": "VALUE", "result": "EQUAL", "value": encode(prev)});
    let swapped = settle::fenced_below(
        g,
        key,
        |x| vec![value_is_prev.clone(), settle::mod_below(key, x)],
        &[json!({"request_put": put})],
        |o| o.succeeded,
        |before, first| {
            let could_apply = before.is_some_and(|kv| kv.value == prev);
            match (could_apply && settle::puts(first, value, lease), lease != 0) {
                (false, _) => Made::NotThis,
                // A fresh lease is this call's alone: that change is ours.
                (true, true) => Made::This(first.kv.mod_revision),
                (true, false) => Made::Maybe,
            }
        },
        |o| match (&o.current, o.succeeded) {
            (_, true) => Next::Done(Ok(o.revision)),
            (Some(kv), false) if kv.value == prev => Next::Again,
            (_, false) => Next::Done(Err(Error::compare_failed(
                key,
                "does not hold the expected previous value (or does not exist)",
            ))),
        },
    );
    match swapped {
        Ok(revision) => {
            if lease != 0 {
                // As for a ttl'd set: the key's previous lease, if ours.
                let _ = retire_previous(g, key, revision, lease);
            }
            Ok(())
        }
        Err(e) => {
            if lease != 0 && e.is_refusal() {
                // Nothing was written on the lease: give it back.
                let _ = lease::revoke(g, lease);
            }
            Err(e)
        }
    }
}

/// Deletes the single key `key`: true if there was one (settled as an
/// unfenced write).
pub fn delete(g: &Gateway, key: &[u8]) -> Result<bool> {
    match revisions::delete_if(g, key, None) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}
