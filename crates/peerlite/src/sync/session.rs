//! One sync session with one peer, as a state machine without I/O: it takes messages and
//! returns the messages to send. A driver (the [`Dispatcher`](super::Dispatcher) of the network
//! node, the simulation or [`sync_in_memory`](super::sync_in_memory)) moves them and asks for a
//! retransmission when nothing arrives for a while.
//!
//! The sender of a stream keeps one batch in flight; the receiver answers every batch with
//! its watermark. Lost, duplicated or reordered messages therefore only ever cause a resend
//! from the receiver's watermark, and applying a row state twice changes nothing.
//!
//! The peer is who the channel proved ([`Peer`]): a `Hello` that claims another device ends
//! the session, and what may be sent is decided by the level this device recorded for the
//! peer, never by one the peer claims. A fault — the peer's or this device's — ends the
//! session with an `Abort` carrying the status code, so both sides know why.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::compact::CompactBatch;
use super::entries;
use super::message::{
    Abort, Ack, Batch, Done, FEATURE_COMPACT_ROWS, FEATURE_NOTICES, FEATURE_POPULATED,
    FEATURE_RELAYED, FEATURE_STAMPS, FEATURE_ZSTD, FEATURES, Finish, Hello, MessageV1,
    PROTOCOL_VERSION, Refusal, SyncMessage, SyncMode, TableSummary, Watermark, Welcome,
};
use super::peer::Peer;
use super::stamps::Stamp;
use super::status::SyncStatus;
use super::surface::{BatchRequest, SyncStore};
use super::wire::{WireFilter, filter_id};
use crate::error::{Error, Result, StoreKind};
use crate::store::{DeviceFilter, RdbPredicates, SecurityLevel};

/// Rows per batch.
pub const DEFAULT_BATCH_ROWS: usize = 2000;

/// The status code of a device whose security level is too low for the data.
pub const SECURITY_REFUSED: u32 = 17040006;

/// zstd level for packed batches: fast, and most of the gain.
const ZSTD_LEVEL: i32 = 3;

/// The outcome of a session for one device (ArkData's `[device, status]`, with totals).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceResult {
    /// The peer.
    pub device: String,
    /// How it went.
    pub status: SyncStatus,
    /// What went wrong, when something did.
    pub message: Option<String>,
    /// Rows sent.
    pub sent: u64,
    /// Rows received that changed something here.
    pub received: u64,
    /// Rows received that broke a local constraint and were recorded as conflicts.
    pub conflicts: u64,
    /// Rows this side sent that the peer recorded as conflicts (from its `Done`).
    pub peer_conflicts: u64,
}

