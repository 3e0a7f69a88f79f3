//! Key paths: the v2-style canonical form every key argument is put in,
//! directory listings, watch matching and lock names.

use std::collections::BTreeSet;

/// Puts a key in canonical form: one leading `/`, runs of `/` collapsed,
/// no trailing `/`. The root is `/`. Works on bytes: keys need not be UTF-8.
pub fn canonical(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 1);
    for segment in key.split(|&b| b == b'/').filter(|s| !s.is_empty()) {
        out.push(b'/');
        out.extend_from_slice(segment);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// True for the canonical root `/`.
pub fn is_root(canonical_key: &[u8]) -> bool {
    canonical_key == b"/"
}

/// The prefix every key below a canonical directory starts with: `dir/`
/// (just `/` for the root).
pub fn children_prefix(canonical_dir: &[u8]) -> Vec<u8> {
    if is_root(canonical_dir) {
        return b"/".to_vec();
    }
    let mut p = canonical_dir.to_vec();
    p.push(b'/');
    p
}

/// The smallest key greater than every key that starts with `prefix`
/// (etcd's `range_end` for a prefix). An all-`0xff` prefix has none: `\0`
/// then means "to the end of the keyspace" to etcd.
pub fn prefix_range_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// True when a change to `key` concerns a watch on canonical `pfx`: the key
/// itself or any key below `pfx/` — but not a sibling such as `pfx-x`.
pub fn watch_matches(canonical_pfx: &[u8], key: &[u8]) -> bool {
    key == canonical_pfx || key.starts_with(&children_prefix(canonical_pfx))
}

/// The immediate children of `canonical_dir` among `keys` (all of which
/// start with its children prefix): canonical paths, sorted, each once,
/// leaving out names that begin with `_` (hidden, as in v2).
pub fn immediate_children<'a>(
    canonical_dir: &[u8],
    keys: impl IntoIterator<Item = &'a [u8]>,
) -> Vec<Vec<u8>> {
    let prefix = children_prefix(canonical_dir);
    let mut children = BTreeSet::new();
    for key in keys {
        let Some(rest) = key.strip_prefix(prefix.as_slice()) else {
            continue;
        };
        let name = rest.split(|&b| b == b'/').next().unwrap_or_default();
        if name.is_empty() || name[0] == b'_' {
            continue;
        }
        let mut child = prefix.clone();
        child.extend_from_slice(name);
        children.insert(child);
    }
    children.into_iter().collect()
}

/// Where lock names live; `_` keeps them out of ordinary listings.
pub const LOCK_ROOT: &str = "/_locks/";

/// etcd's lock name for the lock on canonical key `k`: `/_locks/` followed
/// by `k` without its leading `/`, with `%` written `%25` and `/` written
/// `%2F`, so that a lock on `jobs/42` is not queued behind one on `jobs`
/// (etcd's lock service treats every key below `name/` as a waiter).
pub fn lock_name(canonical_key: &[u8]) -> Vec<u8> {
    escaped_name(LOCK_ROOT, canonical_key)
}

/// Where election names live, beside the locks.
pub const ELECTION_ROOT: &str = "/_elections/";

/// etcd's election name for the election on canonical key `k`:
/// `/_elections/` and `k` escaped as [`lock_name`] escapes it (etcd's
/// election service, like its lock service, treats every key below
/// `name/` as a candidate).
pub fn election_name(canonical_key: &[u8]) -> Vec<u8> {
    escaped_name(ELECTION_ROOT, canonical_key)
}

fn escaped_name(root: &str, canonical_key: &[u8]) -> Vec<u8> {
    let mut name = root.as_bytes().to_vec();
    let path = canonical_key.strip_prefix(b"/").unwrap_or(canonical_key);
    for &b in path {
        match b {
            b'%' => name.extend_from_slice(b"%25"),
            b'/' => name.extend_from_slice(b"%2F"),
            _ => name.push(b),
        }
    }
    name
}

/// The key etcd's lock service creates for a holder or waiter: the lock
/// name, `/`, and the lease ID in lowercase hex.
pub fn lock_key(canonical_key: &[u8], lease_hex: &str) -> Vec<u8> {
    let mut key = lock_name(canonical_key);
    key.push(b'/');
    key.extend_from_slice(lease_hex.as_bytes());
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms() {
        for k in ["foo", "/foo", "//foo/", "foo///", "/foo/"] {
            assert_eq!(canonical(k.as_bytes()), b"/foo", "{k}");
        }
        assert_eq!(canonical(b"a//b/c/"), b"/a/b/c");
        assert_eq!(canonical(b""), b"/");
        assert_eq!(canonical(b"///"), b"/");
    }

    #[test]
    fn ranges_and_matching() {
        assert_eq!(prefix_range_end(b"/d/"), b"/d0");
        assert_eq!(prefix_range_end(b"a\xff"), b"b");
        assert_eq!(prefix_range_end(b"\xff\xff"), b"\0");
        assert!(watch_matches(b"/p", b"/p"));
        assert!(watch_matches(b"/p", b"/p/x/y"));
        for k in ["/p-x", "/p.x", "/py", "/"] {
            assert!(!watch_matches(b"/p", k.as_bytes()), "{k}");
        }
        assert!(watch_matches(b"/", b"/anything"));
    }

    #[test]
    fn children() {
        let keys: Vec<&[u8]> = vec![b"/d/b", b"/d/a", b"/d/c/x", b"/d/c/y", b"/d/_h", b"/d//z"];
        let got = immediate_children(b"/d", keys);
        assert_eq!(
            got,
            vec![b"/d/a".to_vec(), b"/d/b".to_vec(), b"/d/c".to_vec()]
        );
        let root = immediate_children(b"/", vec![&b"/x/y"[..], b"/a"]);
        assert_eq!(root, vec![b"/a".to_vec(), b"/x".to_vec()]);
    }

    #[test]
    fn lock_names() {
        assert_eq!(lock_name(b"/foo"), b"/_locks/foo");
        assert_eq!(lock_name(b"/jobs/42"), b"/_locks/jobs%2F42");
        assert_eq!(lock_name(b"/a%2Fb"), b"/_locks/a%252Fb");
        assert_eq!(lock_key(b"/foo", "4d2"), b"/_locks/foo/4d2");
        assert_eq!(election_name(b"/jobs/42"), b"/_elections/jobs%2F42");
    }
}
