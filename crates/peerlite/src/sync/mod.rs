//! The sync protocol core — no I/O: messages in, messages out (seed 002).
//!
//! [`Session::start`] opens a session with a peer and [`Session::accept`] answers one; each
//! [`Session::handle`]s the other's messages. A [`Dispatcher`] drives the sessions of one
//! device — the network node over TLS, the deterministic simulation in peerlite-testkit and
//! [`sync_in_memory`] all use it — and whoever moves the messages only delivers bytes and
//! reports silences. A session reaches its store through the [`SyncStore`] surface, and knows
//! its peer as the channel proved it ([`Peer`]).
//!
//! A filtered sync (predicates on one table) keeps a watermark of its own and sends the rows
//! the filter selects and every delete. From its second run it also sends the last state of a
//! row that no longer matches but whose filtered columns were written since the row's insert:
//! a row that left the filter's set is updated on the receiver — where the filter no longer
//! selects it either — instead of keeping values it no longer has. Rows that never matched
//! stay home. The copy is thus never stale for a row it got through the filter; querying it
//! with the same filter gives exactly the matching rows.
//!
//! The handshake compares each table's synced columns, their declared types (by SQLite
//! affinity) and identity: a table that differs is refused with 17040005 naming the column
//! and both types. A remote row the receiver still cannot store (a peer of an earlier build
//! declares no types) is recorded as a conflict, like a row breaking a local constraint.
//!
//! ```
//! use peerlite::changes::{DistributedConfig, DistributedType};
//! use peerlite::sync::{sync_in_memory, SyncMode};
//! use peerlite::{bucket, RdbStore, StoreConfig};
//!
//! let dir = tempfile::tempdir()?;
//! let open = |name: &str| -> peerlite::Result<RdbStore> {
//!     let store = RdbStore::open(StoreConfig::new(dir.path().join(name).join("notes.db")).device_id(name))?;
//!     store.execute("CREATE TABLE IF NOT EXISTS note (id INTEGER PRIMARY KEY, text TEXT)", &[])?;
//!     store.set_distributed_tables(&["note"], DistributedType::Device, &DistributedConfig::default())?;
//!     Ok(store)
//! };
//! std::fs::create_dir_all(dir.path().join("phone"))?;
//! std::fs::create_dir_all(dir.path().join("laptop"))?;
//! let (phone, laptop) = (open("phone")?, open("laptop")?);
//! phone.insert("note", &bucket! { "text" => "buy milk" })?;
//! let (on_phone, on_laptop) = sync_in_memory(&phone, &laptop, SyncMode::Push, None)?;
//! assert_eq!((on_phone.status.code(), on_phone.sent, on_laptop.received), (0, 1, 1));
//! let table = laptop.obtain_distributed_table_name("phone", "note")?;
//! assert_eq!(laptop.query_sql(&format!("SELECT count(*) FROM \"{table}\""), &[])?.rows()?.next().map(|r| r[0].clone()), Some(1.into()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod compact;
mod conflicts;
mod dispatch;
mod entries;
pub(crate) mod extract;
pub(crate) mod heard;
pub(crate) mod merge;
mod message;
mod overview;
mod peer;
mod peer_text;
mod query;
mod session;
mod stamps;
mod status;
mod surface;
mod types;
mod unsent;
pub(crate) mod watermark;
mod wire;

use std::collections::VecDeque;
use std::sync::Arc;

pub use compact::{CompactBatch, CompactRow, MAX_COMPACT_REGISTERS, RegisterGroup};
pub use conflicts::{Conflict, Resolution};
pub use dispatch::{DEFAULT_LINGER, DEFAULT_MAX_SILENCES, Dispatcher, Finished};
pub use message::{
    Abort, Ack, Batch, Done, FEATURE_COMPACT_ROWS, FEATURE_NOTICES, FEATURE_POPULATED,
    FEATURE_RELAYED, FEATURE_STAMPS, FEATURE_ZSTD, FEATURES, Finish, Hello, MAX_UNPACKED,
    MessageV1, Notice, PROTOCOL_VERSION, Packed, Query, QueryReply, Refusal, RowChange,
    SyncMessage, SyncMode, TableSummary, Watermark, Welcome, WireRegister,
};
pub use overview::{PeerOverview, SyncOverview};
pub use peer::{DeviceLevel, Peer};
pub use query::{MAX_QUERY_BYTES, QueryRows, answer_query};
pub use session::{DEFAULT_BATCH_ROWS, DeviceResult, SECURITY_REFUSED, Session};
pub use stamps::Stamp;
pub use status::SyncStatus;
pub use surface::{Applied, BatchRequest, Relayed, SyncStore};
pub use types::TableTypes;
pub use unsent::{MAX_ROW_BYTES, Unsendable};
pub use wire::{WireClause, WireFilter, WireOp, filter_id};

