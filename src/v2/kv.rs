//! Key calls on `/v2/keys`: get (with directory listing), put,
//! compare-and-swap, delete.

use super::json::{Answer, Node};
use super::watch::{self, Waited};
use super::wire::{code, decode, form, key_path, utf8};
use crate::error::{Error, ErrorKind, Result};
use crate::keys::immediate_children;

use crate::transport::{Method, Probe, Reply, Request, Retry, Transport};

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

/// A write without a fence (a create, or a write v2 refuses anyway):
/// sent once, its member asked
/// whether it still serves when the answer is slow. A lost answer is an
/// unknown outcome, never sent again (a copy held by a member cut off from
/// its cluster may still be applied).
fn send_unfenced(t: &Transport, key: &[u8], path: &str, request: Request) -> Result<Reply> {
    let probe = Probe {
        method: Method::Get,
        path: format!("{path}?quorum=true"),
        body: Vec::new(),
    };
    match t.while_writing(probe, || t.send(&request.retry(Retry::IfNotSent))) {
        Err(e) if e.kind() == ErrorKind::OutcomeUnknown => Err(unknown(
            key,
            format!("it is not sent again (a copy held by a member cut off from its cluster may still be applied): {e}"),
        )),
        other => other,
    }
}

/// The first change to `path` at index `from` or above.
fn first_change(t: &Transport, key: &[u8], path: &str, from: u64) -> Result<Answer> {
    match watch::wait(t, path, false, from) {
        Ok(Waited::Change(answer)) => Ok(answer),
        Ok(Waited::Cleared(why)) => Err(unknown(key, format!("its history is gone: {why}"))),
        Err(e) => Err(unknown(key, format!("its history could not be read: {e}"))),
    }
}

/// True when a change put `value` (what a write of ours would have made).
fn puts(change: &Answer, value: &str) -> bool {
    matches!(
        change.action.as_str(),
        "set" | "create" | "update" | "compareAndSwap"
    ) && !change.refresh
        && change.node.value.as_deref() == Some(value)
}

fn unknown(key: &[u8], why: impl std::fmt::Display) -> Error {
    Error::outcome_unknown(format!(
        "outcome unknown: the answer to a write of {} was lost, and {why}; read the key, then decide",
        String::from_utf8_lossy(key)
    ))
}

/// How many times a fenced write reads the key again when it was
/// rewritten between the read and the write.
const FENCE_ROUNDS: usize = 8;

/// Sends `request`, a write carrying `prevIndex` = `index` (the
/// modifiedIndex just read), fenced: every write changes modifiedIndex,
/// so at most one copy can apply, and only as the key's first change
/// after `index`; it is sent again like a read when its answer is lost.
/// True: applied. False: the key changed after `index`, not by a lost
/// copy of this write (read it again). `like_this` is true for a change
/// this write would have made: such a first change after a lost copy is
/// an unknown outcome (another client may have made it).
fn send_fenced_at(
    t: &Transport,
    key: &[u8],
    path: &str,
    index: u64,
    request: Request,
    like_this: impl Fn(&Answer) -> bool,
) -> Result<bool> {
    let sent = t.send_tracked(&request.retry(Retry::Fenced))?;
    match decode(&sent.reply)? {
        Ok(_) => return Ok(true),
        Err(r) if matches!(r.code, code::COMPARE_FAILED | code::KEY_NOT_FOUND) => {}
        Err(r) => return Err(r.into()),
    }
    if sent.earlier_lost {
        let first = first_change(t, key, path, index + 1)?;
        if like_this(&first) {
            return Err(unknown(
                key,
                format!(
                    "the first change after index {index} (at {}) is what this write would have made; another client may have made it",
                    first.node.modified_index
                ),
            ));
        }
    }
    Ok(false)
}

fn rewritten(key: &[u8]) -> Error {
    Error::unavailable(format!(
        "write of {}: the key kept being rewritten while it was tried; nothing was written",
        String::from_utf8_lossy(key)
    ))
}

