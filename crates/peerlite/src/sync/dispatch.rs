//! The one place that drives sessions for a device: it accepts a peer's first `Hello`, routes
//! every later message to its session by (peer, session id), asks silent sessions to
//! retransmit, gives up on sessions that stay silent too long, and reaps finished ones after
//! they have lingered long enough to answer a peer that repeats itself. The network node,
//! [`sync_in_memory`](super::sync_in_memory) and the simulation all use it; only how bytes
//! travel differs.
//!
//! ```
//! use peerlite::changes::{DistributedConfig, DistributedType};
//! use peerlite::sync::{DeviceLevel, Dispatcher, Peer, SyncMode};
//! use peerlite::{bucket, RdbStore, StoreConfig};
//!
//! let dir = tempfile::tempdir()?;
//! let open = |name: &str| -> Result<RdbStore, Box<dyn std::error::Error>> {
//!     std::fs::create_dir_all(dir.path().join(name))?;
//!     let store = RdbStore::open(StoreConfig::new(dir.path().join(name).join("notes.db")).device_id(name))?;
//!     store.execute("CREATE TABLE IF NOT EXISTS note (id INTEGER PRIMARY KEY, text TEXT)", &[])?;
//!     store.set_distributed_tables(&["note"], DistributedType::Device, &DistributedConfig::default())?;
//!     Ok(store)
//! };
//! let (phone, laptop) = (open("phone")?, open("laptop")?);
//! phone.insert("note", &bucket! { "text" => "hi" })?;
//! let (as_phone, as_laptop) = (Peer::new("phone", DeviceLevel::Sl4), Peer::new("laptop", DeviceLevel::Sl4));
//! let (mut at_phone, mut at_laptop) = (Dispatcher::new(), Dispatcher::new());
//! // The phone pushes; messages go back and forth until both sides are done.
//! let mut to_laptop = vec![at_phone.start(&phone, &as_laptop, SyncMode::Push, None)?];
//! while !to_laptop.is_empty() {
//!     let mut to_phone = Vec::new();
//!     for m in to_laptop.drain(..) {
//!         to_phone.extend(at_laptop.deliver(&as_phone, &m, |_| Some((&laptop).into())));
//!     }
//!     for m in to_phone {
//!         to_laptop.extend(at_phone.deliver(&as_laptop, &m, |_| None));
//!     }
//! }
//! let done = at_phone.take_finished();
//! assert_eq!((done.len(), done[0].result.status.code(), done[0].result.sent), (1, 0, 1));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::message::{
    Abort, FEATURE_COMPACT_ROWS, FEATURE_ZSTD, FEATURES, Hello, MessageV1, SyncMessage, SyncMode,
};
use super::peer::Peer;
use super::session::{DEFAULT_BATCH_ROWS, DeviceResult, Session};
use super::status::SyncStatus;
use super::surface::SyncStore;
use crate::error::Result;
use crate::store::RdbPredicates;

/// Silences a running session survives (each one retransmits) before it is given up.
pub const DEFAULT_MAX_SILENCES: u32 = 40;
/// Silences a finished session stays, answering a peer that did not hear its last word.
pub const DEFAULT_LINGER: u32 = 4;

/// A session that ended, with how it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// The peer's device id.
    pub peer: String,
    /// The session's id.
    pub session: u64,
    /// True when this device started it.
    pub initiator: bool,
    /// How it went for this side.
    pub result: DeviceResult,
}

#[derive(Debug)]
struct Slot {
    session: Session,
    initiator: bool,
    silences: u32,
    reported: bool,
}

/// Routes messages to the sessions of one device.
#[derive(Debug)]
pub struct Dispatcher {
    /// By arrival order, so that what a silence sends does not depend on session ids.
    sessions: BTreeMap<u64, Slot>,
    index: HashMap<(String, u64), u64>,
    next: u64,
    finished: Vec<Finished>,
    features: Vec<&'static str>,
    batch_rows: usize,
    max_silences: u32,
    linger: u32,
}

impl Default for Dispatcher {
    fn default() -> Self {
        Dispatcher::new()
    }
}

