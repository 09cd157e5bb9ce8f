//! Client reset (seed 003, Realm's client reset done by the library): when a device can no
//! longer sync by deltas with a peer (17040011: it was away longer than the peer keeps
//! deletes; or the user asks), its distributed tables are re-seeded from the peer's full
//! state, and its own changes the peer never acknowledged are dropped or recovered.
//!
//! The database is never touched until the end. The reset works on a *seed*: a copy of the
//! store in a folder beside it, whose distributed tables are emptied and then filled by an
//! ordinary pull from the peer (whoever drives the sync: the network node, or
//! [`sync_in_memory`](crate::sync::sync_in_memory)). [`Reseed::finish`] then replays the
//! local changes no peer acknowledged (this device's own: what a peer acknowledged has left the
//! device, and its fate travels with that peer's state) on the seed, with their original timestamps, so the merge rules
//! decide exactly as if no reset had happened — a local insert is kept, a local delete is
//! applied, a remote delete beats an older local edit, a newer remote edit of a column is kept
//! and an older one is overwritten, per column — and puts the seed in place through
//! [`restore`](crate::RdbStore::restore_with): verified, atomic, the replaced data kept as
//! `pre-restore`, a new epoch. A verified backup of the database (`pre-reset-<time>`) is
//! taken first and named in the report.
//!
//! A kill at any point leaves the database as it was before the reset (the seed folder is
//! removed by the next attempt) or reset. The record that a reset is under way
//! (`NAME.reset`, beside the database) lives outside every transaction: a reset that keeps
//! failing is refused after [`MAX_ATTEMPTS`] tries instead of looping (realm-core #5367), and
//! a second reset while one is pending is detected (#7149).
//!
//! ```
//! use peerlite::changes::{DistributedConfig, DistributedType};
//! use peerlite::reset::ResetMode;
//! use peerlite::sync::{sync_in_memory, SyncMode};
//! use peerlite::{bucket, RdbStore, StoreConfig};
//!
//! let dir = tempfile::tempdir()?;
//! let open = |name: &str| -> peerlite::Result<RdbStore> {
//!     std::fs::create_dir_all(dir.path().join(name)).ok();
//!     let store = RdbStore::open(StoreConfig::new(dir.path().join(name).join("notes.db")).device_id(name))?;
//!     store.execute("CREATE TABLE IF NOT EXISTS note (id INTEGER PRIMARY KEY, text TEXT)", &[])?;
//!     store.set_distributed_tables(&["note"], DistributedType::Device, &DistributedConfig::default())?;
//!     Ok(store)
//! };
//! let (phone, laptop) = (open("phone")?, open("laptop")?);
//! laptop.insert("note", &bucket! { "text" => "from the laptop" })?;
//! phone.insert("note", &bucket! { "text" => "written offline" })?;
//! let reseed = phone.begin_reset("laptop")?;
//! sync_in_memory(reseed.seed(), &laptop, SyncMode::Pull, None)?;
//! let report = reseed.finish(ResetMode::RecoverUnsynced)?;
//! assert_eq!(report.recovered, 1); // the offline note survives the reset
//! assert_eq!(phone.query_sql("SELECT count(*) FROM note", &[])?.rows()?.next().map(|r| r[0].clone()), Some(1.into()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod record;
mod seed;

use std::path::PathBuf;

use crate::backup::{BackupRequest, RestoreRequest, naming};
use crate::error::{Error, Result};
use crate::store::RdbStore;

pub use record::MAX_ATTEMPTS;

/// What happens to the local changes the peer never acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetMode {
    /// Nothing is replayed by the library: the caller reads
    /// [`Reseed::unsynced_changes`] and the [`backup`](Reseed::backup), changes
    /// [`seed`](Reseed::seed) as it sees fit, then finishes; the report lists the changes.
    Manual,
    /// They are dropped: the store holds exactly the peer's state.
    DiscardUnsynced,
    /// They are replayed on the peer's state with their original timestamps.
    RecoverUnsynced,
    /// Recovered; discarded when the recovery fails.
    RecoverOrDiscard,
}

