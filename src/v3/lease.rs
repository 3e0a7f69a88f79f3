//! Leases: grant, one-shot keep-alive, revoke.

use serde_json::json;

use super::gateway::Gateway;
use super::json::LeaseResponse;
use super::status::Code;
use crate::error::{Error, Result};
use crate::transport::Retry;

/// Grants a lease of `ttl` seconds. Resending is harmless: a lease granted
/// by a lost first attempt expires on its own.
pub fn grant(g: &Gateway, ttl: u32) -> Result<i64> {
    let r: LeaseResponse = g.call("/v3/lease/grant", &json!({"TTL": ttl}), Retry::Always)?;
    if r.id == 0 {
        return Err(Error::bad_response("lease grant answered without an ID"));
    }
    Ok(r.id)
}

/// One keep-alive; returns the lease's new TTL, 0 when the lease is gone
/// (etcd answers 200 with no TTL for an unknown or expired lease).
pub fn keep_alive(g: &Gateway, id: i64) -> Result<i64> {
    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct KeepAlive {
        result: LeaseResponse,
    }
    let r: KeepAlive = g.call(
        "/v3/lease/keepalive",
        &json!({"ID": id.to_string()}),
        Retry::Always,
    )?;
    Ok(r.result.ttl)
}

/// Revokes a lease (deleting the keys attached to it). A lease that is
/// already gone (etcd: NotFound) is not an error here.
pub fn revoke(g: &Gateway, id: i64) -> Result<()> {
    let revoked = g.call_status::<serde_json::Value>(
        "/v3/lease/revoke",
        &json!({"ID": id.to_string()}),
        Retry::Always,
    )?;
    match revoked {
        Ok(_) => Ok(()),
        Err(status) if status.code == Code::NotFound => Ok(()),
        Err(status) => Err(status.into()),
    }
}
