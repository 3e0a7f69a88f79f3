//! Entry points for the fuzz targets (`tests/fuzz/`) and for the corpus
//! replay (`tests/fuzz_corpus.rs`): each takes the fuzzer's bytes, runs
//! them through the library's own parsers and panics when a property that
//! must hold does not (a value that disagrees with the bytes, a broken
//! round-trip). Not part of the API.
//!
//! Inputs that carry an HTTP answer are written as a server sends it:
//! a status line, headers, an empty line, the body (see [`reply`]).

use std::io::{BufReader, Cursor};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;

use crate::keys;
use crate::kv::Leadership;
use crate::servers::parse_server_list;
use crate::transport::{HeaderMap, Reply, Stream};

/// One target: the bytes in, a panic when a property fails.
pub type Target = fn(&[u8]);

/// The targets, by the name of their corpus directory.
pub const TARGETS: &[(&str, Target)] = &[
    ("server_list", server_list),
    ("keys", keys),
    ("tokens", tokens),
    ("gateway", gateway),
    ("watch_stream", watch_stream),
    ("v2_answer", v2_answer),
    ("client", client),
];

/// A server string: a list parsed is non-empty, every server in it has a
/// host and a port, and the list written back as URLs parses to the same
/// servers.
pub fn server_list(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(list) = parse_server_list(&text) else {
        return;
    };
    assert!(!list.is_empty());
    for e in &list {
        assert!(!e.host.is_empty(), "{text:?}: empty host");
        assert!(e.port != 0, "{text:?}: port 0");
        assert!(
            !e.host.contains(['\n', '\r', '\t', ' ', ',', ';', '/']),
            "{text:?}: separator in host {:?}",
            e.host
        );
    }
    let urls: Vec<String> = list.iter().map(|e| e.to_string()).collect();
    let again = parse_server_list(&urls.join(","))
        .unwrap_or_else(|e| panic!("{text:?}: {urls:?} written back does not parse: {e}"));
    assert_eq!(again, list, "{text:?}: written back as {urls:?}");
}

/// Key paths: canonical form is idempotent and keeps the segments; lock
/// and election names unescape to the key and keep two keys apart (the
/// input is two keys, split at the first NUL); prefix range ends bound
/// the prefix; v2 key paths decode back to the key.
pub fn keys(data: &[u8]) {
    let (a, b) = match data.iter().position(|&c| c == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let ca = canonical_checked(a);
    let cb = canonical_checked(b);
    for (root, name) in [
        (keys::LOCK_ROOT, keys::lock_name as fn(&[u8]) -> Vec<u8>),
        (keys::ELECTION_ROOT, keys::election_name),
    ] {
        let na = name(&ca);
        let nb = name(&cb);
        let rest = na
            .strip_prefix(root.as_bytes())
            .unwrap_or_else(|| panic!("{na:?} not under {root}"));
        assert!(!rest.contains(&b'/'), "{na:?}: a '/' left in the name");
        assert_eq!(
            unescape(rest),
            ca.strip_prefix(b"/").unwrap_or(&ca),
            "{a:?}: name {na:?} does not unescape to the key"
        );
        if ca != cb {
            assert_ne!(na, nb, "{a:?} and {b:?} share a name");
            let mut below = na.clone();
            below.push(b'/');
            assert!(
                !nb.starts_with(&below),
                "{b:?}'s name {nb:?} is below {a:?}'s {na:?}"
            );
        }
    }
    // A prefix's range end is above every key that starts with the prefix.
    let end = keys::prefix_range_end(a);
    if end != [0] {
        assert!(end.as_slice() > a, "{a:?}: range end {end:?}");
        let mut longest = a.to_vec();
        longest.extend_from_slice(&[0xff; 4]);
        assert!(end > longest, "{a:?}: range end {end:?}");
    } else {
        assert!(a.iter().all(|&c| c == 0xff), "{a:?}: no range end");
    }
    assert!(keys::watch_matches(&ca, &ca));
    assert_eq!(
        keys::watch_matches(&ca, &cb),
        ca == cb || cb.starts_with(&keys::children_prefix(&ca)),
    );
    // v2: the path of a key names that key again.
    if let Ok(path) = crate::v2::wire::key_path(&ca) {
        let rest = path.strip_prefix("/v2/keys").expect("v2 key path");
        assert!(rest.starts_with('/'), "{path}");
        assert_eq!(
            keys::canonical(&percent_decode(rest.as_bytes())),
            ca,
            "{a:?}: v2 path {path}"
        );
    }
}

fn canonical_checked(k: &[u8]) -> Vec<u8> {
    let c = keys::canonical(k);
    assert_eq!(keys::canonical(&c), c, "{k:?}: canonical not idempotent");
    assert!(c.starts_with(b"/"), "{k:?} -> {c:?}");
    assert!(!c.windows(2).any(|w| w == b"//"), "{k:?} -> {c:?}");
    assert!(c == b"/" || !c.ends_with(b"/"), "{k:?} -> {c:?}");
    let segments = |s: &[u8]| -> Vec<Vec<u8>> {
        s.split(|&x| x == b'/')
            .filter(|s| !s.is_empty())
            .map(<[u8]>::to_vec)
            .collect()
    };
    assert_eq!(segments(&c), segments(k), "{k:?} -> {c:?}: segments differ");
    c
}

fn unescape(name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len());
    let mut i = 0;
    while i < name.len() {
        match &name[i..] {
            [b'%', b'2', b'5', ..] => {
                out.push(b'%');
                i += 3;
            }
            [b'%', b'2', b'F', ..] => {
                out.push(b'/');
                i += 3;
            }
            [b'%', ..] => panic!("{name:?}: a '%' not escaped"),
            [c, ..] => {
                out.push(*c);
                i += 1;
            }
            [] => unreachable!(),
        }
    }
    out
}