impl ResetMode {
    /// `discard`, `recover`, `recover-or-discard`.
    pub fn parse(s: &str) -> Option<ResetMode> {
        match s {
            "manual" => Some(ResetMode::Manual),
            "discard" => Some(ResetMode::DiscardUnsynced),
            "recover" => Some(ResetMode::RecoverUnsynced),
            "recover-or-discard" => Some(ResetMode::RecoverOrDiscard),
            _ => None,
        }
    }
}

/// What a reset did.
#[derive(Debug, Clone, PartialEq)]
pub struct ResetReport {
    /// The peer the store was re-seeded from.
    pub peer: String,
    /// The verified backup of the database taken before anything changed.
    pub backup: PathBuf,
    /// Unsynced local changes replayed on the peer's state (rows whose state changed).
    pub recovered: u64,
    /// Unsynced local changes dropped (the peer never had them).
    pub discarded: u64,
    /// Replayed rows recorded as conflicts (a constraint of the peer's state refused them).
    pub conflicts: u64,
    /// This device's own rows that a peer acknowledged and the reset's peer does not have:
    /// they are not replayed — the peer deleted them (a delete beats them), or only another
    /// peer holds them and gives them back at the next sync with it; the pre-reset backup
    /// keeps them either way.
    pub left_to_peers: u64,
    /// The mode that took effect (`RecoverOrDiscard` ends as one of the other two).
    pub mode: ResetMode,
    /// The unsynced local changes that were not replayed (manual and discard modes), with
    /// the values they left: the store no longer holds them, the [`backup`](Self::backup)
    /// does.
    pub unsynced: Vec<UnsyncedChange>,
}

/// A local change no peer acknowledged, as a client reset finds it.
#[derive(Debug, Clone, PartialEq)]
pub struct UnsyncedChange {
    /// The change as `peerlite changes` shows it: an insert, the columns an update wrote, or
    /// a delete.
    pub change: crate::changes::ChangeRecord,
    /// The row's synced values as the store held them when the reset began (none for a
    /// delete).
    pub values: Vec<(String, crate::Value)>,
}

/// Hooks into a client reset, as Realm offers them (before, after, and the manual
/// fallback). Each does nothing unless implemented; `()` implements none.
///
/// ```
/// use std::path::Path;
/// use peerlite::changes::{DistributedConfig, DistributedType};
/// use peerlite::reset::{ResetCallbacks, ResetMode, ResetReport, UnsyncedChange};
/// use peerlite::sync::{sync_in_memory, SyncMode};
/// use peerlite::{bucket, RdbStore, StoreConfig, Value};
///
/// /// Keeps the unsynced notes, renamed, instead of replaying them.
/// struct KeepAsCopies(Vec<String>);
///
/// impl ResetCallbacks for KeepAsCopies {
///     fn manual(&mut self, seed: &RdbStore, _backup: &Path, unsynced: &[UnsyncedChange]) -> peerlite::Result<()> {
///         for u in unsynced {
///             if let Some((_, Value::Text(text))) = u.values.iter().find(|(c, _)| c == "text") {
///                 let copy = format!("(kept) {text}");
///                 seed.insert("note", &bucket! { "text" => copy.clone() })?;
///                 self.0.push(copy);
///             }
///         }
///         Ok(())
///     }
///     fn after(&mut self, store: &RdbStore, report: &ResetReport) {
///         assert_eq!(report.unsynced.len(), self.0.len());
///         assert!(store.path().exists());
///     }
/// }
///
/// let dir = tempfile::tempdir()?;
/// let open = |name: &str| -> peerlite::Result<RdbStore> {
///     std::fs::create_dir_all(dir.path().join(name)).ok();
///     let store = RdbStore::open(StoreConfig::new(dir.path().join(name).join("notes.db")).device_id(name))?;
///     store.execute("CREATE TABLE IF NOT EXISTS note (id INTEGER PRIMARY KEY, text TEXT)", &[])?;
///     store.set_distributed_tables(&["note"], DistributedType::Device, &DistributedConfig::default())?;
///     Ok(store)
/// };
/// let (phone, laptop) = (open("phone")?, open("laptop")?);
/// phone.insert("note", &bucket! { "text" => "written offline" })?;
/// let reseed = phone.begin_reset("laptop")?;
/// sync_in_memory(reseed.seed(), &laptop, SyncMode::Pull, None)?;
/// let mut hooks = KeepAsCopies(Vec::new());
/// reseed.finish_with(ResetMode::Manual, &mut hooks)?;
/// assert_eq!(hooks.0, ["(kept) written offline"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait ResetCallbacks {
    /// Before anything changes (the peer's state is pulled, the database untouched): the
    /// store and its verified pre-reset backup. An error ends the reset with the database as
    /// it was.
    fn before(&mut self, store: &RdbStore, backup: &std::path::Path) -> Result<()> {
        let _ = (store, backup);
        Ok(())
    }

    /// [`ResetMode::Manual`] only, before the seed replaces the database: the seed (the
    /// peer's state; what is written here is this device's and syncs), the backup, and the
    /// unsynced changes with their values. An error ends the reset with the database as it
    /// was.
    fn manual(
        &mut self,
        seed: &RdbStore,
        backup: &std::path::Path,
        unsynced: &[UnsyncedChange],
    ) -> Result<()> {
        let _ = (seed, backup, unsynced);
        Ok(())
    }

    /// After the reset: the store as it is now, and what the reset did.
    fn after(&mut self, store: &RdbStore, report: &ResetReport) {
        let _ = (store, report);
    }
}

