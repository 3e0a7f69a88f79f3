//! HTTP to a list of etcd members: one keep-alive agent per session,
//! failover from server to server, and the line between "not sent" (safe
//! to send elsewhere) and "outcome unknown" (it may have been applied).

use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::config::Config;
use crate::error::{Error, Result};
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
    /// At most this long once connected: for requests that are worth more
    /// sent again soon elsewhere than waited for long.
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

pub struct Transport {
    agent: ureq::Agent,
    servers: Vec<Endpoint>,
    /// Index of the server that last answered: the next request starts there.
    preferred: AtomicUsize,
    config: Config,
    unavailable: UnavailableCheck,
    /// Extra header on every request (the auth token), if any.
    auth: std::sync::RwLock<Option<String>>,
}

/// How a single attempt failed.
enum AttemptError {
    /// The request never reached the server.
    NotSent(String),
    /// Sent; the answer was lost or late, or said "cannot serve now".
    Lost(String),
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
        let agent: ureq::Agent = builder
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(config.connect_timeout))
            .timeout_global(Some(config.request_timeout + config.connect_timeout))
            .max_idle_connections_per_host(16)
            .max_idle_age(Duration::from_secs(120))
            .user_agent(concat!("libetcdapi/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Transport {
            agent,
            servers,
            preferred: AtomicUsize::new(0),
            config,
            unavailable,
            auth: std::sync::RwLock::new(None),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn servers(&self) -> &[Endpoint] {
        &self.servers
    }

    /// Sends `req` and reads the whole answer: the first real answer from
    /// the servers tried; an "unavailable" answer counts as a failed
    /// attempt.
    pub fn send(&self, req: &Request) -> Result<Reply> {
        self.failover(req, |server, _| {
            let resp = self.run(server, req)?;
            let reply = self.read_reply(server, resp)?;
            self.usable(reply)
        })
    }

    /// Opens `req` as a stream: HTTP 200 gives the stream (its body not
    /// yet read); another answer is read whole.
    pub fn open(&self, req: &Request) -> Result<Opened> {
        self.open_on(&self.agent, req)
    }

    /// [`Transport::open`] on a connection of the stream's own (not one
    /// from the session's pool), with the [`Interrupt`] that cuts it: for
    /// a stream read by a thread that must be stopped however long the
    /// server stays silent.
    pub fn open_own(&self, req: &Request) -> Result<(Opened, Interrupt)> {
        let agent = ureq::Agent::new_with_config(self.agent.config().clone());
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
    }

    /// The one failover loop: tries `attempt` on the servers `req` names,
    /// each at most once, and returns the first success. A request that
    /// may not be repeated (`Retry::IfNotSent`) stops at the first failure
    /// after it was sent: its outcome is unknown.
    fn failover<T>(
        &self,
        req: &Request,
        mut attempt: impl FnMut(&Endpoint, usize) -> std::result::Result<T, AttemptError>,
    ) -> Result<T> {
        let n = self.servers.len();
        let (start, count) = match req.servers {
            Servers::Preferred => (self.preferred.load(Ordering::Relaxed), n),
            Servers::From(i) => (i, n),
            Servers::Only(i) if i < n => (i, 1),
            Servers::Only(i) => return Err(Error::bad_argument(format!("no server number {i}"))),
        };
        let mut failures = Vec::new();
        for index in (0..count).map(|k| (start + k) % n) {
            match attempt(&self.servers[index], index) {
                Ok(answer) => {
                    if !matches!(req.servers, Servers::Only(_)) {
                        self.preferred.store(index, Ordering::Relaxed);
                    }
                    return Ok(answer);
                }
                Err(AttemptError::NotSent(m)) => failures.push(m),
                Err(AttemptError::Lost(m)) if req.retry == Retry::IfNotSent => {
                    return Err(Error::outcome_unknown(m))
                }
                Err(AttemptError::Lost(m)) => failures.push(m),
            }
        }
        if matches!(req.servers, Servers::Only(_)) {
            return Err(Error::unavailable(failures.join("; ")));
        }
        Err(Error::unavailable(format!(
            "no server answered: {}",
            failures.join("; ")
        )))
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
        self.run_on(&self.agent, server, req)
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
            if let Some(token) = &*self.auth.read().unwrap_or_else(|e| e.into_inner()) {
                builder = builder.header("Authorization", token);
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
            Wait::Within(t) => agent
                .configure_request(request)
                .timeout_global(Some(t + self.config.connect_timeout))
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
        let body = read_limited(body.into_reader())
            .map_err(|e| AttemptError::Lost(format!("{server}: reading the answer: {e}")))?;
        Ok(Reply {
            status,
            headers: parts.headers,
            body,
            server: server.to_string(),
        })
    }

    pub fn set_auth(&self, token: Option<String>) {
        *self.auth.write().unwrap_or_else(|e| e.into_inner()) = token;
    }
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

impl Transport {
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