impl DeviceResult {
    /// The failure as an error (`None` on success).
    pub fn error(&self) -> Option<Error> {
        let detail = self
            .message
            .clone()
            .unwrap_or_else(|| self.status.to_string());
        match self.status {
            SyncStatus::Ok => None,
            SyncStatus::Protocol => Some(Error::Protocol { detail }),
            SyncStatus::Incompatible | SyncStatus::IdentityMismatch => {
                Some(Error::IncompatiblePeer {
                    device: self.device.clone(),
                    detail,
                })
            }
            _ => Some(Error::SyncFailed {
                device: self.device.clone(),
                code: self.status.code(),
                detail,
            }),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    AwaitWelcome,
    Running,
    Done,
    Failed,
}

#[derive(Debug, Default)]
struct Outgoing {
    queue: VecDeque<(String, u64)>,
    /// Each table's purged sequence when the stream began: a purge while it runs removes
    /// tombstones it may not have sent yet.
    purged_at_start: HashMap<String, u64>,
    inflight: Option<Batch>,
    finish_sent: bool,
    done: bool,
}

#[derive(Debug, Default)]
struct Incoming {
    finished: bool,
    /// The tables whose stream starts from nothing (this store held no watermark of the
    /// sender in its epoch, and no row): only after such a stream does this store hold
    /// everything the sender held and nothing else, and may count what the sender had
    /// received of others as received.
    from_scratch: Vec<String>,
}

/// A session with one peer.
#[derive(Debug)]
pub struct Session {
    store: Arc<dyn SyncStore>,
    id: u64,
    peer: Peer,
    peer_epoch: String,
    filter: Option<WireFilter>,
    filter_id: u64,
    tables: Vec<String>,
    /// Per table, how far the peer had heard of this store's changes when its stream began
    /// (at least what was purged then).
    sender_knows: HashMap<String, u64>,
    /// The single-version tables where the peer holds rows but nothing of this store
    /// ([`FEATURE_POPULATED`]).
    peer_populated: Vec<String>,
    /// How far the peer had received other devices' changes ([`FEATURE_RELAYED`]).
    peer_relayed: Vec<super::Relayed>,
    out: Option<Outgoing>,
    inc: Option<Incoming>,
    phase: Phase,
    result: DeviceResult,
    batch_rows: usize,
    /// Batches travel compressed (both sides listed `zstd`).
    packed: bool,
    /// Batches travel in the compact row form (both sides listed `compact-rows`).
    compact: bool,
    /// A stream that left rows out says so before its `Finish` (both listed `stream-notices`).
    notices: bool,
    /// That `Notice`, repeated with the `Finish` it precedes.
    notice: Option<SyncMessage>,
    hello: Option<SyncMessage>,
    welcome: Option<SyncMessage>,
    /// The `Abort` this side sent, repeated to a peer that did not hear it.
    abort: Option<SyncMessage>,
    /// Why batches from the peer are refused: its data is labelled above this store.
    refuse_incoming: Option<String>,
}

/// Data labelled `data` may enter a store labelled `store` only when the store is labelled as
/// high: otherwise a lower-labelled copy of the store would hold it, and relay it to devices
/// the data's own store would refuse. `None` when it may; the reason when not.
fn label_refusal(data: u8, store: SecurityLevel, whose: &str) -> Option<String> {
    (data > store.as_u8()).then(|| {
        format!("the data is S{data}; {whose} copy of the store is labelled {store}, below it")
    })
}

/// Why two summaries of one table do not sync: the columns each side syncs alone (or in
/// another order), else the schema versions.
fn columns_differ(mine: &TableSummary, theirs: &TableSummary, me: &str, them: &str) -> String {
    let only = |a: &TableSummary, b: &TableSummary| -> Vec<String> {
        a.columns
            .iter()
            .filter(|c| !b.columns.contains(c))
            .map(|c| format!("{}.{c}", a.name))
            .collect()
    };
    let (here, there) = (only(mine, theirs), only(theirs, mine));
    let mut parts = Vec::new();
    if !here.is_empty() {
        parts.push(format!("{} synced only on {me}", here.join(", ")));
    }
    if !there.is_empty() {
        parts.push(format!("{} synced only on {them}", there.join(", ")));
    }
    if parts.is_empty() && mine.columns != theirs.columns {
        parts.push(format!(
            "the synced columns of {} are in another order on {me} and {them}",
            mine.name
        ));
    }
    if mine.schema_version != theirs.schema_version {
        parts.push(format!(
            "schema version {} on {me}, {} on {them}",
            mine.schema_version, theirs.schema_version
        ));
    }
    parts.join("; ")
}

/// A device as reasons name it: the first group of its id (reasons travel to the peer, so
/// they name devices, never "here" and "there", which would read backwards on the other side).
fn who(device: &str) -> &str {
    device.split('-').next().unwrap_or(device)
}

/// Why `holder`, whose data is `label`, sends none of it to `peer`, which it records at
/// `level`; `None` when the level admits the data.
pub(crate) fn level_refusal(
    holder: &str,
    label: SecurityLevel,
    peer: &str,
    level: super::DeviceLevel,
) -> Option<String> {
    (!level.admits(label)).then(|| {
        let holder = who(holder);
        format!(
            "the data on {holder} is {label}; {holder} records {} as a {level} device",
            who(peer)
        )
    })
}

fn v1(m: MessageV1) -> SyncMessage {
    SyncMessage::V1(m)
}

impl From<&crate::store::RdbStore> for Arc<dyn SyncStore> {
    fn from(store: &crate::store::RdbStore) -> Self {
        store.sync_surface()
    }
}

impl Session {
    /// Opens a session with `peer`: the returned `Hello` goes to it. `features` are the
    /// optional features this side offers (all of [`FEATURES`] by default; see
    /// [`Session::start_with_features`]).
    ///
    /// # Errors
    /// 14800001 when the predicates' `in_devices` leaves out the peer; 17040001 when they
    /// name a table that is not distributed; the store's errors.
    pub fn start(
        store: impl Into<Arc<dyn SyncStore>>,
        peer: &Peer,
        mode: SyncMode,
        predicates: Option<&RdbPredicates>,
    ) -> Result<(Session, SyncMessage)> {
        Session::start_with_features(store, peer, mode, predicates, &FEATURES)
    }

    /// [`Session::start`] offering only `features` (none: batches travel uncompressed).
    pub fn start_with_features(
        store: impl Into<Arc<dyn SyncStore>>,
        peer: &Peer,
        mode: SyncMode,
        predicates: Option<&RdbPredicates>,
        features: &[&str],
    ) -> Result<(Session, SyncMessage)> {
        let store = store.into();
        store.begin_session()?;
        let mut tables = store.tables()?;
        if let Some(p) = predicates {
            if let DeviceFilter::Devices(named) = p.devices()
                && !named.contains(&peer.device)
            {
                return Err(Error::invalid(
                    StoreKind::Relational,
                    format!(
                        "the predicates' in_devices does not name the peer {}",
                        peer.device
                    ),
                ));
            }
            tables.retain(|m| m.name == p.table());
            if tables.is_empty() {
                return Err(Error::NotDistributed {
                    table: p.table().to_owned(),
                });
            }
        }
        let filter = predicates.and_then(WireFilter::from_predicates);
        let filter_id = filter_id(filter.as_ref());
        let id = store.new_session_id();
        // Sent on a push too: the responder checks what this store holds of it against its
        // purges before it takes this store's rows (`sender_behind_a_purge`).
        let pull_from: Vec<Watermark> = store
            .watermarks(&peer.device)?
            .into_iter()
            .filter(|w| w.filter == filter_id && tables.iter().any(|m| m.name == w.table))
            .collect();
        let offered = known(features);
        let pull_stamps = if offered.iter().any(|f| f == FEATURE_STAMPS) {
            stamps_of(store.as_ref(), &peer.device, &pull_from)?
        } else {
            Vec::new()
        };
        let populated = mode.pulls() && offered.iter().any(|f| f == FEATURE_POPULATED);
        let relayed = mode.pushes() && offered.iter().any(|f| f == FEATURE_RELAYED);
        let hello_features = entries::add(
            super::types::declare(offered, &store.column_types()?),
            entries::STAMPS,
            &pull_stamps,
        );
        let hello_features =
            entries::populated(store.as_ref(), populated, &pull_from, hello_features)?;
        let hello_features =
            entries::relayed(store.as_ref(), relayed, &peer.device, hello_features)?;
        let hello = v1(MessageV1::Hello(Hello {
            session: id,
            protocol: PROTOCOL_VERSION,
            device: store.device_id(),
            store: store.store_name(),
            epoch: store.epoch()?,
            security_level: store.data_label().as_u8(),
            mode,
            tables,
            predicates: filter.clone(),
            pull_from,
            features: hello_features,
        }));
        let session = Session {
            id,
            peer: peer.clone(),
            peer_epoch: String::new(),
            filter,
            filter_id,
            tables: Vec::new(),
            sender_knows: HashMap::new(),
            peer_populated: Vec::new(),
            peer_relayed: Vec::new(),
            out: mode.pushes().then(Outgoing::default),
            inc: mode.pulls().then(Incoming::default),
            phase: Phase::AwaitWelcome,
            result: DeviceResult {
                device: peer.device.clone(),
                ..Default::default()
            },
            batch_rows: DEFAULT_BATCH_ROWS,
            packed: false,
            compact: false,
            notices: false,
            notice: None,
            hello: Some(hello.clone()),
            welcome: None,
            abort: None,
            refuse_incoming: None,
            store,
        };
        Ok((session, hello))
    }

    /// Answers `peer`'s `Hello`: the session and the messages to send back. Anything wrong —
    /// not a `Hello`, a `Hello` from another device than the channel proved, another protocol
    /// or store — gives a failed session whose only message is an `Abort` saying why.
    pub fn accept(
        store: impl Into<Arc<dyn SyncStore>>,
        peer: &Peer,
        hello: &SyncMessage,
    ) -> (Session, Vec<SyncMessage>) {
        Session::accept_with_features(store, peer, hello, &FEATURES)
    }

    /// [`Session::accept`] with only `features` available on this side.
    pub fn accept_with_features(
        store: impl Into<Arc<dyn SyncStore>>,
        peer: &Peer,
        hello: &SyncMessage,
        features: &[&str],
    ) -> (Session, Vec<SyncMessage>) {
        let store = store.into();
        let h = match hello {
            SyncMessage::V1(MessageV1::Hello(h)) => Some(h),
            _ => None,
        };
        let mut session = Session {
            store,
            id: hello.session(),
            peer: peer.clone(),
            peer_epoch: h.map(|h| h.epoch.clone()).unwrap_or_default(),
            filter: h.and_then(|h| h.predicates.clone()),
            filter_id: filter_id(h.and_then(|h| h.predicates.as_ref())),
            tables: Vec::new(),
            sender_knows: HashMap::new(),
            peer_populated: Vec::new(),
            peer_relayed: Vec::new(),
            out: h.filter(|h| h.mode.pulls()).map(|_| Outgoing::default()),
            inc: h.filter(|h| h.mode.pushes()).map(|_| Incoming::default()),
            phase: Phase::Running,
            result: DeviceResult {
                device: peer.device.clone(),
                ..Default::default()
            },
            batch_rows: DEFAULT_BATCH_ROWS,
            packed: false,
            compact: false,
            notices: false,
            notice: None,
            hello: None,
            welcome: None,
            abort: None,
            refuse_incoming: None,
        };
        let Some(h) = h else {
            let out = session.abort(SyncStatus::Protocol, "a session starts with Hello".into());
            return (session, out);
        };
        let out = match session.welcome(h, features) {
            Ok(out) => out,
            Err(e) => session.abort_with(&e),
        };
        session.check_done();
        (session, out)
    }

    /// The checks and the `Welcome` of [`Session::accept`].
    fn welcome(&mut self, h: &Hello, features: &[&str]) -> Result<Vec<SyncMessage>> {
        if h.device != self.peer.device {
            return Ok(self.abort(
                SyncStatus::IdentityMismatch,
                format!(
                    "the Hello claims device {}, the channel proved {}",
                    h.device, self.peer.device
                ),
            ));
        }
        if h.protocol != PROTOCOL_VERSION {
            return Ok(self.abort(
                SyncStatus::Incompatible,
                format!("protocol {} is not {PROTOCOL_VERSION}", h.protocol),
            ));
        }
        let store = Arc::clone(&self.store);
        if h.store != store.store_name() {
            return Ok(self.abort(
                SyncStatus::Incompatible,
                format!("store {:?} is not {:?}", h.store, store.store_name()),
            ));
        }
        store.begin_session()?;
        let my_id = store.device_id();
        let (me, them) = (who(&my_id).to_owned(), who(&self.peer.device).to_owned());
        let mine = store.tables()?;
        let (my_types, their_types) = (store.column_types()?, super::types::declared(&h.features));
        let mut refused = Vec::new();
        for theirs in &h.tables {
            match mine.iter().find(|m| m.name == theirs.name) {
                None => refused.push(Refusal {
                    table: theirs.name.clone(),
                    code: SyncStatus::NotDistributed.code(),
                    reason: format!("not distributed on {me}"),
                }),
                Some(m) if m.mode != theirs.mode => refused.push(Refusal {
                    table: m.name.clone(),
                    code: SyncStatus::ModeMismatch.code(),
                    reason: format!(
                        "{} on {me}, {} on {them}",
                        m.mode.as_str(),
                        theirs.mode.as_str()
                    ),
                }),
                Some(m)
                    if m.columns != theirs.columns || m.schema_version != theirs.schema_version =>
                {
                    refused.push(Refusal {
                        table: m.name.clone(),
                        code: SyncStatus::Incompatible.code(),
                        reason: columns_differ(m, theirs, &me, &them),
                    })
                }
                Some(m) => match super::types::differ(&m.name, &my_types, &their_types, &me, &them)
                {
                    Some(reason) => refused.push(Refusal {
                        table: m.name.clone(),
                        code: SyncStatus::Incompatible.code(),
                        reason,
                    }),
                    None => self.tables.push(m.name.clone()),
                },
            }
        }
        if h.tables.is_empty() {
            self.result.status = SyncStatus::NotDistributed;
            self.result.message = Some(format!("no table is distributed on {them}"));
        }
        let label = store.data_label();
        if SecurityLevel::from_u8(h.security_level).is_none() {
            return Ok(self.abort(
                SyncStatus::Protocol,
                format!(
                    "the Hello labels its data S{}, not S1..S4",
                    h.security_level
                ),
            ));
        }
        // Data labelled S_k goes only to devices whose recorded level admits it, and only
        // into a store labelled S_k or above.
        let device_refusal = level_refusal(&my_id, label, &self.peer.device, self.peer.level);
        let store_refusal = SecurityLevel::from_u8(h.security_level)
            .and_then(|theirs| label_refusal(label.as_u8(), theirs, &format!("{them}'s")));
        let pull_refusal = device_refusal.or(store_refusal);
        let refuse_pull = h.mode.pulls() && pull_refusal.is_some();
        let refusal = pull_refusal.unwrap_or_default();
        if h.mode.pushes() {
            self.refuse_incoming = label_refusal(h.security_level, label, &format!("{me}'s"));
        }
        if let Some(reason) = &self.refuse_incoming {
            refused.extend(self.tables.iter().map(|t| Refusal {
                table: t.clone(),
                code: SECURITY_REFUSED,
                reason: reason.clone(),
            }));
            self.result.status = SyncStatus::SecurityRefused;
            self.result.message = Some(reason.clone());
        }
        if refuse_pull {
            refused.extend(self.tables.iter().map(|t| Refusal {
                table: t.clone(),
                code: SECURITY_REFUSED,
                reason: refusal.clone(),
            }));
        }
        // Sent on a pull too: the initiator checks what this store holds of it against its
        // purges before it takes this store's rows (`sender_behind_a_purge`). Only tables this
        // store holds something of: "nothing" would say more than it knows after a reset,
        // whose copy of the peer's rows came through another device (as a Hello's list, which
        // names only the watermarks there are).
        self.note_scratch_tables()?;
        let mut push_from = Vec::new();
        for t in &self.tables {
            let seq = store.watermark(&h.device, t, self.filter_id, &h.epoch)?;
            if seq > 0 {
                push_from.push(Watermark {
                    table: t.clone(),
                    filter: self.filter_id,
                    epoch: h.epoch.clone(),
                    seq,
                });
            }
        }
        let mut agreed: Vec<String> = h
            .features
            .iter()
            .filter(|f| features.contains(&f.as_str()) && FEATURES.contains(&f.as_str()))
            .cloned()
            .collect();
        self.packed = agreed.iter().any(|f| f == FEATURE_ZSTD);
        self.compact = agreed.iter().any(|f| f == FEATURE_COMPACT_ROWS);
        self.notices = agreed.iter().any(|f| f == FEATURE_NOTICES);
        let stamped = agreed.iter().any(|f| f == FEATURE_STAMPS);
        let my_epoch = store.epoch()?;
        let their_stamps = if stamped {
            entries::read(&h.features, entries::STAMPS)
        } else {
            Vec::new()
        };
        if h.mode.pulls()
            && let Some(out) = self.rolled_back(&h.pull_from, &my_epoch, &their_stamps)?
        {
            return Ok(out);
        }
        if stamped {
            agreed = entries::add(
                agreed,
                entries::STAMPS,
                &stamps_of(store.as_ref(), &self.peer.device, &push_from)?,
            );
        }
        if agreed.iter().any(|f| f == FEATURE_POPULATED) {
            self.peer_populated = entries::read(&h.features, entries::POPULATED);
        }
        if agreed.iter().any(|f| f == FEATURE_RELAYED) {
            self.peer_relayed = entries::read(&h.features, entries::RELAYED);
        }
        let agreed = entries::populated(
            store.as_ref(),
            h.mode.pushes() && agreed.iter().any(|f| f == FEATURE_POPULATED),
            &push_from,
            agreed,
        )?;
        let agreed = entries::relayed(
            store.as_ref(),
            h.mode.pulls() && agreed.iter().any(|f| f == FEATURE_RELAYED),
            &h.device,
            agreed,
        )?;
        let welcome = v1(MessageV1::Welcome(Welcome {
            session: h.session,
            device: store.device_id(),
            epoch: my_epoch.clone(),
            security_level: label.as_u8(),
            tables: self.tables.clone(),
            push_from,
            refused,
            features: agreed,
        }));
        self.welcome = Some(welcome.clone());
        let mut out = vec![welcome];
        if h.mode.pulls() {
            if refuse_pull {
                if let Some(o) = self.out.as_mut() {
                    o.done = true;
                }
                self.result.status = SyncStatus::SecurityRefused;
                self.result.message = Some(refusal);
                out.push(v1(MessageV1::Finish(Finish { session: h.session })));
            } else {
                let since: HashMap<&str, u64> = h
                    .pull_from
                    .iter()
                    .filter(|w| w.epoch == my_epoch && w.filter == self.filter_id)
                    .map(|w| (w.table.as_str(), w.seq))
                    .collect();
                self.begin_stream(&since)?;
                out.extend(self.next_batch()?);
            }
        }
        if h.mode.pushes() && self.refuse_incoming.is_none() {
            let holds: HashMap<String, u64> = h
                .pull_from
                .iter()
                .filter(|w| w.epoch == my_epoch && w.filter == 0)
                .map(|w| (w.table.clone(), w.seq))
                .collect();
            self.sender_behind_a_purge(&holds)?;
        }
        Ok(out)
    }

    /// A batch in one of its encodings (zstd-packed, compact rows; a packed message may hold a
    /// compact batch), decoded for handling; other messages as they are. `None`: ignore it —
    /// it overtook the Welcome that says how batches travel, and the peer sends it again.
    /// `Err`: a protocol fault (an encoding not agreed, or one that does not decode).
    fn decoded<'a>(
        &self,
        msg: &'a SyncMessage,
    ) -> std::result::Result<Option<std::borrow::Cow<'a, SyncMessage>>, String> {
        use std::borrow::Cow;
        let mut msg = Cow::Borrowed(msg);
        if let SyncMessage::V1(MessageV1::Packed(_)) = msg.as_ref() {
            if !self.may_decode(self.packed, "a packed batch without the zstd feature")? {
                return Ok(None);
            }
            msg = Cow::Owned(msg.into_owned().unpack().map_err(|e| e.to_string())?);
        }
        if let SyncMessage::V1(MessageV1::Compact(c)) = msg.as_ref() {
            if !self.may_decode(
                self.compact,
                "a compact batch without the compact-rows feature",
            )? {
                return Ok(None);
            }
            let batch = c.clone().into_batch().map_err(|e| e.to_string())?;
            msg = Cow::Owned(v1(MessageV1::Batch(batch)));
        }
        Ok(Some(msg))
    }

