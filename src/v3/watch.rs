//! Watch over the streaming `POST /v3/watch` endpoint.
//!
//! A stream stays open between calls, parked in the session with the
//! events it already received, so a caller draining changes with
//! `from = last + 1` reads on from the same stream instead of paying a
//! request per event. A stream cut by a dying member is reopened on the
//! next server from the revision after the last one delivered.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::json;

use super::gateway::{probe, Gateway};
use super::json::{bytes, encode, int, Header};
use super::status::{denied, hint, rejects_token, LOGIN_HINT};
use crate::error::{Error, ErrorKind, Result};
use crate::keys::{children_prefix, prefix_range_end, watch_matches};
use crate::process::PerProcess;
use crate::protocol::Event;
use crate::transport::{Request, Servers, Stream, Wait};

/// Streams parked between calls. A few, so that threads (or one thread)
/// watching different prefixes keep theirs; the oldest goes first.
const MAX_PARKED: usize = 8;

pub struct Streams {
    /// This process's streams: a child never reads a stream it inherited.
    parked: PerProcess<Mutex<Vec<WatchStream>>>,
}

impl Default for Streams {
    fn default() -> Streams {
        Streams {
            parked: PerProcess::new(Mutex::default()),
        }
    }
}

impl Streams {
    /// Takes out the parked stream that continues exactly where a caller
    /// asking for changes to `prefix` from revision `from` is.
    fn take(&self, prefix: &[u8], from: i64) -> Option<WatchStream> {
        let parked = self.parked.get(|_| Mutex::default());
        let mut parked = parked.lock().unwrap_or_else(|e| e.into_inner());
        let i = parked
            .iter()
            .position(|s| s.prefix == prefix && s.next == from)?;
        Some(parked.remove(i))
    }

    fn park(&self, stream: WatchStream) {
        let parked = self.parked.get(|_| Mutex::default());
        let mut parked = parked.lock().unwrap_or_else(|e| e.into_inner());
        if parked.len() >= MAX_PARKED {
            parked.remove(0);
        }
        parked.push(stream);
    }
}

