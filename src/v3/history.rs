//! A key's history, for settling a write whose answer was lost (SPEC
//! section 2): what the key held at a past revision, and its first change
//! above a revision, as etcd's watch replays it.

use std::time::Duration;

use serde_json::json;

use super::gateway::Gateway;
use super::json::{encode, RangeResponse};
use super::status::Code;
use super::watch::{self, Streams};
use crate::error::{Error, ErrorKind, Result};
use crate::kv::{KeyValue, WatchEvent};
use crate::transport::Retry;

/// `key` as it was at `revision` (`None`: it did not exist then).
pub fn read_at(g: &Gateway, key: &[u8], revision: i64) -> Result<Option<KeyValue>> {
    let body = json!({"key": encode(key), "revision": revision.to_string()});
    match g.call_status::<RangeResponse>("/v3/kv/range", &body, Retry::Always)? {
        Ok(r) => Ok(r
            .kvs
            .into_iter()
            .find(|kv| kv.key == key)
            .map(KeyValue::from)),
        Err(s) if s.code == Code::OutOfRange => Err(Error::new(
            ErrorKind::Compacted,
            format!("revision {revision}: {}", s.message),
        )),
        Err(s) => Err(s.into()),
    }
}

/// The first change to `key` at or above revision `from` (the caller
/// knows there is one).
pub fn first_change(g: &Gateway, key: &[u8], from: i64) -> Result<WatchEvent> {
    let streams = Streams::default();
    let wait = Some(g.config().request_timeout + g.config().connect_timeout);
    let mut next = from;
    loop {
        let changes = watch::watch_events(g, &streams, key, Some(next), wait)?;
        next = changes.revision + 1;
        if let Some(e) = changes.events.into_iter().find(|e| e.kv.key == key) {
            return Ok(e);
        }
    }
}

/// The time one history read may take, for messages.
#[allow(dead_code)]
pub fn budget(g: &Gateway) -> Duration {
    g.config().request_timeout
}
