//! Restore: prove the backup intact first (`verify`), then replace the database so that other
//! connections and processes see the old state or the new one, never a mix, and a crash at
//! any point leaves one of the two. Alone with the store, by moving files (`swap`: each page
//! written once); otherwise through the store's own writer in ONE transaction, after a
//! `pre-restore` copy of the data it replaces, followed by a checkpoint.

use std::path::{Path, PathBuf};

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use super::copy::{Progress, run_steps, run_steps_locked};
use super::manifest::Manifest;
use super::verify::{Depth, verify};
use super::{BackupRequest, kind_name, naming};
use crate::StoreKind;
use crate::error::{Error, Result};
use crate::open::{MigrationReport, OpenCallbacks};
use crate::store::connection;
use crate::store::{RdbStore, meta};

/// What to restore from, and how.
pub struct RestoreRequest<'a> {
    source: String,
    progress: Option<&'a mut dyn FnMut(Progress)>,
    migrations: Option<&'a mut dyn OpenCallbacks>,
    allow_other_store: bool,
    pages_per_step: i32,
    full_check: bool,
    cancel: Option<&'a AtomicBool>,
    /// The restore a client reset runs to install its seed: the reset holds the store's
    /// reset lock already.
    within_reset: bool,
}

impl std::fmt::Debug for RestoreRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestoreRequest")
            .field("source", &self.source)
            .field("allow_other_store", &self.allow_other_store)
            .field("full_check", &self.full_check)
            .finish()
    }
}

impl<'a> RestoreRequest<'a> {
    /// A backup name in the store's backup directory, or a path (anything with a separator).
    pub fn new(name_or_path: impl Into<String>) -> Self {
        RestoreRequest {
            source: name_or_path.into(),
            progress: None,
            migrations: None,
            allow_other_store: false,
            pages_per_step: super::DEFAULT_PAGES_PER_STEP,
            full_check: false,
            cancel: None,
            within_reset: false,
        }
    }

    /// The restore a client reset runs (it holds the reset lock itself).
    pub(crate) fn within_reset(mut self) -> Self {
        self.within_reset = true;
        self
    }

    /// Runs the full `integrity_check` of the backup before anything changes, even when its
    /// checksum matches a manifest written after the backup was checked (that match alone is
    /// the proof by default; the full check always runs when the manifest does not say so).
    #[must_use]
    pub fn full_check(mut self) -> Self {
        self.full_check = true;
        self
    }

    /// Stops the restore once `flag` is set: between two steps of the copy (the database is
    /// left as it was, its `pre-restore` copy kept) or before it starts.
    #[must_use]
    pub fn cancel_when(mut self, flag: &'a AtomicBool) -> Self {
        self.cancel = Some(flag);
        self
    }

    /// Called after every step of the copy.
    #[must_use]
    pub fn on_progress(mut self, progress: &'a mut dyn FnMut(Progress)) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Upgrades the restored data with these callbacks when the backup is older than the store
    /// (by default the migrations the store was opened with, when they were a `Migrations`).
    #[must_use]
    pub fn migrations(mut self, callbacks: &'a mut dyn OpenCallbacks) -> Self {
        self.migrations = Some(callbacks);
        self
    }

    /// Copies this many pages per step (default 1024); the copy is one transaction either way.
    #[must_use]
    pub fn pages_per_step(mut self, pages: i32) -> Self {
        self.pages_per_step = pages.max(1);
        self
    }

    /// Restores a backup taken from another database, replacing this one's data.
    #[must_use]
    pub fn allow_other_store(mut self) -> Self {
        self.allow_other_store = true;
        self
    }
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    /// The backup file restored.
    pub restored_from: PathBuf,
    /// Its schema version.
    pub backup_version: u32,
    /// The store's version afterwards.
    pub version: u32,
    /// The safety copy of the replaced data (`pre-restore`), when it was readable.
    pub pre_restore_backup: Option<PathBuf>,
    /// Where the safety copy an earlier restore took was kept (`pre-restore-<time>`), when
    /// there was one: no restore replaces the data another one kept.
    pub earlier_pre_restore: Option<PathBuf>,
    /// Where the replaced database's files were kept when it was corrupted (a backup of it
    /// could not be taken): a quarantine folder beside it, with its WAL. Rows written after
    /// the restored backup are still there, for `peerlite repair`'s salvage or other tools.
    pub quarantine: Option<PathBuf>,
    /// The upgrade run on the restored data, when the backup was older.
    pub migration: Option<MigrationReport>,
    /// Pages copied.
    pub pages: u64,
    /// `integrity_check` ran on the backup (asked for, or its manifest did not say it was
    /// checked); otherwise its checksum proved it.
    pub full_check: bool,
    /// No other connection held the store, so the replaced data was kept by moving its file
    /// (`pre-restore`) and the backup's copy put in its place; otherwise the backup was copied
    /// into the live database (one transaction) after a copy of the replaced data.
    pub swapped: bool,
    /// Why the backup was copied rather than moved (`swapped` false): another connection or
    /// process had the store open, the replaced database was damaged, the backup folder
    /// could not hold a link to it, or which processes hold it could not be told here.
    pub copied_because: Option<String>,
    /// Where the time went.
    pub timings: RestoreTimings,
}

/// The parts of a restore's time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestoreTimings {
    /// Proving the backup intact (checksum, and `integrity_check` when it ran).
    pub verify: Duration,
    /// Keeping the replaced data (`pre-restore`, or the quarantine of a damaged database).
    pub keep: Duration,
    /// Copying the backup into the database, up to its commit.
    pub copy: Duration,
    /// Moving the copied pages from the WAL into the database file.
    pub checkpoint: Duration,
}

