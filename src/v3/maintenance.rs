//! Maintenance calls: the leader, from a member's status.

use serde::Deserialize;
use serde_json::json;

use super::gateway::Gateway;
use super::json::uint;
use crate::error::{Error, Result};
use crate::transport::Retry;

pub fn leader(g: &Gateway) -> Result<String> {
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Status {
        #[serde(deserialize_with = "uint")]
        leader: u64,
        errors: Vec<String>,
    }
    let s: Status = g.call("/v3/maintenance/status", &json!({}), Retry::Always)?;
    if s.leader == 0 {
        let why = if s.errors.is_empty() {
            "no leader".to_string()
        } else {
            s.errors.join(", ")
        };
        return Err(Error::unavailable(format!("leader unknown: {why}")));
    }
    Ok(format!("{:x}", s.leader))
}
