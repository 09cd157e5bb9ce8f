//! Online backup, verified restore, listing, deletion and retention — one mechanism for both
//! stores (a key-value store is a relational store underneath).
//!
//! A backup is written as `NAME.tmp` from one pinned read snapshot (writers are never blocked
//! and the copy never restarts), flushed, `quick_check`ed, hashed, described by
//! `NAME.manifest.json`, and only then renamed into place. It is a normal SQLite database (or
//! SQLCipher, with the store's key) that the `sqlite3` shell opens.
//!
//! ```
//! use peerlite::{bucket, RdbStore, StoreConfig};
//!
//! let dir = tempfile::tempdir()?;
//! let store = RdbStore::open(StoreConfig::new(dir.path().join("RdbTest.db")))?;
//! store.execute("CREATE TABLE EMPLOYEE (ID INTEGER PRIMARY KEY, NAME TEXT)", &[])?;
//! store.insert("EMPLOYEE", &bucket! { "NAME" => "Lisa" })?;
//! let info = store.backup("Backup.db")?;
//! assert_eq!(info.restarts, 0);
//!
//! store.execute("DELETE FROM EMPLOYEE", &[])?; // an accident
//! store.restore("Backup.db")?;
//! let rs = store.query_sql("SELECT NAME FROM EMPLOYEE", &[])?;
//! assert_eq!(rs.row_count()?, 1);
//! assert_eq!(store.backups()?.iter().filter(|b| b.name == "Backup.db").count(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod auto;
mod catalog;
mod copy;
mod holders;
mod manifest;
pub(crate) use manifest::write_atomically as write_file_atomically;
pub(crate) mod naming;

/// A time (ms since the Unix epoch) as RFC 3339 in UTC with milliseconds, as backups show it:
/// `2026-11-21T08:01:02.123Z`.
///
/// ```
/// assert_eq!(peerlite::backup::format_utc_ms(0), "1970-01-01T00:00:00.000Z");
/// ```
pub fn format_utc_ms(ms: u64) -> String {
    naming::rfc3339(ms)
}
mod pacing;
mod restore;
mod swap;
mod verify;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

pub use auto::AutoBackup;
pub use copy::{Progress, StepStats};
pub use manifest::{CHECKED, Manifest};
pub use naming::{AUTO_PREFIX, PRE_RESTORE, default_backup_name};
pub use restore::{RestoreReport, RestoreRequest, RestoreTimings};

pub(crate) use auto::{AutoState, backup_now as auto_backup_now};
pub(crate) use catalog::{clean_tmp, keep_pre_restore, list_backups, manifests};
pub(crate) use copy::{open_destination, pin_snapshot, run_steps};
pub(crate) use manifest::{checksum_file, sync_dir, write_synced as write_synced_file};
pub(crate) use swap::finish_interrupted;

/// Verifies a backup fully (checksum and `integrity_check` with the key): a repair proves the
/// backup it installs, and the key, before anything is made.
pub(crate) fn verify_backup(path: &Path, key: Option<&crate::EncryptionKey>) -> Result<Manifest> {
    verify::verify(path, key, verify::Depth::Full).map(|v| v.manifest)
}

use crate::error::{Error, Result};
use crate::store::connection::{self, Role};
use crate::store::{RdbStore, meta};

/// The default backup directory of the database at `db`: `backup/<file name>/` beside it.
pub fn backup_dir_of(db: &Path) -> PathBuf {
    naming::default_dir(&crate::StoreConfig::new(db))
}

/// Pages copied per step: large enough to be fast, small enough for smooth progress.
const DEFAULT_PAGES_PER_STEP: i32 = 1024;

