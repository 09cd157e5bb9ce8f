//! What a node starts: syncs with trusted devices and queries of them, each over the
//! device's live connection or one dialled for it, with a status per device whatever
//! happens (unreachable, refused, timed out, …) rather than an error for the whole call.

use std::sync::Arc;
use std::time::Duration;

use peerlite::sync::{DeviceResult, QueryRows, SyncMode, SyncStatus};
use peerlite::{DeviceFilter, RdbPredicates};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::link::Command;
use super::{Inner, Link, Node, lock};
use crate::DeviceId;
use crate::error::{Error, Result};

/// The status of a device that could not be synced because of `e` (the network's code kept):
/// unreachable for what retrying may cure, untrusted for a refusal in the handshake.
pub fn status_of(e: &Error) -> SyncStatus {
    let code = e.code();
    match e {
        Error::Unreachable { .. }
        | Error::NoAddress { .. }
        | Error::HandshakeTimeout { .. }
        | Error::IdleTimeout { .. }
        | Error::Closed { .. } => SyncStatus::Unreachable(code),
        Error::UntrustedPeer { .. }
        | Error::RefusedByPeer { .. }
        | Error::WrongPeer { .. }
        | Error::NotTrusted { .. } => SyncStatus::Untrusted(code),
        _ => SyncStatus::from_code(code),
    }
}

/// `status` as [`status_of`] would give it for its code: a network code that arrived in a
/// peer's `Abort` (the core knows it only as "failed") reads as unreachable or untrusted.
pub(crate) fn status_of_code(status: SyncStatus) -> SyncStatus {
    match status {
        SyncStatus::Failed(code) => match code {
            17060004 | 17060007 | 17060008 | 17060009 | 17060021 => SyncStatus::Unreachable(code),
            17060001 | 17060002 | 17060015 | 17060019 => SyncStatus::Untrusted(code),
            _ => status,
        },
        other => other,
    }
}

fn result(device: DeviceId, status: SyncStatus, message: String) -> DeviceResult {
    DeviceResult {
        device: device.to_string(),
        status,
        message: Some(message),
        ..Default::default()
    }
}

impl Node {
    /// Syncs `store` with every trusted device — or, when `predicates` name devices
    /// (`in_devices`), with those — concurrently, and returns each device's result in the
    /// order of the trust store (or of `in_devices`). The predicates' table and conditions
    /// limit the rows (a filtered sync keeps its own watermark). A device that cannot be
    /// reached, refuses this one, or does not finish within `timeout` has that as its status.
    ///
    /// # Errors
    /// [`Error::NotServed`]; [`Error::InvalidDeviceId`] for a name in `in_devices` that is not
    /// a device id; [`Error::ShuttingDown`].
    pub async fn sync(
        &self,
        store: &str,
        mode: SyncMode,
        predicates: Option<&RdbPredicates>,
        timeout: Duration,
    ) -> Result<Vec<(DeviceId, DeviceResult)>> {
        self.ready_to_sync(store)?;
        let targets: Vec<DeviceId> = match predicates.map(RdbPredicates::devices) {
            Some(DeviceFilter::Devices(named)) => named
                .iter()
                .map(|d| DeviceId::parse(d).map_err(Error::from))
                .collect::<Result<_>>()?,
            _ => self
                .inner
                .endpoint
                .trust()
                .devices()
                .into_iter()
                .map(|d| d.id)
                .collect(),
        };
        self.sync_devices(&targets, store, mode, predicates, timeout)
            .await
    }

    /// A sync of `store` may begin: it is served and the node is not stopping.
    fn ready_to_sync(&self, store: &str) -> Result<()> {
        if self.inner.served(store).is_none() {
            return Err(Error::NotServed {
                store: store.to_owned(),
            });
        }
        if self.inner.stopping() {
            return Err(Error::ShuttingDown);
        }
        Ok(())
    }

    /// [`Node::sync`] with `targets` (whatever the predicates' `in_devices` say; a device
    /// they leave out fails with 14800001): one result per target, in their order; a
    /// target named twice is synced once and reported once (one line per device).
    ///
    /// # Errors
    /// [`Error::NotServed`]; [`Error::ShuttingDown`].
    pub async fn sync_devices(
        &self,
        targets: &[DeviceId],
        store: &str,
        mode: SyncMode,
        predicates: Option<&RdbPredicates>,
        timeout: Duration,
    ) -> Result<Vec<(DeviceId, DeviceResult)>> {
        self.ready_to_sync(store)?;
        let mut distinct: Vec<DeviceId> = Vec::with_capacity(targets.len());
        for device in targets {
            if !distinct.contains(device) {
                distinct.push(*device);
            }
        }
        let targets = distinct.as_slice();
        let mut running = tokio::task::JoinSet::new();
        for (i, device) in targets.iter().enumerate() {
            let node = self.clone();
            let store = store.to_owned();
            let predicates = predicates.cloned();
            let device = *device;
            running.spawn(async move {
                let r = node
                    .sync_with(device, &store, mode, predicates.as_ref(), timeout)
                    .await;
                (i, r)
            });
        }
        let mut results: Vec<Option<DeviceResult>> = vec![None; targets.len()];
        while let Some(done) = running.join_next().await {
            if let Ok((i, r)) = done {
                results[i] = Some(r);
            }
        }
        Ok(targets
            .iter()
            .copied()
            .zip(results)
            .map(|(device, r)| {
                let r = r.unwrap_or_else(|| {
                    let e = Error::ShuttingDown;
                    result(device, SyncStatus::Failed(e.code()), e.to_string())
                });
                (device, r)
            })
            .collect())
    }

