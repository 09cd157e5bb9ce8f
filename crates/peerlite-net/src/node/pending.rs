//! What a serving node still owes its peers, and when to pay it: the decisions of pending
//! syncs and auto-sync, kept apart from the tasks that carry them out so they can be tested
//! with a clock of the test's choosing.
//!
//! Each served store has a *generation*: 1 when serving starts, one more for every commit
//! seen (in this process, or by another process through the database's `data_version`).
//! For each (store, trusted device) the planner remembers the generation the last
//! successful push to that device started at. The store is **pending** for the device while
//! its generation is above that: when serving starts every store is pending for every
//! device (nothing is known of what they received while this process did not run), a commit
//! makes it pending for all, and a push that started after the last commit and finished ok
//! clears it. A push that failed leaves it pending.
//!
//! Two things start sessions:
//! - [`Planner::reached`]: this node opened a connection to the device (its dialer reached a
//!   static address, or discovery found it) → a push-pull session for every store pending
//!   for it (pull too: the device that just came online learns, and so does this one).
//! - [`Planner::due`]/[`Planner::flush`]: a store with auto-sync tables changed → after the
//!   debounce, a push to every connected device it is pending for. Commits during the
//!   debounce or during a push coalesce into the next push; at most one session runs per
//!   (store, device), so a burst of commits gives a handful of pushes, never a queue.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use peerlite::sync::SyncMode;
use tokio::time::Instant;

use crate::DeviceId;

/// A session the planner wants started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Start {
    /// The store's logical name.
    pub store: String,
    /// The peer.
    pub device: DeviceId,
    /// Push-pull when the device was reached, push for auto-sync.
    pub mode: SyncMode,
    /// The store's generation when the session starts (what it delivers when it ends ok).
    pub generation: u64,
}

#[derive(Debug, Default)]
struct PeerState {
    /// The generation the last successful push to the device started at.
    delivered: u64,
    /// A session runs with the device for the store.
    running: bool,
}

#[derive(Debug)]
struct StoreState {
    /// The store has auto-sync tables.
    auto: bool,
    generation: u64,
    /// When the coalesced auto-sync push is due (None: nothing waits).
    due: Option<Instant>,
    peers: HashMap<DeviceId, PeerState>,
}

/// The decisions of pending syncs and auto-sync (see the module documentation).
#[derive(Debug)]
pub(crate) struct Planner {
    debounce: Duration,
    stores: BTreeMap<String, StoreState>,
}

impl Planner {
    /// A planner that waits `debounce` after a commit before pushing it.
    pub fn new(debounce: Duration) -> Planner {
        Planner {
            debounce,
            stores: BTreeMap::new(),
        }
    }

    /// A served store, pending for every device; `auto` when it has auto-sync tables.
    pub fn add_store(&mut self, store: &str, auto: bool) {
        self.stores.insert(
            store.to_owned(),
            StoreState {
                auto,
                generation: 1,
                due: None,
                peers: HashMap::new(),
            },
        );
    }

    /// Whether `store` has auto-sync tables now (`peerlite distribute --auto-sync` while
    /// serving).
    pub fn set_auto(&mut self, store: &str, auto: bool) {
        if let Some(s) = self.stores.get_mut(store) {
            s.auto = auto;
        }
    }

    /// Whether `store` has changes `device` may not hold.
    #[cfg(test)]
    pub fn pending(&self, store: &str, device: &DeviceId) -> bool {
        self.stores
            .get(store)
            .is_some_and(|s| s.generation > s.peers.get(device).map_or(0, |p| p.delivered))
    }

    /// A commit to `store` was seen at `now`: pending for every device; an auto-sync store
    /// schedules its push (a push already scheduled takes this commit along).
    pub fn changed(&mut self, store: &str, now: Instant) {
        let debounce = self.debounce;
        if let Some(s) = self.stores.get_mut(store) {
            s.generation += 1;
            if s.auto && s.due.is_none() {
                s.due = Some(now + debounce);
            }
        }
    }

    /// This node reached `device`: a push-pull for every store pending for it and not
    /// already syncing with it.
    pub fn reached(&mut self, device: DeviceId) -> Vec<Start> {
        let mut starts = Vec::new();
        for (name, s) in &mut self.stores {
            let peer = s.peers.entry(device).or_default();
            if !peer.running && s.generation > peer.delivered {
                peer.running = true;
                starts.push(Start {
                    store: name.clone(),
                    device,
                    mode: SyncMode::PushPull,
                    generation: s.generation,
                });
            }
        }
        starts
    }

    /// The earliest time a push is due, if any.
    pub fn due(&self) -> Option<Instant> {
        self.stores.values().filter_map(|s| s.due).min()
    }

    /// The pushes due at `now`, to the `connected` devices the store is pending for and not
    /// already syncing with (those get theirs when their session ends).
    pub fn flush(&mut self, now: Instant, connected: &[DeviceId]) -> Vec<Start> {
        let mut starts = Vec::new();
        for (name, s) in &mut self.stores {
            if s.due.is_none_or(|due| due > now) {
                continue;
            }
            s.due = None;
            for device in connected {
                let peer = s.peers.entry(*device).or_default();
                if !peer.running && s.generation > peer.delivered {
                    peer.running = true;
                    starts.push(Start {
                        store: name.clone(),
                        device: *device,
                        mode: SyncMode::Push,
                        generation: s.generation,
                    });
                }
            }
        }
        starts
    }

