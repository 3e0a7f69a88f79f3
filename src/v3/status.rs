//! What a gateway answer means: the decoded value for HTTP 200, else the
//! gateway's `{"error","code","message"}` decoded once into a [`Status`]
//! carrying the gRPC code, for callers to act on without reading text.

use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::json::AnyObject;
use crate::error::{Error, ErrorKind, Result};
use crate::transport::Reply;

/// The gRPC status codes etcd answers with (the gateway maps each onto an
/// HTTP status; the code itself is in the body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Canceled,
    Unknown,
    InvalidArgument,
    DeadlineExceeded,
    NotFound,
    AlreadyExists,
    PermissionDenied,
    ResourceExhausted,
    FailedPrecondition,
    Aborted,
    OutOfRange,
    Unimplemented,
    Internal,
    Unavailable,
    DataLoss,
    Unauthenticated,
    /// A number gRPC does not define.
    Other(i64),
}

impl Code {
    pub fn from_number(n: i64) -> Code {
        use Code::*;
        match n {
            1 => Canceled,
            2 => Unknown,
            3 => InvalidArgument,
            4 => DeadlineExceeded,
            5 => NotFound,
            6 => AlreadyExists,
            7 => PermissionDenied,
            8 => ResourceExhausted,
            9 => FailedPrecondition,
            10 => Aborted,
            11 => OutOfRange,
            12 => Unimplemented,
            13 => Internal,
            14 => Unavailable,
            15 => DataLoss,
            16 => Unauthenticated,
            n => Other(n),
        }
    }

    pub fn number(self) -> i64 {
        use Code::*;
        match self {
            Canceled => 1,
            Unknown => 2,
            InvalidArgument => 3,
            DeadlineExceeded => 4,
            NotFound => 5,
            AlreadyExists => 6,
            PermissionDenied => 7,
            ResourceExhausted => 8,
            FailedPrecondition => 9,
            Aborted => 10,
            OutOfRange => 11,
            Unimplemented => 12,
            Internal => 13,
            Unavailable => 14,
            DataLoss => 15,
            Unauthenticated => 16,
            Other(n) => n,
        }
    }
}

/// etcd's refusal of one gateway call.
#[derive(Debug, Clone)]
pub struct Status {
    pub code: Code,
    /// etcd's own words (`etcdserver: key not found` ...).
    pub message: String,
    pub http: u16,
    pub server: String,
}

/// The error body of every failed gateway call: flat, as unary calls
/// answer (`{"error","code","message"}` from etcd 3.4 and 3.5's gateway,
/// `{"code","message"}` from the one 3.6 uses), or a stream's error chunk
/// with the status nested (`{"error":{"code","message"}}`: a keep-alive
/// refused on etcd 3.5.30; `{"error":{"grpc_code","message",...}}` from
/// the gateway of 3.4 and 3.5.1).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ErrorBody {
    error: ErrorField,
    message: String,
    code: i64,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ErrorField {
    Text(String),
    Nested {
        /// `grpc_code` in the stream errors of 3.4 and 3.5's gateway.
        #[serde(default, alias = "grpc_code")]
        code: i64,
        #[serde(default)]
        message: String,
    },
}

impl Default for ErrorField {
    fn default() -> ErrorField {
        ErrorField::Text(String::new())
    }
}

impl Status {
    /// The refusal in a non-200 answer, if its body is etcd's error body.
    pub fn of(reply: &Reply) -> Option<Status> {
        if !is_object(&reply.body) {
            return None;
        }
        let e: ErrorBody = serde_json::from_slice(&reply.body).ok()?;
        let (message, code) = match e.error {
            ErrorField::Nested { code, message } => (message, code),
            ErrorField::Text(_) if !e.message.is_empty() => (e.message, e.code),
            ErrorField::Text(error) => (error, e.code),
        };
        if message.is_empty() {
            return None;
        }
        Some(Status {
            code: Code::from_number(code),
            message,
            http: reply.status,
            server: reply.server.clone(),
        })
    }

    /// True when etcd refused the request for its token (missing, expired
    /// or stale): worth a new token, as etcd's own Go client does.
    pub fn rejects_token(&self) -> bool {
        rejects_token(&self.message)
    }
}

/// etcd's words for a request whose token is missing, expired or stale.
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
pub const LOGIN_HINT: &str =
    " (etcd wants a user and password: set ETCDAPI_USER and ETCDAPI_PASSWORD)";

/// [`LOGIN_HINT`] when etcd's words say the request came without a login.
pub fn hint(text: &str) -> &'static str {
    if text.contains("user name is empty") {
        LOGIN_HINT
    } else {
        ""
    }
}

/// True when a watch's cancel reason is a permission refusal. etcd 3.5
/// cancels a watch opened with an expired token, or with none, this way
/// (3.4 says "invalid auth token" / "user name is empty").
pub fn denied(reason: &str) -> bool {
    reason.contains("PermissionDenied") || reason.contains("permission denied")
}

