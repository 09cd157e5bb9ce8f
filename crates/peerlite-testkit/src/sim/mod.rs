//! Deterministic simulation of devices that sync over a faulty network (issue 4).
//!
//! N devices, each with its own clock and two stores (a single-version table and a
//! device-collaboration table), make random inserts, updates, deletes and key changes while
//! sync sessions run between random pairs over an in-memory network that drops, duplicates,
//! delays and reorders messages and splits into partitions. On request, devices also live
//! through what real ones do (issue 9): wall clocks that jump ahead and are set back (the
//! hybrid logical clock runs ahead, within the clamp), databases deleted and re-created with
//! the same device id, backups restored followed by a restart, and rows that clash on a second
//! UNIQUE column, whose conflicts are resolved on both sides — after the clash was fixed, too.
//! Then the network heals and every pair syncs, round after round (resolving every conflict
//! with `KeepEarlier`), until all devices hold the same contents and no conflict is left (or
//! the round limit is hit). The single-version table is also checked against [`Model`], which
//! computes from the recorded writes alone what the merged table must hold — so a write that
//! vanished without being overwritten by the rules is caught even when every device agrees.
//! Writes lost with a database before they reached anyone are forgotten by the model at that
//! moment, and no later.
//!
//! Everything random comes from one seed: a failing run replays exactly.
//!
//! ```
//! use peerlite_testkit::sim::{run, SimConfig};
//!
//! let report = run(&SimConfig { devices: 3, ops: 40, seed: 7, ..SimConfig::default() })?;
//! assert!(report.ok(), "{report:#?}");
//! assert_eq!(report.devices.len(), 3);
//! # Ok::<(), peerlite::Error>(())
//! ```

mod clash;
mod device;
mod holdings;
mod lifecycle;
mod mishaps;
mod model;
mod network;
mod rng;

use std::collections::BTreeMap;

use std::collections::BTreeSet;

use peerlite::sync::{
    DeviceLevel, DeviceResult, Dispatcher, Peer, SyncMessage, SyncMode, SyncStatus,
};
use peerlite::{Result, Value};

use mishaps::Mishaps;

pub use device::{Device, ITEM_COLUMNS, Kind};
pub use mishaps::LifecycleStats;
pub use model::{Event, EventKind, Model};
pub use network::{Faults, Network, NetworkStats};
pub use rng::Rng;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Devices (at least 2).
    pub devices: usize,
    /// Random writes before the network heals.
    pub ops: usize,
    /// The seed of everything random.
    pub seed: u64,
    /// Message loss, duplication and reordering.
    pub faults: Faults,
    /// Split the network into partitions from time to time while writing.
    pub partitions: bool,
    /// Rows per sync batch (small, so sessions span several batches).
    pub batch_rows: usize,
    /// Healing rounds allowed before giving up on convergence.
    pub max_rounds: usize,
    /// How far apart the devices' wall clocks may be, in ms (beyond 5 minutes, a device's
    /// clock is far enough ahead for the others to clamp its timestamps).
    pub max_skew_ms: u64,
    /// Now and then a device's wall clock jumps up to this far ahead (ms, at most the 5-minute
    /// clamp) for one write and is set back: its hybrid logical clock, and the clocks of the
    /// devices that hear from it, run ahead of their wall clocks. 0: never.
    pub clock_steps_ms: u64,
    /// Now and then a device's databases are deleted and made again with the same device id.
    pub recreate: bool,
    /// Now and then a device backs up its stores; later it restores a backup and restarts.
    pub restores: bool,
    /// Rows get codes (a UNIQUE column besides the conflict column) and clash; devices fix
    /// clashes and resolve conflicts on both sides while writing.
    pub resolve: bool,
    /// Now and then a device forgets every delete it keeps (purges its tombstones at once,
    /// as past a retention); a device a session finds behind such a purge (17040011) is
    /// reset against that peer in `RecoverUnsynced` mode.
    pub purges: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            devices: 3,
            ops: 200,
            seed: 1,
            faults: Faults::default(),
            partitions: false,
            batch_rows: 4,
            max_rounds: 12,
            max_skew_ms: 2_000,
            clock_steps_ms: 0,
            recreate: false,
            restores: false,
            resolve: false,
            purges: false,
        }
    }
}

