//! Locks on etcd's lock service, held by a lease.

use super::V3;
use crate::error::{Error, Result};

pub fn lock(_v3: &V3, _key: &[u8], _ttl: u32) -> Result<String> {
    Err(Error::Unavailable("etcd_lock is not available yet".into()))
}

pub fn renew(_v3: &V3, _key: &[u8], _ttl: u32, _index: &str) -> Result<()> {
    Err(Error::Unavailable("etcd_lock is not available yet".into()))
}

pub fn unlock(_v3: &V3, _key: &[u8], _index: &str) -> Result<()> {
    Err(Error::Unavailable(
        "etcd_unlock is not available yet".into(),
    ))
}
