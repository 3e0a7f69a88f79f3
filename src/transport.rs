//! HTTP to a list of etcd members: one keep-alive agent per session,
//! failover from server to server, and the line between "not sent" (safe
//! to send elsewhere) and "outcome unknown" (it may have been applied).

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

/// An open streaming response (watch, lock wait): read line by line, no
/// time-out on the body.
pub struct Stream {
    pub reader: Box<dyn BufRead + Send>,
    /// The answer's headers.
    pub headers: HeaderMap,
    pub server_index: usize,
    pub server: String,
}

impl Stream {
    /// The value of header `name`, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        header_value(&self.headers, name)
    }
}

/// What opening a stream gave: the stream (HTTP 200), or another answer
/// (one that does not mean "member unavailable") read whole.
pub enum Opened {
    Stream(Stream),
    Answer(Reply),
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
    /// Sent; the answer was lost or late.
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

    /// Sends one request, trying each server at most once, starting with
    /// the one that last answered. Returns the first real answer; an
    /// "unavailable" answer counts as a failed attempt.
    pub fn request(&self, method: Method, path: &str, body: &[u8], retry: Retry) -> Result<Reply> {
        self.request_within(method, path, body, retry, None)
    }

    /// [`Transport::request`] with each attempt limited to `timeout`
    /// (`None`: the configured request time-out), for requests that are
    /// worth more sent again soon elsewhere than waited for long.
    pub fn request_within(
        &self,
        method: Method,
        path: &str,
        body: &[u8],
        retry: Retry,
        timeout: Option<Duration>,
    ) -> Result<Reply> {
        self.send(method, path, body, retry, timeout, true)
    }

    /// [`Transport::request`] without the auth token: for asking for a
    /// new one (etcd refuses even that when an expired token comes along).
    pub fn request_anonymous(
        &self,
        method: Method,
        path: &str,
        body: &[u8],
        retry: Retry,
    ) -> Result<Reply> {
        self.send(method, path, body, retry, None, false)
    }

    fn send(
        &self,
        method: Method,
        path: &str,
        body: &[u8],
        retry: Retry,
        timeout: Option<Duration>,
        with_token: bool,
    ) -> Result<Reply> {
        let mut failures = Vec::new();
        for i in self.rotation() {
            let server = &self.servers[i];
            match self.attempt(server, method, path, body, timeout, with_token) {
                Ok(reply) if (self.unavailable)(reply.status, &reply.body) => {
                    let what = format!(
                        "{}: HTTP {} {}",
                        reply.server,
                        reply.status,
                        reply.body_text()
                    );
                    if retry == Retry::IfNotSent {
                        return Err(Error::outcome_unknown(what));
                    }
                    failures.push(what);
                }
                Ok(reply) => {
                    self.preferred.store(i, Ordering::Relaxed);
                    return Ok(reply);
                }
                Err(AttemptError::NotSent(m)) => failures.push(m),
                Err(AttemptError::Lost(m)) => {
                    if retry == Retry::IfNotSent {
                        return Err(Error::outcome_unknown(m));
                    }
                    failures.push(m);
                }
            }
        }
        Err(Error::unavailable(format!(
            "no server answered: {}",
            failures.join("; ")
        )))
    }

    /// Opens a streaming request (no time-out on the body), trying servers
    /// from `start` (or the preferred one) onwards. `headers_timeout`
    /// bounds the wait for the response headers: a watch answers at once,
    /// a lock only once it is acquired (`None`: wait as long as it takes).
    pub fn open_stream(
        &self,
        path: &str,
        body: &[u8],
        start: Option<usize>,
        headers_timeout: Option<Duration>,
    ) -> Result<Stream> {
        match self.open(Method::Post, path, body, start, headers_timeout)? {
            Opened::Stream(stream) => Ok(stream),
            Opened::Answer(reply) => Err(Error::refused(format!(
                "{}: HTTP {} {}",
                reply.server,
                reply.status,
                reply.body_text()
            ))),
        }
    }

