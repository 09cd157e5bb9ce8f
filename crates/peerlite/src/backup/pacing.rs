//! Pacing a backup so that it is fast when it is alone and polite when it is not.
//!
//! Linux keeps written pages dirty until a threshold (gigabytes on a large machine), so a
//! 1 GiB backup used to end in one fsync that saturated the disk: every other writer's commit
//! (its own fsync) queued behind it for hundreds of milliseconds. After each step the pacer
//! starts writeback of what was copied (`sync_file_range`, RocksDB's `bytes_per_sync`), so that
//! burst never forms. And it watches the source's WAL: while other connections commit (the
//! WAL grows; our pinned snapshot keeps it from being reset), it copies in small steps and
//! waits for each one's writeback, keeping the disk queue short for their commits. It starts
//! gentle and speeds up once it has seen no commit for a while.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Pages per step while another connection is writing.
const GENTLE_PAGES: i32 = 64;
/// How long the pacer stays gentle after it last saw a commit — and at the start, until it
/// has watched long enough to know that nobody writes.
const LINGER: Duration = Duration::from_millis(300);

/// Writeback of one file being written by someone else (SQLite's pager).
#[derive(Debug)]
pub(crate) struct Writeback {
    /// A descriptor of our own. It must outlive SQLite's connection to the file: closing a
    /// descriptor drops the process's POSIX locks on the file.
    file: Option<File>,
    /// The file to open at the next advance, when it did not exist yet.
    later: Option<PathBuf>,
}

impl Writeback {
    /// Writeback of a file SQLite holds no POSIX lock on (a WAL: SQLite locks the database
    /// and its shared-memory file only), so our descriptor may be closed at any time. It is
    /// opened at the first advance that finds it.
    pub(crate) fn lazy(path: &Path) -> Writeback {
        Writeback {
            file: None,
            later: Some(path.to_path_buf()),
        }
    }

    /// Starts writeback of what has been written so far ([`Writeback::advance`]); opens the
    /// file first when it was not there before.
    pub(crate) fn advance_lazy(&mut self, wait: bool) {
        if self.file.is_none()
            && let Some(path) = &self.later
        {
            self.file = File::open(path).ok();
        }
        self.advance(wait);
    }

    /// Starts writeback of what has been written so far, once the previous round finished;
    /// `wait` also waits for this round.
    #[cfg(target_os = "linux")]
    #[allow(unsafe_code)]
    fn advance(&self, wait: bool) {
        use std::os::fd::AsRawFd;
        if let Some(file) = &self.file {
            let mut flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE | libc::SYNC_FILE_RANGE_WRITE;
            if wait {
                flags |= libc::SYNC_FILE_RANGE_WAIT_AFTER;
            }
            // SAFETY: the descriptor is open for as long as `self.file` lives; offset 0 and
            // length 0 mean "the whole file". A failure only loses the smoothing.
            let _ = unsafe { libc::sync_file_range(file.as_raw_fd(), 0, 0, flags) };
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn advance(&self, _wait: bool) {}
}

/// Decides, after each step, how the copy goes on.
#[derive(Debug)]
pub(crate) struct Pacer {
    writeback: Writeback,
    wal: PathBuf,
    wal_len: Option<u64>,
    gentle_until: Option<Instant>,
    fast_pages: i32,
    saw_writers: bool,
}

impl Pacer {
    /// Paces a copy of `source` into `dest` (which must exist), `fast_pages` per step when alone.
    pub fn new(source: &Path, dest: &Path, fast_pages: i32) -> Pacer {
        let mut wal = source.as_os_str().to_owned();
        wal.push("-wal");
        Pacer {
            writeback: Writeback {
                file: File::open(dest).ok(),
                later: None,
            },
            wal: PathBuf::from(wal),
            wal_len: None,
            gentle_until: Some(Instant::now() + LINGER),
            fast_pages,
            saw_writers: false,
        }
    }

    /// Called after every step: writes back what was copied and returns the next step's size.
    pub fn after_step(&mut self) -> i32 {
        // A stat, never an open: a descriptor on the live database's files must not be closed.
        let len = std::fs::metadata(&self.wal).map(|m| m.len()).ok();
        let now = Instant::now();
        if self.wal_len.is_some() && len != self.wal_len {
            self.gentle_until = Some(now + LINGER);
            self.saw_writers = true;
        }
        self.wal_len = len;
        let gentle = self.gentle_until.is_some_and(|until| now < until);
        self.writeback.advance(gentle);
        if gentle {
            GENTLE_PAGES.min(self.fast_pages)
        } else {
            self.fast_pages
        }
    }

    /// True when another connection committed during the copy.
    pub fn saw_writers(&self) -> bool {
        self.saw_writers
    }
}