/// A plain set, fenced while the key exists: read it (a quorum read), then
/// PUT with `prevIndex` ([`send_fenced_at`]). An absent key is created
/// with `prevExist=false`, which cannot be fenced ("does not exist" holds
/// again after a delete): sent once ([`send_unfenced`]).
pub fn put(t: &Transport, key: &[u8], value: &[u8], ttl: u32) -> Result<()> {
    let path = key_path(key)?;
    let value = utf8(value, "value")?;
    let ttl = ttl.to_string();
    let fields = write_fields(value, &ttl);
    for _ in 0..FENCE_ROUNDS {
        let node = read(t, key)?;
        let mut f = fields.clone();
        let index;
        match &node {
            // etcd refuses a value over a directory ("Not a file").
            Some(n) if n.dir => {
                let body = form(&f);
                let reply =
                    send_unfenced(t, key, &path, Request::put_form(&path, body.as_bytes()))?;
                return decode(&reply)?.map(drop).map_err(Error::from);
            }
            Some(n) => {
                index = n.modified_index.to_string();
                f.push(("prevIndex", index.as_str()));
            }
            None => f.push(("prevExist", "false")),
        }
        let body = form(&f);
        let request = Request::put_form(&path, body.as_bytes());
        match node {
            Some(n) => {
                if send_fenced_at(t, key, &path, n.modified_index, request, |c| puts(c, value))? {
                    return Ok(());
                }
            }
            None => match decode(&send_unfenced(t, key, &path, request)?)? {
                Ok(_) => return Ok(()),
                // Created meanwhile by another client: a set over it, then.
                Err(r) if r.code == code::NODE_EXIST => {}
                Err(r) => return Err(r.into()),
            },
        }
    }
    Err(rewritten(key))
}

/// Compare-and-swap on the value, fenced: read the key, check its value,
/// and PUT with `prevIndex` set to the modifiedIndex read. Every write
/// changes modifiedIndex, so the PUT applies only if the key still holds
/// the value checked, and at most one copy of it can apply — only as the
/// key's first change after that index. (A `prevValue` compare can hold
/// again after the key changed, so a lost copy of it could never be
/// settled; etcd also refuses an empty `prevValue`.) A rewrite between
/// read and PUT makes it read again.
pub fn swap(t: &Transport, key: &[u8], value: &[u8], prev: &[u8], ttl: u32) -> Result<()> {
    let path = key_path(key)?;
    let value = utf8(value, "value")?;
    let prev = utf8(prev, "previous value")?;
    let ttl = ttl.to_string();
    let fields = write_fields(value, &ttl);
    for _ in 0..FENCE_ROUNDS {
        let node = match read(t, key)? {
            Some(n) if n.dir => return Err(Error::compare_failed(key, "is a directory")),
            Some(n) if n.value.as_deref().unwrap_or("") == prev => n,
            Some(_) => {
                return Err(Error::compare_failed(
                    key,
                    &format!("does not hold the expected previous value ({prev:?})"),
                ))
            }
            None => return Err(Error::compare_failed(key, "does not exist")),
        };
        let index = node.modified_index.to_string();
        let mut f = fields.clone();
        f.push(("prevIndex", index.as_str()));
        let body = form(&f);
        let request = Request::put_form(&path, body.as_bytes());
        if send_fenced_at(t, key, &path, node.modified_index, request, |c| {
            puts(c, value)
        })? {
            return Ok(());
        }
        // Rewritten since our read (and not by us): look again.
    }
    Err(rewritten(key))
}

/// Deletes the single key `key`: true if there was one. A directory is
/// refused ("Not a file", errorCode 102), as on v3 where only a single
/// key is ever deleted. Fenced: read the key, then DELETE with
/// `prevIndex` ([`send_fenced_at`]); an absent key is "not found" at that
/// read.
pub fn delete(t: &Transport, key: &[u8]) -> Result<bool> {
    let path = key_path(key)?;
    for _ in 0..FENCE_ROUNDS {
        let node = match read(t, key)? {
            None => return Ok(false),
            Some(n) if n.dir => {
                // etcd refuses it ("Not a file"): nothing to settle.
                return match decode(&send_unfenced(t, key, &path, Request::delete(&path))?)? {
                    Ok(_) => Ok(true),
                    Err(r) if r.code == code::KEY_NOT_FOUND => Ok(false),
                    Err(r) => Err(r.into()),
                };
            }
            Some(n) => n,
        };
        let query = format!("{path}?prevIndex={}", node.modified_index);
        let deleted = send_fenced_at(
            t,
            key,
            &path,
            node.modified_index,
            Request::delete(&query),
            |c| matches!(c.action.as_str(), "delete" | "compareAndDelete" | "expire"),
        )?;
        if deleted {
            return Ok(true);
        }
    }
    Err(rewritten(key))
}
