//! [`Client`]: an etcd session, usable from Rust without the C layer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::config::{Config, ProtocolKind, SecureOptions};
use crate::error::{Error, Result};
use crate::keys::{canonical, election_name, is_root};
use crate::kv::{Changes, Deleted, KeyValue, Leadership, LeaseTime, Listing};
use crate::process::PerProcess;
use crate::protocol::{Event, Extended, LeaseKeeper, Protocol};
use crate::servers::{parse_server_list, Endpoint};
use crate::shared;
use crate::txn::{Compare, Op, TxnOutcome};

/// A session on a list of etcd members. Safe to share between threads.
pub struct Client {
    /// Shared with every session of the process on the same servers with
    /// the same settings (see [`crate::shared`]).
    protocol: Arc<dyn Protocol>,
    /// The leases this session keeps alive (`lease_keep`): the session's
    /// own, stopped when it closes, whoever else shares its connections.
    /// Per process: a child after fork() does not have the threads.
    keepers: PerProcess<Mutex<HashMap<i64, Box<dyn LeaseKeeper>>>>,
}

impl Drop for Client {
    fn drop(&mut self) {
        shared::release(&self.protocol);
    }
}

impl Client {
    /// A session on `servers` with explicit settings. A server written
    /// without a scheme is reached over https when `config` has a CA file
    /// or a client certificate, over http otherwise. TLS files are read
    /// and checked here (for https servers): a bad one is an error.
    pub fn new(mut servers: Vec<Endpoint>, config: Config) -> Result<Client> {
        if servers.is_empty() {
            return Err(Error::bad_argument("empty server list"));
        }
        if config.tls.any() {
            for s in servers.iter_mut().filter(|s| !s.scheme_given) {
                s.tls = true;
            }
        }
        let protocol = shared::protocol(servers, config, |servers, config| {
            Ok(match config.protocol {
                ProtocolKind::V3 => Arc::new(crate::v3::V3::new(servers, config)?),
                ProtocolKind::V2 => Arc::new(crate::v2::V2::new(servers, config)?),
            })
        })?;
        Ok(Client {
            protocol,
            keepers: PerProcess::new(Mutex::default()),
        })
    }

    /// A session on a server string (`host:port` items separated by any of
    /// `\n\r\t ,;`), with settings from the `ETCDAPI_*` environment.
    pub fn open(server_names: &str) -> Result<Client> {
        let servers = parse_server_list(server_names).map_err(Error::bad_argument)?;
        Client::with_env(servers)
    }

    /// A session on `servers` with settings from the `ETCDAPI_*` environment.
    pub fn with_env(servers: Vec<Endpoint>) -> Result<Client> {
        Client::with_options(servers, &SecureOptions::default())
    }

    /// A session on `servers` with the program's TLS and authentication
    /// `options`, the rest (and any option left `None`) from the
    /// environment (see [`Config::from_env_with`]).
    pub fn with_options(servers: Vec<Endpoint>, options: &SecureOptions) -> Result<Client> {
        let config = Config::from_env_with(options).map_err(Error::bad_argument)?;
        Client::new(servers, config)
    }