fn percent_decode(s: &[u8]) -> Vec<u8> {
    let hex = |c: u8| (c as char).to_digit(16).expect("percent escape") as u8;
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            out.push(hex(s[i + 1]) << 4 | hex(s[i + 2]));
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out
}

/// Texts the library hands out and reads back: leadership tokens and lock
/// indexes (v3: lease IDs in hex; v2: decimal indexes). A text read is
/// valid and its own form reads back to the same value; a value built
/// from the bytes round-trips through its text.
pub fn tokens(data: &[u8]) {
    if let Some(l) = Leadership::from_token(data) {
        assert!(
            l.revision > 0 && l.lease != 0 && !l.name.is_empty(),
            "{l:?}"
        );
        let mut key = l.name.clone();
        key.push(b'/');
        key.extend_from_slice(format!("{:x}", l.lease as u64).as_bytes());
        assert_eq!(l.key, key);
        let token = l.to_token();
        assert!(token.bytes().all(|c| c.is_ascii_graphic()), "{token:?}");
        assert_eq!(Leadership::from_token(token.as_bytes()), Some(l));
    }
    // Built from the bytes: revision and lease from the first 16, the name
    // from the rest.
    if data.len() > 16 {
        let revision = i64::from_le_bytes(data[..8].try_into().unwrap());
        let lease = i64::from_le_bytes(data[8..16].try_into().unwrap());
        let l = Leadership::new(&data[16..], revision, lease);
        let back = Leadership::from_token(l.to_token().as_bytes());
        if revision > 0 && lease != 0 {
            assert_eq!(back, Some(l), "leadership token does not round-trip");
        } else {
            assert_eq!(back, None, "{l:?}: an impossible leadership read back");
        }
        let index = crate::v3::lock::hex(lease);
        match crate::v3::lock::parse_index(&index) {
            Ok(id) => assert_eq!(id, lease, "v3 lock index {index}"),
            Err(_) => assert_eq!(lease, 0, "v3 lock index {index} refused"),
        }
        let created = u64::from_le_bytes(data[..8].try_into().unwrap());
        match crate::v2::lock::parse_index(&created.to_string()) {
            Ok(n) => assert_eq!(n, created, "v2 lock index"),
            Err(_) => assert_eq!(created, 0, "v2 lock index {created} refused"),
        }
    }
    let text = String::from_utf8_lossy(data);
    if let Ok(id) = crate::v3::lock::parse_index(&text) {
        assert_ne!(id, 0);
        assert_eq!(
            u64::from_str_radix(text.trim(), 16).ok(),
            Some(id as u64),
            "{text:?}"
        );
        let again = crate::v3::lock::hex(id);
        assert_eq!(crate::v3::lock::parse_index(&again).ok(), Some(id));
    }
    if let Ok(n) = crate::v2::lock::parse_index(&text) {
        assert!(n > 0);
        assert_eq!(text.trim().parse::<u64>().ok(), Some(n), "{text:?}");
    }
}