    /// Whether an encoded batch is decoded now: not before the Welcome (ignored), and only in
    /// an encoding both sides agreed to (else the fault `refusal`).
    fn may_decode(&self, agreed: bool, refusal: &str) -> std::result::Result<bool, String> {
        if self.phase == Phase::AwaitWelcome {
            return Ok(false);
        }
        if !agreed {
            return Err(refusal.to_owned());
        }
        Ok(true)
    }

    /// Handles one message from the peer; returns what to send back. A message of another
    /// session is ignored; a fault ends the session with an `Abort`.
    pub fn handle(&mut self, msg: &SyncMessage) -> Vec<SyncMessage> {
        if msg.session() != self.id {
            return Vec::new();
        }
        let msg = match self.decoded(msg) {
            Ok(Some(m)) => m,
            Ok(None) => return Vec::new(),
            Err(reason) => return self.fault(SyncStatus::Protocol, &reason),
        };
        let SyncMessage::V1(m) = msg.as_ref();
        if matches!(self.phase, Phase::Done | Phase::Failed) {
            // The peer repeats itself when it did not hear this side's last word: say it again.
            return match (self.phase, m) {
                (_, MessageV1::Abort(_)) => Vec::new(),
                (Phase::Failed, _) => self.abort.iter().cloned().collect(),
                (_, MessageV1::Hello(_)) => self.welcome.iter().cloned().collect(),
                (_, MessageV1::Finish(_)) if self.inc.is_some() => vec![self.done_message()],
                _ => Vec::new(),
            };
        }
        let out = match m {
            MessageV1::Hello(_) => Ok(self.welcome.iter().cloned().collect()),
            MessageV1::Welcome(w) => self.on_welcome(w),
            // Overtook the Welcome (reordering): without the peer's epoch it cannot be
            // acknowledged; the peer sends it again.
            MessageV1::Batch(_) if self.phase == Phase::AwaitWelcome => Ok(Vec::new()),
            MessageV1::Batch(b) => self.on_batch(b),
            MessageV1::Ack(a) => self.on_ack(a),
            MessageV1::Finish(_) => match self.inc.as_mut() {
                Some(inc) => {
                    inc.finished = true;
                    if self.filter_id == 0
                        && let Err(e) = self
                            .store
                            .incoming_finished(&self.peer.device, &self.peer_epoch)
                            .and_then(|()| {
                                let whole: Vec<super::Relayed> = self
                                    .peer_relayed
                                    .iter()
                                    .filter(|r| inc.from_scratch.contains(&r.table))
                                    .cloned()
                                    .collect();
                                self.store.adopt_relayed(&self.peer.device, &whole)
                            })
                    {
                        // Stale relayed rows stay until the next full stream ends; the rows
                        // this stream brought are applied.
                        tracing::warn!(peer = %self.peer.device, %e, "could not drop the rows of a device it no longer has");
                    }
                    Ok(vec![self.done_message()])
                }
                None => Ok(Vec::new()),
            },
            MessageV1::Done(d) => {
                if let Some(o) = self.out.as_mut().filter(|o| o.finish_sent && !o.done) {
                    o.done = true;
                    self.result.peer_conflicts = d.conflicts;
                }
                Ok(Vec::new())
            }
            MessageV1::Abort(a) => {
                self.fail(SyncStatus::from_code(a.code), &a.message);
                Ok(Vec::new())
            }
            // The stream this side receives left rows out: its result says so, as the
            // sender's does (the rest was delivered).
            MessageV1::Notice(n) => {
                if self.inc.is_some() && self.result.status.is_ok() {
                    self.result.status = SyncStatus::from_code(n.code);
                    self.result.message = Some(n.message.clone());
                }
                Ok(Vec::new())
            }
            // Packed and Compact were turned into a Batch above; queries are answered outside
            // sessions.
            MessageV1::Packed(_)
            | MessageV1::Compact(_)
            | MessageV1::Query(_)
            | MessageV1::QueryReply(_) => Ok(Vec::new()),
        };
        let out = out.unwrap_or_else(|e| self.abort_with(&e));
        self.check_done();
        out
    }

