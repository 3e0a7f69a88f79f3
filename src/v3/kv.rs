//! Key/value calls: get (with directory listing), put, compare-and-swap,
//! delete.

use serde::Deserialize;
use serde_json::{json, Value};

use super::gateway::Gateway;
use super::json::{encode, KeyValue, RangeResponse, TxnResponse};
use super::lease;
use crate::error::{Error, Result};
use crate::keys::{children_prefix, immediate_children, prefix_range_end};
use crate::outcome::{settle, ReadBack};
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
/// `ttl > 0`; with the lease, for recognising the write when reading back.
fn put_request(g: &Gateway, key: &[u8], value: &[u8], ttl: u32) -> Result<(Value, i64)> {
    let lease = if ttl > 0 { lease::grant(g, ttl)? } else { 0 };
    let mut put = json!({"key": encode(key), "value": encode(value)});
    if lease != 0 {
        put["lease"] = Value::from(lease);
    }
    Ok((put, lease))
}

pub fn put(g: &Gateway, key: &[u8], value: &[u8], ttl: u32) -> Result<()> {
    let (put, _) = put_request(g, key, value, ttl)?;
    // A plain put repeated lands on the same value: safe to resend.
    let _: Value = g.call("/v3/kv/put", &put, Retry::Always)?;
    Ok(())
}

/// Puts only if the current value is `prev`: one txn comparing the value.
pub fn swap(g: &Gateway, key: &[u8], value: &[u8], prev: &[u8], ttl: u32) -> Result<()> {
    let (put, lease) = put_request(g, key, value, ttl)?;
    let txn = json!({
        "compare": [{"key": encode(key), "target": "VALUE", "result": "EQUAL", "value": encode(prev)}],
        "success": [{"request_put": put}],
    });
    let compare_and_swap = || -> Result<()> {
        let r: TxnResponse = g.call("/v3/kv/txn", &txn, Retry::IfNotSent)?;
        if r.succeeded {
            return Ok(());
        }
        Err(Error::compare_failed(
            key,
            "does not hold the expected previous value (or does not exist)",
        ))
    };
    settle(
        compare_and_swap,
        || read(g, key),
        |current| match current {
            Some(kv) if kv.value == value && kv.lease == lease => ReadBack::Applied(()),
            Some(kv) if kv.value == prev => ReadBack::NotApplied,
            _ => ReadBack::Rewritten,
        },
    )
}

/// Deletes the single key `key`: true if there was one.
pub fn delete(g: &Gateway, key: &[u8]) -> Result<bool> {
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Deleted {
        #[serde(deserialize_with = "super::json::int")]
        deleted: i64,
    }
    let body = json!({"key": encode(key)});
    let delete_once = || -> Result<bool> {
        let r: Deleted = g.call("/v3/kv/deleterange", &body, Retry::IfNotSent)?;
        Ok(r.deleted > 0)
    };
    settle(
        delete_once,
        || read(g, key),
        |current| match current {
            // Gone: our delete went through (a blind resend would have
            // said "not found" about our own success).
            None => ReadBack::Applied(true),
            Some(_) => ReadBack::NotApplied,
        },
    )
}
