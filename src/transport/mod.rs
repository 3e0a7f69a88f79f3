//! HTTP to a list of etcd members: keep-alive connections (one pool per
//! process, see [`crate::process`]),
//! failover from server to server, and the line between "not sent" (safe
//! to send elsewhere) and "outcome unknown" (it may have been applied).

use std::fmt;
use std::io::{BufRead, BufReader, Read};
mod socket;

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::process::{Owned, PerProcess};
use crate::servers::Endpoint;

pub use ureq::http::HeaderMap;

/// Largest response body we read. etcd's largest request is 1.5 MiB, but a
/// range or listing answer can be far larger (the gRPC send limit is
/// 2 GiB); 256 MiB bounds what a broken server can make us buffer.
pub const MAX_BODY_BYTES: u64 = 256 << 20;

/// Whether a request may be repeated on another server after it was sent
/// and its answer was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Repeating cannot change the answer (reads, plain puts): any failure
    /// moves on to the next server.
    Always,
    /// Only a request that never left (connection refused, connect
    /// time-out) moves on; once sent, a lost answer is `OutcomeUnknown`.
    IfNotSent,
    /// A write that carries its own fence (a compare that at most one of
    /// its copies can pass): sent again like a read, but the caller is
    /// told when an earlier copy was sent and its answer lost
    /// ([`Sent::earlier_lost`]), so that it can settle what that copy did.
    Fenced,
}

/// A reply, and whether an earlier copy of the request was sent and its
/// answer lost (only [`Retry::Fenced`] requests are sent again after that).
#[derive(Debug)]
pub struct Sent {
    pub reply: Reply,
    pub earlier_lost: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
}

/// One request, described once for every way it can be sent: what to
/// send, whether it may be repeated elsewhere, how long to wait, with or
/// without the session's token, and which servers to try.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: Method,
    /// Path and query, appended to the server's base URL.
    pub path: &'a str,
    /// Sent for POST and PUT only.
    pub body: &'a [u8],
    pub content_type: Option<&'static str>,
    pub retry: Retry,
    pub wait: Wait,
    /// Send the session's auth token (not when asking for a new one:
    /// etcd refuses even that when an expired token comes along).
    pub with_token: bool,
    pub servers: Servers,
}

/// How long a request may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// The configured connect and request time-outs.
    Configured,
    /// The answer within this long of sending the request: for requests
    /// that are worth more sent again soon elsewhere than waited for long.
    Within(Duration),
    /// A stream (watch, lock wait): the headers within this time (`None`:
    /// as long as it takes), the body without a time-out.
    Stream(Option<Duration>),
}

/// Which servers a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Servers {
    /// Each in turn, starting with the one that last answered.
    Preferred,
    /// Each in turn, starting with this one (taken modulo their number).
    From(usize),
    /// This one only: for asking each member in turn a question only some
    /// of them can answer.
    Only(usize),
}

/// Form fields (v2's writes).
pub const FORM: &str = "application/x-www-form-urlencoded";

impl<'a> Request<'a> {
    fn new(method: Method, path: &'a str, body: &'a [u8]) -> Request<'a> {
        Request {
            method,
            path,
            body,
            content_type: None,
            retry: Retry::Always,
            wait: Wait::Configured,
            with_token: true,
            servers: Servers::Preferred,
        }
    }

    pub fn get(path: &'a str) -> Request<'a> {
        Request::new(Method::Get, path, b"")
    }

    pub fn delete(path: &'a str) -> Request<'a> {
        Request::new(Method::Delete, path, b"")
    }

    pub fn post(path: &'a str, body: &'a [u8]) -> Request<'a> {
        Request::new(Method::Post, path, body)
    }

    /// A PUT of form fields.
    pub fn put_form(path: &'a str, form: &'a [u8]) -> Request<'a> {
        Request {
            content_type: Some(FORM),
            ..Request::new(Method::Put, path, form)
        }
    }

    pub fn retry(self, retry: Retry) -> Request<'a> {
        Request { retry, ..self }
    }

    pub fn wait(self, wait: Wait) -> Request<'a> {
        Request { wait, ..self }
    }

    pub fn anonymous(self) -> Request<'a> {
        Request {
            with_token: false,
            ..self
        }
    }

    pub fn servers(self, servers: Servers) -> Request<'a> {
        Request { servers, ..self }
    }
}

/// What a server answered, whatever the status.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    /// The answer's headers (v2 reads its `X-Etcd-Index` here).
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// The server that answered, for messages.
    pub server: String,
}

