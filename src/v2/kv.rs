//! Key calls on `/v2/keys`: get (with directory listing), put,
//! compare-and-swap, delete.

use super::json::Node;
use super::wire::{code, decode, form, key_path, utf8};
use crate::error::{Error, Result};
use crate::keys::immediate_children;
use crate::outcome::{settle, ReadBack};
use crate::transport::{Request, Retry, Transport};

/// Reads are `quorum=true`: linearizable, as on v3 (a plain v2 GET answers
/// from the member's local store, which may lag).
pub fn get(t: &Transport, key: &[u8]) -> Result<Option<Vec<u8>>> {
    Ok(read(t, key)?.and_then(|node| value_or_listing(key, node)))
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
pub(super) fn read(t: &Transport, key: &[u8]) -> Result<Option<Node>> {
    let path = format!("{}?quorum=true", key_path(key)?);
    let reply = t.send(&Request::get(&path))?;
    match decode(&reply)? {
        Ok(answer) => Ok(Some(answer.node)),
        Err(r) if matches!(r.code, code::KEY_NOT_FOUND | code::NOT_A_DIRECTORY) => Ok(None),
        Err(r) => Err(r.into()),
    }
}

/// The form fields of a write of `value` for `ttl` seconds.
fn write_fields<'a>(value: &'a str, ttl: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut fields = vec![("value", value)];
    // etcd reads ttl=0 as "expire now": only send a real one.
    if ttl != "0" {
        fields.push(("ttl", ttl));
    }
    fields
}

pub fn put(t: &Transport, key: &[u8], value: &[u8], ttl: u32) -> Result<()> {
    let path = key_path(key)?;
    let value = utf8(value, "value")?;
    let ttl = ttl.to_string();
    let body = form(&write_fields(value, &ttl));
    // A plain put repeated lands on the same value: safe to resend.
    let reply = t.send(&Request::put_form(&path, body.as_bytes()))?;
    decode(&reply)?.map(drop).map_err(Error::from)
}

pub fn swap(t: &Transport, key: &[u8], value: &[u8], prev: &[u8], ttl: u32) -> Result<()> {
    let path = key_path(key)?;
    let value = utf8(value, "value")?;
    let prev = utf8(prev, "previous value")?;
    let ttl = ttl.to_string();
    let fields = write_fields(value, &ttl);
    if prev.is_empty() {
        swap_empty(t, key, &path, value, &fields)
    } else {
        swap_value(t, key, &path, value, prev, &fields)
    }
}

/// Compare-and-swap on the value: one PUT with `prevValue`.
fn swap_value(
    t: &Transport,
    key: &[u8],
    path: &str,
    value: &str,
    prev: &str,
    fields: &[(&str, &str)],
) -> Result<()> {
    let mut fields = fields.to_vec();
    fields.push(("prevValue", prev));
    let body = form(&fields);
    let request = Request::put_form(path, body.as_bytes()).retry(Retry::IfNotSent);
    let attempt = || -> Result<()> {
        match decode(&t.send(&request)?)? {
            Ok(_) => Ok(()),
            Err(r) if r.code == code::COMPARE_FAILED => Err(Error::compare_failed(
                key,
                &format!("does not hold the expected previous value ({})", r.cause),
            )),
            Err(r) if r.code == code::KEY_NOT_FOUND => {
                Err(Error::compare_failed(key, "does not exist"))
            }
            Err(r) => Err(r.into()),
        }
    };
    settle(
        attempt,
        || read(t, key),
        |current| match current {
            Some(n) if !n.dir && n.value.as_deref() == Some(value) => ReadBack::Applied(()),
            Some(n) if !n.dir && n.value.as_deref() == Some(prev) => ReadBack::NotApplied,
            _ => ReadBack::Rewritten,
        },
    )
}

/// Compare-and-swap against an empty previous value. etcd refuses an
/// empty `prevValue` (errorCode 201, "prevValue is Required"), so: read
/// the key, check its value is empty, and PUT with `prevIndex` set to the
/// modifiedIndex read. Every write changes modifiedIndex, so the PUT
/// applies only if the key still holds the value we checked — the same
/// guarantee as `prevValue`. A concurrent rewrite in between makes it try
/// again (a few times) from the new read.
fn swap_empty(
    t: &Transport,
    key: &[u8],
    path: &str,
    value: &str,
    fields: &[(&str, &str)],
) -> Result<()> {
    const ATTEMPTS: usize = 3;
    for _ in 0..ATTEMPTS {
        let node = match read(t, key)? {
            Some(n) if !n.dir && n.value.as_deref().unwrap_or("").is_empty() => n,
            Some(n) if n.dir => return Err(Error::compare_failed(key, "is a directory")),
            Some(_) => {
                return Err(Error::compare_failed(
                    key,
                    "does not hold the expected previous value (\"\")",
                ))
            }
            None => return Err(Error::compare_failed(key, "does not exist")),
        };
        let index = node.modified_index.to_string();
        let mut f = fields.to_vec();
        f.push(("prevIndex", index.as_str()));
        let body = form(&f);
        let request = Request::put_form(path, body.as_bytes()).retry(Retry::IfNotSent);
        // Ok(false): rewritten since our read, look again.
        let attempt = || -> Result<bool> {
            match decode(&t.send(&request)?)? {
                Ok(_) => Ok(true),
                Err(r) if r.code == code::COMPARE_FAILED => Ok(false),
                Err(r) if r.code == code::KEY_NOT_FOUND => {
                    Err(Error::compare_failed(key, "does not exist"))
                }
                Err(r) => Err(r.into()),
            }
        };
        let swapped = settle(
            attempt,
            || read(t, key),
            |current| match current {
                // Untouched since our read: our PUT did not apply.
                Some(n) if n.modified_index == node.modified_index => ReadBack::Applied(false),
                Some(n) if !n.dir && n.value.as_deref() == Some(value) => ReadBack::Applied(true),
                _ => ReadBack::Rewritten,
            },
        )?;
        if swapped {
            return Ok(());
        }
    }
    Err(Error::compare_failed(
        key,
        "kept being rewritten while comparing against an empty value",
    ))
}

/// Deletes the single key `key`: true if there was one. A directory is
/// refused ("Not a file", errorCode 102), as on v3 where only a single
/// key is ever deleted.
pub fn delete(t: &Transport, key: &[u8]) -> Result<bool> {
    let path = key_path(key)?;
    let request = Request::delete(&path).retry(Retry::IfNotSent);
    let delete_once = || -> Result<bool> {
        match decode(&t.send(&request)?)? {
            Ok(_) => Ok(true),
            Err(r) if r.code == code::KEY_NOT_FOUND => Ok(false),
            Err(r) => Err(r.into()),
        }
    };
    settle(
        delete_once,
        || read(t, key),
        |current| match current {
            // Gone: our delete went through (a blind resend would have
            // said "not found" about our own success).
            None => ReadBack::Applied(true),
            Some(_) => ReadBack::NotApplied,
        },
    )
}
