//! `peerlite reset` killed with SIGKILL at random moments (real processes: the peer is a
//! `peerlite serve`): every kill leaves a database that passes `check --full` and holds the
//! state from before the reset or the reset one, never a mix; the next `peerlite reset`
//! completes it; no partial backup is listed.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::*;

/// Trials with a kill; at least a third of them must land while the reset runs.
const TRIALS: u32 = 16;

/// A deterministic generator of kill delays.
struct Rng(u64);

impl Rng {
    fn below(&mut self, limit: Duration) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let nanos = u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX).max(1);
        Duration::from_nanos(self.0 % nanos)
    }
}

/// b pulled a's rows, wrote one offline; a deleted one and purged the delete.
fn device_behind(root: &std::path::Path, n: u32, a: &Device, served: &Served) -> Device {
    let b = Device::new(root, &format!("b{n}"), "SL1").with_items();
    a.trusts(&b, "SL1", None);
    b.trusts(a, "SL1", Some(&served.addr));
    // a's serve reads its trust store again within a second or so.
    wait_until("a to trust b", || b.sync(&["--pull"]).0 == 0);
    sql(
        &b.db,
        &["INSERT INTO item(uuid, title, shop) VALUES ('u9', 'offline', 'east')"],
    );
    b
}

fn reset_args(b: &Device, a: &Device) -> Vec<std::ffi::OsString> {
    vec![
        "reset".into(),
        "--home".into(),
        b.home.clone().into(),
        b.db.clone().into(),
        "--device".into(),
        a.id.clone().into(),
        "--mode".into(),
        "recover".into(),
    ]
}

/// The reset as a process of its own, to kill.
fn reset_process(b: &Device, a: &Device) -> std::process::Command {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("peerlite"));
    cmd.env_remove("PEERLITE_KEY").args(reset_args(b, a));
    cmd
}

fn uuids(d: &Device) -> Vec<serde_json::Value> {
    d.rows("SELECT uuid FROM item ORDER BY uuid")
}

#[test]
fn a_killed_reset_leaves_the_old_state_or_the_new_and_the_next_one_completes() {
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL1").with_items();
    sql(
        &a.db,
        &[
            "INSERT INTO item(uuid, title, shop) VALUES ('u1', 'pen', 'north'), ('u2', 'ink', 'south')",
            // Enough rows that a reset takes a while to copy.
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000) INSERT INTO item(uuid, title, shop) SELECT 'bulk' || i, hex(randomblob(200)), 'x' FROM n",
        ],
    );
    let served = a.serve(&[]);
    let purge_u1 = |a: &Device| {
        sql(&a.db, &["DELETE FROM item WHERE uuid = 'u1'"]);
        stdout_of(
            peerlite()
                .args(["purge", "--home"])
                .arg(&a.home)
                .arg(&a.db)
                .args(["--older-than", "0s"]),
        );
    };
    // Time one unkilled reset.
    let first = device_behind(root.path(), 0, &a, &served);
    purge_u1(&a);
    let start = Instant::now();
    let out = run(peerlite().args(reset_args(&first, &a)));
    assert_eq!(out.0, 0, "{}\n{}", out.1, out.2);
    let window = start.elapsed() * 3 / 2;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut landed = 0;
    for n in 1..=TRIALS {
        let b = device_behind(root.path(), n, &a, &served);
        // A row b does not have yet: the reset state holds it, the old one not.
        let fresh = format!("t{n}");
        sql(
            &a.db,
            &[&format!(
                "INSERT INTO item(uuid, title, shop) VALUES ('{fresh}', 'new', 'x')"
            )],
        );
        let mut child = reset_process(&b, &a)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let delay = rng.below(window);
        let began = Instant::now();
        while began.elapsed() < delay && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_micros(300));
        }
        let _ = child.kill();
        let status = child.wait().unwrap();
        landed += u32::from(!status.success());
        // Whatever the moment: the store checks out and holds one state or the other.
        let check = run(peerlite().args(["check", "--full"]).arg(&b.db));
        assert_eq!(
            (check.0, check.1.as_str()),
            (0, "ok\n"),
            "trial {n}: {}",
            check.2
        );
        let rows = uuids(&b);
        assert!(
            rows.contains(&json!(["u9"])),
            "trial {n}: the offline row: {rows:?}"
        );
        assert!(rows.contains(&json!(["u2"])), "trial {n}: {rows:?}");
        // Old or new: the whole bulk either way, never part of it.
        let bulk = b.rows("SELECT count(*) FROM item WHERE uuid GLOB 'bulk*'");
        assert_eq!(bulk, vec![json!([3000])], "trial {n}");
        // The next reset completes it.
        let again = run(peerlite().args(reset_args(&b, &a)));
        assert_eq!(again.0, 0, "trial {n}: {}\n{}", again.1, again.2);
        let rows = uuids(&b);
        assert!(
            rows.contains(&json!(["u9"]))
                && rows.contains(&json!(["u2"]))
                && rows.contains(&json!([fresh.clone()])),
            "trial {n}: {rows:?}"
        );
        // No partial backup is listed.
        let listed = json_of(peerlite().args(["--json", "backups"]).arg(&b.db));
        for backup in listed.as_array().unwrap() {
            assert_eq!(backup["problem"], json!(null), "trial {n}: {backup}");
        }
    }
    assert!(
        landed >= TRIALS / 3,
        "only {landed} of {TRIALS} kills landed mid-reset"
    );
    // Killed resets are no failed ones: four kills in a row do not lock resets out
    // (17040014 counts only resets that failed).
    let b = device_behind(root.path(), TRIALS + 1, &a, &served);
    for _ in 0..4 {
        let mut child = reset_process(&b, &a)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(window / 4);
        let _ = child.kill();
        let _ = child.wait();
    }
    let last = run(peerlite().args(reset_args(&b, &a)));
    assert_eq!(last.0, 0, "{}\n{}", last.1, last.2);
    assert!(served.stop().success());
}
