//! Corruption detection and automatic rebuild (seed 000's 14800011 flow, automated).
//!
//! Any SQLITE_CORRUPT or SQLITE_NOTADB becomes error 14800011 (15100003 for a key-value
//! store) and leaves a persistent flag, `NAME.corrupt`, beside the database. The next open
//! without `allow_rebuild` fails at once with a hint naming `peerlite repair`. With
//! `allow_rebuild` the open first checks the file (a flag left by a passing problem is cleared;
//! a wrong or missing key is reported as such and never leads to a rebuild), and otherwise
//! rebuilds the store in steps that survive a kill at any point (see `rebuild.rs`):
//!
//! 1. the damaged files are linked into `quarantine/NAME-<time>/` — never deleted — after a
//!    journal (`NAME.repair`) records the pending repair;
//! 2. the newest backup that passes full verification replaces the damaged file in one
//!    atomic rename ([`RebuiltType::Repaired`]), or an empty store does
//!    ([`RebuiltType::Rebuilt`]); the versioned open then upgrades or creates;
//! 3. every readable row of the quarantined file is salvaged into `NAME.salvage.db`
//!    ([`salvage()`]), and the journal is removed.
//!
//! While the journal exists every open refuses the store (14800011, naming `peerlite
//! repair`) and an open with `allow_rebuild` finishes the repair. [`RdbStore::merge_salvage`]
//! adds the salvaged rows the backup lacks, so little is lost.
//!
//! Before anything opens a path, `evidence` decides whether it holds a store: a missing or
//! empty file beside a store's traces is a lost store, which every open refuses and only a
//! rebuild acts on (see [`require_store`]). Repairs of one store are serialised by a lock
//! (`quarantine/NAME.lock`). A rebuild never changes whether the store is encrypted (the
//! backups' manifests say which it was); `keys` proves a key right on a store whose header is
//! damaged, from the salt its backups recorded. With `StoreConfig::rebuild_from` the rebuild
//! puts a chosen backup in place: a restore over a store that cannot be opened.

mod evidence;
mod journal;
mod keys;
pub(crate) mod quarantine;
mod rebuild;
pub(crate) mod salvage;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::StoreKind;
use crate::backup::naming;
use crate::error::{Error, Result};
use crate::open::layers::open_as_is;
use crate::store::connection;
use crate::store::layers::Layer;
use crate::store::{RdbStore, StoreConfig};
use evidence::AtPath;

pub use evidence::{refuse_lost_store, require_store};
pub use salvage::{SalvageReport, salvage};

/// How an open dealt with corruption (ArkData's `rebuilt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RebuiltType {
    /// Nothing was rebuilt.
    #[default]
    None,
    /// The store was corrupted and no verified backup existed: it starts empty.
    Rebuilt,
    /// The store was corrupted and was put back from the newest verified backup.
    Repaired,
}

/// Whether a repair of the database at `db` was started and not finished (a kill or a full
/// disk stopped it). Until an open with `allow_rebuild` (`peerlite repair`) finishes it, every
/// open of the store fails with 14800011.
pub fn repair_pending(db: &Path) -> bool {
    journal::pending(db)
}

/// What a rebuild did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairReport {
    /// Repaired from a backup, or rebuilt empty.
    pub status: RebuiltType,
    /// The backup used, when repaired (its name).
    pub backup: Option<String>,
    /// That backup's file.
    pub backup_path: Option<PathBuf>,
    /// Where the damaged files are kept.
    pub quarantine: PathBuf,
    /// The rows that could still be read.
    pub salvage: SalvageReport,
}

/// `PRAGMA quick_check` (fast, the b-tree structure) or `integrity_check` (also indexes and
/// constraints); encrypted stores add SQLCipher's per-page HMAC check to the full check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckMode {
    /// `quick_check`.
    Quick,
    /// `integrity_check` (+ `cipher_integrity_check` when encrypted).
    Full,
}

#[derive(Debug, Serialize, Deserialize)]
struct Flag {
    detected_at: String,
    code: u32,
    detail: String,
}

fn flag_path(db: &Path) -> PathBuf {
    crate::backup::naming::with_suffix(db, ".corrupt")
}