    fn on_welcome(&mut self, w: &Welcome) -> Result<Vec<SyncMessage>> {
        if self.phase != Phase::AwaitWelcome {
            return Ok(Vec::new());
        }
        if w.device != self.peer.device {
            return Ok(self.abort(
                SyncStatus::IdentityMismatch,
                format!("expected {}, answered by {}", self.peer.device, w.device),
            ));
        }
        let offered = match &self.hello {
            Some(SyncMessage::V1(MessageV1::Hello(h))) => h.features.as_slice(),
            _ => &[],
        };
        if w.features
            .iter()
            .any(|f| !offered.contains(f) && !entries::is_entry(f))
        {
            return Ok(self.abort(
                SyncStatus::Protocol,
                format!(
                    "the Welcome agrees to features never offered: {:?}",
                    w.features
                ),
            ));
        }
        self.peer_relayed = entries::read(&w.features, entries::RELAYED);
        self.phase = Phase::Running;
        if self.inc.is_some() {
            self.refuse_incoming = label_refusal(
                w.security_level,
                self.store.data_label(),
                &format!("{}'s", who(&self.store.device_id())),
            );
        }
        self.peer_epoch = w.epoch.clone();
        self.tables = w.tables.clone();
        self.note_scratch_tables()?;
        self.packed = w.features.iter().any(|f| f == FEATURE_ZSTD);
        self.compact = w.features.iter().any(|f| f == FEATURE_COMPACT_ROWS);
        self.notices = w.features.iter().any(|f| f == FEATURE_NOTICES);
        if let Some(first) = w.refused.first() {
            let all: Vec<String> = w
                .refused
                .iter()
                .map(|r| format!("{}: {} (error {})", r.table, r.reason, r.code))
                .collect();
            self.result.message = Some(all.join("; "));
            // A refusal that leaves nothing to sync, or a security refusal, is the status.
            let security = w.refused.iter().find(|r| r.code == SECURITY_REFUSED);
            if let Some(r) = security.or(w.tables.is_empty().then_some(first)) {
                self.result.status = SyncStatus::from_code(r.code);
            }
        }
        if w.tables.is_empty() && w.refused.is_empty() {
            // Nothing was offered: this store has no distributed table (a store rebuilt
            // empty, say). That is no successful sync.
            self.result.status = SyncStatus::NotDistributed;
            self.result.message = Some(format!(
                "no table is distributed on {}",
                who(&self.store.device_id())
            ));
        }
        if self.inc.is_some() && self.refuse_incoming.is_none() {
            let my_epoch = self.store.epoch()?;
            let holds: HashMap<String, u64> = w
                .push_from
                .iter()
                .filter(|m| m.epoch == my_epoch && m.filter == 0)
                .map(|m| (m.table.clone(), m.seq))
                .collect();
            self.sender_behind_a_purge(&holds)?;
        }
        if self.out.is_none() {
            return Ok(Vec::new());
        }
        let label = self.store.data_label();
        let device_refusal = level_refusal(
            &self.store.device_id(),
            label,
            &self.peer.device,
            self.peer.level,
        );
        let them = format!("{}'s", who(&self.peer.device));
        let store_refusal = SecurityLevel::from_u8(w.security_level).map_or_else(
            || {
                Some(format!(
                    "the peer labels its store S{}, not S1..S4",
                    w.security_level
                ))
            },
            |theirs| label_refusal(label.as_u8(), theirs, &them),
        );
        if let Some(reason) = device_refusal.or(store_refusal) {
            if let Some(out) = self.out.as_mut() {
                out.done = true;
                out.finish_sent = true;
            }
            self.result.status = SyncStatus::SecurityRefused;
            self.result.message = Some(reason);
            // The peer's incoming stream ends here (it would wait for it until the
            // connection closed).
            return Ok(vec![v1(MessageV1::Finish(Finish { session: self.id }))]);
        }
        let my_epoch = self.store.epoch()?;
        let their_stamps = if w.features.iter().any(|f| f == FEATURE_STAMPS) {
            entries::read(&w.features, entries::STAMPS)
        } else {
            Vec::new()
        };
        if let Some(out) = self.rolled_back(&w.push_from, &my_epoch, &their_stamps)? {
            return Ok(out);
        }
        let since: HashMap<&str, u64> = w
            .push_from
            .iter()
            .filter(|m| m.epoch == my_epoch)
            .map(|m| (m.table.as_str(), m.seq))
            .collect();
        self.peer_populated = entries::read(&w.features, entries::POPULATED);
        self.begin_stream(&since)?;
        self.next_batch()
    }

