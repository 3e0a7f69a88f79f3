//! Key/value calls: get (with directory listing), put, compare-and-swap,
//! delete.

use serde_json::{json, Value};

use super::gateway::Gateway;
use super::json::{encode, KeyValue, RangeResponse};
use super::lease;
use super::{revisions, settle};
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
    let lease = if ttl > 0 { lease::grant(g, ttl)? } else { 0 };
    let mut put = json!({"key": encode(key), "value": encode(value)});
    if lease != 0 {
        put["lease"] = Value::from(lease.to_string());
    }
    Ok((put, lease))
}

/// The original API's set: a plain put (settled as an unfenced write),
/// under a fresh lease when `ttl > 0`. A ttl'd set then retires the lease
/// the key had before ([`retire_previous`]), so that repeated ttl'd sets
/// of a key leave one lease alive, not one per set.
pub fn put(g: &Gateway, key: &[u8], value: &[u8], ttl: u32) -> Result<()> {
    if ttl == 0 {
        return revisions::put(g, key, value, 0).map(drop);
    }
    let lease = lease::grant_for_key(g, ttl, key)?;
    let revision = revisions::put(g, key, value, lease)?;
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

/// How many times a compare-and-swap reads on when the key still holds
/// `prev` but was written after the revision its fence names.
const SWAP_ROUNDS: usize = 8;

/// Puts only if the current value is `prev`. The compare is fenced (see
/// [`super::settle`]): "value is `prev`" can hold again after the key
/// changed, so the txn also asks "mod revision below X", X one above a
/// revision the store had reached before it is sent. Any write to the key
/// at X or later, this one's included, makes every copy fail. When the
/// key holds `prev` but was written at X or later (X was too low), the
/// txn is sent again with X above the revision of that answer.
pub fn swap(g: &Gateway, key: &[u8], value: &[u8], prev: &[u8], ttl: u32) -> Result<()> {
    let (put, lease) = put_request(g, key, value, ttl)?;
    let mut below = g.seen_revision() + 1;
    for _ in 0..SWAP_ROUNDS {
        let compares = vec![
            json!({"key": encode(key), "target": "VALUE", "result": "EQUAL", "value": encode(prev)}),
            json!({"key": encode(key), "target": "MOD", "result": "LESS", "mod_revision": below.to_string()}),
        ];
        let o = settle::fenced_txn(g, key, compares, vec![json!({"request_put": put})])?;
        if o.succeeded {
            return Ok(());
        }
        if o.earlier_lost {
            let fence = below - 1;
            if let Some((before, first)) =
                settle::first_change_above(g, key, fence, o.current.as_ref())?
            {
                let could_apply = before.is_some_and(|kv| kv.value == prev);
                if could_apply && settle::puts(&first, value, lease) {
                    // A fresh lease is this call's alone: that change is ours.
                    if lease != 0 {
                        return Ok(());
                    }
                    return Err(settle::unknown(
                        key,
                        format!("the first write after revision {fence} (at {}) put the same value over the expected one; another client may have written it", first.kv.mod_revision),
                    ));
                }
            }
        }
        match &o.current {
            Some(kv) if kv.value == prev => below = o.revision + 1,
            _ => {
                if lease != 0 {
                    // Nothing was written on the lease: give it back.
                    let _ = lease::revoke(g, lease);
                }
                return Err(Error::compare_failed(
                    key,
                    "does not hold the expected previous value (or does not exist)",
                ));
            }
        }
    }
    // Not a refusal: the key held `prev` at every look.
    Err(Error::unavailable(format!(
        "compare-and-swap on {}: the key kept being rewritten (with the expected value) while comparing; nothing was written",
        String::from_utf8_lossy(key)
    )))
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