/// An HTTP answer as a server writes it: `HTTP/1.1 200 OK`, headers, an
/// empty line, the body (taken as is: no chunk decoding). A status line
/// without a number gives status 0; missing parts are empty.
pub fn reply(data: &[u8]) -> Reply {
    let (head, body) = match find(data, b"\r\n\r\n") {
        Some(i) => (&data[..i], &data[i + 4..]),
        None => match find(data, b"\n\n") {
            Some(i) => (&data[..i], &data[i + 2..]),
            None => (data, &b""[..]),
        },
    };
    let mut lines = head
        .split(|&c| c == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let status = lines
        .next()
        .and_then(|l| l.split(|&c| c == b' ').nth(1))
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut headers = HeaderMap::new();
    for line in lines {
        let Some(colon) = line.iter().position(|&c| c == b':') else {
            continue;
        };
        let value = line[colon + 1..].trim_ascii();
        if let (Ok(n), Ok(v)) = (
            ureq::http::HeaderName::from_bytes(&line[..colon]),
            ureq::http::HeaderValue::from_bytes(value),
        ) {
            headers.append(n, v);
        }
    }
    Reply {
        status,
        headers,
        body: body.to_vec(),
        server: "fuzz".to_string(),
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The JSON of a body, for checking the typed decoders against. Bytes
/// that are not UTF-8 are taken as U+FFFD: the typed decoders skip fields
/// they do not read without checking their text, and refuse such bytes
/// in the fields they read.
fn json_of(body: &[u8]) -> Option<Value> {
    serde_json::from_slice(body)
        .ok()
        .or_else(|| serde_json::from_str(&String::from_utf8_lossy(body)).ok())
}

/// A JSON int64 as the gateway writes it (a string; a number taken too).
fn int_of(v: Option<&Value>) -> Option<i64> {
    match v {
        None => Some(0),
        Some(Value::String(s)) => s.parse().ok(),
        Some(n) => n.as_i64(),
    }
}

fn bytes_of(v: Option<&Value>) -> Option<Vec<u8>> {
    match v {
        None => Some(Vec::new()),
        Some(Value::String(s)) => STANDARD.decode(s).ok(),
        Some(_) => None,
    }
}

/// Checks a decoded key-value against its JSON (absent fields are zero).
fn check_kv(kv: &crate::v3::json::KeyValue, j: &Value) {
    let f = |n: &str| j.get(n);
    assert_eq!(Some(kv.key.clone()), bytes_of(f("key")), "key of {j}");
    assert_eq!(Some(kv.value.clone()), bytes_of(f("value")), "value of {j}");
    assert_eq!(
        Some(kv.create_revision),
        int_of(f("create_revision")),
        "{j}"
    );
    assert_eq!(Some(kv.mod_revision), int_of(f("mod_revision")), "{j}");
    assert_eq!(Some(kv.version), int_of(f("version")), "{j}");
    assert_eq!(Some(kv.lease), int_of(f("lease")), "{j}");
}

fn check_header(h: &crate::v3::json::Header, j: &Value) {
    let rev = j.get("header").and_then(|h| h.get("revision"));
    assert_eq!(Some(h.revision), int_of(rev), "header of {j}");
}

fn check_range(r: &crate::v3::json::RangeResponse, j: &Value) {
    check_header(&r.header, j);
    assert_eq!(Some(r.count), int_of(j.get("count")), "count of {j}");
    let kvs = j
        .get("kvs")
        .and_then(Value::as_array)
        .map_or(&[][..], |a| a);
    assert_eq!(r.kvs.len(), kvs.len(), "kvs of {j}");
    for (kv, jkv) in r.kvs.iter().zip(kvs) {
        check_kv(kv, jkv);
    }
}

/// Every gateway answer type decoded from one answer: a refusal only from
/// a non-200 answer with etcd's error body, a value only from a 200
/// answer, and every field of a value what the JSON says.
pub fn gateway(data: &[u8]) {
    use crate::v3::json::{DeleteResponse, LeaseResponse, RangeResponse, TxnResponse};
    use crate::v3::status::{decode, Code, Status};
    let reply = reply(data);
    let json = json_of(&reply.body);
    let check_refusal = |s: &Status| {
        assert_ne!(reply.status, 200, "a refusal from a 200 answer");
        assert_eq!(s.http, reply.status);
        assert!(!s.message.is_empty());
        let j = json
            .as_ref()
            .expect("a refusal from a body that is not JSON");
        // A stream's error chunk nests the status: {"error":{"code",...}}.
        let code = match j.get("error") {
            Some(nested) if nested.is_object() => {
                nested.get("code").or_else(|| nested.get("grpc_code"))
            }
            _ => j.get("code"),
        }
        .and_then(Value::as_i64)
        .unwrap_or(0);
        assert_eq!(s.code.number(), code, "code of {j}");
        assert_eq!(Code::from_number(code), s.code);
        let kind = crate::Error::from(s.clone()).kind();
        assert_eq!(
            kind == crate::ErrorKind::NotFound,
            code == 5,
            "{kind:?} for code {code}"
        );
    };
    macro_rules! each {
        ($t:ty, $check:expr) => {
            match decode::<$t>(&reply) {
                Ok(Ok(v)) => {
                    assert_eq!(reply.status, 200, "a value from HTTP {}", reply.status);
                    let j = json.as_ref().expect("a value from a body that is not JSON");
                    assert!(
                        j.get("header").is_some() || j.get("result").is_some(),
                        "a value without a header: {j}"
                    );
                    #[allow(clippy::redundant_closure_call)]
                    ($check)(&v, j);
                }
                Ok(Err(s)) => check_refusal(&s),
                Err(e) => {
                    let k = e.kind();
                    assert_eq!(k, crate::ErrorKind::BadResponse, "{e}");
                }
            }
        };
    }
    each!(RangeResponse, check_range);
    each!(DeleteResponse, |d: &DeleteResponse, j: &Value| {
        check_header(&d.header, j);
        assert_eq!(Some(d.deleted), int_of(j.get("deleted")), "deleted of {j}");
    });
    each!(TxnResponse, |t: &TxnResponse, j: &Value| {
        check_header(&t.header, j);
        let ok = j.get("succeeded").and_then(Value::as_bool).unwrap_or(false);
        assert_eq!(t.succeeded, ok, "succeeded of {j}");
        let ops = j
            .get("responses")
            .and_then(Value::as_array)
            .map_or(&[][..], |a| a);
        assert_eq!(t.responses.len(), ops.len());
        for (op, jop) in t.responses.iter().zip(ops) {
            match (&op.response_range, jop.get("response_range")) {
                (Some(r), Some(jr)) if !jr.is_null() => check_range(r, jr),
                (None, None | Some(Value::Null)) => {}
                (r, jr) => panic!("response_range {r:?} from {jr:?}"),
            }
        }
    });
    each!(LeaseResponse, |l: &LeaseResponse, j: &Value| {
        assert_eq!(Some(l.id), int_of(j.get("ID")), "ID of {j}");
        assert_eq!(Some(l.ttl), int_of(j.get("TTL")), "TTL of {j}");
    });
    each!(
        crate::v3::election::LeaderResponse,
        |l: &crate::v3::election::LeaderResponse, j: &Value| {
            match (&l.kv, j.get("kv")) {
                (Some(kv), Some(jkv)) if !jkv.is_null() => check_kv(kv, jkv),
                (None, None | Some(Value::Null)) => {}
                _ => panic!("election leader kv from {j}"),
            }
        }
    );
    each!(
        crate::v3::election::CampaignResponse,
        |c: &crate::v3::election::CampaignResponse, j: &Value| {
            if let (Some(l), Some(jl)) = (&c.leader, j.get("leader")) {
                assert_eq!(Some(l.rev), int_of(jl.get("rev")), "rev of {j}");
                assert_eq!(Some(l.lease), int_of(jl.get("lease")), "lease of {j}");
            }
        }
    );
    if reply.status != 200 {
        if let Some(s) = Status::of(&reply) {
            check_refusal(&s);
        }
        let _ = crate::v3::status::refusal(&reply).to_string();
    }
}

/// The watch stream: the bytes are the stream's body, read through a
/// small buffer (so lines arrive in pieces). Each message read is the next
/// non-blank line's `result`, field for field; an `error` line is an
/// error; the end or a cut line ends the stream.
pub fn watch_stream(data: &[u8]) {
    let mut stream = Stream {
        reader: Box::new(BufReader::with_capacity(7, Cursor::new(data.to_vec()))),
        server_index: 0,
        server: "fuzz".to_string(),
    };
    let mut lines = data.split_inclusive(|&c| c == b'\n');
    loop {
        let got = crate::v3::watch::read_message(&mut stream);
        // The line the reader should have stopped at.
        let expect = loop {
            match lines.next() {
                None => break None,
                Some(l) if l.iter().all(u8::is_ascii_whitespace) => continue,
                Some(l) if l.last() != Some(&b'\n') => break None,
                Some(l) => match json_of(l).ok_or(()) {
                    Ok(v) if v.get("error").is_some_and(|e| !e.is_null()) => break Some(Err(v)),
                    Ok(v) if v.get("result").is_some_and(|r| !r.is_null()) => break Some(Ok(v)),
                    // Neither: skipped (if it decodes), else an error.
                    Ok(v) if v.is_object() => match got {
                        Err(_) => return,
                        _ => continue,
                    },
                    _ => break Some(Err(Value::Null)),
                },
            }
        };
        match (got, expect) {
            (Ok(None), None) => return,
            (Err(_), Some(Err(_))) => return,
            // The typed decoder is stricter than JSON (types of fields).
            (Err(e), Some(Ok(_))) => {
                assert_eq!(e.kind(), crate::ErrorKind::BadResponse, "{e}");
                return;
            }
            (Ok(Some(msg)), Some(Ok(v))) => {
                let r = &v["result"];
                check_header(&msg.header, r);
                assert_eq!(msg.created, r["created"].as_bool().unwrap_or(false));
                assert_eq!(msg.canceled, r["canceled"].as_bool().unwrap_or(false));
                assert_eq!(
                    Some(msg.compact_revision),
                    int_of(r.get("compact_revision"))
                );
                let events = r
                    .get("events")
                    .and_then(Value::as_array)
                    .map_or(&[][..], |a| a);
                assert_eq!(msg.events.len(), events.len(), "events of {v}");
                for (e, je) in msg.events.iter().zip(events) {
                    assert_eq!(e.kind, je["type"].as_str().unwrap_or(""), "type of {je}");
                    match je.get("kv") {
                        Some(jkv) if !jkv.is_null() => check_kv(&e.kv, jkv),
                        _ => check_kv(&e.kv, &Value::Object(Default::default())),
                    }
                }
            }
            (got, expect) => panic!(
                "watch stream: read {:?}, the bytes say {expect:?}",
                got.map(|m| m.map(|m| m.header.revision))
            ),
        }
    }
}

/// v2 answers: an answer only from 200/201, a refusal only with an
/// `errorCode`, fields as the JSON says; the index header read exactly.
pub fn v2_answer(data: &[u8]) {
    use crate::v2::wire;
    let reply = reply(data);
    let json = json_of(&reply.body);
    match wire::decode(&reply) {
        Ok(Ok(a)) => {
            assert!(reply.status == 200 || reply.status == 201);
            let j = json.expect("an answer from a body that is not JSON");
            assert_eq!(
                a.action,
                j["action"].as_str().unwrap_or(""),
                "action of {j}"
            );
            check_node(&a.node, j.get("node").unwrap_or(&Value::Null));
        }
        Ok(Err(r)) => {
            assert!(reply.status != 200 && reply.status != 201);
            let j = json.expect("a refusal from a body that is not JSON");
            assert_eq!(Some(r.code), j["errorCode"].as_i64(), "errorCode of {j}");
            assert_eq!(r.status, reply.status);
            let _ = crate::Error::from(r);
        }
        Err(e) => assert_eq!(e.kind(), crate::ErrorKind::BadResponse, "{e}"),
    }
    match wire::etcd_index(&reply) {
        Ok(n) => {
            let h = reply
                .header("X-Etcd-Index")
                .expect("an index without the header");
            assert_eq!(h.trim().parse::<u64>().ok(), Some(n), "X-Etcd-Index {h:?}");
        }
        Err(e) => assert_eq!(e.kind(), crate::ErrorKind::BadResponse),
    }
    if reply.status == 503 {
        assert!(wire::member_unavailable(reply.status, &reply.body));
    }
    if reply.status < 500 {
        assert!(!wire::member_unavailable(reply.status, &reply.body));
    }
    let _ = serde_json::from_slice::<crate::v2::json::SelfStats>(&reply.body);
    let _ = serde_json::from_slice::<crate::v2::json::Members>(&reply.body);
    let _ = serde_json::from_slice::<crate::v2::json::LeaderStats>(&reply.body);
}

fn check_node(n: &crate::v2::json::Node, j: &Value) {
    assert_eq!(n.key.as_deref(), j["key"].as_str(), "key of {j}");
    assert_eq!(n.value.as_deref(), j["value"].as_str(), "value of {j}");
    assert_eq!(n.dir, j["dir"].as_bool().unwrap_or(false), "dir of {j}");
    assert_eq!(n.modified_index, j["modifiedIndex"].as_u64().unwrap_or(0));
    assert_eq!(n.created_index, j["createdIndex"].as_u64().unwrap_or(0));
    let nodes = j
        .get("nodes")
        .and_then(Value::as_array)
        .map_or(&[][..], |a| a);
    assert_eq!(n.nodes.len(), nodes.len(), "nodes of {j}");
    for (c, jc) in n.nodes.iter().zip(nodes) {
        check_node(c, jc);
    }
}

/// Time-outs of the whole-client target.
pub const CLIENT_CONNECT: Duration = Duration::from_millis(200);
pub const CLIENT_REQUEST: Duration = Duration::from_millis(200);
/// What one call may take at most against the fake server (it answers at
/// once and closes): the request time-out a few times over, for the
/// retries a call may make.
pub const CLIENT_BUDGET: Duration = Duration::from_millis(3000);

/// The whole client against a server whose every answer is the bytes
/// (any request, any connection; the connection is closed after them):
/// no panic, and every call returns within [`CLIENT_BUDGET`]. The first
/// byte's low bit picks the protocol (0: v3, 1: v2); the answer is the
/// rest.
pub fn client(input: &[u8]) {
    let Some((&control, data)) = input.split_first() else {
        return;
    };
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("address").port();
    let stop = Arc::new(AtomicBool::new(false));
    let answer = data.to_vec();
    let server = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        let _ = conn.set_nonblocking(false);
                        let _ = conn.set_read_timeout(Some(Duration::from_millis(20)));
                        // The request: read what comes, up to the time-out.
                        let mut buf = [0u8; 4096];
                        let mut seen = Vec::new();
                        while let Ok(n) = conn.read(&mut buf) {
                            if n == 0 {
                                break;
                            }
                            seen.extend_from_slice(&buf[..n]);
                            if let Some(i) = find(&seen, b"\r\n\r\n") {
                                let head = String::from_utf8_lossy(&seen[..i]).to_lowercase();
                                let len = head
                                    .lines()
                                    .find_map(|l| l.strip_prefix("content-length:"))
                                    .and_then(|v| v.trim().parse::<usize>().ok())
                                    .unwrap_or(0);
                                if seen.len() >= i + 4 + len {
                                    break;
                                }
                            }
                        }
                        let _ = conn.write_all(&answer);
                        let _ = conn.shutdown(std::net::Shutdown::Both);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(1)),
                }
            }
        })
    };
    let config = crate::Config {
        connect_timeout: CLIENT_CONNECT,
        request_timeout: CLIENT_REQUEST,
        protocol: if control & 1 == 1 {
            crate::ProtocolKind::V2
        } else {
            crate::ProtocolKind::V3
        },
        ..crate::Config::default()
    };
    let servers = vec![crate::Endpoint::new("127.0.0.1", port)];
    if let Ok(c) = crate::Client::new(servers, config) {
        let timed = |what: &str, f: &dyn Fn()| {
            let t = Instant::now();
            f();
            let took = t.elapsed();
            assert!(took <= CLIENT_BUDGET, "{what} took {took:?}");
        };
        timed("get", &|| drop(c.get("/fuzz/k")));
        timed("set", &|| drop(c.set("/fuzz/k", "v")));
        timed("get_kv", &|| drop(c.get_kv("/fuzz/k")));
        timed("list", &|| drop(c.list("/fuzz")));
        timed("txn", &|| {
            drop(c.txn(
                &[],
                &[crate::Op::Get {
                    key: b"/fuzz/k".to_vec(),
                    prefix: false,
                    keys_only: false,
                    count_only: false,
                }],
                &[],
            ))
        });
    }
    stop.store(true, Ordering::Relaxed);
    let _ = server.join();
}