    /// Sets up the outgoing stream from what the peer holds of each table (`since`, which it
    /// has also acknowledged): refused when the peer is behind a purge, and the purged
    /// sequences noted, so a purge made while the stream runs is caught.
    fn begin_stream(&mut self, since: &HashMap<&str, u64>) -> Result<()> {
        for (table, seq) in since {
            self.acknowledged(table, self.filter_id, *seq);
        }
        let queue: VecDeque<(String, u64)> = self
            .tables
            .iter()
            .map(|t| (t.clone(), since.get(t.as_str()).copied().unwrap_or(0)))
            .collect();
        self.behind_a_purge(&queue)?;
        let mut purged_at_start = HashMap::new();
        for (table, _) in &queue {
            purged_at_start.insert(table.clone(), self.store.purged_seq(table)?);
        }
        if let Some(out) = self.out.as_mut() {
            out.queue = queue;
            out.purged_at_start = purged_at_start;
        }
        Ok(())
    }

    /// The next batch of the outgoing stream, or `Finish` when it is exhausted.
    fn next_batch(&mut self) -> Result<Vec<SyncMessage>> {
        let Some(out) = self.out.as_mut() else {
            return Ok(Vec::new());
        };
        while let Some((table, since)) = out.queue.front().cloned() {
            let mut batch = self.store.next_batch(BatchRequest {
                peer: &self.peer.device,
                peer_epoch: &self.peer_epoch,
                table: &table,
                filter: self.filter.as_ref(),
                since,
                limit: self.batch_rows,
            })?;
            // Read after the batch: a purge that the batch's read saw (or came before it) is
            // seen here too.
            let purged = self.store.purged_seq(&table)?;
            let at_start = out.purged_at_start.get(&table).copied().unwrap_or(purged);
            if since > 0 && purged > at_start && since < purged {
                // Deletes purged since the stream began may be among those not sent yet: the
                // peer would keep the rows they removed. It must be reset (17040011).
                return Err(Error::ResetRequired {
                    device: self.peer.device.clone(),
                    table,
                    watermark: since,
                    purged,
                });
            }
            if batch.rows.is_empty() && batch.last == since {
                out.queue.pop_front();
                continue;
            }
            batch.session = self.id;
            batch.filter = self.filter_id;
            out.inflight = Some(batch.clone());
            self.result.sent += batch.rows.len() as u64;
            return Ok(vec![self.wire_batch(batch)?]);
        }
        out.finish_sent = true;
        let finish = v1(MessageV1::Finish(Finish { session: self.id }));
        if self.notices
            && let Some(message) = self.unsendable_message()
        {
            let notice = v1(MessageV1::Notice(super::message::Notice {
                session: self.id,
                code: SyncStatus::RowTooLarge.code(),
                message,
            }));
            self.notice = Some(notice.clone());
            return Ok(vec![notice, finish]);
        }
        Ok(vec![finish])
    }

