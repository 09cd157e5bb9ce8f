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
//! Messages are wire types of their own: a filtered sync carries a [`WireFilter`], never the
//! query builder, so no internal type can change these bytes by accident (golden tests pin
//! every message). `Hello.features` lists optional features; the `Welcome` answers with the
//! ones both sides have, and only those are used (today: `zstd`, batches sent compressed as
//! [`Packed`]; `compact-rows`, batches sent as [`CompactBatch`]es, whose registers travel
//! grouped by writer with a column bitmask; `watermark-stamps`, watermarks checked against
//! the sender's history, see `stamps`; `stream-notices`, a stream that left rows out says so
//! in a [`Notice`] before its `Finish`). Data that must not change these bytes travels as
//! prefixed entries of `features` too (`types:`, `stamps:`), which earlier builds ignore.
//!
//! ```
//! use peerlite::sync::{Finish, MessageV1, SyncMessage};
//!
//! let msg = SyncMessage::V1(MessageV1::Finish(Finish { session: 7 }));
//! let bytes = msg.encode()?;
//! assert_eq!(SyncMessage::decode(&bytes)?, msg);
//! assert_eq!(SyncMessage::decode(&[0xff, 0x00]).unwrap_err().code(), 17040004);
//! # Ok::<(), peerlite::Error>(())
//! ```

use serde::{Deserialize, Serialize};

use super::compact::CompactBatch;
use super::wire::WireFilter;
use crate::changes::DistributedTableType;
use crate::error::{Error, Result};
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
    /// A `Batch`, compressed (only when both sides listed the `zstd` feature).
    Packed(Packed),
    /// A remote query: rows of one of the peer's distributed tables, run and validated there.
    Query(Query),
    /// The answer to a `Query`: the rows, or why there are none.
    QueryReply(QueryReply),
    /// A `Batch` in the compact row form (only when both sides listed `compact-rows`).
    /// Appended last, so the bytes of every earlier message stay as they were.
    Compact(CompactBatch),
    /// What the sender's stream left out, sent before its `Finish` (only when both sides
    /// listed `stream-notices`): rows too large to travel (17040013), so the receiver's result
    /// says so as the sender's does.
    Notice(Notice),
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
    /// The label (1..=4) of the initiator's store. What may flow to a device is decided by
    /// the device level each side recorded for the other when they were paired; besides,
    /// data enters only a store labelled as high as the data (so a lower-labelled copy of the
    /// store never holds it, nor relays it further).
    pub security_level: u8,
    /// Which streams to run.
    pub mode: SyncMode,
    /// The initiator's distributed tables.
    pub tables: Vec<TableSummary>,
    /// A filtered sync: only this table, only the rows the filter selects.
    pub predicates: Option<WireFilter>,
    /// What the initiator already has from the responder: where a pull starts, and (on a
    /// push too) what the responder checks against its purges before it takes rows.
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
    /// The label of the responder's store (as in `Hello`).
    pub security_level: u8,
    /// The tables both sides sync in this session.
    pub tables: Vec<String>,
    /// What the responder already has from the initiator: where a push starts, and (on a
    /// pull too) what the initiator checks against its purges before it takes rows.
    pub push_from: Vec<Watermark>,
    /// Tables that do not sync, and why.
    pub refused: Vec<Refusal>,
    /// The optional features of the `Hello` this side has too: the ones the session uses.
    pub features: Vec<String>,
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

/// A status the sender's stream ends with, for the receiver's result (see
/// [`MessageV1::Notice`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// The session's id.
    pub session: u64,
    /// The status code (17040013: rows left out, too large to travel).
    pub code: u32,
    /// What was left out.
    pub message: String,
}

/// A compressed `Batch`: zstd of its encoding (of the `Compact` message's, when the session
/// agreed to compact rows as well).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Packed {
    /// The session's id.
    pub session: u64,
    /// zstd of the `Batch` (or `Compact`) message's encoding.
    pub bytes: Vec<u8>,
}

/// A remote query (ArkData's `remoteQuery`): the peer runs it on its own copy of a distributed
/// table and answers with a [`QueryReply`]. Only what selects rows travels (the filter's
/// clauses) and the columns wanted; names are checked against the peer's schema there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Query {
    /// The request's id (its `QueryReply` carries it back).
    pub session: u64,
    /// The logical store name (as in `Hello`).
    pub store: String,
    /// The table and the conditions on its rows (no clause: every row).
    pub filter: WireFilter,
    /// The columns wanted, in order (empty: every synced column).
    pub columns: Vec<String>,
}

