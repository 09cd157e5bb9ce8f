//! What the simulation does to devices between writes, when the config asks for it: clocks
//! that jump ahead and are set back, databases lost and re-created, backups restored with a
//! restart, clashes fixed and conflicts resolved — and, while healing, every conflict
//! resolved. Whenever a database or a conflict record is lost, the model forgets the writes
//! no place holds any more ([`Holdings`]); every other write must survive.

use peerlite::Result;
use peerlite::changes::MAX_DRIFT_MS;
use peerlite::sync::{Resolution, SyncMode, sync_in_memory};

use super::clash::Settled;
use super::device::Device;
use super::holdings::Holdings;
use super::model::{Event, Model};
use super::rng::Rng;
use super::{Driver, SimConfig};

/// How often things happen, per write.
const CLOCK_STEP: f64 = 0.08;
const RECREATE: f64 = 0.015;
const BACKUP: f64 = 0.02;
const RESTORE: f64 = 0.012;
const CODE_WRITE: f64 = 0.3;
const FIX: f64 = 0.15;
const RESOLVE: f64 = 0.03;
const PURGE: f64 = 0.03;

/// What happened to the devices besides writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LifecycleStats {
    /// Writes made while the wall clock had jumped ahead (it was set back after each).
    pub clock_steps: u64,
    /// Databases deleted and made again with the same device id.
    pub recreated: u64,
    /// Backups taken.
    pub backups: u64,
    /// Backups restored, each followed by a restart.
    pub restored: u64,
    /// Clashes fixed by giving a row another code, each followed by resolving on both sides.
    pub clashes_fixed: u64,
    /// Conflict records resolved.
    pub conflicts_resolved: u64,
    /// Conflict records lost with a database re-created or restored.
    pub conflicts_wiped: u64,
    /// Writes no place held any more after a loss (the model leaves them out).
    pub writes_lost: u64,
    /// Writes lost earlier that a restored backup brought back.
    pub writes_back: u64,
    /// Times a device forgot every delete it kept (purged its tombstones).
    pub purges: u64,
    /// Client resets of a device found behind a peer's purge (recovering its unsynced
    /// changes).
    pub resets: u64,
}

/// The state of the mishaps during a run.
#[derive(Debug, Default)]
pub(super) struct Mishaps {
    pub stats: LifecycleStats,
    pub violations: Vec<String>,
    backups: Vec<Vec<String>>,
    /// Writes lost with a database or a conflict record (a restore may bring them back).
    lost: Vec<Event>,
    /// The newest timestamp each device issued.
    issued: std::collections::HashMap<String, u64>,
    /// No clock runs beyond the clamp.
    clamped_clocks: bool,
}

impl Mishaps {
    pub fn new(config: &SimConfig) -> Self {
        Mishaps {
            backups: vec![Vec::new(); config.devices.max(2)],
            // Clocks run ahead of the slowest wall clock by at most the skew plus a step (and
            // the few ms the devices' clocks wander apart): within the clamp, with a margin,
            // no timestamp is ever clamped and every stamp comes from the clock.
            clamped_clocks: config.max_skew_ms + config.clock_steps_ms + 10_000 <= MAX_DRIFT_MS,
            ..Mishaps::default()
        }
    }

    /// How far device `d`'s wall clock jumps ahead for its next write (within the clamp), if
    /// it does.
    pub fn clock_step(&mut self, config: &SimConfig, rng: &mut Rng) -> Option<u64> {
        if config.clock_steps_ms == 0 || !rng.chance(CLOCK_STEP) {
            return None;
        }
        self.stats.clock_steps += 1;
        let most = config.clock_steps_ms.min(MAX_DRIFT_MS);
        Some(1 + rng.next_u64() % most)
    }

    /// True when the next item write should set a code (clashes need them).
    pub fn writes_code(&mut self, config: &SimConfig, rng: &mut Rng) -> bool {
        config.resolve && rng.chance(CODE_WRITE)
    }

    /// Records the events of one write just made (one statement: its events share a
    /// timestamp). Its timestamp must lie past every one its device issued before — across
    /// restarts, restores and re-created databases alike (the clock never goes back) — unless
    /// clocks can run apart beyond the clamp: a write to a row stamped that far ahead is
    /// stamped just past the row, not by the clock.
    pub fn record(&mut self, model: &mut Model, events: Vec<Event>) {
        let mut newest: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
        for event in events {
            super::trace(|| format!("write {event:?}"));
            if self.clamped_clocks {
                let last = self.issued.get(&event.device).copied().unwrap_or(0);
                if event.hlc <= last {
                    self.violations.push(format!(
                        "{} stamped a write of {} with {}, not past {} which it issued before: its clock went back",
                        event.device, event.key, event.hlc, last
                    ));
                }
                let n = newest.entry(event.device.clone()).or_default();
                *n = (*n).max(event.hlc);
            }
            model.record(event);
        }
        for (device, hlc) in newest {
            let last = self.issued.entry(device).or_default();
            *last = (*last).max(hlc);
        }
    }

