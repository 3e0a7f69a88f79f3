//! Watch over v2 long polls: `GET /v2/keys<pfx>?wait=true&recursive=true
//! &waitIndex=N` answers with the first change at index >= N (from etcd's
//! history of the last 1000 changes, or when it happens), one per request.
//!
//! "From now" is the `X-Etcd-Index` of a quorum read of the prefix: every
//! change after that read is in the history the wait then starts from, so
//! nothing between the read and the wait is lost (a wait without
//! `waitIndex` would start from the answering member's own index, which
//! can lag behind a change already acknowledged elsewhere).
//!
//! A long poll cut by a dying member is repeated on the next server with
//! the same `waitIndex`, so the caller sees neither a gap nor a repeat.

use std::io::Read;
use std::time::{Duration, Instant};

use super::json::Answer;
use super::wire::{code, decode, etcd_index, key_path};
use crate::error::{Error, Result};
use crate::keys::{children_prefix, watch_matches};
use crate::protocol::Event;
use crate::transport::{Method, Opened, Probe, Request, Servers, Transport, Wait, MAX_BODY_BYTES};

/// What one wait gave.
pub(super) enum Waited {
    /// The first change at or after the index asked for.
    Change(Answer),
    /// That index has left etcd's history (errorCode 401); the message
    /// says so.
    Cleared(String),
}

pub fn watch(t: &Transport, prefix: &[u8], from: Option<i64>) -> Result<Event> {
    let path = key_path(prefix)?;
    let from_now = !matches!(from, Some(f) if f > 0);
    let mut next = match from {
        Some(f) if f > 0 => f as u64,
        _ => now(t, &path)? + 1,
    };
    loop {
        match wait(t, &path, true, next)? {
            Waited::Change(answer) => {
                let index = answer.node.modified_index;
                if index < next {
                    return Err(Error::bad_response(format!(
                        "wait from index {next} answered with an older change ({index})"
                    )));
                }
                next = index + 1;
                if let Some(event) = event_for(prefix, answer) {
                    return Ok(event);
                }
            }
            // More than etcd's 1000 remembered changes happened between
            // reading "now" and the wait (or while skipping changes that
            // are not the caller's): nothing was handed out yet, so a
            // fresh "now" still means "the next change from now".
            Waited::Cleared(_) if from_now => next = now(t, &path)? + 1,
            Waited::Cleared(why) => return Err(Error::refused(why)),
        }
    }
}

/// The v2 store's current index, from a linearizable read of `path`.
fn now(t: &Transport, path: &str) -> Result<u64> {
    let reply = t.send(&Request::get(&format!("{path}?quorum=true")))?;
    etcd_index(&reply)
}

/// The caller's event for a change etcd reported on a recursive wait on
/// `prefix`, or `None` for one that is not theirs:
/// - a sibling (`pfx-x`) — etcd does not report those, filtered anyway;
/// - a key below a `_` name under the prefix: etcd leaves those out of a
///   live recursive wait but not out of its history, so they are left out
///   always (they are hidden, as in listings; a wait on their full path
///   still sees them);
/// - a TTL refresh, and a directory being made (no value changed).
///
/// The deletion (or expiry) of a directory above the prefix, which etcd
/// reports to waiters below it, is the prefix's own deletion.
fn event_for(prefix: &[u8], answer: Answer) -> Option<Event> {
    if answer.refresh {
        return None;
    }
    let revision = i64::try_from(answer.node.modified_index).unwrap_or(i64::MAX);
    let deleted = matches!(
        answer.action.as_str(),
        "delete" | "expire" | "compareAndDelete"
    );
    let key = answer.node.key.unwrap_or_else(|| "/".into()).into_bytes();
    if !watch_matches(prefix, &key) {
        if deleted && answer.node.dir && prefix.starts_with(&children_prefix(&key)) {
            return Some(Event {
                key: prefix.to_vec(),
                value: None,
                revision,
            });
        }
        return None;
    }
    if hidden_below(prefix, &key) {
        return None;
    }
    if deleted {
        return Some(Event {
            key,
            value: None,
            revision,
        });
    }
    if answer.node.dir {
        return None;
    }
    Some(Event {
        key,
        value: Some(answer.node.value.unwrap_or_default().into_bytes()),
        revision,
    })
}

/// True when `key`, below `prefix`, has a path segment under the prefix
/// whose name starts with `_`.
fn hidden_below(prefix: &[u8], key: &[u8]) -> bool {
    let Some(rest) = key.strip_prefix(children_prefix(prefix).as_slice()) else {
        return false;
    };
    rest.split(|&b| b == b'/')
        .any(|segment| segment.first() == Some(&b'_'))
}