impl From<Status> for Error {
    fn from(s: Status) -> Error {
        let kind = match s.code {
            Code::NotFound => ErrorKind::NotFound,
            Code::PermissionDenied | Code::Unauthenticated => ErrorKind::PermissionDenied,
            _ => ErrorKind::Refused,
        };
        let hint = hint(&s.message);
        Error::new(
            kind,
            format!(
                "{}: {} (HTTP {}, code {}){hint}",
                s.server,
                s.message,
                s.http,
                s.code.number()
            ),
        )
    }
}

/// Reads a gateway answer once: the value etcd sent, or its refusal;
/// anything else (no JSON, no header) is a server we do not understand.
pub fn decode<T: DeserializeOwned>(reply: &Reply) -> Result<std::result::Result<T, Status>> {
    if reply.status != 200 {
        return match Status::of(reply) {
            Some(status) => Ok(Err(status)),
            None => Err(not_etcd(reply)),
        };
    }
    let unreadable = |e: &dyn std::fmt::Display| {
        Error::bad_response(format!(
            "{}: unreadable answer ({e}): {}",
            reply.server,
            reply.body_text()
        ))
    };
    // Every gateway answer is an object with a header (streamed ones wrap
    // it in "result"); anything else is not etcd talking. The check skims
    // the body without building it (answers carry values of up to
    // 1.5 MiB), then the body is decoded once, into T.
    #[derive(Deserialize)]
    struct Envelope {
        header: Option<AnyObject>,
        result: Option<AnyObject>,
    }
    // An array would decode into the structs field by field.
    if !is_object(&reply.body) {
        return Err(unreadable(&"not a JSON object"));
    }
    let envelope: Envelope = serde_json::from_slice(&reply.body).map_err(|e| unreadable(&e))?;
    if envelope.header.is_none() && envelope.result.is_none() {
        return Err(unreadable(&"no header"));
    }
    serde_json::from_slice(&reply.body)
        .map(Ok)
        .map_err(|e| unreadable(&e))
}

/// True when `json` starts as an object (serde would also take an array
/// for a struct, field by field).
pub fn is_object(json: &[u8]) -> bool {
    json.trim_ascii_start().first() == Some(&b'{')
}

/// A gateway answer decoded into `T`; a refusal as an [`Error`].
pub fn value<T: DeserializeOwned>(reply: &Reply) -> Result<T> {
    decode(reply)?.map_err(Error::from)
}

/// The error for a non-200 answer: etcd's refusal when the body carries
/// one, else the raw status (a server we do not understand).
pub fn refusal(reply: &Reply) -> Error {
    match Status::of(reply) {
        Some(status) => status.into(),
        None => not_etcd(reply),
    }
}

fn not_etcd(reply: &Reply) -> Error {
    let hint = if reply.body_text().contains("CommonName of client") {
        " (with authentication on, etcd's gateway takes only client certificates \
         without a Common Name)"
    } else {
        ""
    };
    Error::bad_response(format!("{reply}{hint}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: Default::default(),
            body: body.as_bytes().to_vec(),
            server: "s".into(),
        }
    }

    #[test]
    fn statuses() {
        let r = reply(
            404,
            r#"{"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5}"#,
        );
        let s = decode::<serde_json::Value>(&r).unwrap().unwrap_err();
        assert_eq!((s.code, s.http), (Code::NotFound, 404));
        let e = Error::from(s);
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(
            e.message(),
            "s: etcdserver: requested lease not found (HTTP 404, code 5)"
        );
        let denied = reply(403, r#"{"error":"etcdserver: permission denied","code":7}"#);
        assert_eq!(refusal(&denied).kind(), ErrorKind::PermissionDenied);
        let garbage = reply(500, "<html>");
        assert_eq!(refusal(&garbage).kind(), ErrorKind::BadResponse);
        assert!(Status::of(&reply(
            401,
            r#"{"message":"etcdserver: invalid auth token","code":16}"#
        ))
        .unwrap()
        .rejects_token());
        // A stream's error chunk (a keep-alive on etcd 3.5.30).
        let nested = Status::of(&reply(
            401,
            r#"{"error":{"code":16,"message":"etcdserver: invalid auth token"}}"#,
        ))
        .unwrap();
        assert_eq!((nested.code, nested.http), (Code::Unauthenticated, 401));
        assert!(nested.rejects_token());
        let empty = reply(
            400,
            r#"{"error":{"code":3,"message":"etcdserver: user name is empty"}}"#,
        );
        assert!(Status::of(&empty).unwrap().rejects_token());
        assert!(Status::of(&reply(400, r#"{"error":{"code":3}}"#)).is_none());
    }
}
