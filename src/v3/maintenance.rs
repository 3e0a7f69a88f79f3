//! Maintenance calls: the leader, from a member's status, or, where
//! status is for admins only, from the members' `/metrics`.

use serde::Deserialize;
use serde_json::json;

use super::gateway::Gateway;
use super::json::uint;
use super::status::{Code, Status};
use crate::error::{Error, Result};
use crate::transport::{Request, Retry, Servers, Wait};

pub fn leader(g: &Gateway) -> Result<String> {
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct MemberStatus {
        #[serde(deserialize_with = "uint")]
        leader: u64,
        errors: Vec<String>,
    }
    let s: MemberStatus =
        match g.call_status("/v3/maintenance/status", &json!({}), Retry::Always)? {
            Ok(s) => s,
            // etcd 3.4.42-3.4.45, 3.5.28-3.5.31 and 3.6.0-3.6.11 answer
            // status to admins only.
            Err(refused) if refused.code == Code::PermissionDenied => {
                return leader_from_metrics(g, refused)
            }
            Err(refused) => return Err(refused.into()),
        };
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

/// The leader as the members' `/metrics` name it, which etcd serves
/// without credentials: the first member of the list whose
/// `etcd_server_is_leader` is 1 gives its `etcd_server_id`. `refused` is
/// what status answered, named when no member says it leads.
fn leader_from_metrics(g: &Gateway, refused: Status) -> Result<String> {
    let servers = g.transport.servers().len();
    let first = g.transport.preferred();
    let mut asked = Vec::new();
    for i in (0..servers).map(|k| (first + k) % servers) {
        let request = Request::get("/metrics")
            .anonymous()
            .wait(Wait::Within(g.config().request_timeout))
            .servers(Servers::Only(i));
        let answer = match g.transport.send(&request) {
            Ok(reply) if reply.status == 200 => match metrics_leader(&reply.body) {
                Some(Some(id)) => return Ok(format!("{id:x}")),
                Some(None) => "a follower".to_string(),
                None => "no etcd_server_is_leader and etcd_server_id".to_string(),
            },
            Ok(reply) => format!("HTTP {}", reply.status),
            Err(e) => e.message().to_string(),
        };
        asked.push(format!("{}: {answer}", g.transport.servers()[i]));
    }
    Err(Error::unavailable(format!(
        "leader unknown: {}: {} (HTTP {}, code {}), and no member's /metrics names it ({})",
        refused.server,
        refused.message,
        refused.http,
        refused.code.number(),
        asked.join("; ")
    )))
}

/// From a member's `/metrics` (Prometheus text): `Some(Some(id))` when
/// it leads, `Some(None)` when it does not, `None` when the page says
/// neither.
fn metrics_leader(page: &[u8]) -> Option<Option<u64>> {
    let text = std::str::from_utf8(page).ok()?;
    let mut leads = None;
    let mut id = None;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("etcd_server_is_leader ") {
            leads = Some(v.trim() == "1");
        } else if let Some(rest) = line.strip_prefix("etcd_server_id{server_id=\"") {
            let hex = rest.split('"').next()?;
            id = u64::from_str_radix(hex, 16).ok();
        }
    }
    match (leads?, id) {
        (true, Some(id)) => Some(Some(id)),
        (true, None) => None,
        (false, _) => Some(None),
    }
}

#[cfg(test)]
mod tests {
    use super::metrics_leader;

    #[test]
    fn leader_from_a_metrics_page() {
        let page = b"# HELP etcd_server_id Server or member ID in hexadecimal format.\n\
            # TYPE etcd_server_id gauge\n\
            etcd_server_id{server_id=\"bac7efc361f1457e\"} 1\n\
            etcd_server_is_leader 1\n";
        assert_eq!(metrics_leader(page), Some(Some(0xbac7efc361f1457e)));
        let follower =
            b"etcd_server_id{server_id=\"8e9e05c52164694d\"} 1\netcd_server_is_leader 0\n";
        assert_eq!(metrics_leader(follower), Some(None));
        assert_eq!(metrics_leader(b"etcd_server_is_leader 1\n"), None);
        assert_eq!(metrics_leader(b"<html>"), None);
    }
}
