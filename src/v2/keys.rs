//! Key calls on `/v2/keys`: get (with directory listing), set,
//! compare-and-swap, delete.

use super::json::Node;
use super::{code, decode, form, key_path, utf8, V2};
use crate::error::{Error, ErrorKind, Result};
use crate::keys::{immediate_children, is_root};
use crate::transport::{Method, Retry};

/// Reads are `quorum=true`: linearizable, as on v3 (a plain v2 GET answers
/// from the member's local store, which may lag).
pub fn get(v2: &V2, key: &[u8]) -> Result<Option<Vec<u8>>> {
    Ok(read(v2, key)?.and_then(|node| value_or_listing(key, node)))
}

/// A file's value; a directory's immediate children (canonical paths,
/// sorted, `_` names left out, joined by `\n`); `None` for a directory
/// with nothing to list, as v3 answers when nothing is below a key.
fn value_or_listing(key: &[u8], node: Node) -> Option<Vec<u8>> {
    if !node.dir {
        return Some(node.value.unwrap_or_default().into_bytes());
    }
    let children = immediate_children(
        key,
        node.nodes
            .iter()
            .filter_map(|n| n.key.as_deref())
            .map(str::as_bytes),
    );
    if children.is_empty() {
        return None;
    }
    Some(children.join(&b'\n'))
}

/// The node at `key` (one level of children for a directory), `None` when
/// there is none (missing, or a parent is a file).
pub(super) fn read(v2: &V2, key: &[u8]) -> Result<Option<Node>> {
    let path = format!("{}?quorum=true", key_path(key)?);
    let reply = v2
        .transport
        .request(Method::Get, &path, b"", Retry::Always)?;
    match decode(&reply)? {
        Ok(answer) => Ok(Some(answer.node)),
        Err(r) if matches!(r.code, code::KEY_NOT_FOUND | code::NOT_A_DIRECTORY) => Ok(None),
        Err(r) => Err(r.into()),
    }
}

pub fn set(v2: &V2, key: &[u8], value: &[u8], prev: Option<&[u8]>, ttl: u32) -> Result<()> {
    let path = key_path(key)?;
    let value = utf8(value, "value")?;
    let prev = prev.map(|p| utf8(p, "previous value")).transpose()?;
    if is_root(key) {
        return Err(Error::refused(
            "/ is the root directory: it cannot hold a value",
        ));
    }
    let ttl = ttl.to_string();
    let mut fields = vec![("value", value)];
    // etcd reads ttl=0 as "expire now": only send a real one.
    if ttl != "0" {
        fields.push(("ttl", ttl.as_str()));
    }
    match prev {
        None => {
            // A plain put repeated lands on the same value: safe to resend.
            let reply = v2.transport.request(
                Method::Put,
                &path,
                form(&fields).as_bytes(),
                Retry::Always,
            )?;
            decode(&reply)?.map(drop).map_err(Error::from)
        }
        Some("") => swap_empty(v2, key, &path, value, &fields),
        Some(prev) => swap(v2, key, &path, value, prev, &fields),
    }
}

fn compare_failed(key: &[u8], why: &str) -> Error {
    Error::refused(format!(
        "compare failed: {} {why}",
        String::from_utf8_lossy(key)
    ))
}

/// Compare-and-swap on the value: one PUT with `prevValue`.
fn swap(
    v2: &V2,
    key: &[u8],
    path: &str,
    value: &str,
    prev: &str,
    fields: &[(&str, &str)],
) -> Result<()> {
    let mut fields = fields.to_vec();
    fields.push(("prevValue", prev));
    let body = form(&fields);
    let attempt = || -> Result<()> {
        let reply = v2
            .transport
            .request(Method::Put, path, body.as_bytes(), Retry::IfNotSent)?;
        match decode(&reply)? {
            Ok(_) => Ok(()),
            Err(r) if r.code == code::COMPARE_FAILED => Err(compare_failed(
                key,
                &format!("does not hold the expected previous value ({})", r.cause),
            )),
            Err(r) if r.code == code::KEY_NOT_FOUND => Err(compare_failed(key, "does not exist")),
            Err(r) => Err(r.into()),
        }
    };
    match attempt() {
        Err(why) if why.kind() == ErrorKind::OutcomeUnknown => {
            // Sent, answer lost: a blind resend would fail its compare
            // against our own first attempt. Read the key to learn which.
            match read(v2, key).map_err(|e| Error::unknown_outcome(&why, &e))? {
                Some(n) if !n.dir && n.value.as_deref() == Some(value) => Ok(()),
                Some(n) if !n.dir && n.value.as_deref() == Some(prev) => attempt(),
                _ => Err(Error::outcome_unknown(format!(
                    "outcome unknown: {why}; the key no longer holds the expected previous value"
                ))),
            }
        }
        other => other,
    }
}