/// The backup file for a name (in the backup directory) or a path.
fn resolve(store: &RdbStore, name_or_path: &str) -> Result<PathBuf> {
    let is_path = name_or_path.contains('/') || name_or_path.contains('\\');
    let path = if is_path {
        PathBuf::from(name_or_path)
    } else {
        naming::check_name(name_or_path)?;
        naming::default_dir(&store.inner.config).join(name_or_path)
    };
    if !path.is_file() {
        return Err(Error::BackupNotFound {
            what: path.display().to_string(),
        });
    }
    Ok(path)
}

/// Whether the manifest says of the backup file what the file itself says: its checksum
/// proves the file is the one verified when the backup was made, not that the manifest's
/// other fields were not edited since — and the restore decides by them (the store id keeps
/// another store's backup out; the version decides on migrations). Returns the file's store
/// id.
fn described_by(
    path: &Path,
    key: Option<&crate::store::EncryptionKey>,
    manifest: &Manifest,
) -> Result<String> {
    let conn = connection::open_file(path, key)?;
    let sql_err = |e| Error::from_sqlite(e, path);
    let store_id = meta::get(&conn, "store_id")
        .map_err(sql_err)?
        .unwrap_or_default();
    let user_version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sql_err)?;
    let differs = if !manifest.store_id.is_empty() && store_id != manifest.store_id {
        Some(format!(
            "its manifest names store {:?}, the file holds store {store_id:?}",
            manifest.store_id
        ))
    } else if user_version != manifest.user_version {
        Some(format!(
            "its manifest says version {}, the file is at version {user_version}",
            manifest.user_version
        ))
    } else {
        None
    };
    match differs {
        Some(reason) => Err(Error::BackupInvalid {
            path: path.to_path_buf(),
            reason: format!("{reason}: the manifest was edited"),
        }),
        None => Ok(store_id),
    }
}

impl RdbStore {
    /// Restores the backup `name_or_path` (see [`RestoreRequest::new`]).
    ///
    /// # Errors
    /// 17020001 missing; 17020002 failed verification (truncated, bit-flipped, no manifest);
    /// 17020003 newer than the store; 17020004 from another database; 14800020 wrong key;
    /// 17040015 while a client reset of the store runs (its install would undo the restore).
    /// On any of these nothing has changed.
    pub fn restore(&self, name_or_path: &str) -> Result<RestoreReport> {
        self.restore_with(RestoreRequest::new(name_or_path))
    }

