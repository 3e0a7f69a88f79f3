//! Locks on v2, built from in-order keys, TTLs and waits (etcd's old lock
//! module, `/mod/v2/lock`, is gone).
//!
//! The lock `k` is the directory `keys::lock_name(k)` (`/_locks/...`, the
//! same name as on v3). Each caller queues by creating an in-order key in
//! it (`POST`, value = a token of its own, `ttl` = the lock's ttl); the
//! waiter with the lowest createdIndex holds the lock. A waiter watches
//! the directory and looks again when the waiter just ahead of it (or its
//! own key) changes — so a release or an expiry wakes exactly the next in
//! line. While waiting, a background thread refreshes the waiter's TTL
//! (`refresh=true&prevExist=true`); once it holds the lock, the caller
//! renews, as with the original library. The lock's index is the waiter
//! key's createdIndex in decimal (the key is the lock name, `/`, and that
//! index written on 20 digits), as the original lock module's was.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use super::json::Node;
use super::kv;
use super::watch::{wait, Waited};
use super::wire::{code, decode, etcd_index, form, key_path, utf8};
use crate::error::{Error, ErrorKind, Result};
use crate::keys::{canonical, lock_name};
use crate::outcome::{settle, ReadBack};
use crate::transport::{Request, Retry, Transport, Wait};

/// The shortest lock ttl, as on v3 (etcd's shortest lease): a ttl of 1
/// behaves as 2, which also leaves room for v2's expiry lag (~0.5 s).
const MIN_TTL: u32 = 2;

pub fn lock(t: &Transport, key: &[u8], ttl: u32) -> Result<String> {
    let ttl = ttl.max(MIN_TTL);
    let name = lock_name(key);
    let dir = key_path(&name)?;
    let token = owner_token();
    let me = enqueue(t, &dir, &token, ttl)?;
    let mine = me
        .key
        .clone()
        .ok_or_else(|| Error::bad_response("lock waiter created without a key"))?;
    let my_path = key_path(mine.as_bytes())?;
    let acquired = std::thread::scope(|scope| {
        let (stop, stopped) = mpsc::channel::<()>();
        // While we wait, nobody else refreshes our place in the queue.
        // v2 TTLs are not extended when the leader changes (v3 leases
        // are), so a refresh stuck on a member that lost its leader must
        // not use up the ttl: each attempt gets a third of it, and a
        // failed round is tried again soon.
        let period = Duration::from_millis(u64::from(ttl) * 1000 / 3);
        let attempt = period.clamp(Duration::from_millis(500), t.config().request_timeout);
        let refreshed = my_path.as_str();
        scope.spawn(move || {
            let mut pause = period;
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(pause) {
                pause = match refresh(t, refreshed, ttl, Some(attempt)) {
                    Err(e)
                        if matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::BadResponse) =>
                    {
                        Duration::from_millis(200)
                    }
                    _ => period,
                };
            }
        });
        let result = wait_turn(t, key, &dir, &mine);
        drop(stop);
        result
    });
    match acquired {
        Ok(()) => Ok(me.created_index.to_string()),
        Err(e) => {
            // Leave nothing behind: a waiter that gives up leaves the queue.
            let _ = t.send(&Request::delete(&my_path));
            Err(e)
        }
    }
}

/// A value no other waiter has, to recognise our own waiter key when the
/// answer to its creation was lost.
fn owner_token() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "libetcdapi pid {} t {nanos:x} n {}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Creates our in-order waiter key. Not resent blindly: a lost answer is
/// settled by looking for our token among the waiters (a second waiter
/// would stand in our own way until it expired).
fn enqueue(t: &Transport, dir: &str, token: &str, ttl: u32) -> Result<Node> {
    // The fields go in the query: etcd reads a POST body only when it is
    // labelled as a form.
    let query = format!(
        "{dir}?{}",
        form(&[("value", token), ("ttl", &ttl.to_string())])
    );
    let request = Request::post(&query, b"").retry(Retry::IfNotSent);
    let create = || -> Result<Node> {
        decode(&t.send(&request)?)?
            .map(|a| a.node)
            .map_err(Error::from)
    };
    settle(
        create,
        || list(t, dir),
        |(waiters, _)| match waiters
            .into_iter()
            .find(|n| n.value.as_deref() == Some(token))
        {
            Some(node) => ReadBack::Applied(node),
            None => ReadBack::NotApplied,
        },
    )
}

