//! Convergence under any delivery (issue 4): for random device counts, writes and network
//! faults, every device ends with the same contents after the network heals, within a bounded
//! number of sync rounds; the single-version table holds exactly what the merge rules give
//! for the writes made (no acknowledged write lost unless a later one overwrote it); and no
//! conflict reported by sync is missing from the stores. Devices also live through what real
//! ones do (issue 9): wall clocks set back after running ahead (within the clamp), databases
//! deleted and re-created with the same device id, backups restored followed by a restart,
//! and rows clashing on a UNIQUE column whose conflicts are resolved on both sides, after the
//! clash was fixed too — and still every device converges to what the rules give, and no
//! resolution deletes a row that breaks no constraint. Seeded: every run checks the same
//! cases, and a failure prints the simulation seed that replays it (`peerlite sim --seed`).
#![allow(clippy::unwrap_used)]

use peerlite_testkit::sim::{Faults, SimConfig, run};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

fn config() -> Config {
    Config {
        cases: 64,
        rng_seed: RngSeed::Fixed(0x7065_6572_6c69_7465),
        failure_persistence: None,
        // Each case is a whole simulation on real files: shrinking would take minutes.
        max_shrink_iters: 0,
        ..Config::default()
    }
}

/// (clock steps in ms, re-creation, restores, conflict resolution).
fn mishaps() -> impl Strategy<Value = (u64, bool, bool, bool)> {
    (
        prop_oneof![Just(0u64), Just(40_000u64), Just(240_000u64)],
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
}

fn faults() -> impl Strategy<Value = (Faults, bool)> {
    (0.0..0.4f64, 0.0..0.4f64, any::<bool>(), any::<bool>())
        .prop_map(|(drop, dup, reorder, partitions)| (Faults { drop, dup, reorder }, partitions))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn devices_converge_to_what_the_rules_give(
        devices in 2usize..=5,
        ops in 20usize..120,
        seed in any::<u64>(),
        (faults, partitions) in faults(),
        batch_rows in 1usize..6,
        max_skew_ms in prop_oneof![Just(2_000u64), Just(240_000u64), Just(86_400_000u64)],
        (clock_steps_ms, recreate, restores, resolve) in mishaps(),
        purges in any::<bool>(),
    ) {
        let config = SimConfig {
            devices, ops, seed, faults, partitions, batch_rows, max_rounds: 12, max_skew_ms,
            clock_steps_ms, recreate, restores, resolve, purges,
        };
        let report = run(&config).unwrap();
        prop_assert!(report.converged, "not converged: {config:?}\n{report:#?}");
        prop_assert!(report.violations.is_empty(), "rules broken: {config:?}\n{:#?}", report.violations);
        let first = &report.devices[0];
        prop_assert!(report.devices.iter().all(|d| d.items_hash == first.items_hash && d.notes_hash == first.notes_hash));
        prop_assert_eq!(report.conflicts_recorded, 0, "healing resolves every conflict");
    }
}

#[test]
fn the_same_seed_replays_the_same_run() {
    let config = SimConfig {
        devices: 4,
        ops: 80,
        seed: 42,
        faults: Faults {
            drop: 0.25,
            dup: 0.25,
            reorder: true,
        },
        partitions: true,
        ..SimConfig::default()
    };
    let (a, b) = (run(&config).unwrap(), run(&config).unwrap());
    assert_eq!(a, b);
    assert!(a.ok(), "{a:#?}");
    assert!(
        a.network.dropped > 0 && a.network.duplicated > 0,
        "{:?}",
        a.network
    );
}

#[test]
fn a_quiet_network_converges_in_one_round() {
    let report = run(&SimConfig {
        devices: 5,
        ops: 150,
        seed: 9,
        ..SimConfig::default()
    })
    .unwrap();
    assert!(report.ok(), "{report:#?}");
    assert_eq!(report.rounds, 1);
    assert_eq!(report.sessions.abandoned, 0);
    assert!(report.writes > 30, "{}", report.writes);
}

/// Every mishap at once, on a faulty network: each kind really happens, and the devices still
/// converge to exactly what the rules give for the writes that survived.
#[test]
fn devices_that_skew_recreate_restore_and_resolve_still_converge() {
    let config = SimConfig {
        devices: 4,
        ops: 300,
        seed: 2024,
        faults: Faults {
            drop: 0.1,
            dup: 0.1,
            reorder: true,
        },
        // Within the clamp together, so every stamp is the clock's and the clock's
        // monotonicity is checked too.
        clock_steps_ms: 240_000,
        max_skew_ms: 30_000,
        recreate: true,
        restores: true,
        resolve: true,
        ..SimConfig::default()
    };
    let report = run(&config).unwrap();
    assert!(report.ok(), "{report:#?}");
    let life = report.lifecycle;
    assert!(life.clock_steps > 0, "{life:?}");
    assert!(life.recreated > 0, "{life:?}");
    assert!(life.restored > 0, "{life:?}");
    assert!(life.clashes_fixed > 0, "{life:?}");
    assert!(life.conflicts_resolved > 0, "{life:?}");
    assert!(report.conflicts_reported > 0, "{report:#?}");
    assert_eq!(report.conflicts_recorded, 0);
}

/// Devices forget their deletes now and then (tombstones purged at once, as past a
/// retention); a device a session finds behind such a purge is reset against that peer,
/// recovering its unsynced writes. On a faulty network, with partitions keeping devices
/// apart, they still converge to exactly what the rules give for the writes that survived —
/// no write of a reset device's own is lost to the reset.
#[test]
fn devices_behind_purged_deletes_are_reset_and_still_converge() {
    for seed in [7, 8, 9] {
        let config = SimConfig {
            devices: 3,
            ops: 250,
            seed,
            faults: Faults {
                drop: 0.05,
                dup: 0.05,
                reorder: true,
            },
            partitions: true,
            purges: true,
            ..SimConfig::default()
        };
        let report = run(&config).unwrap();
        assert!(report.ok(), "seed {seed}: {report:#?}");
        let life = report.lifecycle;
        assert!(life.purges > 0, "seed {seed}: {life:?}");
        if seed == 7 {
            // Not every seed sends a device behind a purge; this one does.
            assert!(life.resets > 0, "seed {seed}: {life:?}");
        }
    }
}