    /// Restores as the request says.
    pub fn restore_with(&self, mut request: RestoreRequest<'_>) -> Result<RestoreReport> {
        let inner = &self.inner;
        inner.ensure_open()?;
        if inner.config.read_only {
            return Err(Error::ReadOnly {
                detail: "restore replaces the database".into(),
            });
        }
        // A client reset running meanwhile would install its seed over the restored data;
        // held to the end, the lock also keeps a reset from beginning during the restore.
        let _no_reset = if request.within_reset {
            None
        } else {
            crate::store::reset_lock::RunningReset::hold_if_any(inner.config.path())?
        };
        let path = resolve(self, &request.source)?;
        let started = Instant::now();
        let depth = if request.full_check {
            Depth::Full
        } else {
            Depth::Checksum
        };
        let verified = verify(&path, inner.config.key.as_ref(), depth)?;
        let verify_time = started.elapsed();
        let mut manifest = verified.manifest;
        // A manifest that names no store (written by an early build) is judged by the file's.
        manifest.store_id = described_by(&path, inner.config.key.as_ref(), &manifest)?;
        let this_kind = kind_name(inner.config.kind);
        if manifest.kind != this_kind {
            return Err(Error::BackupInvalid {
                path: path.clone(),
                reason: format!(
                    "it is a {} backup; this is a {this_kind} store",
                    manifest.kind
                ),
            });
        }
        // A negative user_version (set by another tool) is no schema version: unversioned.
        let current = u32::try_from(self.user_version()?).unwrap_or(0);
        let target = inner.config.version.unwrap_or(current).max(current);
        let backup_version = u32::try_from(manifest.user_version).unwrap_or(0);
        if backup_version > target {
            return Err(Error::BackupTooNew {
                backup: backup_version,
                store: target,
            });
        }
        let needs_upgrade = backup_version < target && backup_version > 0;
        // A copy of the store's own migrations, so nothing is taken from the store.
        let mut stored = inner
            .layer::<crate::open::layers::OpenedWith>()
            .and_then(|o| {
                o.0.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .as_ref()
                    .and_then(|m| m.boxed_clone())
            });
        let callbacks: Option<&mut dyn OpenCallbacks> = match request.migrations.as_deref_mut() {
            Some(cb) => Some(cb),
            None => stored.as_deref_mut().map(|cb| cb as &mut dyn OpenCallbacks),
        };
        // An older backup is upgraded on a scratch copy first, so a failing migration leaves
        // the live store exactly as it was: restore and upgrade are all or nothing.
        let upgraded = match (needs_upgrade, callbacks) {
            (false, _) => None,
            (true, Some(callbacks)) => Some(upgrade_copy(&path, &inner.config, target, callbacks)?),
            (true, None) => {
                return Err(Error::invalid(
                    StoreKind::Relational,
                    format!(
                        "the backup is at version {backup_version} and the store at {target}, and no migrations were \
                         given to upgrade the restored data (nothing changed)"
                    ),
                ));
            }
        };
        let source = upgraded
            .as_ref()
            .map_or(path.as_path(), |u| u.path.as_path());
        let result = self.replace_with_backup(source, &manifest, &mut request);
        let migration = upgraded.map(Upgraded::discard);
        let mut report = result?;
        report.restored_from = path;
        report.migration = migration;
        report.full_check = verified.full_check;
        report.timings.verify = verify_time;
        report.version = u32::try_from(self.user_version()?).unwrap_or(0);
        Ok(report)
    }