    /// The mishaps after one write.
    pub fn step(
        &mut self,
        config: &SimConfig,
        rng: &mut Rng,
        devices: &mut [Device],
        driver: &mut Driver,
        model: &mut Model,
    ) -> Result<()> {
        let n = devices.len();
        if config.recreate && rng.chance(RECREATE) {
            let d = rng.below(n);
            driver.abandon(devices, d);
            self.stats.conflicts_wiped += devices[d].items.conflicts()?.len() as u64;
            self.losing(devices, model, |devices| devices[d].recreate())?;
            self.stats.recreated += 1;
        }
        if config.restores && rng.chance(BACKUP) {
            let d = rng.below(n);
            let name = format!("sim-{}", self.stats.backups + 1);
            devices[d].backup(&name)?;
            self.backups[d].push(name);
            self.stats.backups += 1;
        }
        if config.restores && rng.chance(RESTORE) {
            let with_backups: Vec<usize> =
                (0..n).filter(|d| !self.backups[*d].is_empty()).collect();
            let d = rng.pick(&with_backups).copied().unwrap_or(0);
            if let Some(name) = rng.pick(&self.backups[d]).cloned() {
                driver.abandon(devices, d);
                self.stats.conflicts_wiped += devices[d].items.conflicts()?.len() as u64;
                self.losing(devices, model, |devices| {
                    devices[d].restore_and_restart(&name)
                })?;
                self.stats.restored += 1;
            }
        }
        if config.purges && rng.chance(PURGE) {
            // Forgetting deletes loses no write: the rows stay deleted where they were, and
            // a device that missed a delete is sent to a reset instead of a delta.
            let d = rng.below(n);
            for store in [&devices[d].items, &devices[d].notes] {
                let report = store.purge_tombstones(Some(std::time::Duration::from_millis(1)))?;
                super::trace(|| {
                    format!(
                        "purge {} {}: {report:?}",
                        devices[d].id,
                        store.path().display()
                    )
                });
            }
            self.stats.purges += 1;
        }
        self.reset_behind(devices, driver, model)?;
        if config.resolve && rng.chance(FIX) {
            self.fix_and_resolve(rng, devices, model)?;
        }
        if config.resolve && rng.chance(RESOLVE) {
            // One record, decided as a device may decide it alone at any time.
            let d = rng.below(n);
            let mut left = 1;
            let take = rng.chance(0.5);
            self.settle(devices, model, |devices| {
                devices[d].resolve(|_| {
                    (left > 0).then(|| {
                        left -= 1;
                        if take {
                            Resolution::TakeRemote
                        } else {
                            Resolution::KeepEarlier
                        }
                    })
                })
            })?;
        }
        Ok(())
    }

    /// A clash fixed (on one side or the other), the two devices synced directly, then each
    /// resolves its records of the other's rows with any resolution — `KeepLocal` too, for
    /// records that no longer clash: they must settle without deleting anything.
    fn fix_and_resolve(
        &mut self,
        rng: &mut Rng,
        devices: &mut [Device],
        model: &mut Model,
    ) -> Result<()> {
        let d = rng.below(devices.len());
        let conflicts = devices[d].items.conflicts()?;
        let Some(conflict) = rng.pick(&conflicts).cloned() else {
            return Ok(());
        };
        let Some(e) = devices.iter().position(|x| x.id == conflict.device) else {
            return Ok(());
        };
        if e == d {
            return Ok(());
        }
        let here_fixes = rng.chance(0.5);
        let (here, there) = pair(devices, d, e);
        let fix = here.fix_clash(there, &conflict, here_fixes)?;
        self.record(model, fix);
        self.stats.clashes_fixed += 1;
        sync_in_memory(&here.items, &there.items, SyncMode::PushPull, None)?;
        self.settle(devices, model, |devices| {
            let mut settled = Settled::default();
            for (me, other) in [(d, e), (e, d)] {
                let other_id = devices[other].id.clone();
                let codes = devices[me].item_codes()?;
                settled.add(devices[me].resolve(|c| {
                    if c.device != other_id {
                        return None;
                    }
                    Some(if super::clash::still_clashes(c, &codes) {
                        Resolution::KeepEarlier
                    } else {
                        [
                            Resolution::KeepLocal,
                            Resolution::TakeRemote,
                            Resolution::KeepEarlier,
                        ][rng.below(3)]
                    })
                })?);
            }
            Ok(settled)
        })?;
        Ok(())
    }

