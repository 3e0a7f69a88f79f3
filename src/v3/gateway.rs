//! Calling etcd's HTTP/JSON gateway: one unary call, decoded; the
//! session's login around every request; and the signs of a member that
//! cannot serve now. kv, lease, lock, watch and maintenance all call
//! through here.

use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::auth::Auth;
use super::json::encode;
use super::status::{self, Status};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::servers::Endpoint;
use crate::transport::{Method, Probe, Reply, Request, Retry, Stream, Transport};

pub struct Gateway {
    pub transport: Transport,
    /// The session's login, when it has credentials.
    auth: Option<Auth>,
}

impl Gateway {
    pub fn new(servers: Vec<Endpoint>, config: Config) -> Result<Gateway> {
        let auth = config.credentials.clone().map(Auth::new);
        Ok(Gateway {
            transport: Transport::new(servers, config, member_unavailable)?,
            auth,
        })
    }

    /// True when the session logs in (it has a user and password).
    pub fn has_credentials(&self) -> bool {
        self.auth.is_some()
    }

    pub fn config(&self) -> &Config {
        self.transport.config()
    }

    /// One unary call: POST `path` with a JSON body, decode the answer
    /// into `T`; a refusal is an [`Error`].
    pub fn call<T: DeserializeOwned>(&self, path: &str, body: &Value, retry: Retry) -> Result<T> {
        self.call_status(path, body, retry)?.map_err(Error::from)
    }

    /// A fenced write ([`Retry::Fenced`]): sent again elsewhere when its
    /// answer is lost; true with the answer when an earlier copy was lost
    /// on the way (it may have been applied: the caller settles that).
    pub fn call_fenced<T: DeserializeOwned>(&self, path: &str, body: &Value) -> Result<(T, bool)> {
        let body = serde_json::to_vec(body).map_err(|e| Error::bad_argument(e.to_string()))?;
        let request = Request::post(path, &body).retry(Retry::Fenced);
        let mut earlier_lost = false;
        let reply = self.authorized(
            || {
                let sent = self.transport.send_tracked(&request)?;
                earlier_lost |= sent.earlier_lost;
                Ok(sent.reply)
            },
            reply_rejects_token,
        )?;
        self.note_revision(&reply);
        let answer = status::decode(&reply)?.map_err(Error::from)?;
        Ok((answer, earlier_lost))
    }

    /// A write without a fence (a create; see `settle`): sent once, never
    /// again by the transport once sent; its member is asked whether it
    /// still serves when the answer is slow
    /// ([`crate::transport::Transport::while_writing`]), so a frozen or
    /// cut-off member is given up in about a second. A lost answer is
    /// `OutcomeUnknown`.
    pub fn call_unfenced<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &Value,
        key: &[u8],
    ) -> Result<T> {
        self.transport
            .while_writing(probe(key), || self.call(path, body, Retry::IfNotSent))
    }

    /// A revision the store had reached before now (0: none seen yet).
    pub fn seen_revision(&self) -> i64 {
        self.transport.seen_revision()
    }

    /// Remembers the store revision a 200 answer's header names. The
    /// gateway writes the header first: a look at the answer's start
    /// finds it without decoding the body twice.
    fn note_revision(&self, reply: &Reply) {
        if reply.status != 200 {
            return;
        }
        if let Some(rev) = header_revision(&reply.body) {
            self.transport.note_revision(rev);
        }
    }

    /// [`Gateway::call`] for callers that act on etcd's refusal: it comes
    /// back as a [`Status`] with its gRPC code.
    pub fn call_status<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &Value,
        retry: Retry,
    ) -> Result<std::result::Result<T, Status>> {
        let body = serde_json::to_vec(body).map_err(|e| Error::bad_argument(e.to_string()))?;
        let request = Request::post(path, &body).retry(retry);
        let reply = self.authorized(|| self.transport.send(&request), reply_rejects_token)?;
        self.note_revision(&reply);
        status::decode(&reply)
    }

    /// Runs `send` with the session's token (logging in first when it has
    /// none yet). When etcd rejects the token (`rejected`: expired, or
    /// stale), logs in again once and sends again; a rejected request was
    /// not carried out, so sending it again is safe. Without credentials,
    /// just `send`.
    pub fn authorized<T>(
        &self,
        mut send: impl FnMut() -> Result<T>,
        rejected: impl Fn(&T) -> bool,
    ) -> Result<T> {
        let Some(auth) = &self.auth else {
            return send();
        };
        let seen = auth.ensure(&self.transport)?;
        let first = send()?;
        if !rejected(&first) {
            return Ok(first);
        }
        auth.renew(&self.transport, seen)?;
        send()
    }
}

/// The `"revision":"N"` of the header an answer starts with.
fn header_revision(body: &[u8]) -> Option<i64> {
    const HEAD: usize = 256;
    const FIELD: &[u8] = b"\"revision\":\"";
    let head = &body[..body.len().min(HEAD)];
    if !head.starts_with(b"{\"header\":") {
        return None;
    }
    let at = head.windows(FIELD.len()).position(|w| w == FIELD)? + FIELD.len();
    let digits = head[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&head[at..at + digits])
        .ok()?
        .parse()
        .ok()
}

/// What a wait on `key` asks its member when silent: a linearizable
/// count of `key`, which only a member in touch with its leader answers.
pub fn probe(key: &[u8]) -> Probe {
    let body = json!({"key": encode(key), "count_only": true});
    Probe {
        method: Method::Post,
        path: "/v3/kv/range".into(),
        body: serde_json::to_vec(&body).unwrap_or_default(),
    }
}

/// The whole answer of a unary call opened as a stream (a wait whose
/// headers come only with its answer: lock, campaign). An error when the
/// stream was cut.
pub fn read_answer(stream: &mut Stream) -> std::io::Result<Reply> {
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut stream.reader, &mut body)?;
    Ok(Reply {
        status: 200,
        headers: Default::default(),
        body,
        server: stream.server.clone(),
    })
}

/// True when a gateway answer refuses the request for its token.
pub fn reply_rejects_token(reply: &Reply) -> bool {
    reply.status != 200 && Status::of(reply).is_some_and(|s| s.rejects_token())
}

/// The signs of a member that cannot serve right now (no leader, raft
/// proposal timed out): worth asking another member. ("election: no
/// leader" is an answer: nobody leads that election.)
fn member_unavailable(status: u16, body: &[u8]) -> bool {
    if status == 503 {
        return true;
    }
    if status == 500 {
        let text = String::from_utf8_lossy(body);
        return text.contains("context deadline exceeded")
            || text.contains("request timed out")
            || (text.contains("no leader") && !text.contains("election: no leader"))
            || text.contains("leader changed");
    }
    false
}