    fn replace_with_backup(
        &self,
        path: &Path,
        manifest: &Manifest,
        request: &mut RestoreRequest<'_>,
    ) -> Result<RestoreReport> {
        let inner = &self.inner;
        let me = crate::store::transaction::thread_token();
        if inner
            .writer_owner
            .load(std::sync::atomic::Ordering::Acquire)
            == me
        {
            return Err(Error::invalid(
                StoreKind::Relational,
                "restore inside a transaction on this store; finish it first",
            ));
        }
        let mut guard = inner
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let writer = guard.as_mut().ok_or(Error::Closed {
            what: "store",
            kind: StoreKind::Relational,
        })?;
        let db = inner.config.path();
        let sql_err = |e| Error::from_sqlite(e, db);

        let this_id = meta::get(&writer.conn, "store_id")
            .map_err(sql_err)?
            .unwrap_or_default();
        if !request.allow_other_store
            && !manifest.store_id.is_empty()
            && manifest.store_id != this_id
        {
            let user_tables: i64 = writer
                .conn
                .query_row(
                    "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE 'peerlite\\_%' ESCAPE '\\'",
                    [],
                    |r| r.get(0),
                )
                .map_err(sql_err)?;
            // A key-value store's data is its entry table, which is peerlite's own.
            let entries = crate::store::schema::table_exists(&writer.conn, crate::kv::KV_TABLE)
                .map_err(sql_err)?
                && writer
                    .conn
                    .query_row(
                        &format!("SELECT EXISTS(SELECT 1 FROM {})", crate::kv::KV_TABLE),
                        [],
                        |r| r.get::<_, bool>(0),
                    )
                    .map_err(sql_err)?;
            if user_tables > 0 || entries {
                return Err(Error::BackupOfAnotherStore {
                    backup: manifest.store_id.clone(),
                    store: this_id,
                });
            }
        }
        let page_size = super::page_size(&writer.conn).map_err(sql_err)?;
        if page_size != manifest.page_size {
            return Err(Error::BackupInvalid {
                path: path.to_path_buf(),
                reason: format!(
                    "its page size is {}, the store's is {page_size}",
                    manifest.page_size
                ),
            });
        }

        let cancelled = || {
            request
                .cancel
                .is_some_and(|c| c.load(std::sync::atomic::Ordering::Acquire))
        };
        if cancelled() {
            return Err(Error::Cancelled { what: "restore" });
        }
        let identity = crate::changes::identity::keep(&writer.conn);
        // The clock of every process writing the store went as far as the database's mark
        // (this process's own may lag far behind it): the restored database resumes past it,
        // and the clock file is not left ahead of its mark (the next open would take it for a
        // copy put back by hand).
        inner
            .sync()?
            .hlc
            .restore(crate::changes::mark::stored_mark_on(&writer.conn));
        let epoch = crate::changes::mark::before_replace(&writer.conn, db, inner.sync()?)?;
        // Alone with the store, the replaced data is kept by moving its file (see `swap`).
        let mut ignore = |_: Progress| {};
        let mut steps = super::swap::Steps {
            pages_per_step: request.pages_per_step,
            page_size,
            progress: match request.progress.as_mut() {
                Some(p) => &mut **p,
                None => &mut ignore,
            },
            cancel: request.cancel,
        };
        let swapped = super::swap::try_swap(inner, &mut guard, path, &identity, &epoch, &mut steps)
            .map_err(|e| inner.observe_error(e))?;
        let copied_because = match swapped {
            Err(why) => why,
            Ok(swapped) => {
                let timings = RestoreTimings {
                    verify: Duration::ZERO,
                    keep: swapped.keep,
                    copy: swapped.copy,
                    checkpoint: Duration::ZERO,
                };
                self.after_replace_done(guard);
                return Ok(RestoreReport {
                    restored_from: path.to_path_buf(),
                    backup_version: u32::try_from(manifest.user_version).unwrap_or(0),
                    version: u32::try_from(manifest.user_version).unwrap_or(0),
                    pre_restore_backup: Some(swapped.pre_restore),
                    earlier_pre_restore: swapped.earlier,
                    quarantine: None,
                    migration: None,
                    pages: swapped.pages,
                    full_check: false,
                    swapped: true,
                    copied_because: None,
                    timings,
                });
            }
        };
        tracing::info!(why = %copied_because, "restoring by copy");
        let writer = guard.as_mut().ok_or(Error::Closed {
            what: "store",
            kind: StoreKind::Relational,
        })?;

        // Pin the backup's content first: the safety copy below may be written over the very
        // file being restored (restoring `pre-restore` to undo a restore). Opening it with the
        // key also proves the key before anything changes.
        let source = connection::open_file(path, inner.config.key.as_ref())?;
        super::pin_snapshot(&source, path)?;
        let mut timings = RestoreTimings::default();
        // The safety copy is exactly the data being replaced: it is taken once the copy holds
        // the database's write lock, before it writes a page. Taken before the lock, a commit
        // of another process between the two would be in neither the copy nor the restored
        // database (a client reset replays such commits from this copy: it must hold them).
        // The one an earlier restore took is kept first, under a name of its own — under the
        // lock too: a restore running beside this one waits for it (or gives up) instead of
        // writing its own `pre-restore` over the one this one keeps.
        let mut kept_earlier = None;
        let mut kept: Option<PathBuf> = None;
        let mut damaged = false;
        let mut keep = || -> Result<()> {
            tracing::debug!(step = "pre-restore copy", "restore step");
            let started = Instant::now();
            kept_earlier = super::keep_pre_restore(&naming::default_dir(&inner.config))?;
            match self.backup_with(BackupRequest::named(naming::PRE_RESTORE).automatic()) {
                Ok(info) => {
                    // The replaced data's clock went as far as its last commit (maybe another
                    // process's): the restored database resumes past it.
                    let mark =
                        crate::changes::mark::stored_mark_of(&info.path, inner.config.key.as_ref());
                    inner.sync()?.hlc.restore(mark);
                    kept = Some(info.path);
                    timings.keep = started.elapsed();
                    after_pre_restore();
                    Ok(())
                }
                Err(e) if e.is_corruption() => {
                    damaged = true;
                    Err(e)
                }
                Err(e) => Err(e),
            }
        };
        let mut ignore = |_: Progress| {};
        let progress: &mut dyn FnMut(Progress) = match request.progress.as_mut() {
            Some(p) => &mut **p,
            None => &mut ignore,
        };
        // The copy goes through the WAL (one transaction: other connections see the old
        // database or the new one). Its pages are handed to the disk as they are written, so
        // the commit's fsync and the checkpoint after it find little left to write back.
        let wal = naming::with_suffix(db, "-wal");
        let mut writeback = super::pacing::Writeback::lazy(&wal);
        let mut after_step = |p: Progress| {
            progress(p);
            writeback.advance_lazy(false);
            None
        };
        let copy_error = |e| match e {
            Error::Cancelled { .. } => Error::Cancelled { what: "restore" },
            e => inner.observe_error(e),
        };
        // Under the copy's lock the safety copy reads through another connection, which only
        // WAL allows (a refused swap may have left the database out of it when it could not
        // switch back): otherwise the safety copy goes first, as before.
        let wal = in_wal(&writer.conn);
        tracing::debug!(step = "copy in", wal, "restore step");
        let started = Instant::now();
        // The whole backup into the store, once the safety copy is settled.
        let (pages_per_step, cancel) = (request.pages_per_step, request.cancel);
        let copy_all = |conn: &mut rusqlite::Connection,
                        after: &mut dyn FnMut(Progress) -> Option<i32>| {
            run_steps(&source, conn, pages_per_step, after, cancel, db)
        };
        let copied = if wal {
            run_steps_locked(
                &source,
                &mut writer.conn,
                request.pages_per_step,
                &mut after_step,
                &mut keep,
                request.cancel,
                db,
            )
        } else {
            keep().and_then(|()| copy_all(&mut writer.conn, &mut after_step))
        };
        let mut quarantine = None;
        let stats = match copied {
            Ok(stats) => {
                timings.copy = started.elapsed().saturating_sub(timings.keep);
                stats
            }
            Err(e) if damaged => {
                // The database being replaced is damaged (no backup of it can be taken): its
                // files are kept in quarantine as they are, then the copy runs. Reported to the
                // caller too (the restore report names the quarantine).
                tracing::info!(%e, "the database being replaced is damaged; keeping its files in quarantine");
                let begun = Instant::now();
                quarantine = Some(quarantine_damaged(&writer.conn, db)?);
                timings.keep = begun.elapsed();
                let started = Instant::now();
                let stats = copy_all(&mut writer.conn, &mut after_step).map_err(copy_error)?;
                timings.copy = started.elapsed();
                stats
            }
            Err(e) => return Err(copy_error(e)),
        };
        let pre_restore = kept;
        drop(source);
        // A restored database starts a new epoch: peers must not take its changes for ones
        // they have seen (its sequence numbers went back with the data). Its clock does not.
        crate::changes::mark::after_replace(&writer.conn, db, inner.sync()?, &epoch)?;
        crate::changes::identity::restore_kept(&writer.conn, &identity, db)?;
        // The restored pages go from the WAL into the database file now, as the shell's
        // `.restore` does when it closes, not in some later commit that wakes the checkpointer.
        // FULL waits only for readers of the old snapshot (never for ones of the new); then,
        // without waiting, the WAL is cut back to nothing unless a reader still uses it.
        tracing::debug!(
            step = "checkpoint",
            pages = stats.page_count,
            "restore step"
        );
        let started = Instant::now();
        checkpoint_restored(&writer.conn, inner.config.busy_timeout);
        timings.checkpoint = started.elapsed();
        writer.forget_statements();
        self.after_replace_done(guard);
        Ok(RestoreReport {
            restored_from: path.to_path_buf(),
            backup_version: u32::try_from(manifest.user_version).unwrap_or(0),
            version: u32::try_from(manifest.user_version).unwrap_or(0),
            pre_restore_backup: pre_restore,
            earlier_pre_restore: kept_earlier,
            quarantine,
            migration: None,
            pages: stats.page_count,
            full_check: false,
            swapped: false,
            copied_because: Some(copied_because),
            timings,
        })
    }