impl Reply {
    /// The value of header `name`, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        header_value(&self.headers, name)
    }

    /// The body's first line, cut at 200 bytes: for messages.
    pub fn body_text(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let line = text.trim().lines().next().unwrap_or("").to_string();
        if line.len() > 200 {
            format!("{}...", &line[..line.floor_char_boundary(200)])
        } else {
            line
        }
    }
}

/// `server: HTTP status first-line-of-body`, for messages.
impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: HTTP {} {}",
            self.server,
            self.status,
            self.body_text()
        )
    }
}

/// An open streaming response (watch, lock wait): read line by line, no
/// time-out on the body.
pub struct Stream {
    pub reader: Box<dyn BufRead + Send>,
    pub server_index: usize,
    pub server: String,
}

/// Cuts a stream opened with [`Transport::open_own`]: a read blocked on
/// it fails at once.
pub struct Interrupt(ureq::Agent);

impl Interrupt {
    pub fn now(self) {
        self.0.shutdown();
    }
}

/// What opening a stream gave: the stream (HTTP 200), or another answer
/// (one that does not mean "member unavailable") read whole.
pub enum Opened {
    Stream(Stream),
    Answer(Reply),
}

impl Opened {
    /// The stream; any other answer is a refusal.
    pub fn into_stream(self) -> Result<Stream> {
        match self {
            Opened::Stream(stream) => Ok(stream),
            Opened::Answer(reply) => Err(Error::refused(reply.to_string())),
        }
    }
}

fn header_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Decides whether an HTTP answer means "this member cannot serve now"
/// (no leader, request timed out inside etcd), so another member should be
/// asked. Each protocol knows its own signs.
pub type UnavailableCheck = fn(status: u16, body: &[u8]) -> bool;

/// The member list, its connections and its state, behind a cheap handle.
pub struct Inner {
    /// The connections: this process's own (after a fork the child opens
    /// new ones and never touches the parent's).
    agent: PerProcess<ureq::Agent>,
    /// The agent's settings, to make a child's agent from.
    agent_config: ureq::config::Config,
    servers: Vec<Endpoint>,
    /// Index of the server that last answered: the next request starts there.
    preferred: AtomicUsize,
    config: Config,
    unavailable: UnavailableCheck,
    /// How long answers usually take, for [`Transport::stall_limit`].
    latency: Latency,
    /// Extra header on every request (the auth token), if any. Read
    /// without a lock, so a child may reuse the token it inherited.
    auth: ArcSwapOption<String>,
    /// The highest store revision (v3) or index (v2) an answer named: one
    /// the store had reached before any request sent from now on is
    /// applied (settling a lost write reads the history above it).
    seen: AtomicI64,
}

/// The shortest wait on one member before a repeatable request is sent
/// to the next (calls on a healthy cluster take about a millisecond).
const MIN_STALL: Duration = Duration::from_millis(500);

/// A moving average of how long answers take (racy by design: an update
/// lost between two threads costs nothing).
#[derive(Default)]
struct Latency {
    micros: std::sync::atomic::AtomicU64,
}

impl Latency {
    fn note(&self, took: Duration) {
        let sample = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let old = self.micros.load(Ordering::Relaxed);
        let new = if old == 0 {
            sample
        } else {
            (old * 7 + sample) / 8
        };
        self.micros.store(new, Ordering::Relaxed);
    }

    fn usual(&self) -> Duration {
        Duration::from_micros(self.micros.load(Ordering::Relaxed))
    }
}

