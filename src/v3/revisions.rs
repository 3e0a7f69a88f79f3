//! The extended API's key/value calls: reads that tell revisions, a
//! prefix listing, puts on a lease, writes conditional on a revision, a
//! prefix delete. Conditional writes whose answer was lost are settled by
//! reading back (SPEC section 2), never repeated blindly.

use serde_json::{json, Value};

use super::gateway::Gateway;
use super::json::{encode, Header, RangeResponse, TxnOpResponse, TxnResponse};
use crate::error::{Error, ErrorKind, Result};
use crate::keys::{children_prefix, prefix_range_end};
use crate::kv::{Deleted, KeyValue, Listing};
use crate::outcome::{settle, ReadBack};
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

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct Written {
    header: Header,
}

pub fn put(g: &Gateway, key: &[u8], value: &[u8], lease: i64) -> Result<i64> {
    // A plain put repeated lands on the same value: safe to resend.
    let w: Written = g.call("/v3/kv/put", &put_op(key, value, lease), Retry::Always)?;
    Ok(w.header.revision)
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
    let txn = json!({
        "compare": [revision_is(key, if_revision)],
        "success": [{"request_put": put_op(key, value, lease)}],
    });
    let attempt = || -> Result<i64> {
        let r: TxnResponse = g.call("/v3/kv/txn", &txn, Retry::IfNotSent)?;
        if r.succeeded {
            return Ok(r.header.revision);
        }
        Err(condition_failed(key, if_revision))
    };
    settle(
        attempt,
        || get_kv(g, key),
        |(current, _)| match current {
            None if if_revision == 0 => ReadBack::NotApplied,
            Some(kv) if if_revision > 0 && kv.mod_revision == if_revision => ReadBack::NotApplied,
            Some(kv) if kv.value == value && kv.lease == lease && kv.mod_revision > if_revision => {
                ReadBack::Applied(kv.mod_revision)
            }
            _ => ReadBack::Rewritten,
        },
    )
}

pub fn delete_if(g: &Gateway, key: &[u8], if_revision: Option<i64>) -> Result<i64> {
    let delete = json!({"key": encode(key)});
    let body = match if_revision {
        None => json!({"success": [{"request_delete_range": delete}]}),
        // A failed compare reads the key: missing or rewritten?
        Some(rev) => json!({
            "compare": [revision_is(key, rev)],
            "success": [{"request_delete_range": delete}],
            "failure": [{"request_range": {"key": encode(key)}}],
        }),
    };
    let attempt = || -> Result<i64> {
        let r: TxnResponse = g.call("/v3/kv/txn", &body, Retry::IfNotSent)?;
        let exists = r
            .responses
            .iter()
            .filter_map(|r| r.response_range.as_ref())
            .any(|range| range.kvs.iter().any(|kv| kv.key == key));
        match (r.succeeded, deleted_count(r.responses)) {
            (true, n) if n > 0 => Ok(r.header.revision),
            (false, _) if exists => Err(condition_failed(key, if_revision.unwrap_or_default())),
            _ => Err(Error::not_found(key)),
        }
    };
    settle(
        attempt,
        || get_kv(g, key),
        |(current, revision)| match current {
            // Gone: our delete went through (a blind resend would have
            // said "not found" about our own success).
            None => ReadBack::Applied(revision),
            Some(kv) if if_revision.is_none_or(|r| r == kv.mod_revision) => ReadBack::NotApplied,
            Some(_) => ReadBack::Rewritten,
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
    match g.call::<TxnResponse>("/v3/kv/txn", &body, Retry::IfNotSent) {
        Ok(r) => Ok(Deleted {
            revision: r.header.revision,
            count: deleted_count(r.responses),
        }),
        Err(lost) if lost.kind() == ErrorKind::OutcomeUnknown => {
            // Whatever is left can be deleted again safely, but how many
            // the lost attempt deleted cannot be learned: say so.
            Err(Error::outcome_unknown(format!(
                "{lost}; some keys below {} may have been deleted, how many cannot be told",
                String::from_utf8_lossy(prefix)
            )))
        }
        Err(e) => Err(e),
    }
}

/// Keys deleted by a txn's delete ranges.
fn deleted_count(responses: Vec<TxnOpResponse>) -> i64 {
    responses
        .into_iter()
        .filter_map(|r| r.response_delete_range)
        .map(|d| d.deleted)
        .sum()
}