/// Records that the database is corrupted (kept until a repair or a passing check).
pub(crate) fn set_flag(db: &Path, err: &Error) {
    let path = flag_path(db);
    if path.exists() {
        return;
    }
    let flag = Flag {
        detected_at: naming::rfc3339(naming::now_ms()),
        code: err.code(),
        detail: err.to_string(),
    };
    match serde_json::to_vec_pretty(&flag) {
        Ok(bytes) => {
            if let Err(e) = crate::backup::write_synced_file(&path, &bytes) {
                tracing::error!(?path, %e, "could not record the corruption flag");
            }
        }
        Err(e) => tracing::error!(%e, "could not encode the corruption flag"),
    }
}

fn read_flag(db: &Path) -> Option<Flag> {
    let text = std::fs::read_to_string(flag_path(db)).ok()?;
    Some(serde_json::from_str(&text).unwrap_or(Flag {
        detected_at: "unknown".into(),
        code: 14800011,
        detail: "the flag file is unreadable".into(),
    }))
}

pub(crate) fn clear_flag(db: &Path) {
    let _ = std::fs::remove_file(flag_path(db));
}

/// Runs the check on one connection; the problems found (empty when all is well).
fn problems(
    conn: &rusqlite::Connection,
    mode: CheckMode,
    encrypted: bool,
    path: &Path,
) -> Result<Vec<String>> {
    let pragma = match mode {
        CheckMode::Quick => "PRAGMA quick_check(50)",
        CheckMode::Full => "PRAGMA integrity_check(50)",
    };
    let rows: Vec<String> = conn
        .prepare(pragma)
        .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
        .map_err(|e| Error::from_sqlite(e, path))?;
    let flat = |p: String| p.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut found: Vec<String> = rows.into_iter().filter(|r| r != "ok").map(flat).collect();
    if encrypted && mode == CheckMode::Full {
        let cipher: Vec<String> = conn
            .prepare("PRAGMA cipher_integrity_check")
            .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
            .map_err(|e| Error::from_sqlite(e, path))?;
        found.extend(cipher.into_iter().map(flat));
    }
    Ok(found)
}

impl RdbStore {
    /// Checks the database file. A problem sets the corruption flag and returns 14800011 with
    /// what was found; a clean result clears a flag left by an earlier error.
    pub fn check(&self, mode: CheckMode) -> Result<()> {
        let config = &self.inner.config;
        let found = self
            .inner
            .read(|conn| problems(conn, mode, config.key.is_some(), config.path()))?;
        if found.is_empty() {
            clear_flag(config.path());
            return crate::changes::verify::check_full(self, mode);
        }
        let err = Error::Corrupted {
            path: config.path().to_path_buf(),
            detail: found.join("; "),
            sqlite: None,
            kind: StoreKind::Relational,
        };
        Err(self.inner.observe_error(err))
    }

    /// How this open dealt with corruption.
    pub fn rebuilt(&self) -> RebuiltType {
        self.repair_report().map_or(RebuiltType::None, |r| r.status)
    }

    /// The details of the rebuild this open did, if any.
    pub fn repair_report(&self) -> Option<&RepairReport> {
        self.inner
            .layer::<CorruptionWatch>()
            .and_then(|w| w.report.as_ref())
    }
}

/// Repair attached to a store (see `store::layers`): corruption detected on the way to the
/// caller leaves the flag that makes the next open repair (or refuse); the store keeps the
/// report of the rebuild its open did.
#[derive(Debug, Default)]
pub(crate) struct CorruptionWatch {
    pub report: Option<RepairReport>,
}

impl Layer for CorruptionWatch {
    fn corruption(&self, db: &Path, err: &Error) {
        set_flag(db, err);
    }
}

