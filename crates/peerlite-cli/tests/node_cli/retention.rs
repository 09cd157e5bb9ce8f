//! Tombstone retention from the command line: `peerlite purge` forgets deletes, `peerlite
//! status` shows where a store stands with each peer, and a device whose watermark lies
//! before a purge gets `error[17040011]` (a client reset is required) — never a delta that
//! silently keeps a row its peer deleted.

use serde_json::json;

use crate::common::*;

fn status(d: &Device) -> serde_json::Value {
    let out = stdout_of(
        peerlite()
            .args(["--json", "status", "--home"])
            .arg(&d.home)
            .arg(&d.db),
    );
    serde_json::from_str(&out).unwrap()
}

fn purge(d: &Device, older_than: &str) -> String {
    stdout_of(
        peerlite()
            .args(["purge", "--home"])
            .arg(&d.home)
            .arg(&d.db)
            .args(["--older-than", older_than]),
    )
}

#[test]
fn a_device_behind_a_purge_is_told_it_needs_a_reset() {
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL1").with_notes(&[]);
    let b = Device::new(root.path(), "b", "SL1").with_notes(&[]);
    let served = serve_for(&b, &a, "SL1", "SL1");
    sql(&a.db, &["INSERT INTO note(text) VALUES ('milk'), ('eggs')"]);
    b.sync_ok(&["--pull"]);

    sql(&a.db, &["DELETE FROM note WHERE text = 'milk'"]);
    // Inside the retention nothing goes.
    assert_eq!(
        purge(&a, "30d")
            .lines()
            .next()
            .unwrap()
            .split(';')
            .next()
            .unwrap(),
        "purged 0 tombstones"
    );
    assert!(purge(&a, "0s").starts_with("purged 1 tombstones; horizon 20"));
    let mine = status(&a);
    assert_eq!(mine["tombstones"], json!(0));
    assert!(mine["horizon_ms"].as_u64().unwrap() > 0);
    // a knows b holds the first two rows.
    assert_eq!(mine["peers"][0]["device"], json!(b.id));

    let (code, out, _) = b.sync(&["--pull"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.starts_with(&format!("{} error[17040011]", a.id)),
        "{out}"
    );
    // Nothing half-applied: the reset decides.
    let table = b.table_of(&a);
    assert_eq!(
        b.rows(&format!("SELECT count(*) FROM \"{table}\"")),
        vec![json!([2])]
    );
    assert!(served.stop().success());
}

#[test]
fn status_shows_epoch_watermarks_and_unsynced_changes() {
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL1").with_notes(&[]);
    let b = Device::new(root.path(), "b", "SL1").with_notes(&[]);
    let served = serve_for(&a, &b, "SL1", "SL1");
    let fresh = status(&a);
    assert_eq!(fresh["peers"], json!([]));
    assert_eq!(fresh["retention_ms"], json!(30u64 * 86_400_000));
    sql(&a.db, &["INSERT INTO note(text) VALUES ('milk')"]);
    a.sync_ok(&["--push"]);
    sql(&a.db, &["INSERT INTO note(text) VALUES ('eggs'), ('tea')"]);
    let s = status(&a);
    assert_eq!(s["peers"][0]["device"], json!(b.id));
    assert_eq!(s["peers"][0]["unsynced"], json!(2));
    assert_eq!(s["epoch"].as_str().unwrap().len(), 32);
    let text = stdout_of(
        peerlite()
            .args(["status", "--home"])
            .arg(&a.home)
            .arg(&a.db),
    );
    assert!(
        text.contains(&format!("peer {}  unsynced 2", b.id)),
        "{text}"
    );
    assert!(text.contains("retention   30d"), "{text}");
    assert!(served.stop().success());
}

#[test]
fn bad_durations_are_usage_errors() {
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL1").with_notes(&[]);
    for bad in ["30", "1w", "-1s", "x"] {
        let out = peerlite()
            .args(["purge", "--home"])
            .arg(&a.home)
            .arg(&a.db)
            .args(["--older-than", bad])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{bad}");
    }
}

/// The device that was away comes back after its peer purged the deletes it missed: a plain
/// pull is refused (17040011, nothing changes); `--on-reset recover` resets it against that
/// device — a verified backup first, the peer's full state, its offline edits replayed — and
/// pulls again.
#[test]
fn a_pull_with_on_reset_recovers_the_offline_edits() {
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL1").with_items();
    let b = Device::new(root.path(), "b", "SL1").with_items();
    let served = serve_for(&b, &a, "SL1", "SL1");
    sql(
        &a.db,
        &[
            "INSERT INTO item(uuid, title, shop) VALUES ('u1', 'pen', 'north'), ('u2', 'ink', 'south')",
        ],
    );
    b.sync_ok(&["--pull"]);
    // b goes offline and edits; a deletes u1 and forgets the delete.
    sql(
        &b.db,
        &["INSERT INTO item(uuid, title, shop) VALUES ('u9', 'offline', 'east')"],
    );
    sql(&a.db, &["DELETE FROM item WHERE uuid = 'u1'"]);
    stdout_of(
        peerlite()
            .args(["purge", "--home"])
            .arg(&a.home)
            .arg(&a.db)
            .args(["--older-than", "0s"]),
    );
    let (code, out, _) = b.sync(&["--pull"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("error[17040011]"), "{out}");
    let (code, out, err) = b.sync(&["--pull", "--on-reset", "recover"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(out, format!("{} ok\n", a.id));
    assert!(err.contains("note: client reset from"), "{err}");
    assert_eq!(
        b.rows("SELECT uuid, title FROM item ORDER BY uuid"),
        vec![json!(["u2", "ink"]), json!(["u9", "offline"])]
    );
    // The backup the reset took is listed.
    let backups = stdout_of(peerlite().arg("backups").arg(&b.db));
    assert!(backups.contains("pre-reset-"), "{backups}");
    // And b's offline edit reaches a.
    b.sync_ok(&["--push"]);
    assert_eq!(
        a.rows("SELECT uuid FROM item ORDER BY uuid"),
        vec![json!(["u2"]), json!(["u9"])]
    );
    assert!(served.stop().success());
}

#[test]
fn reset_manual_lists_the_unsynced_changes_and_installs_the_peers_state() {
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL1").with_items();
    let b = Device::new(root.path(), "b", "SL1").with_items();
    let served = serve_for(&b, &a, "SL1", "SL1");
    sql(
        &a.db,
        &["INSERT INTO item(uuid, title, shop) VALUES ('u1', 'pen', 'north')"],
    );
    b.sync_ok(&["--pull"]);
    sql(
        &b.db,
        &["INSERT INTO item(uuid, title, shop) VALUES ('u9', 'offline', 'east')"],
    );
    let out = stdout_of(
        peerlite()
            .args(["--json", "reset", "--home"])
            .arg(&b.home)
            .arg(&b.db)
            .args(["--device", &a.id, "--mode", "manual"]),
    );
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["mode"], json!("manual"));
    assert_eq!(v["discarded"], json!(1));
    assert_eq!(v["unsynced"].as_array().unwrap().len(), 1);
    assert_eq!(v["unsynced"][0]["key"], json!("u9"));
    // With the values they held (adversary round 2, finding 11: the list had none).
    assert_eq!(v["unsynced"][0]["values"]["title"], json!("offline"));
    assert_eq!(v["unsynced"][0]["values"]["shop"], json!("east"));
    assert_eq!(
        b.rows("SELECT uuid FROM item ORDER BY uuid"),
        vec![json!(["u1"])]
    );
    // --on-reset with --push is a usage error (it would be ignored).
    let (code, _, _) = b.sync(&["--push", "--on-reset", "recover"]);
    assert_eq!(code, 1);
    // A bad mode is a usage error.
    let (code, _, _) = run(peerlite()
        .args(["reset", "--home"])
        .arg(&b.home)
        .arg(&b.db)
        .args(["--device", &a.id, "--mode", "maybe"]));
    assert_eq!(code, 1);
    assert!(served.stop().success());
}

/// `peerlite status` wrote to the store it shows: it turned a 0-byte file into a store and
/// stamped a device id and epoch on one it only read. It only reads now.
#[test]
fn status_changes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL1").with_notes(&[]);
    stdout_of(peerlite().arg("checkpoint").arg(&a.db));
    let before = std::fs::read(&a.db).unwrap();
    stdout_of(
        peerlite()
            .args(["status", "--home"])
            .arg(&a.home)
            .arg(&a.db),
    );
    stdout_of(peerlite().arg("checkpoint").arg(&a.db));
    assert_eq!(std::fs::read(&a.db).unwrap(), before);
    let empty = a.dir.join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let (code, _, _) = run(peerlite()
        .args(["status", "--home"])
        .arg(&a.home)
        .arg(&empty));
    assert_ne!(code, 0);
    assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0, "still 0 bytes");
}

/// Adversary round 2, findings 18b and 18d: a reset whose device never answered took a full
/// verified backup each time (three unreachable attempts left three copies of the store) and
/// counted as a failed reset, so three of them locked resets out with 17040014 — although the
/// store was never touched. A reset whose pull cannot run is abandoned: no backup is left, no
/// attempt counted, and the store is as it was.
#[test]
fn a_reset_against_a_device_that_never_answers_leaves_nothing_and_counts_nothing() {
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL1").with_items();
    let b = Device::new(root.path(), "b", "SL1").with_items();
    // b knows a at an address where nothing listens.
    b.trusts(&a, "SL1", Some("127.0.0.1:9"));
    sql(
        &b.db,
        &["INSERT INTO item(uuid, title, shop) VALUES ('u1', 'pen', 'north')"],
    );
    for _ in 0..peerlite::reset::MAX_ATTEMPTS + 1 {
        let (code, _, err) = run(peerlite()
            .args(["reset", "--home"])
            .arg(&b.home)
            .arg(&b.db)
            .args(["--device", &a.id, "--mode", "recover", "--timeout", "2"]));
        assert_eq!(code, 2, "{err}");
        assert!(
            !err.contains("17040014"),
            "an unreachable device counted as a failed reset: {err}"
        );
    }
    let backups = b.dir.join("backup");
    let left: Vec<String> = walk_names(&backups)
        .into_iter()
        .filter(|n| n.starts_with("pre-reset-"))
        .collect();
    assert!(left.is_empty(), "abandoned resets left backups: {left:?}");
    assert_eq!(b.rows("SELECT uuid FROM item"), vec![json!(["u1"])]);
}

fn walk_names(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            out.push(e.file_name().to_string_lossy().into_owned());
            if e.path().is_dir() {
                out.extend(walk_names(&e.path()));
            }
        }
    }
    out
}

/// Adversary round 3, finding 5: a reset against a device where the table is not distributed
/// was refused with 17040001 and a hint about trust and levels, which had nothing to do with
/// it. A refused reset gets the hint a sync refused the same way gets.
#[test]
fn a_reset_refused_for_its_tables_says_how_to_distribute_them() {
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL1");
    let b = Device::new(root.path(), "b", "SL1").with_items();
    // a serves a store of the same name whose table is not distributed.
    sql(&a.db, &[CREATE_ITEM]);
    let served = serve_for(&b, &a, "SL1", "SL1");
    let (code, _, err) = run(peerlite()
        .args(["reset", "--home"])
        .arg(&b.home)
        .arg(&b.db)
        .args(["--device", &a.id, "--mode", "recover"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("17040001"), "{err}");
    assert!(err.contains("peerlite distribute"), "{err}");
    assert!(!err.contains("trust add"), "{err}");
    assert!(served.stop().success());
}
