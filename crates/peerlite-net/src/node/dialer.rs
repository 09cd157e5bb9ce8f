//! Static addresses: a serving node dials each trusted device with an address (the trust
//! store's, `peerlite trust add --addr`, or one discovery learned) whenever no connection
//! with it is open, forever while it serves, with bounded exponential backoff. This is what
//! works where multicast is blocked: a device that comes online is reached within one
//! backoff step, and reaching it runs its pending syncs ([`Node::keep_in_sync`]).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::Node;
use crate::DeviceId;

/// The wait between failed attempts to reach a device: `min` after the first failure,
/// doubling up to `max`, each wait drawn between half and all of that (jitter: devices that
/// failed together do not retry together).
///
/// ```
/// use std::time::Duration;
/// use peerlite_net::Backoff;
///
/// let b = Backoff::default();
/// assert_eq!(b.delay(0, 1.0), Duration::from_secs(1));
/// assert_eq!(b.delay(3, 1.0), Duration::from_secs(8));
/// assert_eq!(b.delay(40, 1.0), Duration::from_secs(60));
/// assert_eq!(b.delay(40, 0.0), Duration::from_secs(30));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    min: Duration,
    max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            min: Duration::from_secs(1),
            max: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// Waits from `min` to `max`.
    pub fn new(min: Duration, max: Duration) -> Backoff {
        let min = min.max(Duration::from_millis(10));
        Backoff {
            min,
            max: max.max(min),
        }
    }

    /// The wait after `failures + 1` failures in a row, at `jitter` (0.0 to 1.0) of the way
    /// from half the step to all of it.
    pub fn delay(&self, failures: u32, jitter: f64) -> Duration {
        let step = self
            .min
            .saturating_mul(1u32 << failures.min(20))
            .min(self.max);
        step.mul_f64(0.5 + jitter.clamp(0.0, 1.0) / 2.0)
    }
}

/// A number from 0.0 to 1.0, different each call (the jitter): a system random byte pair.
fn jitter() -> f64 {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 2];
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        return 0.5;
    }
    f64::from(u16::from_le_bytes(bytes)) / f64::from(u16::MAX)
}

/// How often the dialer looks at the trust set and the connections (a device added with
/// `peerlite trust add --addr` while serving is dialled within this).
const LOOK: Duration = Duration::from_millis(500);

impl Node {
    /// Dials every trusted device that has an address and no connection, again and again
    /// with `backoff` between failures, until [`Node::shutdown`]; each attempt is bounded
    /// by the channel's handshake timeout. A connection made runs the device's pending
    /// syncs (with [`Node::keep_in_sync`]). Devices without an address wait to be dialled
    /// (or discovered).
    pub fn keep_dialling(&self, backoff: Backoff) {
        let node = self.clone();
        let task = tokio::spawn(async move {
            let mut stop = node.inner.stop.subscribe();
            // Per device: failures in a row and when to try next.
            let mut waits: HashMap<DeviceId, (u32, Instant)> = HashMap::new();
            let mut trying: HashSet<DeviceId> = HashSet::new();
            let mut attempts: JoinSet<(DeviceId, bool)> = JoinSet::new();
            let mut look = tokio::time::interval(LOOK);
            look.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => return,
                    Some(done) = attempts.join_next() => {
                        if let Ok((device, ok)) = done {
                            trying.remove(&device);
                            if ok {
                                waits.remove(&device);
                            } else {
                                let entry = waits.entry(device).or_insert((0, Instant::now()));
                                let delay = backoff.delay(entry.0, jitter());
                                tracing::debug!(peer = %device, retry_in = ?delay, "not reached");
                                *entry = (entry.0.saturating_add(1), Instant::now() + delay);
                            }
                        }
                    }
                    _ = look.tick() => {
                        let connected = node.connected();
                        let now = Instant::now();
                        let dialable = node.dialable();
                        waits.retain(|d, _| dialable.contains(d));
                        for device in dialable {
                            if connected.contains(&device) {
                                // Reached (either way): the next loss starts from `min`.
                                waits.remove(&device);
                                continue;
                            }
                            let due = waits.get(&device).is_none_or(|(_, at)| *at <= now);
                            if due && trying.insert(device) {
                                let node = node.clone();
                                attempts.spawn(async move {
                                    (device, node.reach(device).await.is_ok())
                                });
                            }
                        }
                    }
                }
            }
        });
        self.inner.track(task);
    }

    /// Trusted devices with an address to dial (the trust store's or a learned one).
    fn dialable(&self) -> Vec<DeviceId> {
        let learned = self
            .inner
            .learned
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.inner
            .endpoint
            .trust()
            .devices()
            .into_iter()
            .filter(|d| !d.addrs.is_empty() || learned.contains_key(&d.id))
            .map(|d| d.id)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_from_min_to_max_and_stays_within_half_and_all_of_the_step() {
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let steps: Vec<u64> = (0..10).map(|n| b.delay(n, 1.0).as_secs()).collect();
        assert_eq!(steps, [1, 2, 4, 8, 16, 32, 60, 60, 60, 60]);
        for n in 0..100 {
            let j = jitter();
            assert!((0.0..=1.0).contains(&j));
            let d = b.delay(n, j);
            assert!(d >= Duration::from_millis(500) && d <= Duration::from_secs(60));
        }
        // A huge failure count neither overflows nor exceeds the maximum.
        assert_eq!(b.delay(u32::MAX, 1.0), Duration::from_secs(60));
    }
}
