//! The hybrid logical clock that orders every change.
//!
//! A timestamp is 64 bits: milliseconds since the Unix epoch in the high 48, a counter in the
//! low 16. Local events take `max(last + 1, now)`, so timestamps never go backwards — not after
//! a restart (the high-water mark is persisted with every transaction that stamps) and not
//! when the wall clock steps back. Receiving a remote timestamp moves the clock forward past
//! it, but never beyond `now + MAX_DRIFT`: a peer with a clock far in the future cannot drag
//! this device's clock along (its change still merges by its own timestamp, so every device
//! orders it the same way).
//!
//! ```
//! use std::sync::Arc;
//! use peerlite::changes::{Hlc, ManualClock};
//!
//! let clock = Arc::new(ManualClock::new(1_000));
//! let hlc = Hlc::new(clock.clone(), 0);
//! let a = hlc.tick();
//! clock.set(500); // the wall clock steps back
//! let b = hlc.tick();
//! assert!(b > a);
//! ```

use std::sync::Arc;
use std::sync::Mutex;

/// Bits of the logical counter.
pub const COUNTER_BITS: u32 = 16;
/// How far ahead of the local wall clock a remote timestamp may pull this clock.
pub const MAX_DRIFT_MS: u64 = 5 * 60 * 1000;

// The wall clock is the store's (its configuration names it); the HLC builds on it.
pub use crate::store::clock::{Clock, ManualClock, SystemClock};

/// The physical part of a timestamp, in milliseconds.
pub fn physical_ms(ts: u64) -> u64 {
    ts >> COUNTER_BITS
}

/// A hybrid logical clock.
#[derive(Debug)]
pub struct Hlc {
    clock: Arc<dyn Clock>,
    last: Mutex<u64>,
}

impl Hlc {
    /// A clock that continues after `high_water` (the largest timestamp ever issued).
    pub fn new(clock: Arc<dyn Clock>, high_water: u64) -> Self {
        Hlc {
            clock,
            last: Mutex::new(high_water),
        }
    }

    /// A timestamp for a local event, greater than every one issued or received before.
    pub fn tick(&self) -> u64 {
        let now = self.clock.now_ms() << COUNTER_BITS;
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *last = now.max(*last + 1);
        *last
    }

    /// Takes a remote timestamp into account: later local events order after it — unless it
    /// lies more than [`MAX_DRIFT_MS`] ahead of this clock, which then only moves that far.
    /// Returns true when the clock moved.
    pub fn receive(&self, remote: u64) -> bool {
        let limit = (self.clock.now_ms() + MAX_DRIFT_MS) << COUNTER_BITS;
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let moved = remote.min(limit) > *last;
        *last = (*last).max(remote.min(limit));
        moved
    }

    /// Continues after `high_water`, a mark this clock itself persisted: unlike a remote
    /// timestamp it is not clamped (the clock already stood there).
    pub fn restore(&self, high_water: u64) {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *last = (*last).max(high_water);
    }

    /// The largest timestamp issued or received so far.
    pub fn high_water(&self) -> u64 {
        *self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The wall clock behind it.
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_when_the_wall_clock_steps_back_and_across_a_restart() {
        let clock = Arc::new(ManualClock::new(10_000));
        let hlc = Hlc::new(clock.clone(), 0);
        let a = hlc.tick();
        let b = hlc.tick();
        assert!(b > a);
        assert_eq!(physical_ms(a), 10_000);
        clock.set(9_000);
        let c = hlc.tick();
        assert!(c > b, "a clock step back never reorders");
        // A restart: a new clock continues from the persisted high-water mark.
        let restarted = Hlc::new(clock.clone(), hlc.high_water());
        assert!(restarted.tick() > c);
        clock.set(20_000);
        assert_eq!(physical_ms(restarted.tick()), 20_000);
    }

    #[test]
    fn remote_timestamps_move_the_clock_but_far_future_ones_are_clamped() {
        let clock = Arc::new(ManualClock::new(100_000));
        let hlc = Hlc::new(clock.clone(), 0);
        let near = (100_500u64) << COUNTER_BITS;
        hlc.receive(near);
        assert!(hlc.tick() > near);
        let far = (100_000 + 10 * MAX_DRIFT_MS) << COUNTER_BITS;
        hlc.receive(far);
        let t = hlc.tick();
        assert!(t < far, "a far-future peer cannot drag the clock along");
        assert!(physical_ms(t) <= 100_000 + MAX_DRIFT_MS);
    }
}
