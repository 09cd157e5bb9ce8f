//! Crash-safe writes of the small private files in a device home.
//!
//! Every file is written to a temporary name in the same directory (mode 0600), fsynced, then
//! moved into place and the directory fsynced: a crash leaves the old file or the new one, never
//! half of one. The key uses a hard link instead of a rename, which fails when the target exists,
//! so a key is never replaced even by two inits racing.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};

use crate::error::{Error, Result};

/// Creates `dir` (and its parents) as 0700, or narrows an existing one to 0700: it holds a key.
pub(crate) fn create_private_dir(dir: &Path) -> Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(0o700);
    builder
        .create(dir)
        .map_err(|e| Error::io("create directory", dir, e))?;
    #[cfg(unix)]
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .map_err(|e| Error::io("set permissions of", dir, e))?;
    Ok(())
}

/// Replaces `path` with `bytes` atomically (temp + fsync + rename + fsync of the directory).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = write_temp(path, bytes)?;
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io("replace", path, e));
    }
    sync_parent(path)
}

/// Creates `path` with `bytes` unless it exists; `Ok(false)` when it existed (nothing written).
pub(crate) fn write_new(path: &Path, bytes: &[u8]) -> Result<bool> {
    let tmp = write_temp(path, bytes)?;
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => sync_parent(path).map(|()| true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(Error::io("create", path, e)),
    }
}

/// Reads a file; `Ok(None)` when it does not exist.
pub(crate) fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", path, e)),
    }
}

fn write_temp(path: &Path, bytes: &[u8]) -> Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let result = options.open(&tmp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    match result {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(Error::io("write", &tmp, e))
        }
    }
}

fn sync_parent(path: &Path) -> Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)
        .and_then(|dir| dir.sync_all())
        .map_err(|e| Error::io("sync directory", parent, e))
}

/// The permission bits of `path` (unix), for warnings about keys others can read.
#[cfg(unix)]
pub(crate) fn mode_of(path: &Path) -> Option<u32> {
    fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o777)
}

/// Refuses `path` when group or others may write it: a file (or the directory holding it)
/// that decides whom this device trusts, or who it is, must be changed only by its owner.
pub(crate) fn refuse_shared_write(path: &Path, what: &'static str) -> Result<()> {
    #[cfg(unix)]
    if let Some(mode) = mode_of(path).filter(|m| m & 0o022 != 0) {
        return Err(crate::Error::UnsafePermissions {
            path: path.to_path_buf(),
            mode,
            what,
        });
    }
    let _ = (path, what);
    Ok(())
}

/// Refuses `dir` when a directory above it may be written by others and is not sticky: any
/// user could rename `dir` away and put a home of their own in its place (their trust store,
/// their level). A sticky directory (`/tmp`) lets only a file's owner rename it, so it is fine.
/// Group-writable parents are not refused (a user-private group is common); the home itself,
/// its key, record and trust store are checked for group and others.
pub(crate) fn refuse_open_parents(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        let Ok(real) = fs::canonicalize(dir) else {
            return Ok(());
        };
        // One step per path component: bounded.
        for parent in real.ancestors().skip(1) {
            let Ok(meta) = fs::metadata(parent) else {
                continue;
            };
            let mode = meta.permissions().mode();
            if mode & 0o002 != 0 && mode & 0o1000 == 0 {
                return Err(crate::Error::UnsafePermissions {
                    path: parent.to_path_buf(),
                    mode: mode & 0o7777,
                    what: "a directory that holds the home (anyone could put another home in its place)",
                });
            }
        }
    }
    let _ = dir;
    Ok(())
}