    /// A batch as it goes out: in the compact row form and packed when both sides agreed to
    /// them (a batch the compact form cannot hold goes classic, which a peer always takes).
    fn wire_batch(&self, batch: Batch) -> Result<SyncMessage> {
        let compact = self
            .compact
            .then(|| CompactBatch::from_batch(&batch))
            .flatten();
        let msg = match compact {
            Some(c) => v1(MessageV1::Compact(c)),
            None => v1(MessageV1::Batch(batch)),
        };
        if self.packed {
            msg.pack(ZSTD_LEVEL)
        } else {
            Ok(msg)
        }
    }

    fn on_batch(&mut self, b: &Batch) -> Result<Vec<SyncMessage>> {
        if let Some(reason) = self.refuse_incoming.clone() {
            // Refused in the handshake; a peer that sends anyway is told again, and nothing
            // of it is applied.
            return Ok(self.abort(SyncStatus::SecurityRefused, reason));
        }
        if self.inc.is_none() {
            return Err(Error::Protocol {
                detail: "a batch in a stream this side does not receive".into(),
            });
        }
        if !self.tables.contains(&b.table) || b.filter != self.filter_id {
            return Err(Error::Protocol {
                detail: format!("a batch of {} outside the session", b.table),
            });
        }
        let have = self
            .store
            .watermark(&self.peer.device, &b.table, b.filter, &self.peer_epoch)?;
        if b.prev > have {
            // A gap (an earlier batch was lost): ask for everything after what we have.
            return Ok(vec![v1(MessageV1::Ack(Ack {
                session: self.id,
                table: b.table.clone(),
                filter: b.filter,
                last: have,
            }))]);
        }
        let last = have.max(b.last);
        let knows = self.sender_knows.get(&b.table).copied().unwrap_or(u64::MAX);
        let applied =
            self.store
                .apply_batch(&self.peer.device, &self.peer_epoch, b, last, knows)?;
        self.result.received += applied.changed;
        self.result.conflicts += applied.conflicts;
        Ok(vec![v1(MessageV1::Ack(Ack {
            session: self.id,
            table: b.table.clone(),
            filter: b.filter,
            last,
        }))])
    }