    /// The value of `key`, or the listing of its children, or `None`.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        self.protocol.get(&canonical(key.as_ref()))
    }

    /// Stores `value` under `key`.
    pub fn set(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        self.set_with(key, value, None, 0)
    }

    /// Stores `value`, only if the current value is `prev` (when given),
    /// for `ttl` seconds (when > 0). A failed compare is an error of kind
    /// `CompareFailed` (also for a missing key).
    pub fn set_with(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        prev: Option<&[u8]>,
        ttl: u32,
    ) -> Result<()> {
        let key = value_key(key.as_ref())?;
        match prev {
            None => self.protocol.put(&key, value.as_ref(), ttl),
            Some(prev) => self.protocol.swap(&key, value.as_ref(), prev, ttl),
        }
    }

    /// Deletes `key`; an error of kind `NotFound` if it did not exist.
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<()> {
        let key = canonical(key.as_ref());
        if self.protocol.delete(&key)? {
            Ok(())
        } else {
            Err(Error::not_found(&key))
        }
    }

    /// The leader's member ID in lowercase hex.
    pub fn leader(&self) -> Result<String> {
        self.protocol.leader()
    }

    /// Waits for the first change to `prefix` or below it at revision >=
    /// `from` (`None`: from now).
    pub fn watch(&self, prefix: impl AsRef<[u8]>, from: Option<i64>) -> Result<Event> {
        self.protocol.watch(&canonical(prefix.as_ref()), from)
    }

    /// Takes the lock `key` for `ttl` seconds; returns its index.
    pub fn lock(&self, key: impl AsRef<[u8]>, ttl: u32) -> Result<String> {
        check_lock_ttl(ttl)?;
        self.protocol.lock(&canonical(key.as_ref()), ttl)
    }

    /// Renews the lock `key` held with `index` for `ttl` seconds.
    pub fn renew(&self, key: impl AsRef<[u8]>, ttl: u32, index: impl AsRef<[u8]>) -> Result<()> {
        check_lock_ttl(ttl)?;
        let index = lock_index(index.as_ref())?;
        self.protocol.renew(&canonical(key.as_ref()), ttl, index)
    }

    /// Releases the lock `key` held with `index`.
    pub fn unlock(&self, key: impl AsRef<[u8]>, index: impl AsRef<[u8]>) -> Result<()> {
        let index = lock_index(index.as_ref())?;
        self.protocol.unlock(&canonical(key.as_ref()), index)
    }
}

/// The extended API (etcd v3 only; a v2 session answers every call with
/// an error of kind `BadArgument`).
impl Client {
    fn extended(&self) -> Result<&dyn Extended> {
        self.protocol.extended().ok_or_else(|| {
            Error::bad_argument("this call needs etcd v3; the session speaks v2 (ETCDAPI_PROTOCOL)")
        })
    }

    /// `key` with its revisions (`None`: no such key), and the store's
    /// revision at the read (a linearizable read).
    pub fn get_kv(&self, key: impl AsRef<[u8]>) -> Result<(Option<KeyValue>, i64)> {
        self.extended()?.get_kv(&canonical(key.as_ref()))
    }

    /// Every key strictly below `prefix/` (at every depth, `_` names
    /// included), with values, sorted by key, from one read.
    pub fn list(&self, prefix: impl AsRef<[u8]>) -> Result<Listing> {
        self.extended()?.list(&canonical(prefix.as_ref()))
    }