    /// Everything cached about the old database is stale once it is replaced; and whatever
    /// damage was flagged is gone with it.
    fn after_replace_done(
        &self,
        guard: std::sync::MutexGuard<'_, Option<crate::store::writer::Writer>>,
    ) {
        let inner = &self.inner;
        inner.schema.invalidate();
        inner.live.bump_generation();
        inner.readers.clear();
        drop(guard);
        crate::repair::clear_flag(inner.config.path());
    }
}

/// Test seam: runs once the `pre-restore` copy is taken, before a page of the backup is
/// written — where another connection's commit was lost (in neither the copy nor the result).
#[cfg(test)]
fn after_pre_restore() {
    tests::AFTER_PRE_RESTORE.with(|seam| {
        if let Some(f) = seam.borrow_mut().as_mut() {
            f();
        }
    });
}

#[cfg(not(test))]
fn after_pre_restore() {}

#[cfg(test)]
pub(crate) mod tests;

/// Whether the database is in WAL mode, switched back to it when it can be (a refused swap
/// may have left it in rollback mode).
fn in_wal(conn: &rusqlite::Connection) -> bool {
    let mode = |sql: &str| {
        conn.query_row(sql, [], |r| r.get::<_, String>(0))
            .is_ok_and(|m| m.eq_ignore_ascii_case("wal"))
    };
    mode("PRAGMA journal_mode") || mode("PRAGMA journal_mode=WAL")
}