/// One device at the end of the run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeviceReport {
    /// The device.
    pub device: String,
    /// Hash of its single-version table.
    pub items_hash: String,
    /// Hash of all notes it holds (its own and every device table).
    pub notes_hash: String,
    /// Rows in its single-version table.
    pub items: usize,
    /// Notes it holds, all devices'.
    pub notes: usize,
}

/// How the sessions went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SessionStats {
    /// Sessions started.
    pub started: u64,
    /// Sessions that finished with status 0 on both sides.
    pub completed: u64,
    /// Sessions that finished with an error status.
    pub failed: u64,
    /// Sessions given up after too many silent retransmissions (a partition, say).
    pub abandoned: u64,
}

/// The outcome of a run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SimReport {
    /// The seed that replays it.
    pub seed: u64,
    /// True when every device ended with the same contents.
    pub converged: bool,
    /// Healing rounds until then (or the limit).
    pub rounds: usize,
    /// Each device's contents.
    pub devices: Vec<DeviceReport>,
    /// Writes to the single-version table the model checked.
    pub writes: usize,
    /// Sessions.
    pub sessions: SessionStats,
    /// The network.
    pub network: NetworkStats,
    /// Conflicts the sync results reported.
    pub conflicts_reported: u64,
    /// Conflicts recorded in the stores at the end (every one is resolved while healing).
    pub conflicts_recorded: usize,
    /// Clock steps, re-created databases, restores and resolutions.
    pub lifecycle: LifecycleStats,
    /// Every way the end state breaks the merge rules (lost writes, dropped conflicts).
    pub violations: Vec<String>,
}

impl SimReport {
    /// Converged, and nothing broke the rules.
    pub fn ok(&self) -> bool {
        self.converged && self.violations.is_empty()
    }
}

/// Silent ticks a session survives before it is given up.
const MAX_RETRANSMITS: u32 = 40;
/// Ticks a healing round may take before it is cut short.
const MAX_ROUND_TICKS: usize = 200_000;

/// How far a run has got, reported by [`run_with_progress`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimProgress {
    /// `done` of `total` random writes made (sessions run among them).
    Writes {
        /// Writes made.
        done: usize,
        /// Writes to make.
        total: usize,
    },
    /// A healing round (every pair syncing) ended without convergence yet.
    Healing {
        /// The round that ended.
        round: usize,
        /// Rounds allowed.
        max: usize,
    },
}

/// Runs a simulation.
pub fn run(config: &SimConfig) -> Result<SimReport> {
    run_with_progress(config, &mut |_| {})
}

/// With `PEERLITE_SIM_TRACE` set, the simulation narrates writes, sessions, purges and resets
/// on stderr (a post-mortem aid for a seed that fails; `PEERLITE_SIM_KEEP=DIR` keeps its
/// databases).
pub(crate) fn trace(what: impl FnOnce() -> String) {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("PEERLITE_SIM_TRACE").is_some()) {
        eprintln!("sim: {}", what());
    }
}

