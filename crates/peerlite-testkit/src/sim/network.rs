//! The in-memory network between simulated devices: every message is encoded to bytes, and
//! the network may drop, duplicate, delay and reorder it, or cut links (a partition) until
//! they heal — all decided by the seeded generator, so a failing seed replays exactly.

use super::rng::Rng;

/// Faults the network injects.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Faults {
    /// Probability that a message is lost.
    pub drop: f64,
    /// Probability that a message arrives twice.
    pub dup: f64,
    /// Deliver messages out of order (each is held for a random number of ticks).
    pub reorder: bool,
}

/// One message on the wire.
#[derive(Debug, Clone)]
pub struct Packet {
    /// Sending device.
    pub from: usize,
    /// Receiving device.
    pub to: usize,
    /// Which session (the driver's own numbering).
    pub session: usize,
    /// The encoded message.
    pub bytes: Vec<u8>,
    deliver_at: u64,
}

/// What the network did, for the report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct NetworkStats {
    /// Messages handed to the network.
    pub sent: u64,
    /// Messages delivered.
    pub delivered: u64,
    /// Lost to `drop`.
    pub dropped: u64,
    /// Extra copies from `dup`.
    pub duplicated: u64,
    /// Lost to a partition.
    pub cut: u64,
}

/// Links, faults and messages in flight.
#[derive(Debug)]
pub struct Network {
    faults: Faults,
    /// `group[d]`: devices talk only within their group while partitioned.
    group: Vec<usize>,
    in_flight: Vec<Packet>,
    now: u64,
    /// Counters.
    pub stats: NetworkStats,
}

const MAX_HOLD_TICKS: u64 = 8;

impl Network {
    /// A healed network of `devices` devices.
    pub fn new(devices: usize, faults: Faults) -> Self {
        Network {
            faults,
            group: vec![0; devices],
            in_flight: Vec::new(),
            now: 0,
            stats: NetworkStats::default(),
        }
    }

    /// Splits the devices into two random non-empty groups (with 2+ devices).
    pub fn partition(&mut self, rng: &mut Rng) {
        let n = self.group.len();
        if n < 2 {
            return;
        }
        for g in &mut self.group {
            *g = rng.below(2);
        }
        // Both sides non-empty.
        let first = rng.below(n);
        self.group[first] = 0;
        let second = (first + 1 + rng.below(n - 1)) % n;
        self.group[second] = 1;
    }

    /// Every link works again.
    pub fn heal(&mut self) {
        self.group.iter_mut().for_each(|g| *g = 0);
    }

    /// True when `a` and `b` can talk.
    pub fn linked(&self, a: usize, b: usize) -> bool {
        self.group.get(a) == self.group.get(b)
    }

    /// Hands a message to the network.
    pub fn send(&mut self, rng: &mut Rng, from: usize, to: usize, session: usize, bytes: Vec<u8>) {
        self.stats.sent += 1;
        if !self.linked(from, to) {
            self.stats.cut += 1;
            return;
        }
        if rng.chance(self.faults.drop) {
            self.stats.dropped += 1;
            return;
        }
        let copies = if rng.chance(self.faults.dup) {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let hold = if self.faults.reorder {
                rng.below(MAX_HOLD_TICKS as usize + 1) as u64
            } else {
                0
            };
            self.in_flight.push(Packet {
                from,
                to,
                session,
                bytes: bytes.clone(),
                deliver_at: self.now + hold,
            });
        }
    }

    /// Advances time by one tick and returns the next message due, if any: the oldest in
    /// order, or a random due one when reordering.
    pub fn next(&mut self, rng: &mut Rng) -> Option<Packet> {
        self.now += 1;
        let due: Vec<usize> = (0..self.in_flight.len())
            .filter(|&i| self.in_flight[i].deliver_at <= self.now)
            .collect();
        let index = if self.faults.reorder {
            *rng.pick(&due)?
        } else {
            *due.first()?
        };
        let packet = self.in_flight.remove(index);
        if !self.linked(packet.from, packet.to) {
            self.stats.cut += 1;
            return self.next(rng);
        }
        self.stats.delivered += 1;
        Some(packet)
    }

    /// Messages of `session` still in flight.
    pub fn pending(&self, session: usize) -> usize {
        self.in_flight
            .iter()
            .filter(|p| p.session == session)
            .count()
    }

    /// Forgets the messages of a session that was given up.
    pub fn discard(&mut self, session: usize) {
        self.in_flight.retain(|p| p.session != session);
    }

    /// Messages in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_network_delivers_everything_in_order() {
        let mut rng = Rng::new(1);
        let mut net = Network::new(2, Faults::default());
        for i in 0..5u8 {
            net.send(&mut rng, 0, 1, 0, vec![i]);
        }
        let got: Vec<u8> = std::iter::from_fn(|| net.next(&mut rng))
            .map(|p| p.bytes[0])
            .collect();
        assert_eq!(got, vec![0, 1, 2, 3, 4]);
        assert_eq!(net.stats.delivered, 5);
    }

    #[test]
    fn partitions_cut_links_until_healed() {
        let mut rng = Rng::new(3);
        let mut net = Network::new(4, Faults::default());
        net.partition(&mut rng);
        let cut: Vec<(usize, usize)> = (0..4)
            .flat_map(|a| (0..4).map(move |b| (a, b)))
            .filter(|&(a, b)| !net.linked(a, b))
            .collect();
        assert!(!cut.is_empty());
        let (a, b) = cut[0];
        net.send(&mut rng, a, b, 0, vec![1]);
        assert_eq!(net.stats.cut, 1);
        assert!(net.next(&mut rng).is_none());
        net.heal();
        assert!(net.linked(a, b));
    }

    #[test]
    fn drops_and_duplicates_are_counted() {
        let mut rng = Rng::new(5);
        let mut net = Network::new(
            2,
            Faults {
                drop: 0.3,
                dup: 0.3,
                reorder: true,
            },
        );
        for i in 0..200u8 {
            net.send(&mut rng, 0, 1, 0, vec![i]);
        }
        let mut delivered = 0;
        while net.in_flight() > 0 {
            if net.next(&mut rng).is_some() {
                delivered += 1;
            }
        }
        assert!(net.stats.dropped > 20 && net.stats.duplicated > 20);
        assert_eq!(delivered, 200 - net.stats.dropped + net.stats.duplicated);
    }
}
