//! etcd's authentication: a token from `POST /v3/auth/authenticate`,
//! asked for on the session's first call, sent raw in `Authorization` on
//! every request and stream; asked for again, once, when etcd rejects it
//! (a simple token expires after `--auth-token-ttl` seconds of disuse).
//!
//! The password goes into the authenticate request's body and nowhere
//! else: never into a message, a log or a `Debug` output.

use std::sync::{Arc, Mutex};

use serde::Deserialize;
use serde_json::json;

use super::status::{self, Status};
use crate::config::Credentials;
use crate::error::{Error, Result};
use crate::process::{Owned, PerProcess};
use crate::transport::{Request, Transport};

pub struct Auth {
    credentials: Credentials,
    /// This process's login state (a child starts its own, reusing the
    /// token it inherited: the lock may have been held at the fork).
    state: PerProcess<Mutex<State>>,
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
            state: PerProcess::new(Mutex::default()),
        }
    }

    /// Makes sure the session has a token (authenticating on first need);
    /// returns the token's generation, for [`Auth::renew`].
    pub fn ensure(&self, transport: &Transport) -> Result<u64> {
        let state = self.state(transport);
        let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
        if !state.ready {
            self.authenticate(transport, &mut state)?;
        }
        Ok(state.generation)
    }

    /// A request sent with token `seen` was rejected: get a new token,
    /// unless another thread already did since.
    pub fn renew(&self, transport: &Transport, seen: u64) -> Result<()> {
        let state = self.state(transport);
        let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
        if state.generation == seen || !state.ready {
            state.ready = false;
            self.authenticate(transport, &mut state)?;
        }
        Ok(())
    }

    fn state(&self, transport: &Transport) -> Arc<Owned<Mutex<State>>> {
        self.state.get(|_| {
            Mutex::new(State {
                generation: 0,
                ready: transport.has_auth(),
            })
        })
    }

    fn authenticate(&self, transport: &Transport, state: &mut State) -> Result<()> {
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
        let reply = transport.send(&Request::post("/v3/auth/authenticate", &body).anonymous())?;
        let token = match status::decode::<Token>(&reply)? {
            Ok(t) if t.token.is_empty() => {
                return Err(Error::bad_response(format!(
                    "{}: authentication as user {user:?} answered without a token",
                    reply.server
                )))
            }
            Ok(t) => Some(t.token),
            // Nothing to log in to: carry on without a token.
            Err(s) if s.message.contains("authentication is not enabled") => None,
            Err(Status {
                message,
                http,
                code,
                server,
            }) => {
                return Err(Error::refused(format!(
                    "{server}: authentication as user {user:?} failed: {message} (HTTP {http}, code {})",
                    code.number()
                )))
            }
        };
        transport.set_auth(token);
        state.generation += 1;
        state.ready = true;
        Ok(())
    }
}
