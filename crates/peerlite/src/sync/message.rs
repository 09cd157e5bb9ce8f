//! The sync protocol's messages, versioned from the first one: every message is a
//! `SyncMessage::V1(..)`, so a later version can be added beside it and negotiated.
//!
//! A session carries up to two streams: the initiator's changes to the responder (push) and
//! the responder's to the initiator (pull). A stream sends `Batch`es of row changes in the
//! sender's sequence order, one table after another; the receiver applies each batch in one
//! transaction, together with its watermark (the last sequence number it has of that sender),
//! and answers `Ack`. An `Ack` below what was sent means "resend from here" — that is how lost,
//! duplicated and reordered messages are healed. `Finish` ends a stream; `Done` answers it with
//! the receiver's totals.
//!
//! ```
//! use peerlite::sync::{Finish, MessageV1, SyncMessage};
//!
//! let msg = SyncMessage::V1(MessageV1::Finish(Finish { session: 7 }));
//! let bytes = msg.encode();
//! assert_eq!(SyncMessage::decode(&bytes)?, msg);
//! assert_eq!(SyncMessage::decode(&[0xff, 0x00]).unwrap_err().code(), 17040004);
//! # Ok::<(), peerlite::Error>(())
//! ```

use serde::{Deserialize, Serialize};

use crate::changes::DistributedTableType;
use crate::error::{Error, Result};
use crate::store::RdbPredicates;
use crate::value::Value;

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// Which way changes flow (ArkData's `SyncMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SyncMode {
    /// This device's changes to the peer.
    Push,
    /// The peer's changes to this device.
    Pull,
    /// Both.
    PushPull,
}

impl SyncMode {
    /// True when the initiator sends.
    pub fn pushes(self) -> bool {
        matches!(self, SyncMode::Push | SyncMode::PushPull)
    }

    /// True when the responder sends.
    pub fn pulls(self) -> bool {
        matches!(self, SyncMode::Pull | SyncMode::PushPull)
    }
}

/// Every message, by protocol version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SyncMessage {
    /// Protocol version 1.
    V1(MessageV1),
}

/// The messages of protocol version 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MessageV1 {
    /// Opens a session.
    Hello(Hello),
    /// Accepts it.
    Welcome(Welcome),
    /// Row changes of one table.
    Batch(Batch),
    /// What the receiver now has.
    Ack(Ack),
    /// The sender has nothing more.
    Finish(Finish),
    /// The receiver's answer to `Finish`.
    Done(Done),
    /// The session cannot go on.
    Abort(Abort),
}

/// A distributed table as one side sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSummary {
    /// The table.
    pub name: String,
    /// Its mode.
    pub mode: DistributedTableType,
    /// Its synced columns.
    pub columns: Vec<String>,
    /// The sync schema version (single-version mode).
    pub schema_version: i64,
}

/// How far a receiver has got with one sender's table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watermark {
    /// The table.
    pub table: String,
    /// The predicate sync it belongs to (0: the whole table).
    pub filter: u64,
    /// The sender's epoch it counts in (another epoch means: start over).
    pub epoch: String,
    /// The last sequence number received and applied.
    pub seq: u64,
}

/// Opens a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// The session's id.
    pub session: u64,
    /// The initiator's protocol version.
    pub protocol: u32,
    /// The initiator's device id.
    pub device: String,
    /// The logical store name (the same on every device).
    pub store: String,
    /// The initiator's database epoch.
    pub epoch: String,
    /// The initiator's security level (1..=4).
    pub security_level: u8,
    /// Which streams to run.
    pub mode: SyncMode,
    /// The initiator's distributed tables.
    pub tables: Vec<TableSummary>,
    /// A predicate sync: only this table, only the rows these predicates select.
    pub predicates: Option<RdbPredicates>,
    /// When pulling: what the initiator already has from the responder.
    pub pull_from: Vec<Watermark>,
    /// Optional features the initiator understands.
    pub features: Vec<String>,
}

/// Why a table does not sync in this session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// The table.
    pub table: String,
    /// The error code.
    pub code: u32,
    /// Why.
    pub reason: String,
}