    /// Like [`Transport::open_stream`], with any method (`body` is not
    /// sent for GET and DELETE), handing back an answer other than 200
    /// for the caller to interpret.
    pub fn open(
        &self,
        method: Method,
        path: &str,
        body: &[u8],
        start: Option<usize>,
        headers_timeout: Option<Duration>,
    ) -> Result<Opened> {
        let mut failures = Vec::new();
        for i in self.rotation_from(start.unwrap_or_else(|| self.preferred.load(Ordering::Relaxed)))
        {
            let server = &self.servers[i];
            let name = server.to_string();
            let url = format!("{}{}", server.base_url(), path);
            let result = match method {
                Method::Get | Method::Delete => {
                    let req = if method == Method::Get {
                        self.agent.get(&url)
                    } else {
                        self.agent.delete(&url)
                    };
                    self.with_auth(req)
                        .config()
                        .timeout_global(None)
                        .timeout_recv_response(headers_timeout)
                        .timeout_recv_body(None)
                        .build()
                        .call()
                }
                Method::Post | Method::Put => {
                    let req = if method == Method::Post {
                        self.agent.post(&url)
                    } else {
                        self.agent
                            .put(&url)
                            .content_type("application/x-www-form-urlencoded")
                    };
                    self.with_auth(req)
                        .config()
                        .timeout_global(None)
                        .timeout_recv_response(headers_timeout)
                        .timeout_recv_body(None)
                        .build()
                        .send(body)
                }
            };
            match result {
                Ok(resp) if resp.status().as_u16() == 200 => {
                    self.preferred.store(i, Ordering::Relaxed);
                    let (parts, body) = resp.into_parts();
                    let reader = body.into_with_config().limit(u64::MAX).reader();
                    return Ok(Opened::Stream(Stream {
                        reader: Box::new(BufReader::new(reader)),
                        headers: parts.headers,
                        server_index: i,
                        server: name,
                    }));
                }
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let (parts, body) = resp.into_parts();
                    let body = read_limited(body.into_reader()).unwrap_or_default();
                    let reply = Reply {
                        status,
                        headers: parts.headers,
                        body,
                        server: name,
                    };
                    if (self.unavailable)(status, &reply.body) {
                        failures.push(format!(
                            "{}: HTTP {} {}",
                            reply.server,
                            status,
                            reply.body_text()
                        ));
                        continue;
                    }
                    return Ok(Opened::Answer(reply));
                }
                Err(e) => failures.push(format!("{name}: {}", self.describe(server, &e))),
            }
        }
        Err(Error::unavailable(format!(
            "no server answered: {}",
            failures.join("; ")
        )))
    }

    /// Sends one request to server `index` only (no failover): for asking
    /// each member in turn a question only some of them can answer. An
    /// "unavailable" answer is an error.
    pub fn request_on(
        &self,
        index: usize,
        method: Method,
        path: &str,
        body: &[u8],
    ) -> Result<Reply> {
        let Some(server) = self.servers.get(index) else {
            return Err(Error::bad_argument(format!("no server number {index}")));
        };
        match self.attempt(server, method, path, body, None, true) {
            Ok(reply) if (self.unavailable)(reply.status, &reply.body) => {
                Err(Error::unavailable(format!(
                    "{}: HTTP {} {}",
                    reply.server,
                    reply.status,
                    reply.body_text()
                )))
            }
            Ok(reply) => Ok(reply),
            Err(AttemptError::NotSent(m) | AttemptError::Lost(m)) => Err(Error::unavailable(m)),
        }
    }

    pub fn set_auth(&self, token: Option<String>) {
        *self.auth.write().unwrap_or_else(|e| e.into_inner()) = token;
    }

    fn with_auth<B>(&self, req: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &*self.auth.read().unwrap_or_else(|e| e.into_inner()) {
            Some(token) => req.header("Authorization", token),
            None => req,
        }
    }

    /// Adds the auth token (when `with_token`) and, when given, a
    /// time-out of its own.
    fn limited<B>(
        &self,
        req: ureq::RequestBuilder<B>,
        timeout: Option<Duration>,
        with_token: bool,
    ) -> ureq::RequestBuilder<B> {
        let req = if with_token { self.with_auth(req) } else { req };
        match timeout {
            Some(t) => req
                .config()
                .timeout_global(Some(t + self.config.connect_timeout))
                .build(),
            None => req,
        }
    }

    fn rotation(&self) -> impl Iterator<Item = usize> {
        self.rotation_from(self.preferred.load(Ordering::Relaxed))
    }

    fn rotation_from(&self, start: usize) -> impl Iterator<Item = usize> {
        let n = self.servers.len();
        (0..n).map(move |k| (start + k) % n)
    }

    fn attempt(
        &self,
        server: &Endpoint,
        method: Method,
        path: &str,
        body: &[u8],
        timeout: Option<Duration>,
        with_token: bool,
    ) -> std::result::Result<Reply, AttemptError> {
        let name = server.to_string();
        let url = format!("{}{}", server.base_url(), path);
        let limit = |req| self.limited(req, timeout, with_token);
        let result = match method {
            Method::Get => limit(self.agent.get(&url)).call(),
            Method::Delete => limit(self.agent.delete(&url)).call(),
            Method::Post => self
                .limited(self.agent.post(&url), timeout, with_token)
                .send(body),
            Method::Put => self
                .limited(self.agent.put(&url), timeout, with_token)
                .content_type("application/x-www-form-urlencoded")
                .send(body),
        };
        let resp = result.map_err(|e| self.classify(server, &e))?;
        let status = resp.status().as_u16();
        let (parts, body) = resp.into_parts();
        let body = read_limited(body.into_reader())
            .map_err(|e| AttemptError::Lost(format!("{name}: reading the answer: {e}")))?;
        Ok(Reply {
            status,
            headers: parts.headers,
            body,
            server: name,
        })
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