/// Runs a simulation, telling `progress` after every write and every healing round.
pub fn run_with_progress(
    config: &SimConfig,
    progress: &mut dyn FnMut(SimProgress),
) -> Result<SimReport> {
    let dir = tempfile::tempdir().map_err(|source| peerlite::Error::Io {
        op: "creating the simulation directory",
        path: std::env::temp_dir(),
        source,
    })?;
    let mut rng = Rng::new(config.seed);
    let count = config.devices.max(2);
    let base_ms = 1_800_000_000_000;
    let mut devices = (0..count)
        .map(|i| {
            let skew = rng.next_u64() % config.max_skew_ms.max(1);
            Device::create(dir.path(), i, base_ms + skew)
        })
        .collect::<Result<Vec<_>>>()?;
    let names: Vec<String> = devices.iter().map(|d| d.id.clone()).collect();
    let mut model = Model::default();
    let mut driver = Driver::new(count, config, Rng::new(config.seed.rotate_left(17)));
    let key_space = (config.ops / 4).max(8);
    let mut partitioned = false;
    let mut mishaps = Mishaps::new(config);
    for op in 0..config.ops {
        progress(SimProgress::Writes {
            done: op,
            total: config.ops,
        });
        for d in &devices {
            d.clock.advance(1 + rng.below(5) as u64);
        }
        let d = rng.below(count);
        let step = mishaps.clock_step(config, &mut rng);
        if let Some(ms) = step {
            devices[d].clock.advance(ms);
        }
        if rng.chance(0.5) {
            let events = if mishaps.writes_code(config, &mut rng) {
                devices[d].write_code(&mut rng)?
            } else {
                devices[d].write_item(&mut rng, key_space)?
            };
            mishaps.record(&mut model, events);
        } else {
            devices[d].write_note(&mut rng)?;
        }
        if let Some(ms) = step {
            let now = peerlite::changes::Clock::now_ms(devices[d].clock.as_ref());
            devices[d].clock.set(now - ms);
        }
        if rng.chance(0.3) {
            let a = rng.below(count);
            let b = (a + 1 + rng.below(count - 1)) % count;
            let kind = if rng.chance(0.5) {
                Kind::SingleVersion
            } else {
                Kind::Collaboration
            };
            driver.start(&devices, kind, a, b)?;
        }
        if config.partitions && rng.chance(0.04) {
            if partitioned {
                driver.net.heal();
            } else {
                driver.net.partition(&mut rng);
            }
            partitioned = !partitioned;
        }
        mishaps.step(config, &mut rng, &mut devices, &mut driver, &mut model)?;
        for _ in 0..4 {
            driver.tick(&devices)?;
        }
    }
    driver.net.heal();
    let mut rounds = 0;
    let mut converged = false;
    while rounds < config.max_rounds {
        rounds += 1;
        for a in 0..count {
            for b in a + 1..count {
                for kind in [Kind::SingleVersion, Kind::Collaboration] {
                    driver.start(&devices, kind, a, b)?;
                }
            }
        }
        let mut ticks = 0;
        while !driver.tracks.is_empty() && ticks < MAX_ROUND_TICKS {
            driver.tick(&devices)?;
            ticks += 1;
        }
        for d in &devices {
            d.clock.advance(10);
        }
        if mishaps.reset_behind(&mut devices, &mut driver, &mut model)? > 0 {
            continue;
        }
        // Conflicts are settled while healing; what that changes syncs in the next round.
        if mishaps.resolve_all(&mut devices, &mut model)? > 0 {
            continue;
        }
        if contents_agree(&devices, &names)? {
            converged = true;
            break;
        }
        progress(SimProgress::Healing {
            round: rounds,
            max: config.max_rounds,
        });
    }
    if let Some(keep) = std::env::var_os("PEERLITE_SIM_KEEP") {
        // For a post-mortem with the `sqlite3` shell: the devices' databases move there.
        let kept = dir.keep();
        match std::fs::rename(&kept, &keep) {
            Ok(()) => eprintln!("simulation kept in {}", keep.to_string_lossy()),
            Err(e) => eprintln!("simulation kept in {} ({e})", kept.display()),
        }
    }
    report(
        config,
        &mut devices,
        &names,
        &model,
        &driver,
        mishaps,
        converged,
        rounds,
    )
}

fn contents_agree(devices: &[Device], names: &[String]) -> Result<bool> {
    let first_items = devices[0].items()?;
    let first_notes = devices[0].notes(names)?;
    for d in &devices[1..] {
        if d.items()? != first_items || d.notes(names)? != first_notes {
            return Ok(false);
        }
    }
    Ok(true)
}

fn hash(text: &str) -> String {
    blake3::hash(text.as_bytes()).to_hex()[..16].to_owned()
}

#[allow(clippy::too_many_arguments)]
fn report(
    config: &SimConfig,
    devices: &mut [Device],
    names: &[String],
    model: &Model,
    driver: &Driver,
    mishaps: Mishaps,
    converged: bool,
    rounds: usize,
) -> Result<SimReport> {
    let mut violations = mishaps.violations;
    let mut reports = Vec::new();
    let mut recorded = 0;
    for d in devices.iter() {
        let items = d.items()?;
        let notes = d.notes(names)?;
        recorded += d.items.conflicts()?.len() + d.notes.conflicts()?.len();
        reports.push(DeviceReport {
            device: d.id.clone(),
            items_hash: hash(&format!("{items:?}")),
            notes_hash: hash(&format!("{notes:?}")),
            items: items.len(),
            notes: notes.values().map(Vec::len).sum(),
        });
    }
    if converged {
        let expected = model.expected(&ITEM_COLUMNS);
        let actual = devices[0].items()?;
        for key in expected
            .keys()
            .chain(actual.keys())
            .collect::<std::collections::BTreeSet<_>>()
        {
            let (want, got) = (expected.get(key), actual.get(key));
            if want != got {
                violations.push(format!(
                    "item {key}: the rules give {}, the devices hold {}",
                    show(want),
                    show(got)
                ));
            }
        }
    }
    let life = mishaps.stats;
    let accounted = recorded as u64 + life.conflicts_resolved + life.conflicts_wiped;
    if driver.conflicts > 0 && accounted == 0 {
        violations.push(format!(
            "sync reported {} conflicts but none is recorded",
            driver.conflicts
        ));
    }
    Ok(SimReport {
        seed: config.seed,
        converged,
        rounds,
        devices: reports,
        writes: model.len(),
        sessions: driver.stats,
        network: driver.net.stats,
        conflicts_reported: driver.conflicts,
        conflicts_recorded: recorded,
        lifecycle: life,
        violations,
    })
}