    /// Resets every device a session found behind a peer's purge, against that peer, in
    /// `RecoverUnsynced` mode (the pull into the seed runs in memory: the reset itself is a
    /// local operation). Writes only such a device held and the peer never had — relayed from
    /// a device that has lost them since — may go with it (the model forgets them); its own
    /// unsynced writes are replayed and must survive. Returns how many resets ran.
    pub fn reset_behind(
        &mut self,
        devices: &mut [Device],
        driver: &mut Driver,
        model: &mut Model,
    ) -> Result<u64> {
        let resets = std::mem::take(&mut driver.resets);
        let mut ran = 0;
        for (kind, d, peer) in resets {
            driver.abandon(devices, d);
            self.losing(devices, model, |devices| {
                let (me, them) = pair(devices, d, peer);
                let reseed = me.store(kind).begin_reset(&them.id)?;
                sync_in_memory(reseed.seed(), them.store(kind), SyncMode::Pull, None)?;
                let report = reseed.finish(peerlite::reset::ResetMode::RecoverUnsynced)?;
                super::trace(|| {
                    format!(
                        "reset {:?} of {} against {}: {report:?}",
                        kind, me.id, them.id
                    )
                });
                Ok(())
            })?;
            self.stats.resets += 1;
            ran += 1;
        }
        Ok(ran)
    }

    /// While healing: every device resolves every record with `KeepEarlier` (the rule that
    /// converges when each side decides alone). Returns how many it resolved.
    pub fn resolve_all(&mut self, devices: &mut [Device], model: &mut Model) -> Result<u64> {
        self.settle(devices, model, |devices| {
            let mut settled = Settled::default();
            for d in devices.iter() {
                settled.add(d.resolve(|_| Some(Resolution::KeepEarlier))?);
            }
            Ok(settled)
        })
    }

    /// Runs resolutions: their deletes become writes, their violations are kept, and a record
    /// kept local (discarded) may take writes with it. Returns how many were resolved.
    fn settle(
        &mut self,
        devices: &mut [Device],
        model: &mut Model,
        resolve: impl FnOnce(&mut [Device]) -> Result<Settled>,
    ) -> Result<u64> {
        let settled = self.losing(devices, model, |devices| {
            let settled = resolve(devices)?;
            Ok(settled)
        })?;
        self.stats.conflicts_resolved += settled.resolved;
        self.violations.extend(settled.violations);
        Ok(settled.resolved)
    }

    /// Runs `op`, which may lose what a database or a conflict record held: the writes no
    /// place holds any more after it, but some did before, leave the model (a write lost
    /// earlier stays: only a bug can have lost it, and the end state will show it); writes
    /// that a restored backup brings back return to it. Writes `op` makes are recorded.
    fn losing<T: Writes>(
        &mut self,
        devices: &mut [Device],
        model: &mut Model,
        op: impl FnOnce(&mut [Device]) -> Result<T>,
    ) -> Result<T> {
        let before = Holdings::of(devices)?;
        let out = op(devices)?;
        for write in out.writes() {
            self.record(model, vec![write]);
        }
        let after = Holdings::of(devices)?;
        let lost = model.retain(|e| after.holds(e) || !before.holds(e));
        self.stats.writes_lost += lost.len() as u64;
        let (back, still): (Vec<Event>, Vec<Event>) = std::mem::take(&mut self.lost)
            .into_iter()
            .partition(|e| after.holds(e));
        self.stats.writes_back += back.len() as u64;
        for event in back {
            model.record(event);
        }
        self.lost = still;
        self.lost.extend(lost);
        Ok(out)
    }
}

/// What an operation wrote, for the model.
trait Writes {
    fn writes(&self) -> Vec<Event>;
}

impl Writes for () {
    fn writes(&self) -> Vec<Event> {
        Vec::new()
    }
}

impl Writes for Settled {
    fn writes(&self) -> Vec<Event> {
        self.events.clone()
    }
}

/// Two different devices, mutably.
fn pair(devices: &mut [Device], a: usize, b: usize) -> (&mut Device, &mut Device) {
    if a < b {
        let (left, right) = devices.split_at_mut(b);
        (&mut left[a], &mut right[0])
    } else {
        let (left, right) = devices.split_at_mut(a);
        (&mut right[0], &mut left[b])
    }
}
