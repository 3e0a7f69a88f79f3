//! The v2 keys API's JSON: `{"action","node","prevNode"}` answers and
//! `{"errorCode","message","cause","index"}` errors. Values and keys are
//! JSON strings; indexes are plain numbers. Every field may be missing.

use serde::Deserialize;

/// The answer to a successful keys request (and to a wait).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Answer {
    pub action: String,
    pub node: Node,
    /// Set on history events that only refreshed a TTL.
    pub refresh: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Node {
    /// Absent for the root directory.
    pub key: Option<String>,
    pub value: Option<String>,
    pub dir: bool,
    pub nodes: Vec<Node>,
    pub created_index: u64,
    pub modified_index: u64,
}

/// A refusal from the v2 API.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ErrorBody {
    pub error_code: Option<i64>,
    pub message: String,
    pub cause: String,
    pub index: u64,
}

/// `/v2/stats/self`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SelfStats {
    pub id: String,
    pub state: String,
    pub leader_info: LeaderInfo,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LeaderInfo {
    pub leader: String,
}

/// `/v2/stats/leader` (answered only by the leader).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LeaderStats {
    pub leader: String,
}

/// `/v2/members`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Members {
    pub members: Vec<Member>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Member {
    pub id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_and_errors() {
        let a: Answer = serde_json::from_str(
            r#"{"action":"get","node":{"key":"/d","dir":true,"nodes":[{"key":"/d/a","value":"1","modifiedIndex":4,"createdIndex":3},{"key":"/d/s","dir":true}],"modifiedIndex":2,"createdIndex":2}}"#,
        )
        .unwrap();
        assert!(a.node.dir);
        assert_eq!(a.node.nodes[0].value.as_deref(), Some("1"));
        assert_eq!(a.node.nodes[0].modified_index, 4);
        assert_eq!(a.node.nodes[0].created_index, 3);
        let root: Answer = serde_json::from_str(r#"{"action":"get","node":{"dir":true}}"#).unwrap();
        assert_eq!(root.node.key, None);
        let e: ErrorBody = serde_json::from_str(
            r#"{"errorCode":100,"message":"Key not found","cause":"/x","index":15}"#,
        )
        .unwrap();
        assert_eq!((e.error_code, e.index), (Some(100), 15));
        let s: SelfStats = serde_json::from_str(
            r#"{"name":"c1","id":"9e62dfb7efc942a6","state":"StateFollower","leaderInfo":{"leader":"af9fd1abf5f17d47","uptime":"2s"}}"#,
        )
        .unwrap();
        assert_eq!(s.leader_info.leader, "af9fd1abf5f17d47");
    }
}
