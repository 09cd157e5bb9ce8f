//! One sync session with one peer, as a state machine without I/O: it takes messages and
//! returns the messages to send. A driver (the network node, the in-memory simulation) moves
//! them and calls [`Session::retransmit`] when nothing arrives for a while.
//!
//! The sender of a stream keeps one batch in flight; the receiver answers every batch with
//! its watermark. Lost, duplicated or reordered messages therefore only ever cause a resend
//! from the receiver's watermark, and applying a row state twice changes nothing.

use std::collections::{HashMap, VecDeque};

use super::extract;
use super::merge;
use super::message::{
    Abort, Ack, Batch, Done, Finish, Hello, MessageV1, PROTOCOL_VERSION, Refusal, SyncMessage,
    SyncMode, TableSummary, Watermark, Welcome, filter_id,
};
use super::watermark;
use crate::changes::registry::{self, TableMeta};
use crate::error::StoreKind;
use crate::error::{Error, Result};
use crate::store::{DeviceFilter, RdbPredicates, RdbStore, SubscribeType};

/// Rows per batch.
pub const DEFAULT_BATCH_ROWS: usize = 2000;

/// The status of a device whose security level is too low for the data (ArkData-style).
pub const SECURITY_REFUSED: u32 = 17040006;

/// The outcome of a session for one device (ArkData's `[device, status]`, with totals).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceResult {
    /// The peer.
    pub device: String,
    /// 0 on success, else an error code.
    pub status: u32,
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
    inflight: Option<Batch>,
    finish_sent: bool,
    done: bool,
}

#[derive(Debug, Default)]
struct Incoming {
    finished: bool,
}

/// A session with one peer.
#[derive(Debug)]
pub struct Session {
    store: RdbStore,
    id: u64,
    peer: String,
    peer_epoch: String,
    predicates: Option<RdbPredicates>,
    filter: u64,
    tables: Vec<String>,
    out: Option<Outgoing>,
    inc: Option<Incoming>,
    phase: Phase,
    result: DeviceResult,
    batch_rows: usize,
    hello: Option<SyncMessage>,
    welcome: Option<SyncMessage>,
    /// The `Abort` this side sent, repeated to a peer that did not hear it.
    abort: Option<SyncMessage>,
}

fn v1(m: MessageV1) -> SyncMessage {
    SyncMessage::V1(m)
}

fn local_tables(store: &RdbStore) -> Result<Vec<TableMeta>> {
    Ok(store
        .distributed_tables()?
        .into_iter()
        .filter(|m| m.base.is_none())
        .collect())
}

fn summary(m: &TableMeta) -> TableSummary {
    TableSummary {
        name: m.name.clone(),
        mode: m.mode,
        columns: m.columns.clone(),
        schema_version: m.schema_version,
    }
}

fn store_name(store: &RdbStore) -> String {
    store
        .path()
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_owned()
}

fn session_id(store: &RdbStore) -> u64 {
    let mut h = blake3::Hasher::new();
    h.update(store.device_id().as_bytes());
    h.update(&store.inner.sync.hlc.tick().to_le_bytes());
    u64::from_le_bytes(h.finalize().as_bytes()[..8].try_into().unwrap_or([7; 8]))
}

