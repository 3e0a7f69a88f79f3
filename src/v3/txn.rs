//! Transactions through `/v3/kv/txn` (SPEC section 8.3): the Rust
//! compares and operations as etcd's JSON, the answers back in op order.
//!
//! A read-only transaction (GETs only, in both branches) is sent again
//! like a read. One that writes is sent once, its member watched while it
//! is slow (`Transport::while_writing`); when its answer is lost it is not
//! sent again: its compares may hold for a second copy, and which copy
//! applied could not be told. The outcome is then unknown.

use serde_json::{json, Value};

use super::gateway::{probe, Gateway};
use super::json::{encode, TxnOpResponse, TxnResponse};
use super::lock;
use super::settle;
use crate::error::{Error, ErrorKind, Result};
use crate::keys::{children_prefix, lock_key, prefix_range_end};
use crate::kv::KeyValue;
use crate::transport::Retry;
use crate::txn::{Compare, CompareOp, Op, OpResult, Target, TxnOutcome};

pub fn txn(g: &Gateway, compares: &[Compare], then: &[Op], otherwise: &[Op]) -> Result<TxnOutcome> {
    let body = json!({
        "compare": compares.iter().map(compare).collect::<Result<Vec<_>>>()?,
        "success": then.iter().flat_map(ops).collect::<Vec<_>>(),
        "failure": otherwise.iter().flat_map(ops).collect::<Vec<_>>(),
    });
    let writes = then.iter().chain(otherwise).any(Op::writes);
    let r: TxnResponse = if writes {
        let first = then
            .iter()
            .chain(otherwise)
            .find_map(op_key)
            .unwrap_or_default();
        let once = g.transport.while_writing(probe(first), || {
            g.call("/v3/kv/txn", &body, Retry::IfNotSent)
        });
        match once {
            Err(e) if e.kind() == ErrorKind::OutcomeUnknown => {
                return Err(settle::unknown(
                    first,
                    format!(
                        "a transaction that writes is not sent again (its compares may hold for a second copy): {e}"
                    ),
                ))
            }
            other => other?,
        }
    } else {
        g.call("/v3/kv/txn", &body, Retry::Always)?
    };
    let ran = if r.succeeded { then } else { otherwise };
    Ok(TxnOutcome {
        succeeded: r.succeeded,
        results: results(ran, r.responses)?,
        revision: r.header.revision,
    })
}

/// The key an operation names (for the liveness probe and messages).
fn op_key(op: &Op) -> Option<&[u8]> {
    match op {
        Op::Get { .. } => None,
        Op::Put { key, .. } | Op::Delete { key, .. } => Some(key),
    }
}

fn compare(c: &Compare) -> Result<Value> {
    Ok(match c {
        Compare::Key { key, target, op } => {
            let result = match op {
                CompareOp::Equal => "EQUAL",
                CompareOp::NotEqual => "NOT_EQUAL",
                CompareOp::Less => "LESS",
                CompareOp::Greater => "GREATER",
            };
            let mut cmp = json!({"key": encode(key), "result": result});
            let (name, field, operand) = match target {
                Target::Value(v) => ("VALUE", "value", Value::from(encode(v))),
                Target::Version(n) => ("VERSION", "version", Value::from(n.to_string())),
                Target::CreateRevision(n) => {
                    ("CREATE", "create_revision", Value::from(n.to_string()))
                }
                Target::ModRevision(n) => ("MOD", "mod_revision", Value::from(n.to_string())),
                Target::Lease(n) => ("LEASE", "lease", Value::from(n.to_string())),
            };
            cmp["target"] = Value::from(name);
            cmp[field] = operand;
            cmp
        }
        // The leader key still has the create revision of this leadership
        // (etcd's own proclaim compares the same).
        Compare::Leader(l) => json!({"key": encode(&l.key), "target": "CREATE", "result": "EQUAL",
                                     "create_revision": l.revision.to_string()}),
        // The lock key of that index still exists on its lease: a missing
        // key's lease compares as 0.
        Compare::LockHeld { key, index } => {
            let lease = lock::parse_index(index)
                .map_err(|e| Error::bad_argument(e.message().to_string()))?;
            let held = lock_key(key, &format!("{:x}", lease as u64));
            json!({"key": encode(&held), "target": "LEASE", "result": "EQUAL",
                   "lease": lease.to_string()})
        }
    })
}

/// The range below `key/` (what a listing of `key` reads).
fn below(key: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let start = children_prefix(key);
    let end = prefix_range_end(&start);
    (start, end)
}

/// etcd's operations for one of ours: a prefix delete is two (the key,
/// and the keys below it: one range from the key would take `key-x`
/// along).
fn ops(op: &Op) -> Vec<Value> {
    match op {
        Op::Get {
            key,
            prefix,
            keys_only,
            count_only,
        } => {
            let mut range = if *prefix {
                let (start, end) = below(key);
                json!({"key": encode(&start), "range_end": encode(&end)})
            } else {
                json!({"key": encode(key)})
            };
            if *keys_only {
                range["keys_only"] = Value::from(true);
            }
            if *count_only {
                range["count_only"] = Value::from(true);
            }
            vec![json!({"request_range": range})]
        }
        Op::Put { key, value, lease } => {
            let mut put = json!({"key": encode(key), "value": encode(value)});
            if *lease != 0 {
                put["lease"] = Value::from(lease.to_string());
            }
            vec![json!({"request_put": put})]
        }
        Op::Delete { key, prefix } => {
            let mut deletes = vec![json!({"request_delete_range": {"key": encode(key)}})];
            if *prefix {
                let (start, end) = below(key);
                deletes.push(json!({"request_delete_range":
                    {"key": encode(&start), "range_end": encode(&end)}}));
            }
            deletes
        }
    }
}

/// The results of the operations that ran, from etcd's responses (one or
/// two per operation, as [`ops`] made them).
fn results(ran: &[Op], responses: Vec<TxnOpResponse>) -> Result<Vec<OpResult>> {
    let mut responses = responses.into_iter();
    let mut next = || {
        responses.next().ok_or_else(|| {
            Error::bad_response("transaction answered fewer responses than it had operations")
        })
    };
    ran.iter()
        .map(|op| {
            Ok(match op {
                Op::Get { count_only, .. } => {
                    let range = next()?.response_range.unwrap_or_default();
                    let kvs = if *count_only {
                        Vec::new()
                    } else {
                        range.kvs.into_iter().map(KeyValue::from).collect()
                    };
                    let count = range.count.max(kvs.len() as i64);
                    OpResult::Get { kvs, count }
                }
                Op::Put { .. } => {
                    next()?;
                    OpResult::Put
                }
                Op::Delete { prefix, .. } => {
                    let mut deleted = next()?.response_delete_range.unwrap_or_default().deleted;
                    if *prefix {
                        deleted += next()?.response_delete_range.unwrap_or_default().deleted;
                    }
                    OpResult::Delete { deleted }
                }
            })
        })
        .collect()
}