/// One backup, as listed or just taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupInfo {
    /// The backup's name (its file name).
    pub name: String,
    /// The backup file.
    pub path: PathBuf,
    /// When its snapshot was taken (ms since the Unix epoch).
    pub created_at_ms: u64,
    /// The same instant, RFC 3339.
    pub created: String,
    /// File size in bytes.
    pub size_bytes: u64,
    /// Pages copied.
    pub page_count: u64,
    /// Schema version in the backup (`user_version`, signed as SQLite keeps it).
    pub version: i64,
    /// `blake3:<hex>` of the file.
    pub checksum: String,
    /// Encrypted with the store's key.
    pub encrypted: bool,
    /// One of peerlite's automatic backups.
    pub automatic: bool,
    /// Checked when listed: the manifest is present and the file has the size and the
    /// modification time recorded when the backup was checksummed — or, when only the time
    /// differs (a copy, or a file written since), its checksum matches. A file changed in place
    /// is never shown as verified. Restore checks the checksum again (and runs
    /// `integrity_check` when asked to, or when the manifest does not say the backup passed
    /// `quick_check` before it was written).
    pub verified: bool,
    /// Why it is not verified (`None` when it is): the manifest is missing or unreadable, or
    /// the file changed since it was checksummed. A file in the backup folder without a
    /// manifest is listed all the same (its time is the file's, its version read from a
    /// plaintext header), so nothing there is hidden; restore refuses it.
    pub problem: Option<String>,
    /// Restarts while copying (always 0: the copy reads one pinned snapshot). 0 when listed.
    pub restarts: u32,
}

impl BackupInfo {
    fn from_manifest(path: PathBuf, m: &Manifest, on_disk: Option<&std::fs::Metadata>) -> Self {
        let size_on_disk = on_disk.map(std::fs::Metadata::len);
        let mtime_matches = match (m.file_mtime_ns, on_disk) {
            (Some(recorded), Some(meta)) => manifest::mtime_ns(meta) == Some(recorded),
            (None, _) => true,
            (Some(_), None) => false,
        };
        BackupInfo {
            name: m.name.clone(),
            path,
            created_at_ms: m.created_at_ms,
            created: m.created.clone(),
            size_bytes: size_on_disk.unwrap_or(0),
            page_count: m.page_count,
            version: m.user_version,
            checksum: m.checksum.clone(),
            encrypted: m.encrypted,
            automatic: m.automatic,
            verified: size_on_disk == Some(m.file_size) && mtime_matches,
            problem: None,
            restarts: 0,
        }
    }
}

/// What to back up to, and how to report on the way.
pub struct BackupRequest<'a> {
    name: String,
    dir: Option<PathBuf>,
    pages_per_step: i32,
    progress: Option<&'a mut dyn FnMut(Progress)>,
    cancel: Option<&'a AtomicBool>,
    automatic: bool,
}

impl std::fmt::Debug for BackupRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackupRequest")
            .field("name", &self.name)
            .field("dir", &self.dir)
            .finish()
    }
}

impl<'a> BackupRequest<'a> {
    /// A backup called `name` (a plain file name) in the store's backup directory.
    pub fn named(name: impl Into<String>) -> Self {
        BackupRequest {
            name: name.into(),
            dir: None,
            pages_per_step: DEFAULT_PAGES_PER_STEP,
            progress: None,
            cancel: None,
            automatic: false,
        }
    }

    /// A backup at exactly this path (any directory).
    ///
    /// # Errors
    /// 14800010 when the path has no file name.
    pub fn at_path(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| Error::InvalidPath {
                path: path.to_path_buf(),
                reason: "a backup path must end in a file name".into(),
            })?;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Ok(BackupRequest::named(name).dir(dir))
    }

    /// Writes into `dir` instead of the store's backup directory.
    #[must_use]
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Copies this many pages per step (default 1024).
    #[must_use]
    pub fn pages_per_step(mut self, pages: i32) -> Self {
        self.pages_per_step = pages.max(1);
        self
    }

    /// Called after every step with the pages remaining and the total.
    #[must_use]
    pub fn on_progress(mut self, progress: &'a mut dyn FnMut(Progress)) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Stops the backup between two steps once `flag` is set; nothing is left behind.
    #[must_use]
    pub fn cancel_when(mut self, flag: &'a AtomicBool) -> Self {
        self.cancel = Some(flag);
        self
    }

    pub(crate) fn automatic(mut self) -> Self {
        self.automatic = true;
        self
    }
}