    /// Syncs `store` with one device within `timeout`; the result says how it went (see
    /// [`Node::sync`]).
    pub async fn sync_with(
        &self,
        device: DeviceId,
        store: &str,
        mode: SyncMode,
        predicates: Option<&RdbPredicates>,
        timeout: Duration,
    ) -> DeviceResult {
        // A timeout too long to add to the clock (a script's u64::MAX) means: a year.
        let deadline = deadline_after(timeout);
        let (reply, answer) = oneshot::channel();
        let command = Command::Start {
            store: store.to_owned(),
            mode,
            predicates: predicates.cloned(),
            reply,
        };
        if let Err(e) = self.inner.send(device, command, deadline).await {
            return result(device, status_of(&e), e.to_string());
        }
        // Dropping `answer` at the deadline cancels the session at the connection's next tick.
        match tokio::time::timeout_at(deadline, answer).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => {
                let e = Error::Closed {
                    reason: "the connection closed before the session ended".into(),
                };
                result(device, status_of(&e), e.to_string())
            }
            Err(_) => result(
                device,
                SyncStatus::TimedOut,
                format!("no result within {timeout:?}"),
            ),
        }
    }

    /// Runs a query on `device`'s copy of a distributed table of `store` (ArkData's
    /// `remoteQuery`): the predicates' table and conditions, `columns` in order (every synced
    /// column when empty). The peer validates it and answers at most 4 MiB of rows.
    ///
    /// # Errors
    /// The network's errors reaching the device; [`Error::Store`] with the peer's code when it
    /// refused: 17040001 not distributed there, 17040006 this device's level is too low for
    /// the data, 17040010 the result is over the cap, 14800001 an unknown or unsynced column;
    /// [`Error::HandshakeTimeout`] when no answer came within `timeout`.
    pub async fn remote_query(
        &self,
        device: DeviceId,
        store: &str,
        predicates: &RdbPredicates,
        columns: &[&str],
        timeout: Duration,
    ) -> Result<QueryRows> {
        // A timeout too long to add to the clock (a script's u64::MAX) means: a year.
        let deadline = deadline_after(timeout);
        let (reply, answer) = oneshot::channel();
        let command = Command::Query {
            store: store.to_owned(),
            predicates: predicates.clone(),
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            reply,
        };
        self.inner.send(device, command, deadline).await?;
        match tokio::time::timeout_at(deadline, answer).await {
            Ok(Ok(rows)) => rows,
            Ok(Err(_)) => Err(Error::Closed {
                reason: "the connection closed before the answer came".into(),
            }),
            Err(_) => Err(Error::IdleTimeout { timeout }),
        }
    }
}

impl Inner {
    /// Hands `command` to the connection with `device`, dialling it when none is open.
    async fn send(
        self: &Arc<Self>,
        device: DeviceId,
        command: Command,
        deadline: Instant,
    ) -> Result<()> {
        let started = Instant::now();
        let link = match tokio::time::timeout_at(deadline, self.link_to(device)).await {
            Ok(link) => link?,
            Err(_) => {
                // The time it was given, not what is left of it (which is nothing).
                return Err(Error::HandshakeTimeout {
                    timeout: deadline.saturating_duration_since(started),
                });
            }
        };
        match tokio::time::timeout_at(deadline, link.tx.send(command)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Error::Closed {
                reason: "the connection closed".into(),
            }),
            Err(_) => Err(Error::Closed {
                reason: "the connection is too busy".into(),
            }),
        }
    }

    /// The live connection with `device`, or a new one: addresses discovery learned first,
    /// then the trust store's, in order, until one answers as that device.
    pub(super) async fn link_to(self: &Arc<Self>, device: DeviceId) -> Result<Link> {
        if let Some(link) = lock(&self.links)
            .get(&device)
            .filter(|l| !l.tx.is_closed())
            .cloned()
        {
            return Ok(link);
        }
        if self.stopping() {
            return Err(Error::ShuttingDown);
        }
        let trusted = self
            .endpoint
            .trust()
            .get(&device)
            .ok_or(Error::NotTrusted { id: device })?;
        let mut addrs: Vec<String> = self
            .learned
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&device)
            .cloned()
            .unwrap_or_default();
        for a in trusted.addrs {
            if !addrs.contains(&a) {
                addrs.push(a);
            }
        }
        let mut last = Error::NoAddress { id: device };
        for addr in &addrs {
            match self.endpoint.connect(addr, &device).await {
                Ok(conn) => return Ok(Inner::attach(self, conn)),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

/// `timeout` from now, a year at most: `Instant + Duration` panics past the clock's range.
fn deadline_after(timeout: std::time::Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .or_else(|| now.checked_add(std::time::Duration::from_secs(86_400 * 365)))
        .unwrap_or(now)
}