impl Session {
    /// Opens a session with `peer`: the returned `Hello` goes to it.
    pub fn start(
        store: &RdbStore,
        peer: &str,
        mode: SyncMode,
        predicates: Option<&RdbPredicates>,
    ) -> Result<(Session, SyncMessage)> {
        let mut tables = local_tables(store)?;
        if let Some(p) = predicates {
            if let DeviceFilter::Devices(named) = p.devices()
                && !named.iter().any(|d| d == peer)
            {
                return Err(Error::invalid(
                    StoreKind::Relational,
                    format!("the predicates' in_devices does not name the peer {peer}"),
                ));
            }
            tables.retain(|m| m.name == p.table());
            if tables.is_empty() {
                return Err(Error::NotDistributed {
                    table: p.table().to_owned(),
                });
            }
        }
        let restriction = predicates.and_then(RdbPredicates::sync_filter);
        let predicates = restriction.as_ref();
        let filter = filter_id(predicates);
        let id = session_id(store);
        let pull_from = if mode.pulls() {
            let path = store.path();
            let known = store
                .inner
                .read(|c| watermark::all(c, peer).map_err(|e| Error::from_sqlite(e, path)))?;
            known
                .into_iter()
                .filter(|(t, f, _, _)| *f == filter && tables.iter().any(|m| &m.name == t))
                .map(|(table, filter, epoch, seq)| Watermark {
                    table,
                    filter,
                    epoch,
                    seq,
                })
                .collect()
        } else {
            Vec::new()
        };
        let hello = v1(MessageV1::Hello(Hello {
            session: id,
            protocol: PROTOCOL_VERSION,
            device: store.device_id().to_owned(),
            store: store_name(store),
            epoch: store.epoch()?,
            security_level: store.config().level().as_u8(),
            mode,
            tables: tables.iter().map(summary).collect(),
            predicates: predicates.cloned(),
            pull_from,
            features: Vec::new(),
        }));
        let session = Session {
            store: store.clone(),
            id,
            peer: peer.to_owned(),
            peer_epoch: String::new(),
            predicates: predicates.cloned(),
            filter,
            tables: Vec::new(),
            out: mode.pushes().then(Outgoing::default),
            inc: mode.pulls().then(Incoming::default),
            phase: Phase::AwaitWelcome,
            result: DeviceResult {
                device: peer.to_owned(),
                ..Default::default()
            },
            batch_rows: DEFAULT_BATCH_ROWS,
            hello: Some(hello.clone()),
            welcome: None,
            abort: None,
        };
        Ok((session, hello))
    }