/// Opens the store, rebuilding it first when it is corrupted and `allow_rebuild` is set.
pub(crate) fn open_or_repair(config: StoreConfig) -> Result<RdbStore> {
    let db = config.path().to_path_buf();
    if !config.read_only {
        // A restore killed in its swap: finished (or undone) before anything opens the file.
        crate::backup::finish_interrupted(&db);
    }
    // A pending repair comes first: the file at the path may be the damaged one (no longer
    // flagged as such if the flag is in quarantine already), and an open must never create a
    // new store over it.
    if journal::pending(&db) {
        if !config.allow_rebuild {
            return Err(journal::pending_error(&db, config.kind));
        }
        return rebuild_and_open(config);
    }
    // A missing or empty file is never taken for "no store yet" where a store left traces,
    // nor by an open that only looks (see `evidence`).
    match evidence::at_path(&db, &naming::default_dir(&config)) {
        AtPath::Lost { .. } | AtPath::Empty if config.allow_rebuild => {
            return rebuild_and_open(config);
        }
        // Deleted to be made again by the application: the clock file carries its clock.
        AtPath::Lost { deleted: true, .. } if !config.for_recovery && !config.read_only => {}
        AtPath::Lost {
            empty_file, traces, ..
        } => {
            return Err(evidence::lost_error(&db, empty_file, &traces, config.kind));
        }
        AtPath::Empty if config.for_recovery || config.read_only => {
            return Err(evidence::empty_error(&db, config.kind));
        }
        AtPath::File | AtPath::Nothing | AtPath::Empty => {}
    }
    if let Some(flag) = read_flag(&db).filter(|_| !config.for_recovery) {
        if !config.allow_rebuild {
            return Err(Error::Corrupted {
                path: db,
                detail: format!(
                    "marked corrupted since {} ({}); run `peerlite repair` to rebuild it",
                    flag.detected_at, flag.detail
                ),
                sqlite: None,
                kind: config.kind,
            });
        }
        // Only proven corruption may lead to a rebuild: a wrong key, a locked or missing file
        // is reported as it is, and the database is left alone.
        match soundness(&config)? {
            Soundness::Sound => {
                tracing::info!(
                    ?db,
                    "the corruption flag is stale: the file checks out; clearing it"
                );
                clear_flag(&db);
                return open_as_is(config, None);
            }
            Soundness::Damaged => return rebuild_and_open(config),
        }
    }
    match open_as_is(config.clone(), None).map_err(|e| proven_damage(&config, e)) {
        Ok(store) => Ok(store),
        Err(e) if e.is_corruption() => {
            set_flag(&db, &e);
            if config.allow_rebuild {
                rebuild_and_open(config)
            } else {
                Err(e)
            }
        }
        // A restore over a store that cannot be opened (a chosen backup): the store is
        // replaced either way, so what keeps it from opening — damaged identity rows, or a key
        // that cannot be proven on its damaged file but opens the chosen backup (verified with
        // it before anything is touched) — does not stop it; its files go to quarantine.
        Err(e)
            if config.allow_rebuild
                && config.rebuild_from.is_some()
                && (matches!(e, Error::OwnObjectsDamaged { .. })
                    || (matches!(e, Error::WrongKey { .. }) && config.key.is_some())) =>
        {
            rebuild_and_open(config)
        }
        Err(e) => Err(e),
    }
}

enum Soundness {
    Sound,
    Damaged,
}

/// Whether the file is really damaged: it opens with the key and passes `integrity_check`, or
/// it is corrupted. Any other failure (wrong key, permissions) is returned as an error.
fn soundness(config: &StoreConfig) -> Result<Soundness> {
    let checked = connection::open_file(config.path(), config.key.as_ref())
        .and_then(|conn| problems(&conn, CheckMode::Full, config.key.is_some(), config.path()))
        .map_err(|e| proven_damage(config, e));
    match checked {
        Ok(p) if p.is_empty() => Ok(Soundness::Sound),
        Ok(_) => Ok(Soundness::Damaged),
        Err(e) if e.is_corruption() => Ok(Soundness::Damaged),
        Err(e) => Err(e),
    }
}

/// A wrong-key error for a key its store's backups prove right (see `keys`) is what it is:
/// the store's header is damaged.
fn proven_damage(config: &StoreConfig, e: Error) -> Error {
    let (Error::WrongKey { .. }, Some(key)) = (&e, &config.key) else {
        return e;
    };
    match keys::proven_elsewhere(config.path(), key, &naming::default_dir(config)) {
        Some(how) => Error::Corrupted {
            path: config.path().to_path_buf(),
            detail: how,
            sqlite: None,
            kind: config.kind,
        },
        None => e,
    }
}

fn rebuild_and_open(config: StoreConfig) -> Result<RdbStore> {
    let Some(report) = rebuild::rebuild(&config).map_err(|e| e.for_store(config.kind))? else {
        // Another repair finished it while this one waited.
        return open_as_is(config, None);
    };
    // Reported to the caller too (`rebuilt()`, `repair_report()`).
    tracing::info!(path = ?config.path(), status = ?report.status, backup = ?report.backup, "rebuilt a corrupted store");
    open_as_is(config, Some(report))
}