/// The answer to a [`Query`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryReply {
    /// The request's id.
    pub session: u64,
    /// 0, or the error code of why the query was refused or failed.
    pub code: u32,
    /// Why, when `code` is not 0; on success, the label of the rows (`label:S3`, see
    /// [`QueryReply::label`]).
    pub message: String,
    /// The result's column names.
    pub columns: Vec<String>,
    /// The rows, each in `columns` order.
    pub rows: Vec<Vec<Value>>,
}

/// The feature that sends batches compressed.
pub const FEATURE_ZSTD: &str = "zstd";
/// The feature that sends batches in the compact row form ([`CompactBatch`]).
pub const FEATURE_COMPACT_ROWS: &str = "compact-rows";
/// The feature that keeps a stamp with each watermark (the latest write time received up to
/// it) and sends it in the handshake, so a sender put back from a file copy that re-issued
/// sequence numbers is caught: a `Welcome` answering a `Hello` that lists it carries the
/// stamps of its push watermarks.
pub const FEATURE_STAMPS: &str = "watermark-stamps";
/// The feature that ends a stream that left rows out with a [`Notice`], so the receiver hears
/// of them.
pub const FEATURE_NOTICES: &str = "stream-notices";
/// The feature by which a receiver names, with a `populated:` entry, the single-version tables
/// where it holds rows but nothing of the sender: a first stream to it carries no tombstone of
/// deletes the sender purged, and the rows it got from others may be among them, so the
/// sender refuses it (17040011, a client reset) instead of leaving them.
pub const FEATURE_POPULATED: &str = "populated-tables";
/// The feature by which a sender tells, with a `relayed:` entry, how far it has received the
/// other devices' changes: a receiver that took its whole stream holds them too, and counts
/// them as received (a reset's seed, pulled from one peer, then knows of the others what that
/// peer knew, instead of nothing).
pub const FEATURE_RELAYED: &str = "relayed-watermarks";
/// The optional features this build understands.
pub const FEATURES: [&str; 6] = [
    FEATURE_ZSTD,
    FEATURE_COMPACT_ROWS,
    FEATURE_STAMPS,
    FEATURE_NOTICES,
    FEATURE_POPULATED,
    FEATURE_RELAYED,
];
/// The largest batch a `Packed` message may unpack to: a bound set before decompressing, so
/// a small message cannot make the receiver allocate without limit.
pub const MAX_UNPACKED: usize = 64 * 1024 * 1024;

impl SyncMessage {
    /// The compact binary form.
    ///
    /// # Errors
    /// 17040004 when a value cannot be encoded (postcard refuses nothing peerlite sends, but
    /// the error is reported, never swallowed).
    pub fn encode(&self) -> Result<Vec<u8>> {
        postcard::to_stdvec(self).map_err(|e| Error::Protocol {
            detail: format!("unencodable message: {e}"),
        })
    }

    /// The `Batch` (or `Compact`) compressed into a `Packed` message (other messages are
    /// returned as they are).
    pub fn pack(self, level: i32) -> Result<SyncMessage> {
        let session = match &self {
            SyncMessage::V1(MessageV1::Batch(b)) => b.session,
            SyncMessage::V1(MessageV1::Compact(c)) => c.session,
            _ => return Ok(self),
        };
        let plain = self.encode()?;
        let bytes = zstd::bulk::compress(&plain, level).map_err(|e| Error::Protocol {
            detail: format!("cannot compress a batch: {e}"),
        })?;
        Ok(SyncMessage::V1(MessageV1::Packed(Packed {
            session,
            bytes,
        })))
    }

    /// The `Batch` (or `Compact`) inside a `Packed` message (other messages are returned as
    /// they are).
    ///
    /// # Errors
    /// 17040004 when it does not unpack within [`MAX_UNPACKED`] bytes to a `Batch` or a
    /// `Compact` of the same session.
    pub fn unpack(self) -> Result<SyncMessage> {
        let SyncMessage::V1(MessageV1::Packed(p)) = &self else {
            return Ok(self);
        };
        let plain =
            zstd::bulk::decompress(&p.bytes, MAX_UNPACKED).map_err(|e| Error::Protocol {
                detail: format!("a packed batch does not unpack: {e}"),
            })?;
        match SyncMessage::decode(&plain)? {
            SyncMessage::V1(MessageV1::Batch(b)) if b.session == p.session => {
                Ok(SyncMessage::V1(MessageV1::Batch(b)))
            }
            SyncMessage::V1(MessageV1::Compact(c)) if c.session == p.session => {
                Ok(SyncMessage::V1(MessageV1::Compact(c)))
            }
            _ => Err(Error::Protocol {
                detail: "a packed message holds something other than a batch of its session".into(),
            }),
        }
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
            MessageV1::Packed(p) => p.session,
            MessageV1::Query(q) => q.session,
            MessageV1::QueryReply(r) => r.session,
            MessageV1::Compact(c) => c.session,
            MessageV1::Notice(n) => n.session,
        }
    }
}
