//! WAL checkpoints on a thread of their own, so a commit does not pay for copying the log
//! back into the database.
//!
//! SQLite's automatic checkpoint runs inside the commit that pushes the log past 1000 pages:
//! that commit copies every logged page into the database file and fsyncs it, which is most of
//! the time of a small sync batch applied to a large table. Here the writer's WAL hook only
//! wakes this thread, which runs a `PASSIVE` checkpoint on its own connection — it never waits
//! for the writer or for readers, and the writer keeps committing meanwhile. Backpressure keeps
//! the log bounded: a commit that finds it past [`WRITER_PAGES`] while the thread is still
//! behind waits for the thread's checkpoint to finish and then checkpoints the rest itself, so
//! that the next transaction starts the log over. One large transaction alone does not wait:
//! it finds the thread idle and hands the work over.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

use rusqlite::Connection;

use super::config::StoreConfig;
use super::connection::{self, Role};

/// Log size (pages) at which the background thread is woken: SQLite's default.
pub(crate) const BACKGROUND_PAGES: i32 = 1000;
/// Log size (pages) past which a commit waits for a checkpoint the thread has not finished.
pub(crate) const WRITER_PAGES: i32 = 16 * BACKGROUND_PAGES;

#[derive(Default)]
struct State {
    /// A checkpoint was asked for and the thread has not started it.
    wanted: bool,
    /// The thread is checkpointing.
    busy: bool,
    stop: bool,
    /// The thread is asked to close its connection (it opens a new one at the next checkpoint).
    release: bool,
}

impl State {
    fn behind(&self) -> bool {
        (self.wanted || self.busy) && !self.stop
    }
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn update(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.lock());
        self.wake.notify_all();
    }

    /// What a commit that left `pages` in the log does; true when the writer must checkpoint
    /// itself (the thread is gone, or it waited for the thread and the log is still long).
    fn after_commit(&self, pages: i32) -> bool {
        if pages < BACKGROUND_PAGES {
            return false;
        }
        let mut state = self.lock();
        if state.stop {
            return true;
        }
        if pages >= WRITER_PAGES && state.behind() {
            while state.behind() {
                state = self
                    .wake
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            // That checkpoint may have started before this commit's pages; the writer, still
            // now, copies the rest, and the next transaction starts the log over.
            return true;
        }
        state.wanted = true;
        drop(state);
        self.wake.notify_all();
        false
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
            let inline = if background {
                shared.after_commit(pages)
            } else {
                pages >= BACKGROUND_PAGES
            };
            if inline {
                // As SQLite would. The commit has happened either way.
                if let Err(e) = wal.checkpoint() {
                    tracing::debug!(%e, pages, "writer checkpoint did not complete");
                }
            }
            Ok(())
        }))
    }

    /// Makes the thread close its connection, waiting for a checkpoint in progress: a restore
    /// that moves the database file proves first that no connection holds it, this one
    /// included. The thread opens a new connection (on whatever file is at the path then) at
    /// its next checkpoint.
    pub fn release_connection(&self) {
        let running = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some();
        if !running {
            return;
        }
        let mut state = self.shared.lock();
        if state.stop {
            return;
        }
        state.release = true;
        self.shared.wake.notify_all();
        while state.release && !state.stop {
            state = self
                .shared
                .wake
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
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

/// Marks the thread gone however it ends, so that no commit waits for it and commits
/// checkpoint themselves from then on.
struct Gone<'a>(&'a Shared);

impl Drop for Gone<'_> {
    fn drop(&mut self) {
        self.0.update(|s| {
            s.busy = false;
            s.stop = true;
        });
    }
}

fn run(shared: &Shared, config: &StoreConfig) {
    let _gone = Gone(shared);
    let mut conn: Option<Connection> = None;
    loop {
        {
            let mut state = shared.lock();
            while !state.wanted && !state.stop && !state.release {
                state = shared
                    .wake
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if state.stop {
                return;
            }
            if state.release {
                conn = None;
                state.release = false;
                drop(state);
                shared.wake.notify_all();
                continue;
            }
            state.wanted = false;
            state.busy = true;
        }
        checkpoint(&mut conn, config);
        shared.update(|s| s.busy = false);
    }
}

/// One `PASSIVE` checkpoint, opening the connection the first time.
fn checkpoint(conn: &mut Option<Connection>, config: &StoreConfig) {
    if conn.is_none() {
        match connection::open(config, Role::Checkpointer) {
            Ok(c) => *conn = Some(c),
            Err(e) => {
                tracing::debug!(%e, "checkpoint connection did not open");
                return;
            }
        }
    }
    if let Some(c) = conn
        && let Err(e) = c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
    {
        tracing::debug!(%e, "background checkpoint did not complete");
    }
}