/// Compare-and-swap against an empty previous value. etcd refuses an
/// empty `prevValue` (errorCode 201, "prevValue is Required"), so: read
/// the key, check its value is empty, and PUT with `prevIndex` set to the
/// modifiedIndex read. Every write changes modifiedIndex, so the PUT
/// applies only if the key still holds the value we checked — the same
/// guarantee as `prevValue`. A concurrent rewrite in between makes it try
/// again (a few times) from the new read.
fn swap_empty(v2: &V2, key: &[u8], path: &str, value: &str, fields: &[(&str, &str)]) -> Result<()> {
    const ATTEMPTS: usize = 3;
    for _ in 0..ATTEMPTS {
        let node = match read(v2, key)? {
            Some(n) if !n.dir && n.value.as_deref().unwrap_or("").is_empty() => n,
            Some(n) if n.dir => return Err(compare_failed(key, "is a directory")),
            Some(_) => {
                return Err(compare_failed(
                    key,
                    "does not hold the expected previous value (\"\")",
                ))
            }
            None => return Err(compare_failed(key, "does not exist")),
        };
        let index = node.modified_index.to_string();
        let mut f = fields.to_vec();
        f.push(("prevIndex", index.as_str()));
        let sent = v2
            .transport
            .request(Method::Put, path, form(&f).as_bytes(), Retry::IfNotSent);
        match sent {
            Ok(reply) => match decode(&reply)? {
                Ok(_) => return Ok(()),
                // Rewritten since our read: look again.
                Err(r) if r.code == code::COMPARE_FAILED => continue,
                Err(r) if r.code == code::KEY_NOT_FOUND => {
                    return Err(compare_failed(key, "does not exist"))
                }
                Err(r) => return Err(r.into()),
            },
            Err(why) if why.kind() == ErrorKind::OutcomeUnknown => {
                match read(v2, key).map_err(|e| Error::unknown_outcome(&why, &e))? {
                    // Untouched since our read: our PUT did not apply.
                    Some(n) if n.modified_index == node.modified_index => continue,
                    Some(n) if !n.dir && n.value.as_deref() == Some(value) => return Ok(()),
                    _ => {
                        return Err(Error::outcome_unknown(format!(
                            "outcome unknown: {why}; the key no longer holds the expected previous value"
                        )))
                    }
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(compare_failed(
        key,
        "kept being rewritten while comparing against an empty value",
    ))
}

pub fn delete(v2: &V2, key: &[u8]) -> Result<()> {
    let path = key_path(key)?;
    let delete_once = || -> Result<()> {
        let reply = v2
            .transport
            .request(Method::Delete, &path, b"", Retry::IfNotSent)?;
        match decode(&reply)? {
            Ok(_) => Ok(()),
            Err(r) if r.code == code::KEY_NOT_FOUND => Err(Error::refused(format!(
                "key {} not found",
                String::from_utf8_lossy(key)
            ))),
            // A directory: "Not a file" (errorCode 102), refused as on v3
            // where only a single key is ever deleted.
            Err(r) => Err(r.into()),
        }
    };
    match delete_once() {
        Err(why) if why.kind() == ErrorKind::OutcomeUnknown => match read(v2, key) {
            // Gone: our delete went through (a blind resend would have
            // said "not found" about our own success).
            Ok(None) => Ok(()),
            Ok(Some(_)) => delete_once(),
            Err(e) => Err(Error::unknown_outcome(&why, &e)),
        },
        other => other,
    }
}
