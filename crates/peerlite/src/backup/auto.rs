//! Automatic backups — ArkData's automatic backup, for every app. One before every migration
//! of an existing database (on by default), and optionally on a schedule: every N commits or
//! every N minutes (checked at commit time, so an idle store takes none). Scheduled backups run
//! on a background thread from a pinned snapshot, so the committing thread is never stalled.
//! Automatic backups are named `auto-<UTC time>`, kept `max_auto_backups` deep (default 3),
//! and refused by `delete_backup`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{BackupInfo, BackupRequest, naming};
use crate::error::Result;
use crate::store::RdbStore;
use crate::store::layers::Layer;
use crate::store::rdb::Inner;

// The schedule is plain configuration, so it lives with `StoreConfig`.
pub use crate::store::config::AutoBackup;

/// Per-store bookkeeping of scheduled backups.
///
/// The backup thread holds the store, so the store stays open while it runs. Whoever ends the
/// store — `close()`, or the drop of the app's last handle — waits for it through the
/// `closing` hook, and no backup starts once the store is shut: when they return, nothing of
/// the store has a file open or touches one.
#[derive(Debug)]
pub(crate) struct AutoState {
    commits: AtomicU64,
    last: Mutex<Instant>,
    running: AtomicBool,
    worker: Mutex<Worker>,
}

#[derive(Debug, Default)]
struct Worker {
    thread: Option<JoinHandle<()>>,
    shut: bool,
}

impl Default for AutoState {
    fn default() -> Self {
        AutoState {
            commits: AtomicU64::new(0),
            last: Mutex::new(Instant::now()),
            running: AtomicBool::new(false),
            worker: Mutex::new(Worker::default()),
        }
    }
}

impl AutoState {
    fn worker(&self) -> std::sync::MutexGuard<'_, Worker> {
        self.worker.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// No automatic backup starts after this; waits for one still running (never from the
    /// backup's own thread).
    fn shut(&self) {
        let thread = {
            let mut worker = self.worker();
            worker.shut = true;
            worker.thread.take()
        };
        if let Some(thread) = thread
            && thread.thread().id() != std::thread::current().id()
        {
            let _ = thread.join();
        }
    }
}

/// Takes an automatic backup now, on this thread.
pub(crate) fn backup_now(store: &RdbStore, why: &str) -> Result<BackupInfo> {
    let name = format!(
        "{}{why}",
        naming::stamped(naming::AUTO_PREFIX, naming::now_ms())
    );
    store.backup_with(BackupRequest::named(name).automatic())
}

impl Layer for AutoState {
    /// Closing the store (or dropping the app's last handle) waits for a running automatic
    /// backup and starts no other.
    fn closing(&self) {
        self.shut();
    }

    /// Starts a scheduled backup in the background when one is due.
    fn after_commit(&self, store: &Inner) {
        let Some(schedule) = store.config.auto_backup else {
            return;
        };
        let commits = self.commits.fetch_add(1, Ordering::AcqRel) + 1;
        let due = match schedule {
            AutoBackup::EveryCommits(n) => n > 0 && commits >= n,
            AutoBackup::EveryMinutes(m) => self
                .last
                .lock()
                .map(|last| last.elapsed() >= Duration::from_secs(m.saturating_mul(60)))
                .unwrap_or(false),
        };
        if !due || self.running.swap(true, Ordering::AcqRel) {
            return;
        }
        self.commits.store(0, Ordering::Release);
        if let Ok(mut last) = self.last.lock() {
            *last = Instant::now();
        }
        let Some(inner) = store.this.upgrade() else {
            self.running.store(false, Ordering::Release);
            return;
        };
        // Started under the lock that `shut` takes: a store being closed never gets a backup
        // its closing would not wait for.
        let mut worker = self.worker();
        if worker.shut {
            self.running.store(false, Ordering::Release);
            return;
        }
        if let Some(previous) = worker.thread.take() {
            // It has finished (it cleared `running`): reap it.
            let _ = previous.join();
        }
        let spawned = std::thread::Builder::new()
            .name("peerlite-auto-backup".into())
            .spawn(move || {
                let store = RdbStore::internal(inner);
                if let Err(e) = backup_now(&store, "") {
                    tracing::warn!(path = ?store.path(), %e, "scheduled automatic backup failed");
                }
                if let Some(auto) = store.inner.layer::<AutoState>() {
                    auto.running.store(false, Ordering::Release);
                }
            });
        match spawned {
            Ok(handle) => worker.thread = Some(handle),
            Err(e) => {
                tracing::warn!(%e, "could not start the automatic backup thread");
                self.running.store(false, Ordering::Release);
            }
        }
    }
}