use crate::StoreKind;
use crate::error::Result;
use crate::store::layers::Layer;
use crate::store::observer::{DEFAULT_MAX_OBSERVERS, ObserverRegistry};
use crate::store::rdb::Inner;
use crate::store::{ObserverId, RdbPredicates, RdbStore, SubscribeType};
use crate::value::Value;

/// What arrived from a peer in one applied batch.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteChange {
    /// The peer the batch came from.
    pub device: String,
    /// (table, identity) of every row that changed here (in a device table for device
    /// collaboration).
    pub keys: Vec<(String, Value)>,
    /// What happened to each of `keys`, in the same order.
    pub kinds: Vec<ChangeKind>,
}

/// What a remote change did to one row.
#[derive(Debug, Clone, PartialEq)]
pub enum ChangeKind {
    /// The row did not exist here before.
    Inserted,
    /// Some of its columns took the peer's values.
    Updated,
    /// The row was deleted; its synced columns' values before, in the table's order.
    Deleted {
        /// The values it had.
        before: Vec<Value>,
    },
}

impl RdbStore {
    /// Subscribes to the details of changes that arrive from other devices: the sending
    /// device and the rows (table, identity) that changed, after each applied batch.
    pub fn on_remote_change(
        &self,
        observer: impl Fn(&RemoteChange) + Send + Sync + 'static,
    ) -> Result<ObserverId> {
        self.inner.ensure_open()?;
        self.inner
            .remote_changes()?
            .add(SubscribeType::Remote, Arc::new(observer))
    }

    /// Unsubscribes a remote-change observer (all of them with `None`).
    pub fn off_remote_change(&self, id: Option<ObserverId>) -> usize {
        self.inner
            .remote_changes()
            .map_or(0, |r| r.remove(SubscribeType::Remote, id))
    }
}

/// The observers of remote changes, attached to every store as it opens (`store::layers`).
pub(crate) fn remote_observers() -> ObserverRegistry<RemoteChange> {
    ObserverRegistry::new(StoreKind::Relational, DEFAULT_MAX_OBSERVERS)
}

impl Layer for ObserverRegistry<RemoteChange> {}

impl Inner {
    /// The observers of remote changes.
    ///
    /// # Errors
    /// 14800001 for a store opened without them (every open attaches them).
    pub(crate) fn remote_changes(&self) -> Result<&ObserverRegistry<RemoteChange>> {
        self.layer().ok_or_else(|| {
            crate::Error::invalid(
                StoreKind::Relational,
                "this store was opened without remote-change observers",
            )
        })
    }
}

/// Runs one session between two stores in this process, lossless and in order — through the
/// wire encoding and two [`Dispatcher`]s, so it exercises exactly what a network carries. For
/// tests, benchmarks and tools; the result is each side's view. Each store sees the other as
/// a device of the level matching that store's data label (S_k → SL_k).
pub fn sync_in_memory(
    initiator: &RdbStore,
    responder: &RdbStore,
    mode: SyncMode,
    predicates: Option<&RdbPredicates>,
) -> Result<(DeviceResult, DeviceResult)> {
    let as_initiator = Peer::new(
        initiator.device_id(),
        DeviceLevel::matching(initiator.config().level()),
    );
    let as_responder = Peer::new(
        responder.device_id(),
        DeviceLevel::matching(responder.config().level()),
    );
    let mut a = Dispatcher::new();
    let mut b = Dispatcher::new();
    let hello = a.start(initiator, &as_responder, mode, predicates)?;
    let mut queue: VecDeque<(bool, SyncMessage)> = VecDeque::from([(true, hello)]);
    let (mut mine, mut theirs) = (None, None);
    while let Some((to_responder, msg)) = queue.pop_front() {
        let msg = SyncMessage::decode(&msg.encode()?)?;
        let out = if to_responder {
            b.deliver(&as_initiator, &msg, |_| Some(responder.into()))
        } else {
            a.deliver(&as_responder, &msg, |_| None)
        };
        queue.extend(out.into_iter().map(|m| (!to_responder, m)));
        mine = mine.or_else(|| a.take_finished().pop());
        theirs = theirs.or_else(|| b.take_finished().pop());
        if mine.is_some() && theirs.is_some() {
            break;
        }
    }
    let result = |f: Option<Finished>| f.map(|f| f.result).unwrap_or_default();
    Ok((result(mine), result(theirs)))
}