thread_local! {
    /// The member this thread's latest request went to: the one a wait
    /// inside that request (a lock's) is waiting on.
    static ASKING: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// How long a wait stays silent before its member is asked whether it
/// still serves, and how long that member has to answer.
const IDLE_CHECK_EVERY: Duration = Duration::from_secs(3);
const IDLE_CHECK_LIMIT: Duration = Duration::from_secs(1);

/// A question only a member that is part of its cluster's quorum can
/// answer (a linearizable read): what a wait asks its member when silent.
#[derive(Clone)]
pub struct Probe {
    pub method: Method,
    pub path: String,
    pub body: Vec<u8>,
}

/// A handle on the member list and its connections; clones share them
/// (a wait's liveness check holds one).
#[derive(Clone)]
pub struct Transport(Arc<Inner>);

impl std::ops::Deref for Transport {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// How a single attempt failed.
enum AttemptError {
    /// The request never reached the server.
    NotSent(String),
    /// Sent; the answer was lost, or said "cannot serve now".
    Lost(String),
    /// Sent; no answer within the time allowed.
    Stalled(String),
}

impl Transport {
    /// A transport to `servers`. With an `https` server among them, the
    /// TLS files are read and checked now: a bad one is an error naming it.
    pub fn new(
        servers: Vec<Endpoint>,
        config: Config,
        unavailable: UnavailableCheck,
    ) -> Result<Transport> {
        let mut builder = ureq::Agent::config_builder();
        if servers.iter().any(|s| s.tls) {
            builder =
                builder.tls_config(crate::tls::load(&config.tls).map_err(Error::bad_argument)?);
        }
        let agent_config = builder
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(config.connect_timeout))
            .timeout_global(Some(config.request_timeout + config.connect_timeout))
            .max_idle_connections_per_host(16)
            .max_idle_age(Duration::from_secs(120))
            .user_agent(concat!("libetcdapi/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Transport(Arc::new(Inner {
            agent: PerProcess::new(new_agent(&agent_config)),
            agent_config,
            servers,
            preferred: AtomicUsize::new(0),
            config,
            unavailable,
            latency: Latency::default(),
            auth: ArcSwapOption::empty(),
            seen: AtomicI64::new(0),
        })))
    }

    /// Runs `wait`, an endless wait on member `member` (`None`: the one
    /// this thread's request inside `wait` goes to). After every few
    /// seconds of silence the member is asked `probe`; when it cannot
    /// answer in time (cut off from its cluster, which would keep the
    /// wait open and silent for ever), the wait's read fails as if the
    /// connection had been cut, and `wait` carries on elsewhere. A
    /// healthy wait costs one small request per `IDLE_CHECK_EVERY`.
    pub fn while_serving<R>(
        &self,
        member: Option<usize>,
        probe: Probe,
        wait: impl FnOnce() -> R,
    ) -> R {
        self.while_serving_every(IDLE_CHECK_EVERY, member, probe, wait)
    }

    /// [`Transport::while_serving`] for a request that may not be sent
    /// again (a write without a fence): its member is asked `probe` after
    /// each [`Transport::stall_limit`] of silence, so that a member that
    /// stopped serving (frozen, cut off from its cluster) is given up in
    /// about a second, not after the whole request time-out, while a
    /// member that is only slow keeps the request.
    pub fn while_writing<R>(&self, probe: Probe, wait: impl FnOnce() -> R) -> R {
        self.while_serving_every(self.stall_limit(), None, probe, wait)
    }

    fn while_serving_every<R>(
        &self,
        every: Duration,
        member: Option<usize>,
        probe: Probe,
        wait: impl FnOnce() -> R,
    ) -> R {
        let transport = self.clone();
        let still_serving = move || {
            let index = member.unwrap_or_else(|| ASKING.with(|a| a.get()));
            let request = Request::new(probe.method, &probe.path, &probe.body)
                .servers(Servers::Only(index))
                .wait(Wait::Within(IDLE_CHECK_LIMIT));
            transport.send(&request).is_ok()
        };
        socket::with_idle_check(every, still_serving, wait)
    }
}

impl Inner {
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The server that last answered: where requests start.
    pub fn preferred(&self) -> usize {
        self.preferred.load(Ordering::Relaxed)
    }

    pub fn servers(&self) -> &[Endpoint] {
        &self.servers
    }

    /// Sends `req` and reads the whole answer: the first real answer from
    /// the servers tried; an "unavailable" answer counts as a failed
    /// attempt.
    pub fn send(&self, req: &Request) -> Result<Reply> {
        self.send_tracked(req).map(|sent| sent.reply)
    }

    /// [`Inner::send`], telling whether an earlier copy was lost on the way.
    pub fn send_tracked(&self, req: &Request) -> Result<Sent> {
        // A request that may be repeated is not left waiting on one member
        // for the whole time-out when it has waited far longer than calls
        // usually take (a follower holding a write for a dead leader, a
        // member cut off from the others): each member gets a short limit,
        // raised by half of it each round while some member was only slow.
        let repeatable = matches!(req.retry, Retry::Always | Retry::Fenced)
            && req.wait == Wait::Configured
            && !matches!(req.servers, Servers::Only(_))
            && self.servers.len() > 1;
        let mut lost = false;
        if !repeatable {
            return self.send_once(req, &mut lost).map_err(|(e, _)| e);
        }
        // The short rounds take at most about one request time-out; then
        // one round with the full time-out, for an answer that is merely
        // slow (a large listing).
        let full = self.config.request_timeout;
        let quick_until = Instant::now() + full + self.config.connect_timeout;
        let first = self.stall_limit();
        let mut limit = first;
        while limit < full {
            let round = Request {
                wait: Wait::Within(limit),
                ..*req
            };
            match self.send_once(&round, &mut lost) {
                Ok(sent) => return Ok(sent),
                Err((e, false)) => return Err(e),
                Err((_, true)) => {}
            }
            limit = (limit + first / 2).min(full);
            if Instant::now() + limit > quick_until {
                break;
            }
        }
        self.send_once(req, &mut lost).map_err(|(e, _)| e)
    }

