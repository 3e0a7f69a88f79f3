//! Watch over the streaming `POST /v3/watch` endpoint.
//!
//! A stream stays open between calls, parked in the session with the
//! events it already received, so a caller draining changes with
//! `from = last + 1` reads on from the same stream instead of paying a
//! request per event. A stream cut by a dying member is reopened on the
//! next server from the revision after the last one delivered.
//!
//! `etcd_watch` waits for ever and reads its stream on the caller's
//! thread. `watch_events` honours a time-out: its stream is read by a
//! thread of its own into a channel, so a caller can stop waiting and a
//! change arriving just after is kept for the next call; the stream has
//! a connection of its own, cut when the stream is dropped.

use std::collections::VecDeque;
use std::sync::mpsc;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::json;

use super::gateway::{probe, Gateway};
use super::json::{encode, int, Header, KeyValue};
use super::status::{denied, hint, rejects_token, LOGIN_HINT};
use crate::error::{Error, ErrorKind, Result};
use crate::keys::{children_prefix, prefix_range_end, watch_matches};
use crate::kv::{Changes, WatchEvent};
use crate::process::PerProcess;
use crate::protocol::Event;
use crate::transport::{
    Interrupt, Opened, Probe, Request, Retry, Servers, Stream, Transport, Wait,
};

/// Streams parked between calls. A few, so that threads (or one thread)
/// watching different prefixes keep theirs; the oldest goes first.
const MAX_PARKED: usize = 8;

pub struct Streams {
    /// This process's streams: a child after fork() never reads, cuts or
    /// joins a stream it inherited (see [`PerProcess`]).
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

    /// Drops every parked stream of this process (a threaded one waits
    /// for its reader).
    pub fn clear(&self) {
        let parked = self.parked.get(|_| Mutex::default());
        let streams = std::mem::take(&mut *parked.lock().unwrap_or_else(|e| e.into_inner()));
        drop(streams);
    }

    fn park(&self, stream: WatchStream) {
        let evicted = {
            let parked = self.parked.get(|_| Mutex::default());
            let mut parked = parked.lock().unwrap_or_else(|e| e.into_inner());
            let evicted = (parked.len() >= MAX_PARKED).then(|| parked.remove(0));
            parked.push(stream);
            evicted
        };
        // Dropped outside the lock: a threaded stream waits for its reader.
        drop(evicted);
    }
}

struct WatchStream {
    /// Canonical prefix watched.
    prefix: Vec<u8>,
    /// The revision a caller continuing this stream asks for: one past the
    /// last change handed out (or past the creation revision).
    next: i64,
    /// Changes received, matching `prefix`, not yet handed out.
    pending: VecDeque<WatchEvent>,
    feed: Feed,
    /// The server the stream is on (index in the list, and its name).
    server_index: usize,
    server: String,
    /// The session logs in (for the hint on a refusal).
    logged_in: bool,
}

/// One read from a stream: a message, or `Ok(None)` when it ended.
type Read = Result<Option<WatchResponse>>;

/// Where a stream's messages come from.
enum Feed {
    /// Read on the caller's thread, without a time-out.
    Direct(Stream),
    /// Read by a thread of its own (see [`Reader`]).
    Threaded(Reader),
}

impl Feed {
    /// The next read; `None` when `deadline` passed first (the message,
    /// when it comes, waits for the next call). A direct read asks the
    /// stream's member now and then whether it still serves.
    fn next(&mut self, watch: &Watched, deadline: Option<Instant>) -> Option<Read> {
        match self {
            Feed::Direct(stream) => Some(watch.read(stream)),
            Feed::Threaded(reader) => reader.next(deadline),
        }
    }

    fn threaded(&self) -> bool {
        matches!(self, Feed::Threaded(_))
    }
}

/// A thread reading a stream into a channel. Dropping it cuts the
/// stream's connection (a read blocked on a silent server returns), and
/// waits for the thread.
struct Reader {
    messages: Option<mpsc::Receiver<Read>>,
    interrupt: Option<Interrupt>,
    thread: Option<JoinHandle<()>>,
}

/// Messages a reader holds before it stops reading (and TCP pushes back).
const READ_AHEAD: usize = 64;

/// What a stream's reads need to watch over its member: the transport and
/// the question a silent member is asked (see [`Transport::while_serving`]).
struct Watched {
    transport: Transport,
    probe: Probe,
    member: usize,
}

impl Watched {
    fn read(&self, stream: &mut Stream) -> Read {
        self.transport
            .while_serving(Some(self.member), self.probe.clone(), || {
                read_message(stream)
            })
    }
}

impl Reader {
    fn start(mut stream: Stream, interrupt: Interrupt, watched: Watched) -> Result<Reader> {
        let (send, messages) = mpsc::sync_channel(READ_AHEAD);
        let thread = std::thread::Builder::new()
            .name("etcd-watch".into())
            .spawn(move || loop {
                let read = watched.read(&mut stream);
                let last = !matches!(read, Ok(Some(_)));
                if send.send(read).is_err() || last {
                    return;
                }
            })
            .map_err(|e| Error::unavailable(format!("cannot start a watch thread: {e}")))?;
        Ok(Reader {
            messages: Some(messages),
            interrupt: Some(interrupt),
            thread: Some(thread),
        })
    }