fn show(row: Option<&BTreeMap<String, Value>>) -> String {
    match row {
        None => "no row".into(),
        Some(r) => format!("{r:?}"),
    }
}

/// A session in progress, as the driver follows it: both ends run in the devices'
/// dispatchers, and the network knows it by the driver's number.
struct Track {
    kind: Kind,
    a: usize,
    b: usize,
    /// The session's own id.
    session: u64,
    initiator: Option<DeviceResult>,
    responder: Option<DeviceResult>,
}

/// Runs sessions over the network, one dispatcher per device.
struct Driver {
    net: Network,
    rng: Rng,
    dispatchers: Vec<Dispatcher>,
    tracks: BTreeMap<usize, Track>,
    next_id: usize,
    stats: SessionStats,
    conflicts: u64,
    /// Sessions that found a device behind a peer's purge: (table kind, device, peer).
    pub(crate) resets: Vec<(Kind, usize, usize)>,
}

/// Every simulated device trusts the others with all of its data.
fn peer(devices: &[Device], d: usize) -> Peer {
    Peer::new(devices[d].id.clone(), DeviceLevel::Sl4)
}

impl Driver {
    fn new(devices: usize, config: &SimConfig, rng: Rng) -> Self {
        Driver {
            net: Network::new(devices, config.faults),
            rng,
            dispatchers: (0..devices)
                .map(|_| {
                    Dispatcher::new()
                        .batch_rows(config.batch_rows.max(1))
                        .max_silences(MAX_RETRANSMITS)
                })
                .collect(),
            tracks: BTreeMap::new(),
            next_id: 0,
            stats: SessionStats::default(),
            conflicts: 0,
            resets: Vec::new(),
        }
    }

    /// Starts a PushPull session from `a` to `b` (unless one is already running).
    fn start(&mut self, devices: &[Device], kind: Kind, a: usize, b: usize) -> Result<()> {
        if self
            .tracks
            .values()
            .any(|t| t.kind == kind && t.a == a && t.b == b)
        {
            return Ok(());
        }
        let hello = self.dispatchers[a].start(
            devices[a].store(kind),
            &peer(devices, b),
            SyncMode::PushPull,
            None,
        )?;
        let id = self.next_id;
        self.next_id += 1;
        self.stats.started += 1;
        self.net.send(&mut self.rng, a, b, id, hello.encode()?);
        self.tracks.insert(
            id,
            Track {
                kind,
                a,
                b,
                session: hello.session(),
                initiator: None,
                responder: None,
            },
        );
        self.collect(devices);
        Ok(())
    }

    /// Delivers the next message due, or lets silent sessions retransmit.
    fn tick(&mut self, devices: &[Device]) -> Result<()> {
        let Some(packet) = self.net.next(&mut self.rng) else {
            return self.silence(devices);
        };
        let Some(track) = self.tracks.get_mut(&packet.session) else {
            return Ok(()); // a session that was given up
        };
        let msg = SyncMessage::decode(&packet.bytes)?;
        let (to, from) = (packet.to, packet.from);
        let store = devices[to].store(track.kind);
        let replies =
            self.dispatchers[to].deliver(&peer(devices, from), &msg, |_| Some(store.into()));
        for reply in replies {
            self.net
                .send(&mut self.rng, to, from, packet.session, reply.encode()?);
        }
        self.collect(devices);
        Ok(())
    }