    /// One round of [`Transport::send`]; the error says whether some
    /// attempt stalled (timed out after it was sent). `lost` is set (and
    /// stays set across rounds) once a copy was sent and its answer lost.
    fn send_once(
        &self,
        req: &Request,
        lost: &mut bool,
    ) -> std::result::Result<Sent, (Error, bool)> {
        let started = Instant::now();
        let reply = self.failover_noting(req, lost, |server, _| {
            let resp = self.run(server, req)?;
            let reply = self.read_reply(server, resp)?;
            self.usable(reply)
        });
        let reply = match reply {
            Ok(reply) => reply,
            // Every copy failed, and one may have been applied.
            Err((e, stalled)) if *lost && req.retry == Retry::Fenced => {
                return Err((Error::outcome_unknown(e.message().to_string()), stalled))
            }
            Err(e) => return Err(e),
        };
        self.latency.note(started.elapsed());
        // v2 names its store's index on every answer.
        if let Some(index) = reply
            .header("X-Etcd-Index")
            .and_then(|v| v.trim().parse().ok())
        {
            self.note_revision(index);
        }
        Ok(Sent {
            reply,
            earlier_lost: *lost,
        })
    }

    /// How long a repeatable request waits on one member before the next
    /// is asked: many times what calls usually take, never less than
    /// `MIN_STALL`, never more than the request time-out.
    pub fn stall_limit(&self) -> Duration {
        (self.latency.usual() * 16)
            .max(MIN_STALL)
            .min(self.config.request_timeout)
    }

    /// Opens `req` as a stream: HTTP 200 gives the stream (its body not
    /// yet read); another answer is read whole.
    pub fn open(&self, req: &Request) -> Result<Opened> {
        self.open_on(&self.agent(), req)
    }

    /// [`Transport::open`] on a connection of the stream's own (not one
    /// from the session's pool), with the [`Interrupt`] that cuts it: for
    /// a stream read by a thread that must be stopped however long the
    /// server stays silent.
    pub fn open_own(&self, req: &Request) -> Result<(Opened, Interrupt)> {
        let agent = new_agent(&self.agent_config);
        let opened = self.open_on(&agent, req)?;
        Ok((opened, Interrupt(agent)))
    }

    fn open_on(&self, agent: &ureq::Agent, req: &Request) -> Result<Opened> {
        self.failover(req, |server, index| {
            let resp = self.run_on(agent, server, req)?;
            if resp.status().as_u16() == 200 {
                let reader = resp.into_body().into_with_config().limit(u64::MAX).reader();
                return Ok(Opened::Stream(Stream {
                    reader: Box::new(BufReader::new(reader)),
                    server_index: index,
                    server: server.to_string(),
                }));
            }
            // A body cut short is as good as none here: the status speaks.
            let status = resp.status().as_u16();
            let (parts, body) = resp.into_parts();
            let reply = Reply {
                status,
                headers: parts.headers,
                body: read_limited(body.into_reader()).unwrap_or_default(),
                server: server.to_string(),
            };
            self.usable(reply).map(Opened::Answer)
        })
        .map_err(|(e, _)| e)
    }

    /// The one failover loop: tries `attempt` on the servers `req` names,
    /// each at most once, and returns the first success. A request that
    /// may not be repeated (`Retry::IfNotSent`) stops at the first failure
    /// after it was sent: its outcome is unknown.
    fn failover<T>(
        &self,
        req: &Request,
        attempt: impl FnMut(&Endpoint, usize) -> std::result::Result<T, AttemptError>,
    ) -> std::result::Result<T, (Error, bool)> {
        self.failover_noting(req, &mut false, attempt)
    }