impl Dispatcher {
    /// A dispatcher with no sessions, every feature offered, default batches and patience.
    pub fn new() -> Dispatcher {
        Dispatcher {
            sessions: BTreeMap::new(),
            index: HashMap::new(),
            next: 0,
            finished: Vec::new(),
            features: FEATURES.to_vec(),
            batch_rows: DEFAULT_BATCH_ROWS,
            max_silences: DEFAULT_MAX_SILENCES,
            linger: DEFAULT_LINGER,
        }
    }

    /// Rows per batch of every session it runs.
    #[must_use]
    pub fn batch_rows(mut self, rows: usize) -> Dispatcher {
        self.batch_rows = rows.max(1);
        self
    }

    /// Whether batches may travel compressed (offered and accepted with the `zstd` feature).
    #[must_use]
    pub fn compression(self, on: bool) -> Dispatcher {
        self.feature(FEATURE_ZSTD, on)
    }

    /// Whether batches may travel in the compact row form (offered and accepted with the
    /// `compact-rows` feature; on by default, and independent of compression).
    #[must_use]
    pub fn compact_rows(self, on: bool) -> Dispatcher {
        self.feature(FEATURE_COMPACT_ROWS, on)
    }

    fn feature(mut self, name: &'static str, on: bool) -> Dispatcher {
        self.features.retain(|f| *f != name);
        if on {
            self.features.push(name);
        }
        self
    }

    /// Silences a running session survives before it ends with [`SyncStatus::TimedOut`].
    #[must_use]
    pub fn max_silences(mut self, n: u32) -> Dispatcher {
        self.max_silences = n.max(1);
        self
    }

    /// Starts a session with `peer`; returns the `Hello` to send it.
    ///
    /// # Errors
    /// As [`Session::start`].
    pub fn start(
        &mut self,
        store: impl Into<Arc<dyn SyncStore>>,
        peer: &Peer,
        mode: SyncMode,
        predicates: Option<&RdbPredicates>,
    ) -> Result<SyncMessage> {
        let (mut session, hello) =
            Session::start_with_features(store, peer, mode, predicates, &self.features)?;
        session.set_batch_rows(self.batch_rows);
        self.insert(session, true);
        Ok(hello)
    }

    /// Hands a message from `from` (the device the channel proved) to its session and returns
    /// the answer. A `Hello` of a session not seen yet opens one with the store `store_for`
    /// names (none: the peer is told the store is not here); other messages of unknown
    /// sessions are ignored (a late copy for a session already reaped).
    pub fn deliver(
        &mut self,
        from: &Peer,
        msg: &SyncMessage,
        store_for: impl FnOnce(&Hello) -> Option<Arc<dyn SyncStore>>,
    ) -> Vec<SyncMessage> {
        let key = (from.device.clone(), msg.session());
        if let Some(n) = self.index.get(&key).copied()
            && let Some(slot) = self.sessions.get_mut(&n)
        {
            slot.silences = 0;
            let out = slot.session.handle(msg);
            self.note_finished(n);
            return out;
        }
        let SyncMessage::V1(MessageV1::Hello(h)) = msg else {
            return Vec::new();
        };
        let Some(store) = store_for(h) else {
            return vec![SyncMessage::V1(MessageV1::Abort(Abort {
                session: h.session,
                code: SyncStatus::Incompatible.code(),
                message: format!("no store {:?} is served here", h.store),
            }))];
        };
        let (mut session, out) = Session::accept_with_features(store, from, msg, &self.features);
        session.set_batch_rows(self.batch_rows);
        self.insert(session, false);
        out
    }

