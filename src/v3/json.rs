//! The gateway's JSON conventions: bytes as padded standard base64, int64
//! as strings (numbers accepted too), and every zero-valued field omitted.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Deserializer};

pub fn encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Deserializes a base64 bytes field.
pub fn bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let s = String::deserialize(d)?;
    STANDARD
        .decode(s.as_bytes())
        .map_err(serde::de::Error::custom)
}

/// Deserializes an int64 field sent as a string (or a number).
pub fn int<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    number(d)
}

/// Deserializes a uint64 field (member IDs) sent as a string (or a number).
pub fn uint<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    number(d)
}

/// The gateway writes 64-bit integers as strings (JSON numbers lose
/// precision past 2^53); numbers are taken too.
fn number<'de, D, N>(d: D) -> Result<N, D::Error>
where
    D: Deserializer<'de>,
    N: Deserialize<'de> + std::str::FromStr,
    N::Err: std::fmt::Display,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumberOrString<N> {
        Number(N),
        Str(String),
    }
    match NumberOrString::<N>::deserialize(d)? {
        NumberOrString::Number(n) => Ok(n),
        NumberOrString::Str(s) => s.parse().map_err(serde::de::Error::custom),
    }
}

/// Any JSON object, skimmed over without being built.
pub struct AnyObject;

impl<'de> Deserialize<'de> for AnyObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<AnyObject, D::Error> {
        struct Skim;
        impl<'de> serde::de::Visitor<'de> for Skim {
            type Value = AnyObject;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<AnyObject, A::Error> {
                use serde::de::IgnoredAny;
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(AnyObject)
            }
        }
        d.deserialize_map(Skim)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Header {
    #[serde(deserialize_with = "int")]
    pub revision: i64,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct KeyValue {
    #[serde(deserialize_with = "bytes")]
    pub key: Vec<u8>,
    #[serde(deserialize_with = "bytes")]
    pub value: Vec<u8>,
    #[serde(deserialize_with = "int")]
    pub create_revision: i64,
    #[serde(deserialize_with = "int")]
    pub mod_revision: i64,
    #[serde(deserialize_with = "int")]
    pub version: i64,
    #[serde(deserialize_with = "int")]
    pub lease: i64,
}

impl From<KeyValue> for crate::kv::KeyValue {
    fn from(kv: KeyValue) -> crate::kv::KeyValue {
        crate::kv::KeyValue {
            key: kv.key,
            value: kv.value,
            create_revision: kv.create_revision,
            mod_revision: kv.mod_revision,
            version: kv.version,
            lease: kv.lease,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RangeResponse {
    pub header: Header,
    pub kvs: Vec<KeyValue>,
    #[serde(deserialize_with = "int")]
    pub count: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DeleteResponse {
    pub header: Header,
    #[serde(deserialize_with = "int")]
    pub deleted: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TxnResponse {
    pub header: Header,
    pub succeeded: bool,
    pub responses: Vec<TxnOpResponse>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TxnOpResponse {
    pub response_range: Option<RangeResponse>,
    pub response_delete_range: Option<DeleteResponse>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LeaseResponse {
    #[serde(rename = "ID", deserialize_with = "int")]
    pub id: i64,
    #[serde(rename = "TTL", deserialize_with = "int")]
    pub ttl: i64,
    /// `lease/timetolive` only: the TTL the lease was granted for.
    #[serde(rename = "grantedTTL", deserialize_with = "int")]
    pub granted_ttl: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn omitted_and_string_fields() {
        let r: RangeResponse = serde_json::from_str(
            r#"{"header":{"revision":"7"},"kvs":[{"key":"Zm9v","mod_revision":"3"}]}"#,
        )
        .unwrap();
        assert_eq!(r.header.revision, 7);
        assert_eq!(r.kvs[0].key, b"foo");
        assert_eq!(r.kvs[0].value, b"");
        let empty: RangeResponse = serde_json::from_str(r#"{"header":{}}"#).unwrap();
        assert!(empty.kvs.is_empty());
        let l: LeaseResponse =
            serde_json::from_str(r#"{"ID":"2324035614664285464","TTL":30}"#).unwrap();
        assert_eq!((l.id, l.ttl), (2324035614664285464, 30));
    }

    proptest::proptest! {
        #[test]
        fn what_we_encode_we_decode(value in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300), rev in 0i64..) {
            let body = format!(r#"{{"kvs":[{{"key":"{}","value":"{}","mod_revision":"{rev}"}}]}}"#, encode(b"k"), encode(&value));
            let r: RangeResponse = serde_json::from_str(&body).unwrap();
            proptest::prop_assert_eq!(&r.kvs[0].value, &value);
            proptest::prop_assert_eq!(r.kvs[0].mod_revision, rev);
        }

        #[test]
        fn arbitrary_answers_never_panic(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = serde_json::from_slice::<RangeResponse>(&body);
            let _ = serde_json::from_slice::<TxnResponse>(&body);
            let _ = serde_json::from_slice::<LeaseResponse>(&body);
        }

        #[test]
        fn arbitrary_json_shapes_never_panic(s in r#"\{("(kvs|header|key|value|revision|ID|TTL|responses)":("[A-Za-z0-9+/=]*"|-?[0-9]{1,25}|\[\]|\{\}|null|true),?){0,4}\}"#) {
            let _ = serde_json::from_str::<RangeResponse>(&s);
            let _ = serde_json::from_str::<TxnResponse>(&s);
            let _ = serde_json::from_str::<LeaseResponse>(&s);
        }
    }
}