    /// Puts `value` under `key`, attached to `lease` (0: none); returns
    /// the write's revision. An unknown lease is an error of kind `NotFound`.
    pub fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>, lease: i64) -> Result<i64> {
        let ext = self.extended()?;
        ext.put(&value_key(key.as_ref())?, value.as_ref(), lease)
    }

    /// Puts only if the key's mod revision is `if_revision` (0: only if
    /// the key does not exist); returns the write's revision. A failed
    /// condition is an error of kind `CompareFailed` (nothing written).
    pub fn put_if(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        lease: i64,
        if_revision: i64,
    ) -> Result<i64> {
        let ext = self.extended()?;
        if if_revision < 0 {
            return Err(Error::bad_argument(
                "if_revision must be a revision (> 0) or 0 for \"does not exist\"",
            ));
        }
        ext.put_if(
            &value_key(key.as_ref())?,
            value.as_ref(),
            lease,
            if_revision,
        )
    }

    /// Deletes `key` only if its mod revision is `if_revision` (`None`:
    /// unconditionally); returns the revision after the delete. A missing
    /// key is `NotFound`, a failed condition `CompareFailed`.
    pub fn delete_if(&self, key: impl AsRef<[u8]>, if_revision: Option<i64>) -> Result<i64> {
        let ext = self.extended()?;
        ext.delete_if(&canonical(key.as_ref()), if_revision)
    }

    /// One transaction (SPEC section 8.3): if every compare holds, the
    /// `then` operations run, else the `otherwise` ones, at one revision.
    /// Keys are put in canonical form here; a failed compare is not an
    /// error (`succeeded` false). A transaction that writes and whose
    /// answer was lost is not sent again: `OutcomeUnknown`.
    pub fn txn(&self, compares: &[Compare], then: &[Op], otherwise: &[Op]) -> Result<TxnOutcome> {
        let ext = self.extended()?;
        let compares = compares
            .iter()
            .map(|c| match c {
                Compare::Key { key, target, op } => Ok(Compare::Key {
                    key: canonical(key),
                    target: target.clone(),
                    op: *op,
                }),
                Compare::Leader(l) => Ok(Compare::Leader(l.clone())),
                Compare::LockHeld { key, index } => Ok(Compare::LockHeld {
                    key: canonical(key),
                    index: index.clone(),
                }),
            })
            .collect::<Result<Vec<_>>>()?;
        let canonical_ops = |ops: &[Op]| -> Result<Vec<Op>> {
            ops.iter()
                .map(|op| {
                    Ok(match op {
                        Op::Get {
                            key,
                            prefix,
                            keys_only,
                            count_only,
                        } => Op::Get {
                            key: canonical(key),
                            prefix: *prefix,
                            keys_only: *keys_only,
                            count_only: *count_only,
                        },
                        Op::Put { key, value, lease } => Op::Put {
                            key: value_key(key)?,
                            value: value.clone(),
                            lease: *lease,
                        },
                        Op::Delete { key, prefix } => {
                            let key = canonical(key);
                            if *prefix && is_root(&key) {
                                return Err(Error::bad_argument(
                                    "a prefix delete of / would delete every key: refused",
                                ));
                            }
                            Op::Delete {
                                key,
                                prefix: *prefix,
                            }
                        }
                    })
                })
                .collect()
        };
        ext.txn(&compares, &canonical_ops(then)?, &canonical_ops(otherwise)?)
    }

    /// Deletes the key `prefix` and every key below `prefix/` in one
    /// request (never siblings such as `prefix-x`). The root `/` is
    /// refused: that would be everything.
    pub fn delete_prefix(&self, prefix: impl AsRef<[u8]>) -> Result<Deleted> {
        let ext = self.extended()?;
        let prefix = canonical(prefix.as_ref());
        if is_root(&prefix) {
            return Err(Error::bad_argument(
                "delete_prefix of / would delete every key: refused",
            ));
        }
        ext.delete_prefix(&prefix)
    }

    /// Waits for the first revision >= `from` (`None`: the next change
    /// from now) that changes `prefix` or a key below `prefix/`, and
    /// returns all its changes; `timeout` `None` waits for ever, else an
    /// error of kind `TimedOut` when it runs out (a change arriving later
    /// is kept for the next call). Continue with `from = revision + 1`.
    pub fn watch_events(
        &self,
        prefix: impl AsRef<[u8]>,
        from: Option<i64>,
        timeout: Option<std::time::Duration>,
    ) -> Result<Changes> {
        let ext = self.extended()?;
        ext.watch_events(
            &canonical(prefix.as_ref()),
            from.filter(|&f| f > 0),
            timeout,
        )
    }

    /// Grants a lease of `ttl` seconds (etcd's shortest is 2); its ID.
    pub fn lease_grant(&self, ttl: i64) -> Result<i64> {
        let ext = self.extended()?;
        if ttl <= 0 {
            return Err(Error::bad_argument("lease ttl must be at least 1 second"));
        }
        ext.lease_grant(ttl)
    }

    /// Refreshes `lease` once; returns the seconds granted again. An error
    /// of kind `NotFound` once the lease is gone.
    pub fn lease_keepalive(&self, lease: i64) -> Result<i64> {
        self.extended()?.lease_keepalive(lease)
    }

    /// Keeps `lease` alive from a thread of this session (a refresh every
    /// third of its TTL) until it is revoked, the session ends, or the
    /// lease is lost. `NotFound` if it is already gone.
    pub fn lease_keep(&self, lease: i64) -> Result<()> {
        let keepers = self.keepers.get(|_| Mutex::default());
        let ended: Vec<Box<dyn LeaseKeeper>> = {
            let mut kept = keepers.lock().unwrap_or_else(|e| e.into_inner());
            let ended: Vec<i64> = kept
                .iter()
                .filter(|(_, k)| k.ended())
                .map(|(&id, _)| id)
                .collect();
            if kept.contains_key(&lease) && !ended.contains(&lease) {
                return Ok(());
            }
            ended.iter().filter_map(|id| kept.remove(id)).collect()
        };
        drop(ended);
        let keeper = self.extended()?.lease_keep(lease)?;
        let replaced = keepers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(lease, keeper);
        drop(replaced);
        Ok(())
    }

    /// How long `lease` has left; `NotFound` when it is gone.
    pub fn lease_ttl(&self, lease: i64) -> Result<LeaseTime> {
        self.extended()?.lease_ttl(lease)
    }

    /// Revokes `lease`: its keys are deleted, a [`Client::lease_keep`]
    /// stops. `NotFound` if unknown.
    pub fn lease_revoke(&self, lease: i64) -> Result<()> {
        let revoked = self.extended()?.lease_revoke(lease);
        if revoked.is_ok() || revoked.as_ref().is_err_and(|e| e.is_refusal()) {
            let keepers = self.keepers.get(|_| Mutex::default());
            let stopped = keepers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&lease);
            drop(stopped);
        }
        revoked
    }
}