    /// One silence: every session `quiet` names (all, when it always says yes) retransmits;
    /// one silent too long ends as timed out; a finished one that lingered long enough is
    /// reaped. Returns (peer, message) pairs to send.
    pub fn silence(&mut self, quiet: impl Fn(&str, u64) -> bool) -> Vec<(String, SyncMessage)> {
        let mut out = Vec::new();
        let mut gone = Vec::new();
        for (n, slot) in &mut self.sessions {
            let key = (slot.session.peer().device.clone(), slot.session.id());
            if !quiet(&key.0, key.1) {
                continue;
            }
            slot.silences += 1;
            if slot.session.is_finished() {
                if slot.silences > self.linger {
                    gone.push(*n);
                }
                continue;
            }
            if slot.silences > self.max_silences {
                let mut result = slot.session.result();
                result.status = SyncStatus::TimedOut;
                result.message = Some(format!(
                    "no answer after {} retransmissions",
                    self.max_silences
                ));
                self.finished.push(Finished {
                    peer: key.0.clone(),
                    session: key.1,
                    initiator: slot.initiator,
                    result,
                });
                slot.reported = true;
                gone.push(*n);
                continue;
            }
            out.extend(
                slot.session
                    .retransmit()
                    .into_iter()
                    .map(|m| (key.0.clone(), m)),
            );
        }
        for n in gone {
            self.forget(n);
        }
        out
    }

    /// Drops every session with `peer` (its store went away): running ones are reported as
    /// failed with `status`.
    pub fn abandon_peer(&mut self, peer: &str, status: SyncStatus) {
        let keys: Vec<u64> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.session.peer().device == peer)
            .map(|(n, _)| *n)
            .collect();
        self.remove(keys, status);
    }

    /// Drops one session: reported as ended with `status` if it was still running and not
    /// reported yet; a finished one is simply forgotten.
    pub fn drop_session(&mut self, peer: &str, session: u64, status: SyncStatus) {
        if let Some(n) = self.index.get(&(peer.to_owned(), session)).copied() {
            self.remove(vec![n], status);
        }
    }

    /// Drops every session (this device's store went away).
    pub fn abandon_all(&mut self, status: SyncStatus) {
        let keys: Vec<u64> = self.sessions.keys().copied().collect();
        self.remove(keys, status);
    }

    /// The sessions that ended since the last call, each reported once.
    pub fn take_finished(&mut self) -> Vec<Finished> {
        std::mem::take(&mut self.finished)
    }

    /// Sessions not finished yet.
    pub fn running(&self) -> usize {
        self.sessions
            .values()
            .filter(|s| !s.session.is_finished())
            .count()
    }

    /// True when `peer`'s session `session` is still held (running or lingering).
    pub fn holds(&self, peer: &str, session: u64) -> bool {
        self.index.contains_key(&(peer.to_owned(), session))
    }

    fn insert(&mut self, session: Session, initiator: bool) {
        let key = (session.peer().device.clone(), session.id());
        // A session id seen before (a peer that reuses one) replaces the older session.
        if let Some(old) = self.index.get(&key).copied() {
            self.remove(vec![old], SyncStatus::Protocol);
        }
        let n = self.next;
        self.next += 1;
        self.index.insert(key, n);
        self.sessions.insert(
            n,
            Slot {
                session,
                initiator,
                silences: 0,
                reported: false,
            },
        );
        self.note_finished(n);
    }

    fn note_finished(&mut self, n: u64) {
        if let Some(slot) = self.sessions.get_mut(&n)
            && slot.session.is_finished()
            && !slot.reported
        {
            slot.reported = true;
            self.finished.push(Finished {
                peer: slot.session.peer().device.clone(),
                session: slot.session.id(),
                initiator: slot.initiator,
                result: slot.session.result(),
            });
        }
    }

    fn forget(&mut self, n: u64) -> Option<Slot> {
        let slot = self.sessions.remove(&n)?;
        self.index
            .remove(&(slot.session.peer().device.clone(), slot.session.id()));
        Some(slot)
    }

    fn remove(&mut self, keys: Vec<u64>, status: SyncStatus) {
        for n in keys {
            if let Some(slot) = self.forget(n)
                && !slot.reported
            {
                let mut result = slot.session.result();
                if !slot.session.is_finished() {
                    result.status = status;
                }
                self.finished.push(Finished {
                    peer: slot.session.peer().device.clone(),
                    session: slot.session.id(),
                    initiator: slot.initiator,
                    result,
                });
            }
        }
    }
}