/// Waits for the first change to `path` (and, `recursive`, below it) at
/// index >= `index`. A wait cut by a dying member (or ended by one
/// shutting down) is repeated on the next server; only when none takes
/// it over within one request time-out does it fail.
pub(super) fn wait(t: &Transport, path: &str, recursive: bool, index: u64) -> Result<Waited> {
    let recursive = if recursive { "&recursive=true" } else { "" };
    let query = format!("{path}?wait=true{recursive}&waitIndex={index}");
    let request_timeout = t.config().request_timeout;
    // etcd sends a wait's headers at once; the change comes in the body,
    // which has no time-out.
    let headers_timeout = Some(request_timeout);
    let mut start = None;
    let mut deadline: Option<Instant> = None;
    loop {
        let request = Request::get(&query)
            .wait(Wait::Stream(headers_timeout))
            .servers(start.map_or(Servers::Preferred, Servers::From));
        let failure = match t.open(&request) {
            Ok(Opened::Stream(mut stream)) => {
                let opened = Instant::now();
                let mut body = Vec::new();
                let probe = Probe {
                    method: Method::Get,
                    path: format!("{path}?quorum=true"),
                    body: Vec::new(),
                };
                let member = Some(stream.server_index);
                let read = t.while_serving(member, probe, || {
                    (&mut stream.reader)
                        .take(MAX_BODY_BYTES + 1)
                        .read_to_end(&mut body)
                });
                let failure = match read {
                    Ok(_) if body.len() as u64 > MAX_BODY_BYTES => {
                        return Err(Error::bad_response(format!(
                            "{}: wait answer larger than {MAX_BODY_BYTES} bytes",
                            stream.server
                        )))
                    }
                    Ok(_) if !body.iter().all(u8::is_ascii_whitespace) => {
                        let answer = serde_json::from_slice(&body).map_err(|e| {
                            Error::bad_response(format!(
                                "{}: unreadable wait answer ({e}): {}",
                                stream.server,
                                String::from_utf8_lossy(&body[..body.len().min(200)])
                            ))
                        })?;
                        return Ok(Waited::Change(answer));
                    }
                    Ok(_) => format!("{}: wait ended without a change", stream.server),
                    Err(e) => format!("{}: wait cut: {e}", stream.server),
                };
                // A wait that held for a while before being cut starts a
                // fresh budget for finding a server to take it over.
                if opened.elapsed() > Duration::from_secs(1) {
                    deadline = None;
                }
                start = Some(stream.server_index + 1);
                failure
            }
            Ok(Opened::Answer(reply)) => match decode(&reply)? {
                Ok(answer) => return Ok(Waited::Change(answer)),
                Err(r) if r.code == code::EVENT_INDEX_CLEARED => {
                    return Ok(Waited::Cleared(format!(
                        "{}: index {index} is no longer in etcd's v2 history (it keeps the \
                         last 1000 changes): {}",
                        r.server, r.cause
                    )))
                }
                // "watcher is cleared due to etcd recovery": wait again.
                Err(r) if r.code == code::WATCHER_CLEARED => r.describe(),
                Err(r) => return Err(r.into()),
            },
            // Nobody answers at all: give up at once, as a first request
            // would; after a cut, keep trying until the deadline.
            Err(e) if deadline.is_none() && start.is_none() => return Err(e),
            Err(e) => e.to_string(),
        };
        let deadline = *deadline.get_or_insert_with(|| Instant::now() + request_timeout);
        if Instant::now() >= deadline {
            return Err(Error::unavailable(format!(
                "wait lost and no server took it over: {failure}"
            )));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(json: &str) -> Answer {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn events() {
        let set = answer(r#"{"action":"set","node":{"key":"/p/k","value":"v","modifiedIndex":7}}"#);
        let e = event_for(b"/p", set).unwrap();
        assert_eq!(
            (e.key.as_slice(), e.value.as_deref(), e.revision),
            (&b"/p/k"[..], Some(&b"v"[..]), 7)
        );
        let del = answer(r#"{"action":"expire","node":{"key":"/p","modifiedIndex":8}}"#);
        assert_eq!(event_for(b"/p", del).unwrap().value, None);
        for other in [
            r#"{"action":"set","node":{"key":"/p-x","value":"v","modifiedIndex":9}}"#,
            r#"{"action":"set","node":{"key":"/p/_h","value":"v","modifiedIndex":9}}"#,
            r#"{"action":"set","node":{"key":"/p/a/_h/b","value":"v","modifiedIndex":9}}"#,
            r#"{"action":"set","node":{"key":"/p/d","dir":true,"modifiedIndex":9}}"#,
            r#"{"action":"delete","node":{"key":"/q","dir":true,"modifiedIndex":9}}"#,
        ] {
            assert_eq!(event_for(b"/p", answer(other)), None, "{other}");
        }
        let parent =
            answer(r#"{"action":"delete","node":{"key":"/a","dir":true,"modifiedIndex":10}}"#);
        let e = event_for(b"/a/b/c", parent).unwrap();
        assert_eq!((e.key.as_slice(), e.value), (&b"/a/b/c"[..], None));
        // The hidden key itself, watched by its full path, is seen.
        let h = answer(r#"{"action":"set","node":{"key":"/p/_h","value":"v","modifiedIndex":9}}"#);
        assert!(event_for(b"/p/_h", h).is_some());
        let root = answer(
            r#"{"action":"set","node":{"key":"/_locks/x/1","value":"v","modifiedIndex":9}}"#,
        );
        assert_eq!(event_for(b"/", root), None);
    }
}