/// The outcome of deleting one backup.
#[derive(Debug)]
pub struct DeleteResult {
    /// The name asked for.
    pub name: String,
    /// `Ok` when deleted; 17020001 missing, 17020006 reserved, 14800010 not a plain name.
    pub result: Result<()>,
}

impl RdbStore {
    /// Backs the store up to `name` in its backup directory (`backup/<file>/` beside it).
    ///
    /// # Errors
    /// 14800010 for a name that is not a plain file name; 17020006 for a reserved name;
    /// SQLite's errors (14800029 disk full, 14800028 I/O) — a failed backup leaves no file.
    pub fn backup(&self, name: &str) -> Result<BackupInfo> {
        self.backup_with(BackupRequest::named(name))
    }

    /// Backs the store up as the request says (directory, progress, cancellation).
    pub fn backup_with(&self, mut request: BackupRequest<'_>) -> Result<BackupInfo> {
        if request.automatic {
            naming::check_name(&request.name)?;
        } else {
            naming::check_user_name(&request.name)?;
        }
        take_backup(self, &mut request)
    }

    /// Every backup in the store's backup directory, newest first.
    pub fn backups(&self) -> Result<Vec<BackupInfo>> {
        self.inner.ensure_open()?;
        list_backups(&naming::default_dir(&self.inner.config))
    }

    /// The backups of the store `config` describes, newest first, without opening it: they
    /// can be listed however damaged (or lost) the store is. What killed backups left behind
    /// is cleaned up first, as an open does (a manifest set aside is put back).
    ///
    /// # Errors
    /// 17000002 when the backup directory cannot be read.
    pub fn backups_of(config: &crate::StoreConfig) -> Result<Vec<BackupInfo>> {
        let dir = naming::default_dir(config);
        // A restore killed after its swap left the replaced data to be installed as
        // `pre-restore`: that comes before the folder's leftovers are cleaned.
        swap::finish_interrupted(config.path());
        clean_tmp(&dir);
        list_backups(&dir)
    }

    /// Deletes backups by name; one result per name, as ArkData's `deleteBackup` returns
    /// `[name, result]` pairs. Automatic backups are refused (peerlite prunes them).
    pub fn delete_backup(&self, names: &[&str]) -> Vec<DeleteResult> {
        let dir = naming::default_dir(&self.inner.config);
        names
            .iter()
            .map(|n| DeleteResult {
                name: (*n).to_owned(),
                result: catalog::delete(&dir, n),
            })
            .collect()
    }
}

