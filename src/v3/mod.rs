//! etcd's v3 API through its HTTP/JSON gateway (`/v3/...`).

mod auth;
mod json;
mod kv;
mod lease;
mod lock;
mod watch;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::protocol::{Event, Protocol};
use crate::servers::Endpoint;
use crate::transport::{Method, Reply, Retry, Transport};

pub struct V3 {
    transport: Transport,
    watches: watch::Streams,
    /// The session's login, when it has credentials.
    auth: Option<auth::Auth>,
}

impl V3 {
    pub fn new(servers: Vec<Endpoint>, config: Config) -> Result<V3> {
        let auth = config.credentials.clone().map(auth::Auth::new);
        Ok(V3 {
            transport: Transport::new(servers, config, member_unavailable)?,
            watches: watch::Streams::default(),
            auth,
        })
    }

    /// One unary gateway call: POST `path` with a JSON body, decode the
    /// answer into `T`.
    fn call<T: DeserializeOwned>(&self, path: &str, body: &Value, retry: Retry) -> Result<T> {
        let body = serde_json::to_vec(body).map_err(|e| Error::bad_argument(e.to_string()))?;
        let reply = self.authorized(
            || self.transport.request(Method::Post, path, &body, retry),
            auth::reply_rejects_token,
        )?;
        decode(&reply)
    }

    /// Runs `send` with the session's token (logging in first when it has
    /// none yet). When etcd rejects the token (`rejected`: expired, or
    /// stale), logs in again once and sends again; a rejected request was
    /// not carried out, so sending it again is safe. Without credentials,
    /// just `send`.
    fn authorized<T>(
        &self,
        mut send: impl FnMut() -> Result<T>,
        rejected: impl Fn(&T) -> bool,
    ) -> Result<T> {
        let Some(auth) = &self.auth else {
            return send();
        };
        let seen = auth.ensure(self)?;
        let first = send()?;
        if !rejected(&first) {
            return Ok(first);
        }
        auth.renew(self, seen)?;
        send()
    }
}

/// The signs of a member that cannot serve right now (no leader, raft
/// proposal timed out): worth asking another member.
fn member_unavailable(status: u16, body: &[u8]) -> bool {
    if status == 503 {
        return true;
    }
    if status == 500 {
        let text = String::from_utf8_lossy(body);
        return text.contains("context deadline exceeded")
            || text.contains("request timed out")
            || text.contains("no leader")
            || text.contains("leader changed");
    }
    false
}

/// Turns a gateway answer into `T`, or into the error etcd gave.
fn decode<T: DeserializeOwned>(reply: &Reply) -> Result<T> {
    if reply.status == 200 {
        let unreadable = |e: &dyn std::fmt::Display| {
            Error::bad_response(format!(
                "{}: unreadable answer ({e}): {}",
                reply.server,
                reply.body_text()
            ))
        };
        // Every gateway answer is an object with a header (streamed ones
        // wrap it in "result"); anything else is not etcd talking. The
        // check skims the body without building it (answers carry values
        // of up to 1.5 MiB), then the body is decoded once, into T.
        #[derive(serde::Deserialize)]
        struct Envelope {
            header: Option<json::AnyObject>,
            result: Option<json::AnyObject>,
        }
        let envelope: Envelope = serde_json::from_slice(&reply.body).map_err(|e| unreadable(&e))?;
        if envelope.header.is_none() && envelope.result.is_none() {
            return Err(unreadable(&"no header"));
        }
        return serde_json::from_slice(&reply.body).map_err(|e| unreadable(&e));
    }
    Err(refusal(reply))
}

/// The error for a non-200 gateway answer: etcd's own gRPC error message
/// when the body carries one (a refusal), else the raw status (a server we
/// do not understand).
fn refusal(reply: &Reply) -> Error {
    match serde_json::from_slice::<json::ErrorBody>(&reply.body) {
        Ok(e) if !e.message.is_empty() || !e.error.is_empty() => {
            let msg = if e.message.is_empty() {
                e.error
            } else {
                e.message
            };
            let hint = auth::hint(&msg);
            Error::refused(format!(
                "{}: {} (HTTP {}, code {}){hint}",
                reply.server, msg, reply.status, e.code
            ))
        }
        _ => {
            let text = reply.body_text();
            let hint = if text.contains("CommonName of client") {
                " (with authentication on, etcd's gateway takes only client certificates \
                 without a Common Name)"
            } else {
                ""
            };
            Error::bad_response(format!(
                "{}: HTTP {} {text}{hint}",
                reply.server, reply.status
            ))
        }
    }
}

impl Protocol for V3 {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        kv::get(self, key)
    }

    fn set(&self, key: &[u8], value: &[u8], prev: Option<&[u8]>, ttl: u32) -> Result<()> {
        kv::set(self, key, value, prev, ttl)
    }

    fn delete(&self, key: &[u8]) -> Result<()> {
        kv::delete(self, key)
    }

    fn leader(&self) -> Result<String> {
        kv::leader(self)
    }

    fn watch(&self, prefix: &[u8], from: Option<i64>) -> Result<Event> {
        watch::watch(self, prefix, from)
    }

    fn lock(&self, key: &[u8], ttl: u32) -> Result<String> {
        lock::lock(self, key, ttl)
    }

    fn renew(&self, key: &[u8], ttl: u32, index: &str) -> Result<()> {
        lock::renew(self, key, ttl, index)
    }

    fn unlock(&self, key: &[u8], index: &str) -> Result<()> {
        lock::unlock(self, key, index)
    }
}