impl ResetCallbacks for () {}

/// A client reset under way: sync [`seed`](Reseed::seed) from the peer (a pull), then
/// [`finish`](Reseed::finish) it. Dropped unfinished, the database stays as it was; the next
/// [`RdbStore::begin_reset`] removes the seed.
#[derive(Debug)]
pub struct Reseed {
    store: RdbStore,
    peer: String,
    seed: RdbStore,
    seed_dir: PathBuf,
    backup: PathBuf,
    /// Held until the reset ends: no other reset of the store runs meanwhile.
    _running: record::RunningReset,
    /// Set when the reset finished: a Reseed dropped without it counts as a failed attempt.
    finished: bool,
    /// Resets of this store that had failed in a row when this one began.
    failed_before: u32,
}

impl Drop for Reseed {
    fn drop(&mut self) {
        if !self.finished {
            record::failed(self.store.path());
        }
    }
}

impl RdbStore {
    /// Begins a client reset against `peer`: takes a verified backup of this database
    /// (`pre-reset-<time>`), records the reset beside the database, and prepares the seed — a
    /// copy whose distributed tables are empty — for a pull from the peer.
    ///
    /// # Errors
    /// 17040015 while another reset of this store runs; 17040014 when resets of this store failed [`MAX_ATTEMPTS`] times in a row (restore the
    /// `pre-reset` backup or clear the record with [`RdbStore::abandon_reset`]); backup and
    /// SQLite errors.
    pub fn begin_reset(&self, peer: &str) -> Result<Reseed> {
        let db = self.path().to_path_buf();
        let running = record::RunningReset::take(&db)?;
        let attempt = record::begin(&db, peer)?;
        let failed_before = attempt.attempts;
        let stamp = naming::stamped("pre-reset-", naming::now_ms());
        let backup = self.backup_with(BackupRequest::named(stamp))?;
        record::note_backup(&db, &attempt, &backup.path)?;
        let (seed, seed_dir) = seed::prepare(self, &backup.path)?;
        Ok(Reseed {
            store: self.clone(),
            peer: peer.to_owned(),
            seed,
            seed_dir,
            backup: backup.path,
            _running: running,
            finished: false,
            failed_before,
        })
    }

