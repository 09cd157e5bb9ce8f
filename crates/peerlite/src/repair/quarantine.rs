//! Setting damaged files aside. Nothing is ever deleted: the files go into
//! `quarantine/<file>-<UTC time>/` beside the database, where they can be inspected or
//! recovered by other tools.
//!
//! A repair hard-links them there (no second copy on disk, and the database path never
//! stands empty: the repaired file replaces the damaged one by one atomic rename). Where the
//! file system refuses links, they are moved, and the repair journal covers the moment the
//! path is empty.

use std::path::{Path, PathBuf};

use crate::backup::naming::with_suffix;
use crate::backup::{naming, sync_dir};
use crate::error::{Error, Result};

/// The files beside a database that belong to it.
pub(crate) const SIDE_FILES: [&str; 2] = ["-wal", "-shm"];

fn parent(db: &Path) -> &Path {
    db.parent().unwrap_or(Path::new(""))
}

pub(crate) fn file_name(db: &Path) -> String {
    db.file_name()
        .and_then(|f| f.to_str())
        .unwrap_or("database")
        .to_owned()
}

/// `quarantine/` beside the database.
pub(crate) fn root(db: &Path) -> PathBuf {
    parent(db).join("quarantine")
}

/// Creates a new, empty quarantine folder for `db` (synced into its parents). Empty folders
/// of repairs killed before they wrote their journal are removed first.
pub(crate) fn new_dir(db: &Path) -> Result<PathBuf> {
    let root = root(db);
    let prefix = format!("{}-", file_name(db));
    if let Ok(entries) = std::fs::read_dir(&root) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                // Fails (and keeps it) unless it is empty.
                let _ = std::fs::remove_dir(entry.path());
            }
        }
    }
    let stamp = naming::stamped(&prefix, naming::now_ms());
    let mut dir = root.join(&stamp);
    let mut n = 1;
    while dir.exists() {
        dir = root.join(format!("{stamp}-{n}"));
        n += 1;
    }
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("creating quarantine folder", &dir, e))?;
    sync_dir(&root)?;
    sync_dir(parent(db))?;
    Ok(dir)
}

/// What a failed link means.
pub(crate) enum LinkError {
    /// The file system does not do hard links here: move the files instead.
    Unsupported(std::io::Error),
    Failed(Error),
}

/// Hard-links the database and its side files into `dir`, each unless already there. The
/// damaged files stay where they are too, so the store at the path is unchanged.
pub(crate) fn link_all(db: &Path, dir: &Path) -> std::result::Result<(), LinkError> {
    let file = file_name(db);
    for suffix in std::iter::once("").chain(SIDE_FILES) {
        let from = with_suffix(db, suffix);
        let to = dir.join(format!("{file}{suffix}"));
        if to.exists() || !from.exists() {
            continue;
        }
        match std::fs::hard_link(&from, &to) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) if link_unsupported(&e) => return Err(LinkError::Unsupported(e)),
            Err(e) => {
                return Err(LinkError::Failed(Error::io(
                    "linking a damaged file into quarantine",
                    &from,
                    e,
                )));
            }
        }
    }
    sync_dir(dir).map_err(LinkError::Failed)
}

fn link_unsupported(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{CrossesDevices, PermissionDenied, Unsupported};
    matches!(e.kind(), Unsupported | PermissionDenied | CrossesDevices)
        || e.raw_os_error() == Some(1) // EPERM: file systems without hard links (FAT, some FUSE)
}

/// Moves `from` to `to` unless `to` exists already; syncs both directories.
pub(crate) fn move_file(from: &Path, to: &Path) -> Result<()> {
    if to.exists() || !from.exists() {
        return Ok(());
    }
    std::fs::rename(from, to)
        .map_err(|e| Error::io("moving a damaged file into quarantine", from, e))?;
    if let Some(dir) = to.parent() {
        sync_dir(dir)?;
    }
    sync_dir(parent(from))
}

/// Takes the database's WAL and shared-memory files off the path (they are in `dir`
/// already when linked; moved there otherwise), so no stale WAL is ever applied to the
/// database that replaces the damaged one. Synced before it returns.
pub(crate) fn clear_side_files(db: &Path, dir: &Path) -> Result<()> {
    let file = file_name(db);
    for suffix in SIDE_FILES {
        let side = with_suffix(db, suffix);
        let kept = dir.join(format!("{file}{suffix}"));
        if !side.exists() {
            continue;
        }
        if kept.exists() {
            std::fs::remove_file(&side).map_err(|e| Error::io("removing", &side, e))?;
        } else {
            std::fs::rename(&side, &kept)
                .map_err(|e| Error::io("moving a damaged file into quarantine", &side, e))?;
        }
    }
    sync_dir(dir)?;
    sync_dir(parent(db))
}

/// Copies the database and its side files into a new quarantine folder (each under a
/// temporary name, renamed once complete): for a restore over a corrupted store, whose own
/// connections keep the file open and write the restored pages into it. A failure leaves no
/// folder behind.
pub(crate) fn copy_aside(db: &Path) -> Result<PathBuf> {
    let dir = new_dir(db)?;
    let copied = (|| {
        let file = file_name(db);
        for suffix in std::iter::once("").chain(SIDE_FILES).chain([".corrupt"]) {
            let from = with_suffix(db, suffix);
            if !from.exists() {
                continue;
            }
            let to = dir.join(format!("{file}{suffix}"));
            let tmp = with_suffix(&to, ".tmp");
            let done = std::fs::copy(&from, &tmp)
                .and_then(|_| std::fs::File::open(&tmp)?.sync_all())
                .and_then(|()| std::fs::rename(&tmp, &to));
            if let Err(e) = done {
                let _ = std::fs::remove_file(&tmp);
                return Err(Error::io(
                    "copying a damaged file into quarantine",
                    &from,
                    e,
                ));
            }
        }
        sync_dir(&dir)
    })();
    if let Err(e) = copied {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(e);
    }
    Ok(dir)
}