    /// A session the planner started ended (`ok` when it succeeded). An auto-sync store
    /// with commits the session did not carry schedules the next push when the device is
    /// still `connected`; a failure waits for the next commit or the next time the device
    /// is reached (no retry loop against a device that refuses).
    pub fn finished(&mut self, start: &Start, ok: bool, connected: bool, now: Instant) {
        let debounce = self.debounce;
        let Some(s) = self.stores.get_mut(&start.store) else {
            return;
        };
        let peer = s.peers.entry(start.device).or_default();
        peer.running = false;
        if ok && start.mode.pushes() {
            peer.delivered = peer.delivered.max(start.generation);
        }
        if ok && connected && s.auto && s.generation > peer.delivered && s.due.is_none() {
            s.due = Some(now + debounce);
        }
    }
}

#[cfg(test)]
mod tests {
    //! The planner driven by a clock the test moves by hand: what starts, when, how often.
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn device(n: u8) -> DeviceId {
        DeviceId::from_public_key(&[n; 32])
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn every_store_is_pending_for_every_device_when_serving_starts() {
        let mut p = Planner::new(100 * MS);
        p.add_store("notes", false);
        p.add_store("kv", true);
        let starts = p.reached(device(1));
        assert_eq!(starts.len(), 2);
        assert!(starts.iter().all(|s| s.mode == SyncMode::PushPull));
        // Reached again while those run: nothing more.
        assert!(p.reached(device(1)).is_empty());
        let now = Instant::now();
        for s in &starts {
            p.finished(s, true, true, now);
        }
        assert!(!p.pending("notes", &device(1)));
        // Nothing new: reaching it again starts nothing.
        assert!(p.reached(device(1)).is_empty());
        // Another device still has everything pending.
        assert!(p.pending("notes", &device(2)));
    }

    #[test]
    fn a_failed_session_leaves_the_store_pending_until_the_device_is_reached_again() {
        let mut p = Planner::new(100 * MS);
        p.add_store("notes", false);
        let now = Instant::now();
        let s = p.reached(device(1)).pop().unwrap();
        p.finished(&s, false, false, now);
        assert!(p.pending("notes", &device(1)));
        // A store without auto-sync never pushes on a commit; the next reach does.
        p.changed("notes", now);
        assert_eq!(p.due(), None);
        let again = p.reached(device(1));
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].generation, 2);
    }

    #[test]
    fn a_commit_during_a_session_stays_pending_after_it() {
        let mut p = Planner::new(100 * MS);
        p.add_store("notes", false);
        let now = Instant::now();
        let s = p.reached(device(1)).pop().unwrap();
        p.changed("notes", now); // committed after the session took its generation
        p.finished(&s, true, true, now);
        assert!(p.pending("notes", &device(1)));
    }

    #[test]
    fn a_burst_of_commits_coalesces_into_few_pushes_one_at_a_time() {
        let mut p = Planner::new(100 * MS);
        p.add_store("notes", true);
        let peers = [device(1), device(2)];
        let t0 = Instant::now();
        for s in p.reached(peers[0]).into_iter().chain(p.reached(peers[1])) {
            p.finished(&s, true, true, t0);
        }
        // 1000 commits, one every millisecond; a push takes 30 ms.
        let mut now = t0;
        let mut running: Vec<(Start, Instant)> = Vec::new();
        let mut pushes = 0;
        for _ in 0..1000 {
            now += MS;
            p.changed("notes", now);
            let (done, still): (Vec<_>, Vec<_>) =
                running.into_iter().partition(|(_, end)| *end <= now);
            running = still;
            for (s, _) in done {
                p.finished(&s, true, true, now);
            }
            if p.due().is_some_and(|d| d <= now) {
                for s in p.flush(now, &peers) {
                    pushes += 1;
                    running.push((s, now + 30 * MS));
                }
            }
            // Never more than one session per (store, device).
            for d in &peers {
                assert!(running.iter().filter(|(s, _)| s.device == *d).count() <= 1);
            }
        }
        // The tail: run until nothing is pending.
        for _ in 0..1000 {
            now += MS;
            let (done, still): (Vec<_>, Vec<_>) =
                running.into_iter().partition(|(_, end)| *end <= now);
            running = still;
            for (s, _) in done {
                p.finished(&s, true, true, now);
            }
            if p.due().is_some_and(|d| d <= now) {
                for s in p.flush(now, &peers) {
                    pushes += 1;
                    running.push((s, now + 30 * MS));
                }
            }
        }
        assert!(running.is_empty());
        for d in &peers {
            assert!(!p.pending("notes", d), "every commit reached every device");
        }
        // One push per debounce window per device: 1000 ms of commits / 100 ms, plus the tail.
        assert!(pushes >= 2, "{pushes}");
        assert!(pushes <= 2 * 12, "1000 commits gave {pushes} pushes");
    }

    #[test]
    fn a_push_waits_for_the_debounce_and_goes_only_to_connected_devices() {
        let mut p = Planner::new(100 * MS);
        p.add_store("notes", true);
        let t0 = Instant::now();
        p.changed("notes", t0);
        assert_eq!(p.due(), Some(t0 + 100 * MS));
        assert!(p.flush(t0 + 99 * MS, &[device(1)]).is_empty());
        let starts = p.flush(t0 + 100 * MS, &[device(1)]);
        assert_eq!(starts.len(), 1);
        assert_eq!(starts[0].mode, SyncMode::Push);
        assert_eq!(p.due(), None);
        // Device 2 was not connected: still pending, and reaching it syncs.
        assert!(p.pending("notes", &device(2)));
        assert_eq!(p.reached(device(2)).len(), 1);
    }
}
