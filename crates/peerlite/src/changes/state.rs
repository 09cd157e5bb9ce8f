//! Per-store state that change capture needs while triggers run: the hybrid logical clock,
//! the local sequence, and the switch that keeps applied remote changes from being re-stamped.
//! The triggers reach it through SQL functions peerlite registers on its writer connection —
//! a connection without them (the `sqlite3` shell, another program) fails loudly when it
//! writes a distributed table instead of skipping the capture.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use rusqlite::Connection;
use rusqlite::functions::FunctionFlags;
use rusqlite::types::ValueRef;

use super::hlc::{Clock, Hlc};
use super::registers;

/// The device index of this device in `peerlite_devices`.
pub const LOCAL: i64 = 0;

/// Change-capture state shared by the store and its writer's SQL functions.
#[derive(Debug)]
pub(crate) struct SyncState {
    pub hlc: Hlc,
    /// The last local sequence number handed out.
    seq: AtomicI64,
    /// False while remote changes are applied.
    capture: AtomicBool,
    /// A timestamp was issued since the last commit: persist the high-water mark.
    stamped: AtomicBool,
    /// The ceiling reserved in the clock file beside the database (`mark`).
    pub reserved: AtomicU64,
}

impl SyncState {
    pub fn new(clock: Arc<dyn Clock>) -> SyncState {
        SyncState {
            hlc: Hlc::new(clock, 0),
            seq: AtomicI64::new(0),
            capture: AtomicBool::new(true),
            stamped: AtomicBool::new(false),
            reserved: AtomicU64::new(0),
        }
    }

    /// Continues after what the database has already used.
    pub fn resume(&self, max_seq: i64, high_water: u64) {
        self.seq.fetch_max(max_seq, Ordering::AcqRel);
        self.hlc.restore(high_water);
    }

    /// Takes a remote timestamp into account; a clock that moved is persisted at the next
    /// commit, so local events after a restart still order after what was received.
    pub fn receive(&self, remote: u64) {
        if self.hlc.receive(remote) {
            self.stamped.store(true, Ordering::Release);
        }
    }

    pub fn next_seq(&self) -> i64 {
        self.seq.fetch_add(1, Ordering::AcqRel) + 1
    }

    pub fn tick(&self) -> u64 {
        self.stamped.store(true, Ordering::Release);
        self.hlc.tick()
    }

    /// True (once) when timestamps were issued since the last call.
    pub fn take_stamped(&self) -> bool {
        self.stamped.swap(false, Ordering::AcqRel)
    }

    pub fn capturing(&self) -> bool {
        self.capture.load(Ordering::Acquire)
    }

    /// Turns capture off until the guard is dropped (applying remote changes).
    pub fn pause_capture(self: &Arc<Self>) -> CapturePaused {
        self.capture.store(false, Ordering::Release);
        CapturePaused(Arc::clone(self))
    }
}

/// Capture is off while this lives.
#[derive(Debug)]
pub(crate) struct CapturePaused(Arc<SyncState>);

impl Drop for CapturePaused {
    fn drop(&mut self) {
        self.0.capture.store(true, Ordering::Release);
    }
}

/// A timestamp for a local write of a row whose clock stands at `hlc` with registers `cols`:
/// `fresh` (a tick), or just above the row's newest timestamp when that is later. A row that
/// came from a peer whose clock runs far ahead (beyond the clamp) is thus still overwritten by
/// an edit made after it arrived — everywhere, not only here — while the device's clock
/// itself is not dragged along.
pub(crate) fn stamp_after(hlc: u64, cols: &[u8], fresh: u64) -> u64 {
    stamp_past(hlc, &registers::decode(cols), fresh)
}

fn stamp_past(hlc: u64, regs: &[registers::ColumnRegister], fresh: u64) -> u64 {
    let newest = regs.iter().map(|r| r.hlc).fold(hlc, u64::max);
    fresh.max(newest.saturating_add(1))
}

/// Registers `peerlite_capture()`, `peerlite_hlc()`, `peerlite_seq()`,
/// `peerlite_after(hlc, cols, fresh)`, `peerlite_touch(cols, hlc, origin, mask)` and
/// `peerlite_stamp(hlc, cols, mask)` (a local update's registers) on the writer connection.
pub(crate) fn register_functions(
    conn: &Connection,
    state: &Arc<SyncState>,
) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8;
    let s = Arc::clone(state);
    conn.create_scalar_function("peerlite_capture", 0, flags, move |_| Ok(s.capturing()))?;
    let s = Arc::clone(state);
    conn.create_scalar_function("peerlite_hlc", 0, flags, move |_| Ok(s.tick() as i64))?;
    let s = Arc::clone(state);
    conn.create_scalar_function("peerlite_seq", 0, flags, move |_| Ok(s.next_seq()))?;
    conn.create_scalar_function(
        "peerlite_after",
        3,
        flags | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let hlc: i64 = ctx.get(0)?;
            let cols: Option<Vec<u8>> = ctx.get(1)?;
            let fresh: i64 = ctx.get(2)?;
            Ok(stamp_after(
                hlc as u64,
                cols.as_deref().unwrap_or_default(),
                fresh as u64,
            ) as i64)
        },
    )?;
    // One call per updated row instead of three (`peerlite_touch(cols, peerlite_after(hlc,
    // cols, peerlite_hlc()), 0, mask)`): the registers are decoded once, borrowed, not copied.
    let s = Arc::clone(state);
    conn.create_scalar_function("peerlite_stamp", 3, flags, move |ctx| {
        let hlc: i64 = ctx.get(0)?;
        let cols = match ctx.get_raw(1) {
            ValueRef::Blob(b) => b,
            _ => &[],
        };
        let mask: i64 = ctx.get(2)?;
        let mut regs = registers::decode(cols);
        let stamp = stamp_past(hlc as u64, &regs, s.tick());
        registers::touch(&mut regs, stamp, 0, mask as u64);
        Ok(registers::encode(&regs))
    })?;
    // Update triggers no longer call it (they call `peerlite_stamp`), but databases whose
    // triggers were made by earlier builds still do.
    conn.create_scalar_function(
        "peerlite_touch",
        4,
        flags | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let cols: Option<Vec<u8>> = ctx.get(0)?;
            let hlc: i64 = ctx.get(1)?;
            let origin: i64 = ctx.get(2)?;
            let mask: i64 = ctx.get(3)?;
            let mut regs = registers::decode(cols.as_deref().unwrap_or_default());
            registers::touch(&mut regs, hlc as u64, origin, mask as u64);
            Ok(registers::encode(&regs))
        },
    )?;
    Ok(())
}