/// Accepts a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Welcome {
    /// The session's id.
    pub session: u64,
    /// The responder's device id.
    pub device: String,
    /// The responder's database epoch.
    pub epoch: String,
    /// The responder's security level.
    pub security_level: u8,
    /// The tables both sides sync in this session.
    pub tables: Vec<String>,
    /// When pushing: what the responder already has from the initiator.
    pub push_from: Vec<Watermark>,
    /// Tables that do not sync, and why.
    pub refused: Vec<Refusal>,
}

/// One column's register, travelling with its row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireRegister {
    /// The column's position in the batch's `columns`.
    pub column: u16,
    /// When it was written.
    pub hlc: u64,
    /// Who wrote it (index into the batch's `devices`).
    pub origin: u32,
    /// Its value, for a deleted row (an update that arrived after the delete).
    pub value: Option<Value>,
}

/// One row's full state: existence event, values, newer column registers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowChange {
    /// The row's identity.
    pub ident: Value,
    /// When it was last inserted or deleted.
    pub hlc: u64,
    /// By which device (index into the batch's `devices`).
    pub origin: u32,
    /// True when deleted.
    pub tomb: bool,
    /// The row's values in the batch's column order (empty when deleted).
    pub values: Vec<Value>,
    /// Columns written after the existence event.
    pub regs: Vec<WireRegister>,
}

/// Row changes of one table, in the sender's sequence order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    /// The session's id.
    pub session: u64,
    /// The table.
    pub table: String,
    /// The predicate sync it belongs to (0: the whole table).
    pub filter: u64,
    /// The sequence number the batch continues from.
    pub prev: u64,
    /// The last sequence number it covers.
    pub last: u64,
    /// The column order of `values` and registers.
    pub columns: Vec<String>,
    /// Device ids the rows refer to.
    pub devices: Vec<String>,
    /// The rows.
    pub rows: Vec<RowChange>,
    /// For each of `devices`: the epoch of that device's database which held the writes the
    /// rows attribute to it (empty when not known). A receiver keeps it with the rows, so
    /// that no one sends a device what its current database already holds, and a restored
    /// or re-created one gets back everything an earlier database of it had. Missing entries
    /// mean "not known".
    pub epochs: Vec<String>,
}

/// The receiver's answer to a batch: everything up to `last` is applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// The session's id.
    pub session: u64,
    /// The table.
    pub table: String,
    /// The predicate sync.
    pub filter: u64,
    /// The receiver's watermark after the batch.
    pub last: u64,
}

/// The end of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finish {
    /// The session's id.
    pub session: u64,
}

/// The receiver's totals for a finished stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {
    /// The session's id.
    pub session: u64,
    /// Rows the receiver changed.
    pub applied: u64,
    /// Rows it recorded as conflicts.
    pub conflicts: u64,
}

/// The session cannot go on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Abort {
    /// The session's id.
    pub session: u64,
    /// The error code.
    pub code: u32,
    /// Why.
    pub message: String,
}

impl SyncMessage {
    /// The compact binary form.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).unwrap_or_default()
    }

    /// Parses the binary form.
    ///
    /// # Errors
    /// 17040004 for bytes that are not a message of a known version.
    pub fn decode(bytes: &[u8]) -> Result<SyncMessage> {
        postcard::from_bytes(bytes).map_err(|e| Error::Protocol {
            detail: format!("undecodable message: {e}"),
        })
    }

    /// The session the message belongs to.
    pub fn session(&self) -> u64 {
        let SyncMessage::V1(m) = self;
        match m {
            MessageV1::Hello(h) => h.session,
            MessageV1::Welcome(w) => w.session,
            MessageV1::Batch(b) => b.session,
            MessageV1::Ack(a) => a.session,
            MessageV1::Finish(f) => f.session,
            MessageV1::Done(d) => d.session,
            MessageV1::Abort(a) => a.session,
        }
    }
}

/// A stable number for a predicate sync's filter (0 for none), for its watermark.
pub fn filter_id(predicates: Option<&RdbPredicates>) -> u64 {
    match predicates {
        None => 0,
        Some(p) => {
            let bytes = postcard::to_stdvec(p).unwrap_or_default();
            let hash = blake3::hash(&bytes);
            u64::from_le_bytes(hash.as_bytes()[..8].try_into().unwrap_or([1; 8])).max(1)
        }
    }
}