/// Takes a verified backup: copy to `NAME.tmp`, flush, `quick_check`, hash, manifest, rename.
fn take_backup(store: &RdbStore, request: &mut BackupRequest<'_>) -> Result<BackupInfo> {
    let inner = &store.inner;
    inner.ensure_open()?;
    let config = &inner.config;
    let dir = request
        .dir
        .clone()
        .unwrap_or_else(|| naming::default_dir(config));
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("creating backup directory", &dir, e))?;
    let target = dir.join(&request.name);
    let tmp = naming::unique_tmp_path(&target);
    let manifest_target = naming::manifest_path(&target);
    let manifest_tmp = naming::unique_tmp_path(&manifest_target);
    let cleanup = || {
        let _ = std::fs::remove_file(&manifest_tmp);
        for suffix in ["", "-journal", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", tmp.display()));
        }
    };
    let created_at_ms = naming::now_ms();
    let result = (|| -> Result<BackupInfo> {
        let snapshot = connection::open(config, Role::Snapshot)?;
        pin_snapshot(&snapshot, config.path())?;
        let src_path = config.path();
        let user_version: i64 = snapshot
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| Error::from_sqlite(e, src_path))?;
        let store_id = meta::get(&snapshot, "store_id")
            .map_err(|e| Error::from_sqlite(e, src_path))?
            .unwrap_or_default();
        let schema_hash = manifest::schema_hash(&snapshot, src_path)?;
        let store_salt = match config.key {
            Some(_) => snapshot
                .query_row("PRAGMA cipher_salt", [], |r| r.get::<_, String>(0))
                .ok(),
            None => None,
        };
        let mut ignore = |_: Progress| {};
        let progress: &mut dyn FnMut(Progress) = match request.progress.as_mut() {
            Some(p) => &mut **p,
            None => &mut ignore,
        };
        // Declared before the destination connection so it is dropped after it.
        let mut pacer;
        let mut dst = open_destination(&tmp, config.key.as_ref())?;
        pacer = pacing::Pacer::new(src_path, &tmp, request.pages_per_step);
        let mut step_done = |p: Progress| {
            progress(p);
            Some(pacer.after_step())
        };
        let stats = run_steps(
            &snapshot,
            &mut dst,
            request.pages_per_step,
            &mut step_done,
            request.cancel,
            &tmp,
        )?;
        let _ = snapshot.execute_batch("COMMIT");
        drop(snapshot);
        // A standalone file: rollback-journal mode, so the shell needs no -wal beside it.
        dst.query_row("PRAGMA journal_mode=DELETE", [], |_| Ok(()))
            .map_err(|e| Error::from_sqlite(e, &tmp))?;
        let page_size = page_size(&dst).map_err(|e| Error::from_sqlite(e, &tmp))?;
        dst.close().map_err(|(_, e)| Error::from_sqlite(e, &tmp))?;
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::io("syncing", &tmp, e))?;
        // Verify: quick_check and the checksum read the copy independently; alone on the
        // machine they run side by side, but never compete with someone else's commits.
        let (checked, summed) = if pacer.saw_writers() {
            (quick_check(&tmp, config), checksum_file(&tmp))
        } else {
            std::thread::scope(|scope| {
                let summing = scope.spawn(|| checksum_file(&tmp));
                let checked = quick_check(&tmp, config);
                let summed = summing.join().unwrap_or_else(|_| {
                    Err(Error::io(
                        "hashing",
                        &tmp,
                        std::io::Error::other("the hashing thread panicked"),
                    ))
                });
                (checked, summed)
            })
        };
        checked?;
        let (checksum, file_size) = summed?;
        let manifest = Manifest {
            format: manifest::FORMAT,
            name: request.name.clone(),
            created_at_ms,
            created: naming::rfc3339(created_at_ms),
            source: src_path.display().to_string(),
            store_id,
            kind: kind_name(config.kind).to_owned(),
            user_version,
            page_size,
            page_count: stats.page_count,
            file_size,
            checksum,
            file_mtime_ns: std::fs::metadata(&tmp)
                .ok()
                .as_ref()
                .and_then(manifest::mtime_ns),
            schema_hash,
            encrypted: config.key.is_some(),
            store_salt,
            automatic: request.automatic,
            peerlite_version: env!("CARGO_PKG_VERSION").to_owned(),
            // Written only now that quick_check passed: with the checksum, proof enough
            // for a restore (which still runs integrity_check when asked).
            checked: Some(manifest::CHECKED.to_owned()),
        };
        manifest.write(&manifest_tmp)?;
        install(&tmp, &target, &manifest_tmp)?;
        let on_disk = std::fs::metadata(&target).ok();
        let mut info = BackupInfo::from_manifest(target.clone(), &manifest, on_disk.as_ref());
        info.restarts = stats.restarts;
        Ok(info)
    })();
    if result.is_err() {
        cleanup();
    }
    let info = result.map_err(|e| inner.observe_error(e))?;
    checkpoint_if_idle(store);
    if request.dir.is_none() {
        let keep = if request.automatic {
            Some(config.max_auto_backups)
        } else {
            config.max_backups
        };
        if let Some(keep) = keep {
            catalog::prune(&dir, request.automatic, keep)?;
        }
    }
    Ok(info)
}

