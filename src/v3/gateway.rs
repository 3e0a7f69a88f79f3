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
use crate::transport::{Method, Probe, Reply, Request, Retry, Transport};

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

/// True when a gateway answer refuses the request for its token.
pub fn reply_rejects_token(reply: &Reply) -> bool {
    reply.status != 200 && Status::of(reply).is_some_and(|s| s.rejects_token())
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
