//! etcd's authentication: a token from `POST /v3/auth/authenticate`,
//! asked for on the session's first call, sent raw in `Authorization` on
//! every request and stream; asked for again, once, when etcd rejects it
//! (a simple token expires after `--auth-token-ttl` seconds of disuse).
//!
//! The password goes into the authenticate request's body and nowhere
//! else: never into a message, a log or a `Debug` output.

use std::sync::Mutex;

use serde::Deserialize;
use serde_json::json;

use super::json::ErrorBody;
use super::V3;
use crate::config::Credentials;
use crate::error::{Error, Result};
use crate::transport::{Method, Reply, Retry};

/// etcd's words for a request whose token is missing, expired or stale:
/// worth a new token (as etcd's own Go client does).
const TOKEN_REJECTIONS: &[&str] = &[
    "invalid auth token",
    "user name is empty",
    "revision of auth store is old",
];

/// True when `text` (an etcd error message, a watch's cancel reason)
/// says the token was not accepted.
pub fn rejects_token(text: &str) -> bool {
    TOKEN_REJECTIONS.iter().any(|m| text.contains(m))
}

/// What to add to a refusal for want of a login.
pub fn hint(text: &str) -> &'static str {
    if text.contains("user name is empty") {
        " (etcd wants a user and password: set ETCDAPI_USER and ETCDAPI_PASSWORD)"
    } else {
        ""
    }
}

/// True when a gateway answer refuses the request for its token.
pub fn reply_rejects_token(reply: &Reply) -> bool {
    reply.status != 200
        && serde_json::from_slice::<ErrorBody>(&reply.body)
            .is_ok_and(|e| rejects_token(&e.message) || rejects_token(&e.error))
}

pub struct Auth {
    credentials: Credentials,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Counts the tokens obtained, so that of several threads rejected
    /// with the same token only the first asks for a new one.
    generation: u64,
    /// A token is in place (or etcd said authentication is off).
    ready: bool,
}

impl Auth {
    pub fn new(credentials: Credentials) -> Auth {
        Auth {
            credentials,
            state: Mutex::default(),
        }
    }

    /// Makes sure the session has a token (authenticating on first need);
    /// returns the token's generation, for [`Auth::renew`].
    pub fn ensure(&self, v3: &V3) -> Result<u64> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if !state.ready {
            self.authenticate(v3, &mut state)?;
        }
        Ok(state.generation)
    }

    /// A request sent with token `seen` was rejected: get a new token,
    /// unless another thread already did since.
    pub fn renew(&self, v3: &V3, seen: u64) -> Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.generation == seen || !state.ready {
            state.ready = false;
            self.authenticate(v3, &mut state)?;
        }
        Ok(())
    }

    fn authenticate(&self, v3: &V3, state: &mut State) -> Result<()> {
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct Token {
            token: String,
        }
        let user = &self.credentials.user;
        let body = serde_json::to_vec(&json!({
            "name": user,
            "password": self.credentials.password(),
        }))
        .map_err(|e| Error::bad_argument(format!("user {user:?}: {e}")))?;
        // Without the old token: etcd refuses even this with an expired one.
        let reply = v3.transport.request_anonymous(
            Method::Post,
            "/v3/auth/authenticate",
            &body,
            Retry::Always,
        )?;
        let token = if reply.status == 200 {
            let t: Token = super::decode(&reply)?;
            if t.token.is_empty() {
                return Err(Error::bad_response(format!(
                    "{}: authentication as user {user:?} answered without a token",
                    reply.server
                )));
            }
            Some(t.token)
        } else {
            let e: ErrorBody = serde_json::from_slice(&reply.body).unwrap_or_default();
            let said = if e.message.is_empty() {
                e.error
            } else {
                e.message
            };
            if said.is_empty() {
                return Err(super::refusal(&reply));
            }
            if said.contains("authentication is not enabled") {
                // Nothing to log in to: carry on without a token.
                None
            } else {
                return Err(Error::refused(format!(
                    "{}: authentication as user {user:?} failed: {said} (HTTP {}, code {})",
                    reply.server, reply.status, e.code
                )));
            }
        };
        v3.transport.set_auth(token);
        state.generation += 1;
        state.ready = true;
        Ok(())
    }
}