/// Puts a finished backup `tmp` and its manifest `manifest_tmp` in place as `target`, and
/// syncs the directory.
///
/// Replacing a backup of the same name: its manifest is set aside first, so no crash or
/// failed rename can leave a manifest describing other data (listed as verified, failing
/// restore). Until the new manifest lands both manifests are on disk under temporary names;
/// if the process dies in between, the next open puts back the one whose checksum matches
/// the data under the name (`catalog::clean_tmp`).
pub(crate) fn install(tmp: &Path, target: &Path, manifest_tmp: &Path) -> Result<()> {
    let dir = target.parent().unwrap_or(Path::new("."));
    let manifest_target = naming::manifest_path(target);
    let retired = naming::unique_tmp_path(&manifest_target);
    match std::fs::rename(&manifest_target, &retired) {
        Ok(()) => sync_dir(dir)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("replacing the manifest of", &manifest_target, e)),
    }
    let installed = std::fs::rename(tmp, target)
        .map_err(|e| Error::io("renaming backup into place", target, e))
        .and_then(|()| {
            std::fs::rename(manifest_tmp, &manifest_target)
                .map_err(|e| Error::io("renaming manifest into place", &manifest_target, e))
        });
    if installed.is_err() {
        // Whichever rename failed, one of the two manifests describes the data under the
        // name now.
        catalog::reinstate_manifest(target, &[retired.as_path(), manifest_tmp]);
    }
    installed?;
    let _ = std::fs::remove_file(&retired);
    sync_dir(dir)
}

/// `PRAGMA page_size`; SQLCipher answers it as text on a keyed connection.
pub(crate) fn page_size(conn: &rusqlite::Connection) -> rusqlite::Result<u32> {
    conn.query_row("PRAGMA page_size", [], |r| match r.get_ref(0)? {
        rusqlite::types::ValueRef::Integer(n) => Ok(n as u32),
        rusqlite::types::ValueRef::Text(t) => {
            Ok(String::from_utf8_lossy(t).trim().parse().unwrap_or(0))
        }
        _ => Ok(0),
    })
}

pub(crate) fn kind_name(kind: crate::StoreKind) -> &'static str {
    match kind {
        crate::StoreKind::Relational => "relational",
        crate::StoreKind::KeyValue => "key_value",
    }
}

/// `PRAGMA quick_check` on a backup file; anything but "ok" fails the backup.
/// A copy is page-for-page the source, so a copy that fails it means the SOURCE is damaged:
/// that is reported (and flagged) as the database's corruption, not the backup's.
fn quick_check(path: &Path, config: &crate::StoreConfig) -> Result<()> {
    let conn = connection::open_file(path, config.key.as_ref())?;
    let problems: Vec<String> = conn
        .prepare("PRAGMA quick_check(10)")
        .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
        .map_err(|e| Error::from_sqlite(e, path))?;
    if problems != ["ok"] {
        let flat: Vec<String> = problems
            .iter()
            .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        return Err(Error::Corrupted {
            path: config.path().to_path_buf(),
            detail: format!(
                "a page-for-page copy of it fails quick_check: {}",
                flat.join("; ")
            ),
            sqlite: None,
            kind: config.kind,
        });
    }
    Ok(())
}

/// Moves the WAL's frames into the database once the snapshot is released, unless the writer
/// is busy (then the next automatic checkpoint does it).
fn checkpoint_if_idle(store: &RdbStore) {
    if let Ok(guard) = store.inner.writer.try_lock()
        && let Some(writer) = guard.as_ref()
        && let Err(e) = writer.conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE)")
    {
        tracing::debug!(%e, "checkpoint after backup did not run");
    }
}
