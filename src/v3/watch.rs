//! Watch over the streaming `/v3/watch` endpoint.

use super::V3;
use crate::error::{Error, Result};
use crate::protocol::Event;

#[derive(Default)]
pub struct Streams {}

pub fn watch(_v3: &V3, _prefix: &[u8], _from: Option<i64>) -> Result<Event> {
    Err(Error::Unavailable("etcd_watch is not available yet".into()))
}
