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
                        self.returned.notify_one();
                        Err(e)
                    }
                };
            }
            slots = self
                .returned
                .wait(slots)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn give_back(&self, conn: Connection, epoch: u64) {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if slots.epoch == epoch {
            slots.idle.push(conn);
        }
        drop(slots);
        self.returned.notify_one();
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