/// The waiters queued on the lock directory `dir`, oldest first, and the
/// store index of that view.
fn list(t: &Transport, dir: &str) -> Result<(Vec<Node>, u64)> {
    let reply = t.send(&Request::get(&format!("{dir}?quorum=true&sorted=true")))?;
    let index = etcd_index(&reply)?;
    match decode(&reply)? {
        Ok(answer) => {
            let mut waiters: Vec<Node> = answer.node.nodes.into_iter().filter(|n| !n.dir).collect();
            waiters.sort_by_key(|n| n.created_index);
            Ok((waiters, index))
        }
        Err(r) if r.code == code::KEY_NOT_FOUND => Ok((Vec::new(), index)),
        Err(r) => Err(r.into()),
    }
}

/// Waits until our waiter key `mine` is the oldest in `dir`.
fn wait_turn(t: &Transport, key: &[u8], dir: &str, mine: &str) -> Result<()> {
    loop {
        let (waiters, index) = list(t, dir)?;
        let Some(position) = waiters.iter().position(|n| n.key.as_deref() == Some(mine)) else {
            return Err(Error::unavailable(format!(
                "lost the place in the queue for lock {}: waiter key {mine} expired \
                 (its TTL could not be refreshed in time)",
                String::from_utf8_lossy(key)
            )));
        };
        if position == 0 {
            return Ok(());
        }
        let ahead = waiters[position - 1].key.clone();
        // Every change after our view is in etcd's history: wait from
        // there for one that concerns the waiter ahead of us or ours (a
        // cleared history just means: look again).
        let mut next = index + 1;
        while let Waited::Change(answer) = wait(t, dir, true, next)? {
            if answer.node.modified_index < next {
                return Err(Error::bad_response(format!(
                    "wait from index {next} answered with an older change"
                )));
            }
            next = answer.node.modified_index + 1;
            let k = answer.node.key.as_deref();
            if k == ahead.as_deref() || k == Some(mine) || answer.node.dir {
                break;
            }
        }
    }
}

/// Refreshes the TTL of an existing waiter key (no value change, no event
/// for watchers). `Refused` once the key has expired.
fn refresh(t: &Transport, path: &str, ttl: u32, timeout: Option<Duration>) -> Result<()> {
    let body = form(&[
        ("refresh", "true"),
        ("prevExist", "true"),
        ("ttl", &ttl.to_string()),
    ]);
    let mut request = Request::put_form(path, body.as_bytes());
    if let Some(limit) = timeout {
        request = request.wait(Wait::Within(limit));
    }
    let reply = t.send(&request)?;
    match decode(&reply)? {
        Ok(_) => Ok(()),
        Err(r) if r.code == code::KEY_NOT_FOUND => Err(Error::refused(format!(
            "lock lost: {} has expired",
            r.cause
        ))),
        Err(r) => Err(r.into()),
    }
}

/// The waiter key (canonical path, as etcd names it) for lock index
/// `created`: etcd writes an in-order key's index on 20 digits.
fn waiter_key(key: &[u8], created: u64) -> Result<String> {
    let mut waiter = lock_name(key);
    waiter.extend_from_slice(format!("/{created:020}").as_bytes());
    Ok(utf8(&canonical(&waiter), "key")?.to_string())
}

pub(crate) fn parse_index(index: &str) -> Result<u64> {
    let digits = index.trim();
    match digits.parse::<u64>() {
        Ok(n) if n > 0 && digits.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(Error::refused(format!("{index:?} is not a lock index"))),
    }
}