    /// [`Inner::failover`], setting `lost` when a copy was sent and its
    /// answer lost before the one that answered.
    fn failover_noting<T>(
        &self,
        req: &Request,
        lost: &mut bool,
        mut attempt: impl FnMut(&Endpoint, usize) -> std::result::Result<T, AttemptError>,
    ) -> std::result::Result<T, (Error, bool)> {
        let n = self.servers.len();
        let (start, count) = match req.servers {
            Servers::Preferred => (self.preferred.load(Ordering::Relaxed), n),
            Servers::From(i) => (i, n),
            Servers::Only(i) if i < n => (i, 1),
            Servers::Only(i) => {
                return Err((Error::bad_argument(format!("no server number {i}")), false))
            }
        };
        let mut failures = Vec::new();
        let mut stalled = false;
        for index in (0..count).map(|k| (start + k) % n) {
            ASKING.with(|a| a.set(index));
            match attempt(&self.servers[index], index) {
                Ok(answer) => {
                    if !matches!(req.servers, Servers::Only(_)) {
                        self.preferred.store(index, Ordering::Relaxed);
                    }
                    return Ok(answer);
                }
                Err(AttemptError::NotSent(m)) => failures.push(m),
                Err(AttemptError::Lost(m) | AttemptError::Stalled(m))
                    if req.retry == Retry::IfNotSent =>
                {
                    return Err((Error::outcome_unknown(m), false))
                }
                Err(AttemptError::Lost(m)) => {
                    *lost = true;
                    failures.push(m)
                }
                Err(AttemptError::Stalled(m)) => {
                    *lost = true;
                    stalled = true;
                    failures.push(m)
                }
            }
        }
        let failures = failures.join("; ");
        if matches!(req.servers, Servers::Only(_)) {
            return Err((Error::unavailable(failures), stalled));
        }
        Err((
            Error::unavailable(format!("no server answered: {failures}")),
            stalled,
        ))
    }

    /// A reply, unless it says the member cannot serve now.
    fn usable(&self, reply: Reply) -> std::result::Result<Reply, AttemptError> {
        if (self.unavailable)(reply.status, &reply.body) {
            return Err(AttemptError::Lost(reply.to_string()));
        }
        Ok(reply)
    }

    /// Sends `req` to `server` once; the response's body is not read yet.
    fn run(
        &self,
        server: &Endpoint,
        req: &Request,
    ) -> std::result::Result<ureq::http::Response<ureq::Body>, AttemptError> {
        self.run_on(&self.agent(), server, req)
    }

    /// This process's agent (a child after fork() makes its own).
    fn agent(&self) -> Arc<Owned<ureq::Agent>> {
        self.agent.get(|_| new_agent(&self.agent_config))
    }

    fn run_on(
        &self,
        agent: &ureq::Agent,
        server: &Endpoint,
        req: &Request,
    ) -> std::result::Result<ureq::http::Response<ureq::Body>, AttemptError> {
        let url = format!("{}{}", server.base_url(), req.path);
        let method = match req.method {
            Method::Get => ureq::http::Method::GET,
            Method::Post => ureq::http::Method::POST,
            Method::Put => ureq::http::Method::PUT,
            Method::Delete => ureq::http::Method::DELETE,
        };
        let mut builder = ureq::http::Request::builder().method(method).uri(&url);
        if let Some(content_type) = req.content_type {
            builder = builder.header("Content-Type", content_type);
        }
        if req.with_token {
            if let Some(token) = &*self.auth.load() {
                builder = builder.header("Authorization", token.as_str());
            }
        }
        match req.method {
            Method::Post | Method::Put => {
                self.dispatch(agent, server, builder.body(req.body), req.wait)
            }
            Method::Get | Method::Delete => {
                self.dispatch(agent, server, builder.body(()), req.wait)
            }
        }
    }

    fn dispatch<B: ureq::AsSendBody>(
        &self,
        agent: &ureq::Agent,
        server: &Endpoint,
        request: std::result::Result<ureq::http::Request<B>, ureq::http::Error>,
        wait: Wait,
    ) -> std::result::Result<ureq::http::Response<ureq::Body>, AttemptError> {
        let request =
            request.map_err(|e| AttemptError::NotSent(format!("{server}: bad request: {e}")))?;
        let request = match wait {
            Wait::Configured => request,
            // The answer within `t` of sending (connecting keeps its own
            // time-out; the whole request stays within the configured one).
            Wait::Within(t) => agent
                .configure_request(request)
                .timeout_recv_response(Some(t))
                .build(),
            Wait::Stream(headers) => agent
                .configure_request(request)
                .timeout_global(None)
                .timeout_recv_response(headers)
                .timeout_recv_body(None)
                .build(),
        };
        agent.run(request).map_err(|e| self.classify(server, &e))
    }