    fn next(&mut self, deadline: Option<Instant>) -> Option<Read> {
        let messages = self.messages.as_ref()?;
        // The reader gone without a word is a stream that ended.
        match deadline {
            None => Some(messages.recv().unwrap_or(Ok(None))),
            Some(d) => match messages.recv_timeout(d.saturating_duration_since(Instant::now())) {
                Ok(read) => Some(read),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => Some(Ok(None)),
            },
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        drop(self.messages.take());
        if let Some(interrupt) = self.interrupt.take() {
            interrupt.now();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Message {
    result: Option<WatchResponse>,
    error: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct WatchResponse {
    pub(crate) header: Header,
    pub(crate) created: bool,
    pub(crate) canceled: bool,
    #[serde(deserialize_with = "int")]
    pub(crate) compact_revision: i64,
    pub(crate) cancel_reason: String,
    pub(crate) events: Vec<EventMessage>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct EventMessage {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) kv: KeyValue,
}

/// The first change to `prefix` or below it at revision >= `from`.
pub fn watch(g: &Gateway, streams: &Streams, prefix: &[u8], from: Option<i64>) -> Result<Event> {
    let from = Some(from_or_now(g, prefix, from)?);
    let mut ws = match from.and_then(|f| streams.take(prefix, f)) {
        Some(ws) => ws,
        None => open(g, prefix, from, None, false)?,
    };
    fill(g, &mut ws, None)?;
    let Some(WatchEvent { deleted, kv }) = ws.pending.pop_front() else {
        return Err(Error::bad_response("watch: no change after waiting"));
    };
    ws.next = kv.mod_revision + 1;
    streams.park(ws);
    Ok(Event {
        key: kv.key,
        value: (!deleted).then_some(kv.value),
        revision: kv.mod_revision,
    })
}

/// All the changes of the first revision >= `from` to `prefix` or below
/// it; `TimedOut` once `timeout` has passed (the stream is kept).
pub fn watch_events(
    g: &Gateway,
    streams: &Streams,
    prefix: &[u8],
    from: Option<i64>,
    timeout: Option<Duration>,
) -> Result<Changes> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let from = Some(from_or_now(g, prefix, from)?);
    let mut ws = match from.and_then(|f| streams.take(prefix, f)) {
        Some(ws) => ws,
        None => open(g, prefix, from, None, true)?,
    };
    if !fill(g, &mut ws, deadline)? {
        streams.park(ws);
        return Err(Error::timed_out(format!(
            "no change below {} within {} ms",
            String::from_utf8_lossy(prefix),
            timeout.unwrap_or_default().as_millis()
        )));
    }
    let revision = ws.pending.front().map_or(0, |e| e.kv.mod_revision);
    let mut events = Vec::new();
    while let Some(e) = ws.pending.pop_front() {
        if e.kv.mod_revision != revision {
            ws.pending.push_front(e);
            break;
        }
        events.push(e);
    }
    ws.next = revision + 1;
    streams.park(ws);
    Ok(Changes { events, revision })
}

/// `from`, or else the revision after the store's now. "From now" is the
/// moment of the call: a linearizable read fixes it (failing over as
/// reads do), so that no change made after the call is missed however
/// long the first servers take to open a stream (a frozen member first
/// in the list would otherwise push "now" to when a stream finally opens).
fn from_or_now(g: &Gateway, prefix: &[u8], from: Option<i64>) -> Result<i64> {
    if let Some(from) = from {
        return Ok(from);
    }
    let body = json!({"key": encode(prefix), "count_only": true});
    let r: CountResponse = g.call("/v3/kv/range", &body, Retry::Always)?;
    Ok(r.header.revision + 1)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CountResponse {
    header: Header,
}

/// Waits until `ws` holds a change, reopening a cut stream elsewhere from
/// the first revision not yet handed out; false when `deadline` passed
/// first.
fn fill(g: &Gateway, ws: &mut WatchStream, deadline: Option<Instant>) -> Result<bool> {
    // Streams that die young, one after another, are a server that cannot
    // serve a watch, not a member that went away: give up after a few.
    let mut quick_cuts = 0;
    let mut opened = Instant::now();
    let young = g.config().request_timeout;
    let mut watched = Watched {
        transport: g.transport.clone(),
        probe: probe(&ws.prefix),
        member: ws.server_index,
    };
    while ws.pending.is_empty() {
        match ws.feed.next(&watched, deadline) {
            None => return Ok(false),
            Some(Ok(Some(msg))) => absorb(ws, msg)?,
            Some(Ok(None) | Err(_)) => {
                quick_cuts = if opened.elapsed() < young {
                    quick_cuts + 1
                } else {
                    1
                };
                if quick_cuts > 2 * g.transport.servers().len() {
                    return Err(Error::unavailable(format!(
                        "{}: watch stream cut {quick_cuts} times in a row",
                        ws.server
                    )));
                }
                // The member went away mid-stream: carry on elsewhere.
                let after = ws.server_index + 1;
                *ws = reopen(g, &ws.prefix, ws.next, after, ws.feed.threaded())?;
                watched.member = ws.server_index;
                opened = Instant::now();
            }
        }
    }
    Ok(true)
}

/// What opening a watch stream gave: a live stream, or etcd's cancel.
enum Opening {
    Ready(WatchStream),
    Canceled(String, WatchResponse),
}

/// Opens a stream on `prefix` from `from` (`None`: from now), starting
/// with server `start` (or the preferred one); `threaded`: read by a
/// thread of its own. A watch canceled for its token (expired) is opened
/// again, once, with a new one.
fn open(
    g: &Gateway,
    prefix: &[u8],
    from: Option<i64>,
    start: Option<usize>,
    threaded: bool,
) -> Result<WatchStream> {
    // A session with credentials whose watch is refused permission logs
    // in again once (etcd 3.5 refuses a watch with an expired token this
    // way); refused again, it is a real refusal.
    let logged_in = g.has_credentials();
    let opening = g.authorized(
        || open_once(g, prefix, from, start, threaded),
        |o| {
            matches!(o, Opening::Canceled(_, m)
                if rejects_token(&m.cancel_reason) || (logged_in && denied(&m.cancel_reason)))
        },
    )?;
    match opening {
        Opening::Ready(ws) => Ok(ws),
        Opening::Canceled(server, m) => Err(canceled(&server, &m, logged_in)),
    }
}

fn open_once(
    g: &Gateway,
    prefix: &[u8],
    from: Option<i64>,
    start: Option<usize>,
    threaded: bool,
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
    let (opened, interrupt) = if threaded {
        let (opened, interrupt) = g.transport.open_own(&request)?;
        (opened, Some(interrupt))
    } else {
        (g.transport.open(&request)?, None)
    };
    let mut stream = Opened::into_stream(opened)?;
    // The first message confirms the watch and tells the current revision.
    let created = loop {
        match read_message(&mut stream) {
            Ok(Some(m)) if m.created => break m,
            Ok(Some(m)) if m.canceled => return Ok(Opening::Canceled(stream.server, m)),
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
        return Ok(Opening::Canceled(stream.server, created));
    }
    let (server_index, server) = (stream.server_index, stream.server.clone());
    let feed = match interrupt {
        Some(interrupt) => {
            let watched = Watched {
                transport: g.transport.clone(),
                probe: probe(prefix),
                member: server_index,
            };
            Feed::Threaded(Reader::start(stream, interrupt, watched)?)
        }
        None => Feed::Direct(stream),
    };
    let mut ws = WatchStream {
        prefix: prefix.to_vec(),
        next: from.unwrap_or(created.header.revision + 1),
        pending: VecDeque::new(),
        feed,
        server_index,
        server,
        logged_in: g.has_credentials(),
    };
    absorb(&mut ws, created)?;
    Ok(Opening::Ready(ws))
}

/// Reopens a cut stream from revision `next`, trying the servers after
/// the one that failed, for up to one request time-out (a member that has
/// just died may take an election to be replaced).
fn reopen(
    g: &Gateway,
    prefix: &[u8],
    next: i64,
    after: usize,
    threaded: bool,
) -> Result<WatchStream> {
    let deadline = Instant::now() + g.config().request_timeout;
    let mut start = after;
    loop {
        match open(g, prefix, Some(next), Some(start), threaded) {
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
        return Err(canceled(&ws.server, &msg, ws.logged_in));
    }
    for ev in msg.events {
        if ev.kv.mod_revision < ws.next || !watch_matches(&ws.prefix, &ev.kv.key) {
            continue;
        }
        let deleted = ev.kind == "DELETE";
        let mut kv = crate::kv::KeyValue::from(ev.kv);
        if deleted {
            kv.value.clear();
        }
        ws.pending.push_back(WatchEvent { deleted, kv });
    }
    Ok(())
}

fn canceled(server: &str, msg: &WatchResponse, logged_in: bool) -> Error {
    if msg.compact_revision > 0 {
        return Error::new(
            ErrorKind::Compacted,
            format!(
                "{server}: the requested revision has been compacted; the oldest available is {}",
                msg.compact_revision
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
            format!("{server}: watch canceled by the server: {reason}{hint}"),
        );
    }
    Error::refused(format!(
        "{server}: watch canceled by the server: {reason}{}",
        hint(reason)
    ))
}

/// Reads the next `{"result":...}` line. `Ok(None)` when the stream ended.
pub(crate) fn read_message(stream: &mut Stream) -> Result<Option<WatchResponse>> {
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
        // An array would decode into the structs field by field.
        let msg: Message = if super::status::is_object(&line) {
            serde_json::from_slice(&line).map_err(|e| e.to_string())
        } else {
            Err("not a JSON object".to_string())
        }
        .map_err(|e| {
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

pub(crate) fn read_line_limited(
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
