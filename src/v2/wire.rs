//! The v2 keys API on the wire: its error codes and refusals, reading an
//! answer once, the store index header, key paths and forms. kv, lock,
//! watch and maintenance all build on this.

use super::json;
use crate::error::{Error, ErrorKind, Result};
use crate::transport::Reply;

/// v2 error codes we act on (etcd's `Documentation/v2/errorcode.md`).
pub(crate) mod code {
    pub const KEY_NOT_FOUND: i64 = 100;
    pub const COMPARE_FAILED: i64 = 101;
    pub const NOT_A_DIRECTORY: i64 = 104;
    pub const NODE_EXIST: i64 = 105;
    pub const RAFT_INTERNAL: i64 = 300;
    pub const LEADER_ELECTION: i64 = 301;
    pub const WATCHER_CLEARED: i64 = 400;
    pub const EVENT_INDEX_CLEARED: i64 = 401;
}

const KEYS_PREFIX: &str = "/v2/keys";

/// The signs of a member that cannot serve right now (raft proposal timed
/// out, no leader, service unavailable): worth asking another member.
pub(crate) fn member_unavailable(status: u16, body: &[u8]) -> bool {
    if status == 503 {
        return true;
    }
    if status >= 500 {
        if let Ok(e) = serde_json::from_slice::<json::ErrorBody>(body) {
            return matches!(
                e.error_code,
                Some(code::RAFT_INTERNAL | code::LEADER_ELECTION)
            );
        }
    }
    false
}

/// A refusal from the v2 API (`{"errorCode",...}`).
#[derive(Debug)]
pub(crate) struct Refusal {
    pub code: i64,
    pub status: u16,
    pub message: String,
    pub cause: String,
    pub server: String,
}

impl Refusal {
    pub(crate) fn describe(&self) -> String {
        let cause = if self.cause.is_empty() {
            String::new()
        } else {
            format!(": {}", self.cause)
        };
        format!(
            "{}: {}{cause} (HTTP {}, errorCode {})",
            self.server, self.message, self.status, self.code
        )
    }
}

impl From<Refusal> for Error {
    fn from(r: Refusal) -> Error {
        let kind = match r.code {
            code::KEY_NOT_FOUND => ErrorKind::NotFound,
            code::COMPARE_FAILED => ErrorKind::CompareFailed,
            code::EVENT_INDEX_CLEARED => ErrorKind::Compacted,
            _ => ErrorKind::Refused,
        };
        Error::new(kind, r.describe())
    }
}

/// Reads a keys answer once: etcd's answer, or its refusal; anything
/// else (no JSON, no error code) is a server we do not understand.
pub(crate) fn decode(reply: &Reply) -> Result<std::result::Result<json::Answer, Refusal>> {
    if reply.status == 200 || reply.status == 201 {
        if !crate::v3::status::is_object(&reply.body) {
            return Err(Error::bad_response(format!(
                "{}: unreadable answer (not a JSON object): {}",
                reply.server,
                reply.body_text()
            )));
        }
        return serde_json::from_slice(&reply.body).map(Ok).map_err(|e| {
            Error::bad_response(format!(
                "{}: unreadable answer ({e}): {}",
                reply.server,
                reply.body_text()
            ))
        });
    }
    match serde_json::from_slice::<json::ErrorBody>(&reply.body) {
        Ok(e) if e.error_code.is_some() && crate::v3::status::is_object(&reply.body) => {
            Ok(Err(Refusal {
                code: e.error_code.unwrap_or_default(),
                status: reply.status,
                message: e.message,
                cause: e.cause,
                server: reply.server.clone(),
            }))
        }
        _ => Err(Error::bad_response(reply.to_string())),
    }
}

/// The v2 store's index when etcd answered (`X-Etcd-Index`, on answers
/// and refusals alike).
pub(crate) fn etcd_index(reply: &Reply) -> Result<u64> {
    reply
        .header("X-Etcd-Index")
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| {
            Error::bad_response(format!(
                "{}: answer without an X-Etcd-Index header (HTTP {} {})",
                reply.server,
                reply.status,
                reply.body_text()
            ))
        })
}