    /// Reads the whole body of `resp`.
    fn read_reply(
        &self,
        server: &Endpoint,
        resp: ureq::http::Response<ureq::Body>,
    ) -> std::result::Result<Reply, AttemptError> {
        let status = resp.status().as_u16();
        let (parts, body) = resp.into_parts();
        let body = read_limited(body.into_reader()).map_err(|e| {
            let msg = format!("{server}: reading the answer: {e}");
            if e.kind() == std::io::ErrorKind::TimedOut {
                AttemptError::Stalled(msg)
            } else {
                AttemptError::Lost(msg)
            }
        })?;
        Ok(Reply {
            status,
            headers: parts.headers,
            body,
            server: server.to_string(),
        })
    }

    /// A revision (v3) or index (v2) the store had reached before now (0:
    /// none seen yet).
    pub fn seen_revision(&self) -> i64 {
        self.seen.load(Ordering::Relaxed)
    }

    /// Notes a revision or index an answer named.
    pub fn note_revision(&self, revision: i64) {
        self.seen.fetch_max(revision, Ordering::Relaxed);
    }

    pub fn set_auth(&self, token: Option<String>) {
        self.auth.store(token.map(Arc::new));
    }

    /// True when the session has a token to send.
    pub fn has_auth(&self) -> bool {
        self.auth.load().is_some()
    }
}

/// An agent on our own sockets and resolver (see [`socket`]), with TLS
/// from ureq's rustls connector on top.
fn new_agent(config: &ureq::config::Config) -> ureq::Agent {
    use ureq::unversioned::transport::{Connector, RustlsConnector};
    let connector = ().chain(socket::SocketConnector).chain(RustlsConnector::default());
    ureq::Agent::with_parts(
        config.clone(),
        connector,
        socket::CachingResolver::default(),
    )
}

/// Reads a whole body, refusing one over `MAX_BODY_BYTES`.
fn read_limited(reader: impl Read) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    reader.take(MAX_BODY_BYTES + 1).read_to_end(&mut body)?;
    if body.len() as u64 > MAX_BODY_BYTES {
        return Err(std::io::Error::other(format!(
            "answer larger than {MAX_BODY_BYTES} bytes"
        )));
    }
    Ok(body)
}

impl Inner {
    fn classify(&self, server: &Endpoint, e: &ureq::Error) -> AttemptError {
        use std::io::ErrorKind::*;
        let msg = format!("{server}: {}", self.describe(server, e));
        if crate::tls::cause(e).is_some() {
            // A failed handshake (bad certificate, refused client
            // certificate): the server never took the request.
            return AttemptError::NotSent(msg);
        }
        match e {
            ureq::Error::Io(io)
                if matches!(
                    io.kind(),
                    ConnectionRefused
                        | AddrNotAvailable
                        | NetworkUnreachable
                        | HostUnreachable
                        | NotFound
                ) =>
            {
                AttemptError::NotSent(msg)
            }
            ureq::Error::Timeout(ureq::Timeout::Connect | ureq::Timeout::Resolve) => {
                AttemptError::NotSent(msg)
            }
            ureq::Error::Timeout(_) => AttemptError::Stalled(msg),
            ureq::Error::HostNotFound | ureq::Error::ConnectionFailed | ureq::Error::BadUri(_) => {
                AttemptError::NotSent(msg)
            }
            ureq::Error::Tls(_) | ureq::Error::Rustls(_) => AttemptError::NotSent(msg),
            _ => AttemptError::Lost(msg),
        }
    }

    fn describe(&self, server: &Endpoint, e: &ureq::Error) -> String {
        if let Some(tls) = crate::tls::cause(e) {
            return crate::tls::explain(tls, &self.config.tls, &server.host);
        }
        match e {
            ureq::Error::Timeout(t) => format!("timed out ({t})"),
            ureq::Error::Io(io) if server.tls => {
                format!("{io}{}", crate::tls::cut_hint(io, &self.config.tls))
            }
            // etcd's TLS port closes on a plain http request, unanswered.
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                let https = server.base_url().replacen("http://", "https://", 1);
                format!("{io} (closed without an answer; if it is an https server, write {https})")
            }
            ureq::Error::Io(io) => io.to_string(),
            other => other.to_string(),
        }
    }
}
