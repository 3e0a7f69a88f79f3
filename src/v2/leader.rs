//! The leader on v2: `/v2/stats/leader` answers only on the leader, so
//! ask a member who it follows (`/v2/stats/self` → `leaderInfo.leader`,
//! already in hex) and check that ID against `/v2/members`; when that
//! gives nothing usable, ask each member in turn for `/v2/stats/leader`.

use super::json::{LeaderStats, Members, SelfStats};
use super::V2;
use crate::error::{Error, Result};
use crate::transport::{Method, Retry};

pub fn leader(v2: &V2) -> Result<String> {
    let mut why = Vec::new();
    match from_self_stats(v2) {
        Ok(id) => return Ok(id),
        Err(e) => why.push(e.to_string()),
    }
    for i in 0..v2.transport.servers().len() {
        let reply = match v2
            .transport
            .request_on(i, Method::Get, "/v2/stats/leader", b"")
        {
            Ok(reply) => reply,
            Err(e) => {
                why.push(e.to_string());
                continue;
            }
        };
        if reply.status != 200 {
            continue; // 403 "not current leader"
        }
        if let Some(id) = serde_json::from_slice::<LeaderStats>(&reply.body)
            .ok()
            .and_then(|s| member_id(&s.leader))
        {
            return Ok(id);
        }
    }
    Err(Error::unavailable(format!(
        "leader unknown: {}",
        why.join("; ")
    )))
}

fn from_self_stats(v2: &V2) -> Result<String> {
    let reply = v2
        .transport
        .request(Method::Get, "/v2/stats/self", b"", Retry::Always)?;
    let stats: SelfStats = parse(&reply)?;
    let id = if stats.state == "StateLeader" {
        member_id(&stats.id)
    } else {
        member_id(&stats.leader_info.leader)
    };
    let Some(id) = id else {
        return Err(Error::unavailable(format!(
            "{}: knows no leader",
            reply.server
        )));
    };
    // A follower's view may name a member that has since been removed.
    let reply = v2
        .transport
        .request(Method::Get, "/v2/members", b"", Retry::Always)?;
    let members: Members = parse(&reply)?;
    if members
        .members
        .iter()
        .any(|m| member_id(&m.id).as_deref() == Some(id.as_str()))
    {
        return Ok(id);
    }
    Err(Error::unavailable(format!(
        "{}: names {id} as leader, which is not a member",
        reply.server
    )))
}

fn parse<T: serde::de::DeserializeOwned>(reply: &crate::transport::Reply) -> Result<T> {
    if reply.status != 200 {
        return Err(Error::bad_response(format!(
            "{}: HTTP {} {}",
            reply.server,
            reply.status,
            reply.body_text()
        )));
    }
    serde_json::from_slice(&reply.body).map_err(|e| {
        Error::bad_response(format!(
            "{}: unreadable answer ({e}): {}",
            reply.server,
            reply.body_text()
        ))
    })
}

/// A member ID as etcd prints it (lowercase hex, no leading zeros), or
/// `None` for an empty or zero one ("no leader").
fn member_id(text: &str) -> Option<String> {
    match u64::from_str_radix(text.trim(), 16) {
        Ok(id) if id != 0 => Some(format!("{id:x}")),
        _ => None,
    }
}