    fn silence(&mut self, devices: &[Device]) -> Result<()> {
        let quiet: BTreeSet<u64> = self
            .tracks
            .iter()
            .filter(|(id, _)| self.net.pending(**id) == 0)
            .map(|(_, t)| t.session)
            .collect();
        let by_session: BTreeMap<u64, usize> =
            self.tracks.iter().map(|(id, t)| (t.session, *id)).collect();
        for d in 0..self.dispatchers.len() {
            for (to, m) in self.dispatchers[d].silence(|_, s| quiet.contains(&s)) {
                let (Some(id), Some(to)) = (
                    by_session.get(&m.session()),
                    devices.iter().position(|x| x.id == to),
                ) else {
                    continue;
                };
                self.net.send(&mut self.rng, d, to, *id, m.encode()?);
            }
        }
        self.collect(devices);
        Ok(())
    }

    /// Gives up every session of device `d` (its databases are about to be replaced).
    fn abandon(&mut self, devices: &[Device], d: usize) {
        let ids: Vec<usize> = self
            .tracks
            .iter()
            .filter(|(_, t)| t.a == d || t.b == d)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(t) = self.tracks.remove(&id) {
                self.forget(devices, &t);
                self.net.discard(id);
                self.stats.abandoned += 1;
            }
        }
    }

    /// Both ends of a session leave the dispatchers.
    fn forget(&mut self, devices: &[Device], t: &Track) {
        let gone = SyncStatus::TimedOut;
        self.dispatchers[t.a].drop_session(&devices[t.b].id, t.session, gone);
        self.dispatchers[t.b].drop_session(&devices[t.a].id, t.session, gone);
        for d in [t.a, t.b] {
            self.dispatchers[d].take_finished();
        }
    }

    /// Files the results the dispatchers report and retires sessions whose ends are both
    /// done (or that timed out).
    fn collect(&mut self, devices: &[Device]) {
        for d in 0..self.dispatchers.len() {
            for f in self.dispatchers[d].take_finished() {
                if let Some(t) = self.tracks.values_mut().find(|t| t.session == f.session) {
                    if f.initiator {
                        t.initiator = Some(f.result);
                    } else {
                        t.responder = Some(f.result);
                    }
                }
            }
        }
        let done: Vec<usize> = self
            .tracks
            .iter()
            .filter(|(_, t)| {
                let timed_out = [&t.initiator, &t.responder]
                    .iter()
                    .any(|r| r.as_ref().is_some_and(|r| r.status == SyncStatus::TimedOut));
                // A responder that never opened its side (its Hello was lost) has nothing
                // to report.
                let responder_over = t.responder.is_some()
                    || !self.dispatchers[t.b].holds(&devices[t.a].id, t.session);
                timed_out || (t.initiator.is_some() && responder_over)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in done {
            let Some(t) = self.tracks.remove(&id) else {
                continue;
            };
            let results: Vec<&DeviceResult> =
                [&t.initiator, &t.responder].into_iter().flatten().collect();
            trace(|| {
                format!(
                    "session {:?} {} -> {} ended: {:?}",
                    t.kind,
                    devices[t.a].id,
                    devices[t.b].id,
                    results
                        .iter()
                        .map(|r| format!(
                            "{} {} sent {} received {}",
                            r.device, r.status, r.sent, r.received
                        ))
                        .collect::<Vec<_>>()
                )
            });
            self.conflicts += results.iter().map(|r| r.conflicts).sum::<u64>();
            // The device behind a purge is named first in the reason (the sender's words).
            for r in results
                .iter()
                .filter(|r| r.status == SyncStatus::ResetRequired)
            {
                let named = r.message.as_deref().unwrap_or_default();
                let behind = [t.a, t.b]
                    .into_iter()
                    .find(|d| named.starts_with(devices[*d].id.as_str()));
                if let Some(d) = behind {
                    let peer = if d == t.a { t.b } else { t.a };
                    if !self.resets.contains(&(t.kind, d, peer)) {
                        self.resets.push((t.kind, d, peer));
                    }
                }
            }
            if results.iter().any(|r| r.status == SyncStatus::TimedOut) {
                self.stats.abandoned += 1;
            } else if results.iter().all(|r| r.status.is_ok()) {
                self.stats.completed += 1;
            } else {
                self.stats.failed += 1;
            }
            self.forget(devices, &t);
            self.net.discard(id);
        }
    }
}
