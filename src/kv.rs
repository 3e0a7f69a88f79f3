//! The extended API's types (etcd v3 only): a key with its revisions, a
//! change seen by a revision-exact watch, a lease's time left. Plain Rust
//! types: the C layer copies them into its own structs.

/// One key as etcd v3 stores it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyValue {
    /// The key's bytes: a canonical path for keys written through us.
    pub key: Vec<u8>,
    /// The value's bytes (may hold NULs; empty for a deleted key).
    pub value: Vec<u8>,
    /// Revision of the write that created the key.
    pub create_revision: i64,
    /// Revision of its last write (for an event: the change's revision).
    pub mod_revision: i64,
    /// Writes since creation, 1 after the first.
    pub version: i64,
    /// The lease the key is attached to, 0 for none.
    pub lease: i64,
}

/// One change seen by [`crate::Client::watch_events`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchEvent {
    /// True when the key was deleted (or its lease expired or was revoked).
    pub deleted: bool,
    /// The key after the change (value empty when deleted);
    /// `kv.mod_revision` is the change's revision.
    pub kv: KeyValue,
}

/// All the changes of one revision below a prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// The changes, in etcd's order (a transaction can change several keys).
    pub events: Vec<WatchEvent>,
    /// Their revision: pass `revision + 1` to continue.
    pub revision: i64,
}

/// Keys below a prefix, read at one revision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// Sorted by key.
    pub kvs: Vec<KeyValue>,
    /// The store's revision at the read.
    pub revision: i64,
}

/// What [`crate::Client::delete_prefix`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deleted {
    /// How many keys were deleted (0 is fine).
    pub count: i64,
    /// The store's revision after the delete.
    pub revision: i64,
}

/// A lease's time, as etcd tells it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LeaseTime {
    /// Seconds left before it expires.
    pub remaining: i64,
    /// Seconds it was granted (or last refreshed) for.
    pub granted: i64,
}

/// A leadership won by [`crate::Client::campaign`]: what
/// [`crate::Client::proclaim`] and [`crate::Client::resign`] need (etcd's
/// `LeaderKey`). Its text form ([`Leadership::to_token`]) is what the C
/// API hands out, opaque to the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leadership {
    /// etcd's election name (`/_elections/` + the escaped election).
    pub name: Vec<u8>,
    /// The leader's key: `name/` + the lease ID in lowercase hex.
    pub key: Vec<u8>,
    /// The key's create revision: the leadership's identity.
    pub revision: i64,
    /// The lease the leadership lives on.
    pub lease: i64,
}

/// The token's form: `e1.<revision>.<lease hex>.<name, URL-safe base64>`.
const TOKEN_TAG: &str = "e1";

impl Leadership {
    /// The leadership for the candidate of `lease` elected at `revision`.
    pub fn new(name: &[u8], revision: i64, lease: i64) -> Leadership {
        let mut key = name.to_vec();
        key.push(b'/');
        key.extend_from_slice(format!("{:x}", lease as u64).as_bytes());
        Leadership {
            name: name.to_vec(),
            key,
            revision,
            lease,
        }
    }

    /// A compact text naming the leadership (ASCII, no spaces).
    pub fn to_token(&self) -> String {
        use base64::Engine;
        let name = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&self.name);
        format!(
            "{TOKEN_TAG}.{}.{:x}.{name}",
            self.revision, self.lease as u64
        )
    }

    /// Reads [`Leadership::to_token`]'s text back; `None` when it is not one.
    pub fn from_token(token: &[u8]) -> Option<Leadership> {
        use base64::Engine;
        let token = std::str::from_utf8(token).ok()?;
        let mut parts = token.split('.');
        if parts.next()? != TOKEN_TAG {
            return None;
        }
        let revision: i64 = parts.next()?.parse().ok().filter(|&r| r > 0)?;
        let lease = parts.next()?;
        if lease.is_empty() || lease.len() > 16 || lease.starts_with('+') {
            return None;
        }
        let lease = u64::from_str_radix(lease, 16).ok().filter(|&l| l != 0)? as i64;
        let name = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts.next()?)
            .ok()
            .filter(|n| !n.is_empty())?;
        if parts.next().is_some() {
            return None;
        }
        Some(Leadership::new(&name, revision, lease))
    }
}

#[cfg(test)]
mod tests {
    use super::Leadership;

    #[test]
    fn leadership_tokens() {
        let l = Leadership::new(b"/_elections/a%2Fb", 42, 0x2040a214096bdd45);
        assert_eq!(l.key, b"/_elections/a%2Fb/2040a214096bdd45");
        let token = l.to_token();
        assert!(token.starts_with("e1.42.2040a214096bdd45."), "{token}");
        assert_eq!(Leadership::from_token(token.as_bytes()), Some(l));
        for bad in [
            "",
            "e1",
            "e2.42.1.eA",
            "e1.0.1.eA",
            "e1.-3.1.eA",
            "e1.4.0.eA",
            "e1.4.+1.eA",
            "e1.4.1.",
            "e1.4.1.eA.x",
            "e1.4.12345678901234567.eA",
            "e1.4.zz.eA",
        ] {
            assert_eq!(Leadership::from_token(bad.as_bytes()), None, "{bad}");
        }
    }
}