    fn on_ack(&mut self, a: &Ack) -> Result<Vec<SyncMessage>> {
        let Some(out) = self.out.as_mut() else {
            return Ok(Vec::new());
        };
        let Some(b) = out.inflight.as_ref() else {
            return Ok(Vec::new());
        };
        if a.table != b.table || a.filter != b.filter {
            return Ok(Vec::new());
        }
        // Acknowledged: go on after it. A gap at the receiver (an earlier batch was lost):
        // go back to what it has. Anything else is a stale or repeated acknowledgement of an
        // earlier batch — answering it would resend, and duplicated messages would multiply.
        let (resume, confirmed) = if a.last >= b.last {
            (b.last, true)
        } else if a.last < b.prev {
            (a.last, false)
        } else {
            return Ok(Vec::new());
        };
        if let Some(front) = out.queue.front_mut().filter(|(t, _)| *t == a.table) {
            front.1 = resume;
        }
        out.inflight = None;
        if confirmed {
            self.acknowledged(&a.table, a.filter, resume);
        }
        self.next_batch()
    }

    /// A stream the peer resumes from a watermark below deletes this store has purged would
    /// never tell it of them: the session ends with 17040011 (a client reset). A stream from
    /// the start carries the whole state and needs no tombstone.
    fn behind_a_purge(&self, queue: &VecDeque<(String, u64)>) -> Result<()> {
        for (table, since) in queue {
            let purged = self.store.purged_seq(table)?;
            // From the start, to a peer that holds rows of the table it got elsewhere: the
            // whole state has no tombstone for the deletes purged here.
            let populated = *since == 0 && self.peer_populated.contains(table);
            if (*since > 0 || populated) && *since < purged {
                return Err(Error::ResetRequired {
                    device: self.peer.device.clone(),
                    table: table.clone(),
                    watermark: *since,
                    purged,
                });
            }
        }
        Ok(())
    }

    /// A peer about to send rows while it has not heard of deletes this store purged (what it
    /// says it holds of this store, or else what it acknowledged, lies below the purge) may
    /// send rows those deletes removed, and nothing here remembers them: it must be reset
    /// first (17040011). What the peer says it holds wins over what it acknowledged: a peer
    /// put back from a backup (repaired, restored) holds less than it once acknowledged, and
    /// sends the backup's rows — those the purged deletes removed among them. That holds for
    /// a peer that never received anything of this store too (one that only ever pushed, or
    /// meets it for the first time): its rows may have come from others, and a row this store
    /// deleted and forgot would come back. Its reset is a full pull of this store's state
    /// that keeps its own unsynced changes.
    /// What the peer has heard is kept: a purge past it while the peer streams refuses its
    /// batches from then on (see [`SyncStore::apply_batch`]).
    fn sender_behind_a_purge(&mut self, holds: &HashMap<String, u64>) -> Result<()> {
        let single_version: Vec<String> = self
            .store
            .tables()?
            .into_iter()
            .filter(|t| t.mode == crate::changes::DistributedTableType::SingleVersion)
            .map(|t| t.name)
            .collect();
        // An acknowledgement vouches only for the database that gave it: a peer put back
        // from a copy (restored, repaired) took a new epoch and may no longer hold what it
        // acknowledged — a single-version table could take back from it rows deleted here.
        let same_database = self
            .store
            .watermarks(&self.peer.device)?
            .iter()
            .any(|w| w.epoch == self.peer_epoch);
        for table in &self.tables {
            let purged = self.store.purged_seq(table)?;
            let acknowledged = match self.store.acknowledged(&self.peer.device, table)? {
                _ if !same_database && single_version.contains(table) => 0,
                seq => seq,
            };
            let known = holds.get(table).copied().unwrap_or(acknowledged);
            // A purge past this (or past what was purged already, for a peer let through)
            // while the peer streams refuses its batches from then on.
            self.sender_knows.insert(table.clone(), known.max(purged));
            // In device collaboration a peer that never heard of this store sends its own
            // rows (whose deletes it made) and relays, which `heard` guards; only a table
            // every device writes can get back, from such a peer, a row deleted here.
            let never_heard = known == 0 && acknowledged == 0 && !single_version.contains(table);
            if known < purged && !never_heard {
                return Err(Error::ResetRequired {
                    device: self.peer.device.clone(),
                    table: table.clone(),
                    watermark: known,
                    purged,
                });
            }
        }
        Ok(())
    }

    /// A peer that holds more of this database's epoch than the database ever committed, or
    /// whose watermark's stamp is older than a change this database numbered below it, or
    /// names another write time for the change numbered at it (see `stamps`): the database was put back from a copy of an earlier state (a file copy, a
    /// snapshot, a cloned device) and numbers new changes with sequence numbers the peer has
    /// passed — they would never be sent. The database takes a new epoch (peers read it from
    /// the start) and the session ends with 17040012; the next one syncs.
    fn rolled_back(
        &mut self,
        held: &[Watermark],
        my_epoch: &str,
        stamps: &[Stamp],
    ) -> Result<Option<Vec<SyncMessage>>> {
        let Some(ahead) = held
            .iter()
            .filter(|w| w.epoch == my_epoch)
            .max_by_key(|w| w.seq)
        else {
            return Ok(None);
        };
        let max = self.store.max_seq()?;
        let peer = who(&self.peer.device).to_owned();
        let message = if ahead.seq > max {
            format!(
                "{peer} holds change {} of this database's epoch, which never committed more than {max}",
                ahead.seq
            )
        } else {
            let mut found = None;
            for stamp in stamps.iter().filter(|s| {
                s.epoch == my_epoch
                    && s.filter == 0
                    && s.seq > 0
                    && held
                        .iter()
                        .any(|w| w.table == s.table && w.filter == 0 && w.seq == s.seq)
            }) {
                if let Some((seq, _)) = self.store.newer_below(&self.peer.device, stamp)? {
                    found = Some(format!(
                        "{peer} holds this database's changes of {} up to {}, but change {seq} here is not one {peer} received (written after them, or a number issued twice)",
                        stamp.table, stamp.seq
                    ));
                    break;
                }
            }
            let Some(message) = found else {
                return Ok(None);
            };
            message
        };
        self.store.renew_epoch()?;
        let message = format!(
            "{message}: the database was put back from a copy of an earlier state, so it starts a new epoch; sync again"
        );
        Ok(Some(self.abort(SyncStatus::RolledBack, message)))
    }

    /// Notes that the peer holds this store's changes of `table` up to `seq`. Bookkeeping
    /// for `peerlite status` and client reset: a failure to record it costs nothing but an
    /// over-count of unsynced changes, so it never ends the session.
    fn acknowledged(&self, table: &str, filter: u64, seq: u64) {
        if seq == 0 {
            return;
        }
        if let Err(e) = self
            .store
            .note_acknowledged(&self.peer.device, table, filter, seq)
        {
            tracing::warn!(peer = %self.peer.device, table, %e, "could not record what the peer acknowledged");
        }
    }

