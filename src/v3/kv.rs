//! Key/value calls: get (with directory listing), set, compare-and-swap,
//! delete, and the leader from maintenance status.

use serde::Deserialize;
use serde_json::{json, Value};

use super::json::{encode, uint, KeyValue, RangeResponse, TxnResponse};
use super::{lease, V3};
use crate::error::{Error, ErrorKind, Result};
use crate::keys::{children_prefix, immediate_children, is_root, prefix_range_end};
use crate::transport::Retry;

/// One request answers both questions a get asks (the key's value, and the
/// keys below it for a listing): a read-only txn, served like a range read
/// (linearizable, no raft proposal).
pub fn get(v3: &V3, key: &[u8]) -> Result<Option<Vec<u8>>> {
    let prefix = children_prefix(key);
    let body = json!({"success": [
        {"request_range": {"key": encode(key)}},
        {"request_range": {
            "key": encode(&prefix),
            "range_end": encode(&prefix_range_end(&prefix)),
            "keys_only": true,
        }},
    ]});
    let txn: TxnResponse = v3.call("/v3/kv/txn", &body, Retry::Always)?;
    let mut ranges = txn.responses.into_iter().filter_map(|r| r.response_range);
    let (Some(exact), Some(below)) = (ranges.next(), ranges.next()) else {
        return Err(Error::bad_response(
            "txn answer without its two ranges",
        ));
    };
    if let Some(kv) = exact.kvs.into_iter().find(|kv| kv.key == key) {
        return Ok(Some(kv.value));
    }
    let children = immediate_children(key, below.kvs.iter().map(|kv| kv.key.as_slice()));
    if children.is_empty() {
        return Ok(None);
    }
    Ok(Some(children.join(&b'\n')))
}

/// Reads the single key `key` (no listing).
fn read(v3: &V3, key: &[u8]) -> Result<Option<KeyValue>> {
    let r: RangeResponse = v3.call("/v3/kv/range", &json!({"key": encode(key)}), Retry::Always)?;
    Ok(r.kvs.into_iter().find(|kv| kv.key == key))
}

pub fn set(v3: &V3, key: &[u8], value: &[u8], prev: Option<&[u8]>, ttl: u32) -> Result<()> {
    if is_root(key) {
        return Err(Error::refused(
            "/ is the root directory: it cannot hold a value",
        ));
    }
    let lease = if ttl > 0 { lease::grant(v3, ttl)? } else { 0 };
    let mut put = json!({"key": encode(key), "value": encode(value)});
    if lease != 0 {
        put["lease"] = Value::from(lease);
    }
    let Some(prev) = prev else {
        // A plain put repeated lands on the same value: safe to resend.
        let _: Value = v3.call("/v3/kv/put", &put, Retry::Always)?;
        return Ok(());
    };
    let txn = json!({
        "compare": [{"key": encode(key), "target": "VALUE", "result": "EQUAL", "value": encode(prev)}],
        "success": [{"request_put": put}],
    });
    let compare_and_swap = || -> Result<bool> {
        let r: TxnResponse = v3.call("/v3/kv/txn", &txn, Retry::IfNotSent)?;
        Ok(r.succeeded)
    };
    let refused = || {
        Error::refused(format!(
            "compare failed: {} does not hold the expected previous value (or does not exist)",
            String::from_utf8_lossy(key)
        ))
    };
    match compare_and_swap() {
        Ok(true) => Ok(()),
        Ok(false) => Err(refused()),
        Err(why) if why.kind() == ErrorKind::OutcomeUnknown => {
            // Sent, answer lost: a blind resend would fail its compare
            // against our own first attempt. Read the key to learn which.
            let current = read(v3, key).map_err(|e| Error::unknown_outcome(&why, &e))?;
            match current {
                Some(kv) if kv.value == value && kv.lease == lease => Ok(()),
                Some(kv) if kv.value == prev => match compare_and_swap() {
                    Ok(true) => Ok(()),
                    Ok(false) => Err(refused()),
                    Err(e) => Err(e),
                },
                _ => Err(Error::outcome_unknown(format!(
                    "outcome unknown: {why}; the key no longer holds the expected previous value"
                ))),
            }
        }
        Err(e) => Err(e),
    }
}

pub fn delete(v3: &V3, key: &[u8]) -> Result<()> {
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Deleted {
        #[serde(deserialize_with = "super::json::int")]
        deleted: i64,
    }
    let body = json!({"key": encode(key)});
    let delete_once = || -> Result<()> {
        let r: Deleted = v3.call("/v3/kv/deleterange", &body, Retry::IfNotSent)?;
        if r.deleted > 0 {
            Ok(())
        } else {
            Err(Error::refused(format!(
                "key {} not found",
                String::from_utf8_lossy(key)
            )))
        }
    };
    match delete_once() {
        Err(why) if why.kind() == ErrorKind::OutcomeUnknown => match read(v3, key) {
            // Gone: our delete went through (a blind resend would have
            // said "not found" about our own success).
            Ok(None) => Ok(()),
            Ok(Some(_)) => delete_once(),
            Err(e) => Err(Error::unknown_outcome(&why, &e)),
        },
        other => other,
    }
}

pub fn leader(v3: &V3) -> Result<String> {
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Status {
        #[serde(deserialize_with = "uint")]
        leader: u64,
        errors: Vec<String>,
    }
    let s: Status = v3.call("/v3/maintenance/status", &json!({}), Retry::Always)?;
    if s.leader == 0 {
        let why = if s.errors.is_empty() {
            "no leader".to_string()
        } else {
            s.errors.join(", ")
        };
        return Err(Error::unavailable(format!("leader unknown: {why}")));
    }
    Ok(format!("{:x}", s.leader))
}
