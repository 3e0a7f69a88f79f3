//! Maintenance calls on v2: the leader. `/v2/stats/leader` answers only
//! on the leader, so ask a member who it follows (`/v2/stats/self` → `leaderInfo.leader`,
//! already in hex) and check that ID against `/v2/members`; when that
//! gives nothing usable, ask each member in turn for `/v2/stats/leader`.

use super::json::{LeaderStats, Members, SelfStats};
use crate::error::{Error, Result};
use crate::transport::{Reply, Request, Servers, Transport};

pub fn leader(t: &Transport) -> Result<String> {
    let mut why = Vec::new();
    match from_self_stats(t) {
        Ok(id) => return Ok(id),
        Err(e) => why.push(e.to_string()),
    }
    for i in 0..t.servers().len() {
        let reply = match t.send(&Request::get("/v2/stats/leader").servers(Servers::Only(i))) {
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

fn from_self_stats(t: &Transport) -> Result<String> {
    let reply = t.send(&Request::get("/v2/stats/self"))?;
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
    let reply = t.send(&Request::get("/v2/members"))?;
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

fn parse<T: serde::de::DeserializeOwned>(reply: &Reply) -> Result<T> {
    if reply.status != 200 {
        return Err(Error::bad_response(reply.to_string()));
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
