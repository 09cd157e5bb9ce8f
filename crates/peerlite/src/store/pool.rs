//! A small pool of read-only connections. In WAL mode readers never block the writer nor each
//! other; connections are opened on demand (an encrypted open pays the key derivation) and
//! kept for reuse.

use std::sync::{Condvar, Mutex, PoisonError};

use rusqlite::Connection;

use super::config::StoreConfig;
use super::connection::{self, Role};
use crate::error::Result;

#[derive(Debug)]
struct Slots {
    idle: Vec<Connection>,
    open: usize,
    /// Bumped by `clear`; connections from an older epoch are dropped when returned.
    epoch: u64,
    /// Threads waiting for a reader. Returning a reader only signals when this is non-zero:
    /// `notify_one` is a futex syscall even with nobody waiting, which was measurable per get.
    waiting: usize,
}

#[derive(Debug)]
pub(crate) struct ReaderPool {
    config: StoreConfig,
    max: usize,
    slots: Mutex<Slots>,
    returned: Condvar,
}

impl ReaderPool {
    pub fn new(config: &StoreConfig) -> Self {
        ReaderPool {
            config: config.clone(),
            max: config.readers.max(1),
            slots: Mutex::new(Slots {
                idle: Vec::new(),
                open: 0,
                epoch: 0,
                waiting: 0,
            }),
            returned: Condvar::new(),
        }
    }

    /// Adds an already opened connection (the read-only open probes with one).
    pub fn seed(&self, conn: Connection) {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots.open += 1;
        slots.idle.push(conn);
    }

    /// Runs `f` on a reader, waiting for one when all are busy.
    pub fn with<R>(&self, f: impl FnOnce(&Connection) -> Result<R>) -> Result<R> {
        let (conn, epoch) = self.checkout()?;
        let result = f(&conn);
        self.give_back(conn, epoch);
        result
    }

    fn checkout(&self) -> Result<(Connection, u64)> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(conn) = slots.idle.pop() {
                return Ok((conn, slots.epoch));
            }
            if slots.open < self.max {
                slots.open += 1;
                let epoch = slots.epoch;
                drop(slots);
                return match connection::open(&self.config, Role::Reader) {
                    Ok(conn) => Ok((conn, epoch)),
                    Err(e) => {
                        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
                        if slots.epoch == epoch {
                            slots.open -= 1;
                        }
                        if slots.waiting > 0 {
                            self.returned.notify_one();
                        }
                        Err(e)
                    }
                };
            }
            slots.waiting += 1;
            slots = self
                .returned
                .wait(slots)
                .unwrap_or_else(PoisonError::into_inner);
            slots.waiting -= 1;
        }
    }

    fn give_back(&self, conn: Connection, epoch: u64) {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if slots.epoch == epoch {
            if conn.is_autocommit() {
                slots.idle.push(conn);
            } else {
                // Never hand out a connection still inside a transaction.
                slots.open -= 1;
            }
        }
        if slots.waiting > 0 {
            self.returned.notify_one();
        }
    }

    /// Closes every idle reader; readers in use are closed when they come back.
    pub fn clear(&self) {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots.idle.clear();
        slots.open = 0;
        slots.epoch += 1;
        drop(slots);
        self.returned.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    #[test]
    fn a_waiting_reader_is_woken_when_one_comes_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.db");
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE t(a)")
            .unwrap();
        let pool = Arc::new(ReaderPool::new(&StoreConfig::new(&path).readers(1)));
        let released = Arc::new(AtomicBool::new(false));
        let (p, r) = (Arc::clone(&pool), Arc::clone(&released));
        let holder = std::thread::spawn(move || {
            p.with(|_| {
                std::thread::sleep(Duration::from_millis(100));
                r.store(true, Ordering::SeqCst);
                Ok(())
            })
            .unwrap();
        });
        std::thread::sleep(Duration::from_millis(20));
        let waited = pool
            .with(|c| {
                Ok(
                    c.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))
                        .unwrap(),
                )
            })
            .unwrap();
        assert_eq!(waited, 0);
        assert!(
            released.load(Ordering::SeqCst),
            "the second reader ran only after the first came back"
        );
        holder.join().unwrap();
    }
}