    /// Forgets a pending reset (its record and seed), after the user restored or kept the
    /// database by other means.
    ///
    /// # Errors
    /// I/O errors removing the files.
    pub fn abandon_reset(&self) -> Result<()> {
        let db = self.path();
        seed::remove_dir(&seed::dir_of(db))?;
        record::clear(db)
    }

    /// True when a reset of this store was begun and not finished (a crash, a failure).
    pub fn reset_pending(&self) -> bool {
        record::read(self.path()).is_some()
    }
}

impl Reseed {
    /// Gives the reset up before anything was replayed or installed — the pull from the peer
    /// could not run (unreachable, refused): the database was never touched, so this is not a
    /// failed reset (it does not count toward [`MAX_ATTEMPTS`]), and the seed and this
    /// attempt's pre-reset backup (a copy of a database that did not change) are removed.
    ///
    /// # Errors
    /// I/O errors removing the seed or the record.
    pub fn abandon(mut self) -> Result<()> {
        self.finished = true;
        let db = self.store.path().to_path_buf();
        self.seed.close()?;
        seed::remove_dir(&self.seed_dir)?;
        if let Some(name) = self.backup.file_name().and_then(|n| n.to_str()) {
            for r in self.store.delete_backup(&[name]) {
                if let Err(e) = r.result {
                    tracing::warn!(backup = %r.name, %e, "could not remove an abandoned reset's backup");
                }
            }
        }
        if self.failed_before == 0 {
            record::clear(&db)?;
        }
        Ok(())
    }

    /// The store to pull the peer's full state into (same device, same logical name).
    pub fn seed(&self) -> &RdbStore {
        &self.seed
    }

    /// The verified backup taken before the reset.
    pub fn backup(&self) -> &std::path::Path {
        &self.backup
    }

    /// The local changes the peer never acknowledged (inserts, updates with the columns they
    /// wrote, deletes), from the pre-reset backup's log.
    ///
    /// # Errors
    /// SQLite errors reading the backup.
    pub fn unsynced_changes(&self) -> Result<Vec<UnsyncedChange>> {
        seed::Replay::open(&self.store)?.changes()
    }

    /// Applies `mode` to the unsynced local changes and puts the seed in place of the
    /// database (verified, atomically; a new epoch).
    ///
    /// # Errors
    /// The recovery's error in `RecoverUnsynced` mode (nothing is changed); restore errors.
    pub fn finish(self, mode: ResetMode) -> Result<ResetReport> {
        self.finish_with(mode, &mut ())
    }