fn not_held(key: &[u8], created: u64) -> Error {
    Error::refused(format!(
        "lock {} is not held by index {created}",
        String::from_utf8_lossy(key)
    ))
}

/// Our waiter key, if it is the oldest in the queue: the lock is ours.
fn ensure_held(t: &Transport, key: &[u8], created: u64) -> Result<Node> {
    let dir = key_path(&lock_name(key))?;
    let mine = waiter_key(key, created)?;
    let (waiters, _) = list(t, &dir)?;
    match waiters.into_iter().next() {
        Some(n) if n.key.as_deref() == Some(mine.as_str()) => Ok(n),
        _ => Err(not_held(key, created)),
    }
}

pub fn renew(t: &Transport, key: &[u8], ttl: u32, index: &str) -> Result<()> {
    let created = parse_index(index)?;
    let path = key_path(waiter_key(key, created)?.as_bytes())?;
    // prevExist: an expired lock is not brought back to life.
    refresh(t, &path, ttl.max(MIN_TTL), None).map_err(|e| match e {
        e if e.is_refusal() => Error::refused(format!(
            "lock {} lost: its key for index {created} has expired or was deleted",
            String::from_utf8_lossy(key)
        )),
        other => other,
    })?;
    ensure_held(t, key, created).map(drop)
}

pub fn unlock(t: &Transport, key: &[u8], index: &str) -> Result<()> {
    let created = parse_index(index)?;
    let mine = waiter_key(key, created)?;
    let path = key_path(mine.as_bytes())?;
    const ATTEMPTS: usize = 3;
    for _ in 0..ATTEMPTS {
        let held = ensure_held(t, key, created)?;
        // Delete exactly what we checked: prevIndex fails if the key has
        // changed since (a renew in between: check again).
        let query = format!("{path}?prevIndex={}", held.modified_index);
        let request = Request::delete(&query).retry(Retry::IfNotSent);
        // Ok(false): the key changed since the check (a renew in between).
        let delete_held = || -> Result<bool> {
            match decode(&t.send(&request)?)? {
                Ok(_) => Ok(true),
                Err(r) if r.code == code::COMPARE_FAILED => Ok(false),
                Err(r) if r.code == code::KEY_NOT_FOUND => Err(not_held(key, created)),
                Err(r) => Err(r.into()),
            }
        };
        let deleted = settle(
            delete_held,
            || kv::read(t, mine.as_bytes()),
            |current| match current {
                None => ReadBack::Applied(true),
                Some(_) => ReadBack::Applied(false),
            },
        )?;
        if deleted {
            remove_empty_dir(t, key);
            return Ok(());
        }
    }
    Err(Error::unavailable(format!(
        "lock {}: its key kept changing while releasing it",
        String::from_utf8_lossy(key)
    )))
}

/// Removes the lock's directory if no one is queued (`dir=true` deletes
/// only an empty directory, atomically: a waiter arriving just after
/// recreates it). Best effort: it only keeps `/_locks` tidy.
fn remove_empty_dir(t: &Transport, key: &[u8]) {
    if let Ok(dir) = key_path(&lock_name(key)) {
        let _ = t.send(&Request::delete(&format!("{dir}?dir=true")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_and_keys() {
        assert_eq!(parse_index("19").unwrap(), 19);
        for bad in ["", "0", "-1", "+5", "1a", "4d2x", "99999999999999999999999"] {
            assert!(parse_index(bad).is_err(), "{bad}");
        }
        assert_eq!(
            waiter_key(b"/jobs/42", 19).unwrap(),
            "/_locks/jobs%2F42/00000000000000000019"
        );
        // The lock on the root is the lock directory itself.
        assert_eq!(waiter_key(b"/", 5).unwrap(), "/_locks/00000000000000000005");
    }
}