    /// Answers a peer's `Hello`: the session and the messages to send back.
    pub fn accept(store: &RdbStore, hello: &SyncMessage) -> Result<(Session, Vec<SyncMessage>)> {
        let SyncMessage::V1(MessageV1::Hello(h)) = hello else {
            return Err(Error::Protocol {
                detail: "a session starts with Hello".into(),
            });
        };
        let mut session = Session {
            store: store.clone(),
            id: h.session,
            peer: h.device.clone(),
            peer_epoch: h.epoch.clone(),
            predicates: h.predicates.clone(),
            filter: filter_id(h.predicates.as_ref()),
            tables: Vec::new(),
            out: h.mode.pulls().then(Outgoing::default),
            inc: h.mode.pushes().then(Incoming::default),
            phase: Phase::Running,
            result: DeviceResult {
                device: h.device.clone(),
                ..Default::default()
            },
            batch_rows: DEFAULT_BATCH_ROWS,
            hello: None,
            welcome: None,
            abort: None,
        };
        let abort = |code: u32, message: String| {
            v1(MessageV1::Abort(Abort {
                session: h.session,
                code,
                message,
            }))
        };
        if h.protocol != PROTOCOL_VERSION {
            session.fail(17040004, "protocol version mismatch");
            let msg = abort(
                17040004,
                format!("protocol {} is not {PROTOCOL_VERSION}", h.protocol),
            );
            session.abort = Some(msg.clone());
            return Ok((session, vec![msg]));
        }
        if h.store != store_name(store) {
            session.fail(17040005, "another store");
            let msg = abort(
                17040005,
                format!("store {:?} is not {:?}", h.store, store_name(store)),
            );
            session.abort = Some(msg.clone());
            return Ok((session, vec![msg]));
        }
        let mine = local_tables(store)?;
        let mut refused = Vec::new();
        for theirs in &h.tables {
            match mine.iter().find(|m| m.name == theirs.name) {
                None => refused.push(Refusal {
                    table: theirs.name.clone(),
                    code: 17040001,
                    reason: "not distributed here".into(),
                }),
                Some(m) if m.mode != theirs.mode => refused.push(Refusal {
                    table: m.name.clone(),
                    code: 14800051,
                    reason: format!("{} here, {} there", m.mode.as_str(), theirs.mode.as_str()),
                }),
                Some(m)
                    if m.columns != theirs.columns || m.schema_version != theirs.schema_version =>
                {
                    refused.push(Refusal {
                        table: m.name.clone(),
                        code: 17040005,
                        reason: format!(
                            "synced columns or schema version differ (v{} here, v{} there)",
                            m.schema_version, theirs.schema_version
                        ),
                    })
                }
                Some(m) => session.tables.push(m.name.clone()),
            }
        }
        let my_level = store.config().level().as_u8();
        // Data labelled S_k goes only to devices whose level allows it.
        let refuse_pull = h.mode.pulls() && my_level > h.security_level;
        if refuse_pull {
            let reason = format!(
                "this store is S{my_level}; the peer is only S{}",
                h.security_level
            );
            refused.extend(session.tables.iter().map(|t| Refusal {
                table: t.clone(),
                code: SECURITY_REFUSED,
                reason: reason.clone(),
            }));
        }
        let mut out = Vec::new();
        let push_from = if h.mode.pushes() {
            let path = store.path();
            store.inner.read(|c| {
                session
                    .tables
                    .iter()
                    .map(|t| {
                        let seq = watermark::get(c, &h.device, t, session.filter, &h.epoch)
                            .map_err(|e| Error::from_sqlite(e, path))?;
                        Ok(Watermark {
                            table: t.clone(),
                            filter: session.filter,
                            epoch: h.epoch.clone(),
                            seq,
                        })
                    })
                    .collect::<Result<Vec<_>>>()
            })?
        } else {
            Vec::new()
        };
        let my_epoch = store.epoch()?;
        let welcome = v1(MessageV1::Welcome(Welcome {
            session: h.session,
            device: store.device_id().to_owned(),
            epoch: my_epoch.clone(),
            security_level: my_level,
            tables: session.tables.clone(),
            push_from,
            refused,
        }));
        session.welcome = Some(welcome.clone());
        out.push(welcome);
        if h.mode.pulls() {
            if refuse_pull {
                if let Some(o) = session.out.as_mut() {
                    o.done = true;
                }
                session.result.status = SECURITY_REFUSED;
                session.result.message = Some(format!(
                    "this store is S{my_level}; the peer is only S{}",
                    h.security_level
                ));
                out.push(v1(MessageV1::Finish(Finish { session: h.session })));
            } else {
                let since: HashMap<&str, u64> = h
                    .pull_from
                    .iter()
                    .filter(|w| w.epoch == my_epoch && w.filter == session.filter)
                    .map(|w| (w.table.as_str(), w.seq))
                    .collect();
                if let Some(o) = session.out.as_mut() {
                    o.queue = session
                        .tables
                        .iter()
                        .map(|t| (t.clone(), since.get(t.as_str()).copied().unwrap_or(0)))
                        .collect();
                }
                out.extend(session.next_batch()?);
            }
        }
        session.check_done();
        Ok((session, out))
    }

