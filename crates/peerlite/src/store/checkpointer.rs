//! WAL checkpoints on a thread of their own, so a commit does not pay for copying the log
//! back into the database.
//!
//! SQLite's automatic checkpoint runs inside the commit that pushes the log past 1000 pages:
//! that commit copies every logged page into the database file and fsyncs it, which is most of
//! the time of a small sync batch applied to a large table. Here the writer's WAL hook only
//! wakes this thread, which runs a `PASSIVE` checkpoint on its own connection — it never waits
//! for the writer or for readers, and the writer keeps committing meanwhile. If the log still
//! grows (a long read transaction pins it, or the thread falls behind), the writer checkpoints
//! itself past [`WRITER_PAGES`], as SQLite would, so the log stays bounded.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

use rusqlite::Connection;

use super::config::StoreConfig;
use super::connection::{self, Role};

/// Log size (pages) at which the background thread is woken: SQLite's default.
pub(crate) const BACKGROUND_PAGES: i32 = 1000;
/// Log size (pages) past which the writer checkpoints itself.
pub(crate) const WRITER_PAGES: i32 = 16 * BACKGROUND_PAGES;

#[derive(Default)]
struct State {
    wanted: bool,
    stop: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    fn update(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner));
        self.wake.notify_one();
    }
}

/// The checkpoint thread of one writable store.
pub(crate) struct Checkpointer {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Checkpointer {
    /// Starts the thread; its connection is opened at the first checkpoint (opening an
    /// encrypted database derives the key, which small stores should not pay for).
    pub fn start(config: &StoreConfig) -> Checkpointer {
        let shared = Arc::new(Shared::default());
        let (state, config) = (Arc::clone(&shared), config.clone());
        let thread = std::thread::Builder::new()
            .name("peerlite-checkpoint".into())
            .spawn(move || run(&state, &config))
            .map_err(|e| tracing::warn!(%e, "no checkpoint thread; commits checkpoint instead"))
            .ok();
        Checkpointer {
            shared,
            thread: Mutex::new(thread),
        }
    }

    /// Installs the WAL hook on the writer connection (it replaces SQLite's automatic
    /// checkpoint).
    pub fn attach(&self, conn: &mut Connection) -> rusqlite::Result<()> {
        let background = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some();
        let shared = Arc::clone(&self.shared);
        conn.wal_hook(Some(move |wal: &mut rusqlite::hooks::Wal, pages| {
            if pages >= WRITER_PAGES || (!background && pages >= BACKGROUND_PAGES) {
                // The commit has happened; a checkpoint that cannot run now runs later.
                if let Err(e) = wal.checkpoint() {
                    tracing::debug!(%e, pages, "writer checkpoint did not complete");
                }
            } else if pages >= BACKGROUND_PAGES {
                shared.update(|s| s.wanted = true);
            }
            Ok(())
        }))
    }

    /// Stops the thread and closes its connection; waits for a checkpoint in progress.
    pub fn stop(&self) {
        self.shared.update(|s| s.stop = true);
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(t) = thread
            && t.join().is_err()
        {
            tracing::warn!("the checkpoint thread panicked");
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(shared: &Shared, config: &StoreConfig) {
    let mut conn: Option<Connection> = None;
    loop {
        {
            let mut state = shared.state.lock().unwrap_or_else(PoisonError::into_inner);
            while !state.wanted && !state.stop {
                state = shared
                    .wake
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if state.stop {
                return;
            }
            state.wanted = false;
        }
        if conn.is_none() {
            match connection::open(config, Role::Checkpointer) {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    tracing::debug!(%e, "checkpoint connection did not open");
                    continue;
                }
            }
        }
        if let Some(c) = &conn
            && let Err(e) = c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
        {
            tracing::debug!(%e, "background checkpoint did not complete");
        }
    }
}