/// Leader election (etcd v3 only). An election is named like a key (put
/// in canonical form); etcd knows it as `/_elections/` + the name escaped
/// as lock names are, so `etcdctl elect /_elections/NAME` competes in it.
impl Client {
    /// Becomes the leader of `election` with `value` as its proclamation,
    /// waiting while another candidate leads; the candidacy lives on
    /// `lease` (keep it alive: [`Client::lease_keep`]). `timeout` `None`
    /// waits for ever; else, when it runs out, the candidacy is withdrawn
    /// and the error is of kind `TimedOut`. A lease that is gone is a
    /// refusal (`NotFound` or `Refused`).
    pub fn campaign(
        &self,
        election: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        lease: i64,
        timeout: Option<std::time::Duration>,
    ) -> Result<Leadership> {
        let ext = self.extended()?;
        if lease == 0 {
            return Err(Error::bad_argument(
                "a campaign needs a lease (etcd_lease_grant): 0 is none",
            ));
        }
        let name = election_name(&canonical(election.as_ref()));
        ext.campaign(
            &name,
            value.as_ref(),
            lease,
            timeout.filter(|t| !t.is_zero()),
        )
    }

    /// Changes the leader's value without losing the leadership; returns
    /// the write's revision. A refusal once it is no longer the leader.
    pub fn proclaim(&self, leadership: &Leadership, value: impl AsRef<[u8]>) -> Result<i64> {
        self.extended()?.proclaim(leadership, value.as_ref())
    }

    /// Gives the leadership up: the next candidate leads at once. A
    /// refusal when it was already lost.
    pub fn resign(&self, leadership: &Leadership) -> Result<()> {
        self.extended()?.resign(leadership)
    }

    /// Who leads `election` now: the leader's key (`/_elections/...`) and
    /// value. A refusal (kind `Refused`) when nobody leads.
    pub fn election_leader(&self, election: impl AsRef<[u8]>) -> Result<KeyValue> {
        let ext = self.extended()?;
        ext.election_leader(&election_name(&canonical(election.as_ref())))
    }

    /// Waits for the first leadership change of `election` (a new leader
    /// or a new proclamation) at revision >= `from` (`None`: the current
    /// leader, at once if there is one); `TimedOut` after `timeout`. The
    /// answer's `mod_revision` is that change's revision (for a candidate
    /// that took over, the revision at which it came to lead): continue
    /// with `from = mod_revision + 1` to miss and repeat nothing.
    pub fn observe(
        &self,
        election: impl AsRef<[u8]>,
        from: Option<i64>,
        timeout: Option<std::time::Duration>,
    ) -> Result<KeyValue> {
        let ext = self.extended()?;
        ext.observe(
            &election_name(&canonical(election.as_ref())),
            from.filter(|&f| f > 0),
            timeout.filter(|t| !t.is_zero()),
        )
    }
}

/// A key that is to hold a value: canonical, not the root.
fn value_key(key: &[u8]) -> Result<Vec<u8>> {
    let key = canonical(key);
    if is_root(&key) {
        return Err(Error::refused(
            "/ is the root directory: it cannot hold a value",
        ));
    }
    Ok(key)
}

/// A lock lives on a lease (v3) or a key TTL (v2): it needs a ttl.
fn check_lock_ttl(ttl: u32) -> Result<()> {
    if ttl == 0 {
        return Err(Error::bad_argument("lock ttl must be at least 1 second"));
    }
    Ok(())
}

/// A lock index is text (a lease ID in hex on v3, a decimal index on v2);
/// the protocol checks its form.
fn lock_index(index: &[u8]) -> Result<&str> {
    std::str::from_utf8(index).map_err(|_| Error::refused("lock index is not a lease ID"))
}