    /// What to send again after a silence: the `Hello`, the batch in flight, or `Finish`.
    pub fn retransmit(&self) -> Vec<SyncMessage> {
        match self.phase {
            Phase::AwaitWelcome => self.hello.iter().cloned().collect(),
            Phase::Running => match &self.out {
                Some(o) if o.inflight.is_some() => o
                    .inflight
                    .iter()
                    .filter_map(|b| self.wire_batch(b.clone()).ok())
                    .collect(),
                Some(o) if o.finish_sent && !o.done => self
                    .notice
                    .iter()
                    .cloned()
                    .chain([v1(MessageV1::Finish(Finish { session: self.id }))])
                    .collect(),
                _ => Vec::new(),
            },
            Phase::Done | Phase::Failed => Vec::new(),
        }
    }

    fn done_message(&self) -> SyncMessage {
        v1(MessageV1::Done(Done {
            session: self.id,
            applied: self.result.received,
            conflicts: self.result.conflicts,
        }))
    }

    /// Ends the session with `status` and returns the `Abort` that tells the peer.
    fn abort(&mut self, status: SyncStatus, message: String) -> Vec<SyncMessage> {
        self.fail(status, &message);
        let msg = v1(MessageV1::Abort(Abort {
            session: self.id,
            code: status.code(),
            message,
        }));
        self.abort = Some(msg.clone());
        vec![msg]
    }

    /// A fault found while handling a message: the session ends, and the peer hears why.
    fn fault(&mut self, status: SyncStatus, message: &str) -> Vec<SyncMessage> {
        if matches!(self.phase, Phase::Failed) {
            return self.abort.iter().cloned().collect();
        }
        self.abort(status, message.to_owned())
    }

    /// An error while working on the session (the peer's fault or this device's).
    fn abort_with(&mut self, e: &Error) -> Vec<SyncMessage> {
        let status = match e {
            Error::Protocol { .. } => SyncStatus::Protocol,
            Error::IncompatiblePeer { .. } => SyncStatus::Incompatible,
            other => SyncStatus::from_code(other.code()),
        };
        tracing::warn!(peer = %self.peer.device, session = self.id, code = status.code(), %e, "sync session ended");
        if matches!(self.phase, Phase::Failed) {
            return self.abort.iter().cloned().collect();
        }
        // The peer is not told this device's file paths; its own result keeps them.
        let out = self.abort(status, super::peer_text::peer_text(e));
        self.result.message = Some(e.to_string());
        out
    }

    fn fail(&mut self, status: SyncStatus, message: &str) {
        self.phase = Phase::Failed;
        self.result.status = status;
        self.result.message = Some(message.to_owned());
    }

    fn check_done(&mut self) {
        if self.phase != Phase::Running {
            return;
        }
        let out_done = self.out.as_ref().is_none_or(|o| o.done);
        let in_done = self.inc.as_ref().is_none_or(|i| i.finished);
        if out_done && in_done {
            self.phase = Phase::Done;
            self.report_unsendable();
        }
    }

    /// A stream this side sent that left out rows too large to travel ends with 17040013
    /// naming them (see `unsent`): the rest was delivered, those rows were not.
    fn report_unsendable(&mut self) {
        if self.out.is_none() || !self.result.status.is_ok() {
            return;
        }
        if let Some(message) = self.unsendable_message() {
            self.result.status = SyncStatus::RowTooLarge;
            self.result.message = Some(message);
        }
    }

    /// The rows of this session's tables left out because they are too large to travel, as
    /// one line naming the first (`None`: none).
    fn unsendable_message(&self) -> Option<String> {
        match self.store.unsendable(&self.tables) {
            Ok(rows) if !rows.is_empty() => {
                let more = if rows.len() > 1 {
                    format!(" (and {} more such rows)", rows.len() - 1)
                } else {
                    String::new()
                };
                Some(format!("{}{more}", rows[0].describe()))
            }
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(%e, "could not read the rows too large to sync");
                None
            }
        }
    }

    /// The session's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The peer.
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// True when both streams are complete (or the session failed).
    pub fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Done | Phase::Failed)
    }

    /// True when batches travel compressed in this session.
    pub fn is_packed(&self) -> bool {
        self.packed
    }

    /// True when batches travel in the compact row form in this session.
    pub fn is_compact(&self) -> bool {
        self.compact
    }

    /// The result so far.
    pub fn result(&self) -> DeviceResult {
        self.result.clone()
    }

    /// Rows per batch (default 2000).
    pub fn set_batch_rows(&mut self, rows: usize) {
        self.batch_rows = rows.max(1);
    }
}

/// The stamps `store` keeps of `peer`'s watermarks in `held`.
fn stamps_of(store: &dyn SyncStore, peer: &str, held: &[Watermark]) -> Result<Vec<Stamp>> {
    Ok(store
        .stamps(peer)?
        .into_iter()
        .filter(|s| {
            held.iter().any(|w| {
                w.table == s.table && w.filter == s.filter && w.epoch == s.epoch && w.seq == s.seq
            })
        })
        .collect())
}

/// The features of `offered` this build knows, as they travel.
fn known(offered: &[&str]) -> Vec<String> {
    offered
        .iter()
        .filter(|f| FEATURES.contains(f))
        .map(|f| (*f).to_owned())
        .collect()
}

impl Session {
    /// Notes which tables of an incoming stream start from nothing ([`Incoming::from_scratch`]).
    fn note_scratch_tables(&mut self) -> Result<()> {
        let Some(inc) = self.inc.as_mut() else {
            return Ok(());
        };
        inc.from_scratch.clear();
        for t in &self.tables {
            // Empty too: rows it held before (from elsewhere) may be ones the sender's state
            // no longer mentions — deleted there, tombstones purged — so holding the sender's
            // whole state would not mean holding what the sender received.
            if self
                .store
                .watermark(&self.peer.device, t, self.filter_id, &self.peer_epoch)?
                == 0
                && !self.store.holds_rows(t)?
            {
                inc.from_scratch.push(t.clone());
            }
        }
        Ok(())
    }
}