/// `bytes` as text, or a clear refusal: v2 cannot carry other bytes.
pub(crate) fn utf8<'a>(bytes: &'a [u8], what: &str) -> Result<&'a str> {
    std::str::from_utf8(bytes).map_err(|_| {
        Error::bad_argument(format!(
            "the {what} is not valid UTF-8: the v2 API carries keys and values as JSON \
             strings, so these bytes cannot be stored and read back unchanged \
             (use the v3 protocol)"
        ))
    })
}

/// The URL path of a canonical key: `/v2/keys` and each segment
/// percent-encoded (a key may hold `?`, `%`, `#`, spaces...). The root is
/// `/v2/keys/`. A `.` or `..` segment cannot be addressed: etcd would
/// clean the path and redirect to another key.
pub(crate) fn key_path(canonical_key: &[u8]) -> Result<String> {
    let text = utf8(canonical_key, "key")?;
    let mut path = String::with_capacity(KEYS_PREFIX.len() + text.len() + 8);
    path.push_str(KEYS_PREFIX);
    for segment in text.split('/').filter(|s| !s.is_empty()) {
        if segment == "." || segment == ".." {
            return Err(Error::bad_argument(format!(
                "key {text:?}: a \".\" or \"..\" path segment cannot be used with the v2 API"
            )));
        }
        path.push('/');
        percent_encode(&mut path, segment);
    }
    if path.len() == KEYS_PREFIX.len() {
        path.push('/');
    }
    Ok(path)
}

/// Form fields (or a query string): each name and value percent-encoded,
/// joined with `&` (the original joined with `;`, which etcd refuses).
pub(crate) fn form(fields: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (name, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        percent_encode(&mut out, name);
        out.push('=');
        percent_encode(&mut out, value);
    }
    out
}

/// Percent-encodes every byte but the unreserved ones (RFC 3986:
/// `A-Z a-z 0-9 - . _ ~`). Valid in a path segment, a query and a form.
fn percent_encode(out: &mut String, text: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths() {
        assert_eq!(key_path(b"/").unwrap(), "/v2/keys/");
        assert_eq!(key_path(b"/a/b").unwrap(), "/v2/keys/a/b");
        assert_eq!(
            key_path("/a b/q?z#%/é".as_bytes()).unwrap(),
            "/v2/keys/a%20b/q%3Fz%23%25/%C3%A9"
        );
        assert_eq!(
            key_path(b"/_locks/jobs%2F42").unwrap(),
            "/v2/keys/_locks/jobs%252F42"
        );
        assert!(matches!(key_path(b"/a/../b"), Err(e) if e.kind() == ErrorKind::BadArgument));
        assert!(matches!(key_path(b"/a/./b"), Err(e) if e.kind() == ErrorKind::BadArgument));
        assert!(matches!(key_path(b"/\xff"), Err(e) if e.kind() == ErrorKind::BadArgument));
        assert_eq!(key_path(b"/a/.../b").unwrap(), "/v2/keys/a/.../b");
    }

    #[test]
    fn forms() {
        assert_eq!(
            form(&[("value", "a&b=c+d%e;f g\nh"), ("ttl", "5")]),
            "value=a%26b%3Dc%2Bd%25e%3Bf%20g%0Ah&ttl=5"
        );
        assert_eq!(form(&[("value", "")]), "value=");
    }

    #[test]
    fn unavailable_signs() {
        let raft = br#"{"errorCode":300,"message":"Raft Internal Error","cause":"etcdserver: request timed out","index":0}"#;
        assert!(member_unavailable(500, raft));
        assert!(member_unavailable(503, b""));
        assert!(!member_unavailable(
            404,
            br#"{"errorCode":100,"message":"Key not found"}"#
        ));
        assert!(!member_unavailable(500, b"garbage"));
    }
}