struct WatchStream {
    /// Canonical prefix watched.
    prefix: Vec<u8>,
    /// The revision a caller continuing this stream asks for: one past the
    /// last change handed out (or past the creation revision).
    next: i64,
    /// Changes received, matching `prefix`, not yet handed out.
    pending: VecDeque<Event>,
    stream: Stream,
    /// The session logs in (for the hint on a refusal).
    logged_in: bool,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Message {
    result: Option<WatchResponse>,
    error: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WatchResponse {
    header: Header,
    created: bool,
    canceled: bool,
    #[serde(deserialize_with = "int")]
    compact_revision: i64,
    cancel_reason: String,
    events: Vec<WatchEvent>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WatchEvent {
    #[serde(rename = "type")]
    kind: String,
    kv: EventKv,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct EventKv {
    #[serde(deserialize_with = "bytes")]
    key: Vec<u8>,
    #[serde(deserialize_with = "bytes")]
    value: Vec<u8>,
    #[serde(deserialize_with = "int")]
    mod_revision: i64,
}

pub fn watch(g: &Gateway, streams: &Streams, prefix: &[u8], from: Option<i64>) -> Result<Event> {
    let mut ws = match from.and_then(|f| streams.take(prefix, f)) {
        Some(ws) => ws,
        None => open(g, prefix, from, None)?,
    };
    // Streams that die young, one after another, are a server that cannot
    // serve a watch, not a member that went away: give up after a few.
    let mut quick_cuts = 0;
    let mut opened = Instant::now();
    let young = g.config().request_timeout;
    loop {
        if let Some(event) = ws.pending.pop_front() {
            ws.next = event.revision + 1;
            streams.park(ws);
            return Ok(event);
        }
        let member = Some(ws.stream.server_index);
        let read = g
            .transport
            .while_serving(member, probe(prefix), || read_message(&mut ws.stream));
        match read {
            Ok(Some(msg)) => absorb(&mut ws, msg)?,
            Ok(None) | Err(_) => {
                quick_cuts = if opened.elapsed() < young {
                    quick_cuts + 1
                } else {
                    1
                };
                if quick_cuts > 2 * g.transport.servers().len() {
                    return Err(Error::unavailable(format!(
                        "{}: watch stream cut {quick_cuts} times in a row",
                        ws.stream.server
                    )));
                }
                // The member went away mid-stream: carry on elsewhere from
                // the first revision not yet handed out.
                let after = ws.stream.server_index + 1;
                ws = reopen(g, prefix, ws.next, after)?;
                opened = Instant::now();
            }
        }
    }
}

/// What opening a watch stream gave: a live stream, or etcd's cancel.
enum Opening {
    Ready(WatchStream),
    Canceled(Stream, WatchResponse),
}

/// Opens a stream on `prefix` from `from` (`None`: from now), starting
/// with server `start` (or the preferred one). A watch canceled for its
/// token (expired) is opened again, once, with a new one.
fn open(
    g: &Gateway,
    prefix: &[u8],
    from: Option<i64>,
    start: Option<usize>,
) -> Result<WatchStream> {
    // A session with credentials whose watch is refused permission logs
    // in again once (the token may have expired); refused again, it is a
    // real refusal.
    let logged_in = g.has_credentials();
    let opening = g.authorized(
        || open_once(g, prefix, from, start),
        |o| {
            matches!(o, Opening::Canceled(_, m)
                if rejects_token(&m.cancel_reason) || (logged_in && denied(&m.cancel_reason)))
        },
    )?;
    match opening {
        Opening::Ready(ws) => Ok(ws),
        Opening::Canceled(stream, m) => Err(canceled(&stream, &m, logged_in)),
    }
}

fn open_once(
    g: &Gateway,
    prefix: &[u8],
    from: Option<i64>,
    start: Option<usize>,
) -> Result<Opening> {
    let (key, range_end) = watch_range(prefix);
    let mut create = json!({"key": encode(&key), "range_end": encode(&range_end)});
    if let Some(from) = from {
        create["start_revision"] = json!(from.to_string());
    }
    let body = serde_json::to_vec(&json!({"create_request": create})).expect("json");
    let request = Request::post("/v3/watch", &body)
        .wait(Wait::Stream(Some(g.config().request_timeout)))
        .servers(start.map_or(Servers::Preferred, Servers::From));
    let mut stream = g.transport.open(&request)?.into_stream()?;
    // The first message confirms the watch and tells the current revision.
    let created = loop {
        match read_message(&mut stream) {
            Ok(Some(m)) if m.created => break m,
            Ok(Some(m)) if m.canceled => return Ok(Opening::Canceled(stream, m)),
            Ok(Some(_)) => continue,
            Ok(None) => {
                return Err(Error::unavailable(format!(
                    "{}: watch stream ended before it started",
                    stream.server
                )))
            }
            Err(e) => return Err(e),
        }
    };
    if created.canceled {
        return Ok(Opening::Canceled(stream, created));
    }
    let next = from.unwrap_or(created.header.revision + 1);
    let mut ws = WatchStream {
        prefix: prefix.to_vec(),
        next,
        pending: VecDeque::new(),
        stream,
        logged_in: g.has_credentials(),
    };
    absorb(&mut ws, created)?;
    Ok(Opening::Ready(ws))
}

/// Reopens a cut stream from revision `next`, trying the servers after
/// the one that failed, for up to one request time-out (a member that has
/// just died may take an election to be replaced).
fn reopen(g: &Gateway, prefix: &[u8], next: i64, after: usize) -> Result<WatchStream> {
    let deadline = Instant::now() + g.config().request_timeout;
    let mut start = after;
    loop {
        match open(g, prefix, Some(next), Some(start)) {
            Ok(ws) => return Ok(ws),
            Err(e) if e.is_refusal() => return Err(e),
            Err(e) if Instant::now() >= deadline => {
                return Err(Error::unavailable(format!(
                    "watch stream lost and no server took it over: {e}"
                )))
            }
            Err(_) => {
                std::thread::sleep(Duration::from_millis(200));
                start += 1;
            }
        }
    }
}

/// etcd's range covering `prefix` and everything below `prefix/`. It also
/// covers siblings that sort between them (`pfx-x`, `pfx.x`); those are
/// filtered out as events arrive.
fn watch_range(prefix: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let below = children_prefix(prefix);
    (prefix.to_vec(), prefix_range_end(&below))
}

/// Takes one message's events into the stream's pending queue.
fn absorb(ws: &mut WatchStream, msg: WatchResponse) -> Result<()> {
    if msg.canceled {
        return Err(canceled(&ws.stream, &msg, ws.logged_in));
    }
    for ev in msg.events {
        if ev.kv.mod_revision < ws.next || !watch_matches(&ws.prefix, &ev.kv.key) {
            continue;
        }
        let value = if ev.kind == "DELETE" {
            None
        } else {
            Some(ev.kv.value)
        };
        ws.pending.push_back(Event {
            key: ev.kv.key,
            value,
            revision: ev.kv.mod_revision,
        });
    }
    Ok(())
}

fn canceled(stream: &Stream, msg: &WatchResponse, logged_in: bool) -> Error {
    if msg.compact_revision > 0 {
        return Error::new(
            ErrorKind::Compacted,
            format!(
                "{}: the requested revision has been compacted; the oldest available is {}",
                stream.server, msg.compact_revision
            ),
        );
    }
    let reason = if msg.cancel_reason.is_empty() {
        "no reason given"
    } else {
        &msg.cancel_reason
    };
    if denied(reason) {
        let hint = if logged_in { "" } else { LOGIN_HINT };
        return Error::new(
            ErrorKind::PermissionDenied,
            format!("{}: watch canceled by the server: {reason}{hint}", stream.server),
        );
    }
    Error::refused(format!(
        "{}: watch canceled by the server: {reason}{}",
        stream.server,
        hint(reason)
    ))
}

/// Reads the next `{"result":...}` line. `Ok(None)` when the stream ended.
fn read_message(stream: &mut Stream) -> Result<Option<WatchResponse>> {
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = read_line_limited(&mut *stream.reader, &mut line)
            .map_err(|e| Error::unavailable(format!("{}: watch stream: {e}", stream.server)))?;
        if n == 0 {
            return Ok(None);
        }
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        if line.last() != Some(&b'\n') {
            // Half a line, then the end: the stream was cut.
            return Ok(None);
        }
        let msg: Message = serde_json::from_slice(&line).map_err(|e| {
            Error::bad_response(format!("{}: unreadable watch message ({e})", stream.server))
        })?;
        if let Some(err) = msg.error {
            let text = err
                .get("message")
                .and_then(|m| m.as_str())
                .unwrap_or("unknown error")
                .to_string();
            return Err(Error::refused(format!(
                "{}: watch failed: {text}",
                stream.server
            )));
        }
        if let Some(result) = msg.result {
            return Ok(Some(result));
        }
    }
}

/// One watch message is at most a batch of events of etcd's largest
/// request size; far beyond that is a broken server.
const MAX_LINE: u64 = 64 << 20;

fn read_line_limited(
    reader: &mut dyn std::io::BufRead,
    line: &mut Vec<u8>,
) -> std::io::Result<usize> {
    use std::io::{BufRead, Read};
    let n = reader.take(MAX_LINE).read_until(b'\n', line)?;
    if n as u64 >= MAX_LINE && line.last() != Some(&b'\n') {
        return Err(std::io::Error::other("watch message too long"));
    }
    Ok(n)
}
