//! `NAME.reset.lock` beside the database, held by a running client reset (the kernel drops it
//! with a killed process). A second reset of the store while one runs is refused, never run
//! beside it (the two would share one seed and install a half-pulled copy); so are a restore
//! and a repair, which the reset's install would silently undo. It lives here, below the
//! reset, backup and repair modules that take it.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

fn lock_path(db: &Path) -> PathBuf {
    let mut os = db.as_os_str().to_owned();
    os.push(".reset.lock");
    PathBuf::from(os)
}

/// The lock, held: 17040015 for anyone else who wants it meanwhile.
#[derive(Debug)]
pub(crate) struct RunningReset(std::fs::File);

impl RunningReset {
    /// Takes the lock of the store at `db`, without waiting.
    ///
    /// # Errors
    /// 17040015 while a reset (or a restore or repair) of the store holds it; I/O errors.
    pub(crate) fn take(db: &Path) -> Result<RunningReset> {
        let path = lock_path(db);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io("opening the reset lock", &path, e))?;
        Self::locked(file, db, &path)
    }

    /// [`take`](Self::take) for an operation a running reset would undo (a restore, a
    /// repair), when a reset ever ran here: the lock file is made by the first reset and left
    /// in place, so a store that never had one gets no file beside it (and no lock: a first
    /// reset beginning in the middle of a restore is not caught).
    pub(crate) fn hold_if_any(db: &Path) -> Result<Option<RunningReset>> {
        let path = lock_path(db);
        match std::fs::OpenOptions::new().write(true).open(&path) {
            Ok(file) => Self::locked(file, db, &path).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("opening the reset lock", &path, e)),
        }
    }

    fn locked(file: std::fs::File, db: &Path, path: &Path) -> Result<RunningReset> {
        match file.try_lock() {
            Ok(()) => Ok(RunningReset(file)),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::ResetRunning {
                path: db.to_path_buf(),
            }),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(Error::io("taking the reset lock", path, e))
            }
        }
    }
}

impl Drop for RunningReset {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}