    /// Handles one message from the peer; returns what to send back.
    pub fn handle(&mut self, msg: &SyncMessage) -> Result<Vec<SyncMessage>> {
        if msg.session() != self.id {
            return Ok(Vec::new());
        }
        let SyncMessage::V1(m) = msg;
        if matches!(self.phase, Phase::Done | Phase::Failed) {
            // The peer repeats itself when it did not hear this side's last word: say it again.
            return Ok(match (self.phase, m) {
                (_, MessageV1::Abort(_)) => Vec::new(),
                (Phase::Failed, _) => self.abort.iter().cloned().collect(),
                (_, MessageV1::Hello(_)) => self.welcome.iter().cloned().collect(),
                (_, MessageV1::Finish(_)) if self.inc.is_some() => vec![self.done_message()],
                _ => Vec::new(),
            });
        }
        let out = match m {
            MessageV1::Hello(_) => self.welcome.iter().cloned().collect(),
            MessageV1::Welcome(w) => self.on_welcome(w)?,
            // Overtook the Welcome (reordering): without the peer's epoch it cannot be
            // acknowledged; the peer sends it again.
            MessageV1::Batch(_) if self.phase == Phase::AwaitWelcome => Vec::new(),
            MessageV1::Batch(b) => self.on_batch(b)?,
            MessageV1::Ack(a) => self.on_ack(a)?,
            MessageV1::Finish(_) => {
                let Some(inc) = self.inc.as_mut() else {
                    return Ok(Vec::new());
                };
                inc.finished = true;
                vec![self.done_message()]
            }
            MessageV1::Done(d) => {
                if let Some(o) = self.out.as_mut().filter(|o| o.finish_sent && !o.done) {
                    o.done = true;
                    self.result.peer_conflicts = d.conflicts;
                }
                Vec::new()
            }
            MessageV1::Abort(a) => {
                self.fail(a.code, &a.message);
                Vec::new()
            }
        };
        self.check_done();
        Ok(out)
    }