    /// [`finish`](Self::finish), calling `callbacks` before anything changes, in
    /// [`ResetMode::Manual`] before the seed is installed, and after the reset.
    ///
    /// # Errors
    /// As [`finish`](Self::finish); an error a callback returns (nothing is changed).
    pub fn finish_with(
        mut self,
        mode: ResetMode,
        callbacks: &mut dyn ResetCallbacks,
    ) -> Result<ResetReport> {
        callbacks.before(&self.store, &self.backup)?;
        // Everything the seed holds now came from the peer: after the swap the peer counts
        // as holding it (else a later reset against another peer would take the rows back as
        // this device's unsynced changes).
        let pulled_through = {
            use crate::sync::SyncStore;
            self.seed.max_seq()?
        };
        // What the store had committed when the reset read its changes: what commits after
        // (another process writing while the reset runs) is taken from the replaced data once
        // the seed is in place.
        let through = {
            use crate::sync::SyncStore;
            self.store.max_seq()?
        };
        let replay = seed::Replay::open(&self.store)?;
        let (outcome, effective) = match mode {
            ResetMode::DiscardUnsynced | ResetMode::Manual => {
                (seed::Outcome::discarded(replay.pending()?), mode)
            }
            ResetMode::RecoverUnsynced => (replay.onto(&self.seed, &self.peer)?, mode),
            ResetMode::RecoverOrDiscard => {
                let before = seed::checkpoint_copy(&self.seed, &self.seed_dir)?;
                match replay.onto(&self.seed, &self.peer) {
                    Ok(o) => (o, ResetMode::RecoverUnsynced),
                    Err(e) => {
                        tracing::warn!(%e, "recovering the unsynced changes failed; discarding them");
                        seed::roll_back_to(&self.seed, &before)?;
                        (
                            seed::Outcome::discarded(replay.pending()?),
                            ResetMode::DiscardUnsynced,
                        )
                    }
                }
            }
        };
        // A whole store's every row of its own is in the seed now (see `seed::own_changes`).
        let settles = effective == ResetMode::RecoverUnsynced && replay.whole;
        let unsynced = if effective == ResetMode::RecoverUnsynced {
            if settles {
                seed::settle_own(&self.store, &self.seed)?;
            }
            Vec::new()
        } else {
            replay.changes()?
        };
        drop(replay);
        if effective == ResetMode::Manual {
            callbacks.manual(&self.seed, &self.backup, &unsynced)?;
        }
        let db = self.store.path().to_path_buf();
        let replaced = seed::install(&self.store, &self.seed, &self.seed_dir)?;
        let late = match &replaced {
            Some(copy) => seed::catch_up(&self.store, copy, through, &self.peer)?,
            None => seed::Outcome::default(),
        };
        if settles {
            seed::mark_whole(&self.store)?;
        }
        forget_copies(&self.store, replaced.as_deref(), &self.backup);
        {
            use crate::sync::SyncStore;
            for table in self.store.tables()? {
                self.store
                    .note_acknowledged(&self.peer, &table.name, 0, pulled_through)?;
            }
        }
        record::clear(&db)?;
        seed::remove_dir(&self.seed_dir)?;
        tracing::info!(?db, peer = %self.peer, recovered = outcome.recovered, discarded = outcome.discarded, "client reset finished");
        self.finished = true;
        let report = ResetReport {
            peer: std::mem::take(&mut self.peer),
            backup: std::mem::take(&mut self.backup),
            recovered: outcome.recovered + late.recovered,
            discarded: outcome.discarded,
            conflicts: outcome.conflicts + late.conflicts,
            left_to_peers: outcome.left,
            mode: effective,
            unsynced,
        };
        callbacks.after(&self.store, &report);
        Ok(report)
    }
}

/// `pre-reset` backups kept: the newest few (each is a whole copy of the store).
pub const KEPT_RESET_BACKUPS: usize = 3;

/// A finished reset's copies: the install's copy of the replaced data (`replaced`: the
/// `pre-reset` backup plus the late commits, replayed by now) goes, and of the `pre-reset`
/// backups only the newest [`KEPT_RESET_BACKUPS`] stay, this one (`kept`) among them — every
/// reset kept two whole copies of the store before, and nothing pruned them. Best effort: a
/// copy that cannot be removed is only logged.
fn forget_copies(store: &RdbStore, replaced: Option<&std::path::Path>, kept: &std::path::Path) {
    let mut names: Vec<String> = replaced
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .into_iter()
        .collect();
    match store.backups() {
        Ok(backups) => names.extend(
            backups
                .into_iter()
                .filter(|b| b.name.starts_with("pre-reset-") && b.path != kept)
                .skip(KEPT_RESET_BACKUPS.saturating_sub(1))
                .map(|b| b.name),
        ),
        Err(e) => tracing::warn!(%e, "could not list the backups to prune old pre-reset copies"),
    }
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    for r in store.delete_backup(&names) {
        if let Err(e) = r.result {
            tracing::warn!(backup = %r.name, %e, "could not remove a reset's copy");
        }
    }
}

/// The error for a reset that keeps failing.
fn too_many(db: &std::path::Path, attempts: u32) -> Error {
    Error::ResetFailing {
        path: db.to_path_buf(),
        attempts,
    }
}

// Used by `seed`: the restore that installs the seed.
fn restore_from(store: &RdbStore, path: &std::path::Path) -> Result<Option<PathBuf>> {
    store
        .restore_with(RestoreRequest::new(path.to_string_lossy().into_owned()).within_reset())
        .map(|r| r.pre_restore_backup)
}