/// Moves a restore's pages from the WAL into the database file (see the caller). A checkpoint
/// that cannot finish is no failure: the background checkpoint finishes it later.
fn checkpoint_restored(conn: &rusqlite::Connection, busy_timeout: Duration) {
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(FULL)", [], |_| Ok(())) {
        tracing::debug!(%e, "checkpoint after restore did not complete");
    }
    let truncated = conn
        .busy_timeout(Duration::ZERO)
        .and_then(|()| conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())));
    if let Err(e) = truncated {
        tracing::debug!(%e, "the WAL was not cut back after restore");
    }
    if let Err(e) = conn.busy_timeout(busy_timeout) {
        tracing::warn!(%e, "could not set the busy timeout back after restore");
    }
}

/// Keeps the files of a damaged database being restored over: a backup of it cannot be taken
/// (its pages do not all read), so its bytes are copied into a quarantine folder as they are.
/// The store's own connections keep the file open and the restore writes into it, so the
/// files are copied, not renamed; the copy costs the space the pre-restore backup would have.
/// A read transaction held meanwhile keeps the WAL from being reset, so the database file and
/// its WAL are copied consistent with each other. Fails (changing nothing) when they cannot
/// be copied: data written after the backup is never thrown away.
fn quarantine_damaged(conn: &rusqlite::Connection, db: &Path) -> Result<PathBuf> {
    let pinned = conn
        .execute_batch("BEGIN")
        .and_then(|()| conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(())))
        .is_ok();
    let kept = crate::repair::quarantine::copy_aside(db);
    if pinned || !conn.is_autocommit() {
        let _ = conn.execute_batch("COMMIT");
    }
    kept
}

/// A backup copy brought up to the store's version.
struct Upgraded {
    path: PathBuf,
    report: MigrationReport,
}

impl Upgraded {
    /// Deletes the scratch copy; keeps the report.
    fn discard(self) -> MigrationReport {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.path.display()));
        }
        self.report
    }
}

/// Copies the backup to a scratch file beside the backups and upgrades it there.
fn upgrade_copy(
    backup: &Path,
    config: &crate::StoreConfig,
    target: u32,
    callbacks: &mut dyn OpenCallbacks,
) -> Result<Upgraded> {
    let dir = naming::default_dir(config);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("creating backup directory", &dir, e))?;
    let path = naming::unique_tmp_path(&dir.join("restore-upgrade"));
    std::fs::copy(backup, &path)
        .map_err(|e| Error::io("copying the backup to upgrade it", &path, e))?;
    let mut scratch = config.clone();
    scratch.path = path.clone();
    scratch.version = None;
    scratch.read_only = false;
    scratch.allow_rebuild = false;
    scratch.backup_before_migration = false;
    scratch.auto_backup = None;
    scratch.backup_dir = Some(dir.join("restore-upgrade-backups"));
    let upgraded = (|| {
        let store = RdbStore::open_unversioned(scratch)?;
        let report = store.migrate(target, callbacks, false)?;
        store.close()?;
        Ok(report)
    })();
    match upgraded {
        Ok(report) => Ok(Upgraded { path, report }),
        Err(e) => {
            Upgraded {
                path,
                report: MigrationReport {
                    from: 0,
                    to: 0,
                    steps: Vec::new(),
                    dry_run: false,
                },
            }
            .discard();
            Err(e)
        }
    }
}