    fn on_welcome(&mut self, w: &Welcome) -> Result<Vec<SyncMessage>> {
        if self.phase != Phase::AwaitWelcome {
            return Ok(Vec::new());
        }
        if w.device != self.peer {
            self.fail(17040005, "answered by another device");
            let msg = v1(MessageV1::Abort(Abort {
                session: self.id,
                code: 17040005,
                message: format!("expected {}, got {}", self.peer, w.device),
            }));
            self.abort = Some(msg.clone());
            return Ok(vec![msg]);
        }
        self.phase = Phase::Running;
        self.peer_epoch = w.epoch.clone();
        self.tables = w.tables.clone();
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
                self.result.status = r.code;
            }
        }
        let Some(out) = self.out.as_mut() else {
            return Ok(Vec::new());
        };
        let my_level = self.store.config().level().as_u8();
        if my_level > w.security_level {
            out.done = true;
            self.result.status = SECURITY_REFUSED;
            self.result.message = Some(format!(
                "this store is S{my_level}; the peer is only S{}",
                w.security_level
            ));
            return Ok(Vec::new());
        }
        let my_epoch = self.store.epoch()?;
        let since: HashMap<&str, u64> = w
            .push_from
            .iter()
            .filter(|m| m.epoch == my_epoch)
            .map(|m| (m.table.as_str(), m.seq))
            .collect();
        out.queue = self
            .tables
            .iter()
            .map(|t| (t.clone(), since.get(t.as_str()).copied().unwrap_or(0)))
            .collect();
        self.next_batch()
    }

    /// The next batch of the outgoing stream, or `Finish` when it is exhausted.
    fn next_batch(&mut self) -> Result<Vec<SyncMessage>> {
        let store = self.store.clone();
        let path = store.path();
        let Some(out) = self.out.as_mut() else {
            return Ok(Vec::new());
        };
        while let Some((table, since)) = out.queue.front().cloned() {
            let peer = self.peer.clone();
            let predicates = self.predicates.clone();
            let limit = self.batch_rows;
            let peer_epoch = self.peer_epoch.clone();
            let mut batch = store.inner.read(|conn| {
                let metas = registry::load_all(conn).map_err(|e| Error::from_sqlite(e, path))?;
                let Some(logical) = metas.iter().find(|m| m.name == table && m.base.is_none())
                else {
                    return Err(Error::NotDistributed {
                        table: table.clone(),
                    });
                };
                let sources: Vec<&TableMeta> = metas
                    .iter()
                    .filter(|m| m.name == table || m.base.as_deref() == Some(table.as_str()))
                    .collect();
                let own_epoch = crate::store::meta::get(conn, "epoch")
                    .map_err(|e| Error::from_sqlite(e, path))?
                    .unwrap_or_default();
                let writers =
                    registry::writers(conn, &own_epoch).map_err(|e| Error::from_sqlite(e, path))?;
                // What the peer's current database already holds is not sent back to it.
                let echo = writers
                    .iter()
                    .find(|(_, (d, e))| *d == peer && *e == peer_epoch && !e.is_empty())
                    .map(|(i, _)| *i);
                extract::next_batch(
                    conn,
                    &store.inner.schema,
                    path,
                    logical,
                    &sources,
                    predicates.as_ref(),
                    since,
                    echo,
                    &writers,
                    limit,
                )
            })?;
            if batch.rows.is_empty() && batch.last == since {
                out.queue.pop_front();
                continue;
            }
            batch.session = self.id;
            batch.filter = self.filter;
            out.inflight = Some(batch.clone());
            self.result.sent += batch.rows.len() as u64;
            return Ok(vec![v1(MessageV1::Batch(batch))]);
        }
        out.finish_sent = true;
        Ok(vec![v1(MessageV1::Finish(Finish { session: self.id }))])
    }

    fn on_batch(&mut self, b: &Batch) -> Result<Vec<SyncMessage>> {
        if self.inc.is_none() {
            return Err(Error::Protocol {
                detail: "a batch in a stream this side does not receive".into(),
            });
        }
        if !self.tables.contains(&b.table) || b.filter != self.filter {
            return Err(Error::Protocol {
                detail: format!("a batch of {} outside the session", b.table),
            });
        }
        let store = self.store.clone();
        let path = store.path();
        let peer = self.peer.clone();
        let epoch = self.peer_epoch.clone();
        let have = store.inner.read(|c| {
            watermark::get(c, &peer, &b.table, b.filter, &epoch)
                .map_err(|e| Error::from_sqlite(e, path))
        })?;
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
        let applied = store.transaction(|tx| {
            let conn = tx.conn()?;
            let metas = registry::load_all(conn).map_err(|e| Error::from_sqlite(e, path))?;
            let logical = metas
                .into_iter()
                .find(|m| m.name == b.table && m.base.is_none())
                .ok_or_else(|| Error::NotDistributed {
                    table: b.table.clone(),
                })?;
            let applied = {
                let _paused = store.inner.sync.pause_capture();
                merge::apply_batch(tx, &store.inner.sync, &logical, b)?
            };
            watermark::set(conn, &peer, &b.table, b.filter, &epoch, last)
                .map_err(|e| Error::from_sqlite(e, path))?;
            Ok(applied)
        })?;
        self.result.received += applied.changed;
        self.result.conflicts += applied.conflicts;
        if !applied.keys.is_empty() {
            store
                .inner
                .observers
                .notify(SubscribeType::Remote, std::slice::from_ref(&peer));
            let change = super::RemoteChange {
                device: peer.clone(),
                keys: applied.keys,
                kinds: applied.kinds,
            };
            store
                .inner
                .remote_changes
                .notify(SubscribeType::Remote, &change);
        }
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
        let resume = if a.last >= b.last {
            b.last
        } else if a.last < b.prev {
            a.last
        } else {
            return Ok(Vec::new());
        };
        if let Some(front) = out.queue.front_mut().filter(|(t, _)| *t == a.table) {
            front.1 = resume;
        }
        out.inflight = None;
        self.next_batch()
    }

    /// What to send again after a silence: the `Hello`, the batch in flight, or `Finish`.
    pub fn retransmit(&self) -> Vec<SyncMessage> {
        match self.phase {
            Phase::AwaitWelcome => self.hello.iter().cloned().collect(),
            Phase::Running => match &self.out {
                Some(o) if o.inflight.is_some() => o
                    .inflight
                    .iter()
                    .cloned()
                    .map(|b| v1(MessageV1::Batch(b)))
                    .collect(),
                Some(o) if o.finish_sent && !o.done => {
                    vec![v1(MessageV1::Finish(Finish { session: self.id }))]
                }
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

    fn fail(&mut self, code: u32, message: &str) {
        self.phase = Phase::Failed;
        self.result.status = code;
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
        }
    }

    /// The session's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The peer's device id.
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// True when both streams are complete (or the session failed).
    pub fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Done | Phase::Failed)
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
