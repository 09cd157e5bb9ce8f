//! `--device` (in_devices), `--table` and `--eq COL=VALUE` limit what syncs: devices not
//! named get nothing, rows that do not match stay home until a sync that covers them.

use serde_json::json;

use crate::common::*;

#[test]
fn devices_tables_and_column_predicates_limit_the_sync() {
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL1").with_items();
    let b = Device::new(root.path(), "b", "SL1").with_items();
    let c = Device::new(root.path(), "c", "SL1").with_items();
    let b_served = serve_for(&a, &b, "SL1", "SL1");
    let c_served = serve_for(&a, &c, "SL1", "SL1");
    sql(
        &a.db,
        &[
            "INSERT INTO item(uuid, title, shop) VALUES ('n1', 'pen', 'north'), ('s1', 'ink', 'south'), ('n2', 'cup', 'north')",
        ],
    );
    // Only b, only the north shop's rows.
    let out = a.sync_ok(&[
        "--push",
        "--device",
        &b.id,
        "--table",
        "item",
        "--eq",
        "shop=north",
    ]);
    assert_eq!(out, format!("{} ok\n", b.id));
    assert_eq!(
        b.rows("SELECT uuid FROM item ORDER BY uuid"),
        vec![json!(["n1"]), json!(["n2"])]
    );
    assert_eq!(c.rows("SELECT count(*) FROM item"), vec![json!([0])]);
    // Two conditions are ANDed; an integer-looking value compares as an integer.
    sql(
        &a.db,
        &["INSERT INTO item(uuid, title, shop) VALUES ('7', 'seven', 'south')"],
    );
    a.sync_ok(&[
        "--push",
        "--device",
        &c.id,
        "--table",
        "item",
        "--eq",
        "shop=south",
        "--eq",
        "title=ink",
    ]);
    assert_eq!(c.rows("SELECT uuid FROM item"), vec![json!(["s1"])]);
    // The whole table to every device: what the filtered syncs left out arrives, nothing twice.
    let out = a.sync_ok(&["--push"]);
    assert_eq!(out.lines().count(), 2);
    for d in [&b, &c] {
        assert_eq!(
            d.rows("SELECT uuid, count(*) FROM item GROUP BY uuid ORDER BY uuid"),
            vec![
                json!(["7", 1]),
                json!(["n1", 1]),
                json!(["n2", 1]),
                json!(["s1", 1])
            ]
        );
    }
    // --eq without --table is a usage error.
    assert_eq!(a.sync(&["--push", "--eq", "shop=north"]).0, 1);
    assert!(b_served.stop().success());
    assert!(c_served.stop().success());
}

/// Adversary F13: one row larger than the 16 MiB frame limit (SQLite takes values up to
/// 1 GB) made the sender build a frame the receiver refused, every time: the session died
/// with "unreachable", the watermark never moved, and every row written after it stayed
/// undelivered for good. A row too large to travel is left out with its own status
/// (17040013) naming the table and key and a hint saying what to do; the rows around it
/// arrive (a 5 MB one too: the key-value store's 4 MiB values keep working), and once the
/// row is made smaller it travels.
#[test]
fn a_row_too_large_to_travel_is_reported_and_blocks_nothing() {
    let (_root, a, b, served) = blob_devices();
    sql(
        &a.db,
        &["INSERT INTO t VALUES (1, randomblob(5000000)), (2, randomblob(20000000)), (3, x'01')"],
    );
    let too_large = |out: &str, err: &str| {
        assert!(
            out.starts_with(&format!("{} error[17040013] row too large to sync: ", b.id)),
            "{out}\n{err}"
        );
        assert!(out.contains("table t with key 2 "), "{out}");
        assert!(
            err.contains("hint: ") && err.contains("peerlite sql"),
            "{err}"
        );
    };
    let (code, out, err) = a.sync(&["--push"]);
    assert_eq!(code, 2, "{out}\n{err}");
    too_large(&out, &err);
    let arrived = |b: &Device| {
        let table = stdout_of(
            peerlite()
                .arg("table-name")
                .arg(&b.db)
                .args(["--device", &a.id, "--table", "t"]),
        );
        b.rows(&format!(
            "SELECT id, length(v) FROM \"{}\" ORDER BY id",
            table.trim()
        ))
    };
    assert_eq!(
        arrived(&b),
        vec![serde_json::json!([1, 5000000]), serde_json::json!([3, 1])]
    );
    // A later row travels; the large one is reported again, every sync, until it changes.
    sql(&a.db, &["INSERT INTO t VALUES (4, x'0404')"]);
    let (code, out, err) = a.sync(&["--push"]);
    assert_eq!(code, 2, "{out}\n{err}");
    too_large(&out, &err);
    assert_eq!(arrived(&b).len(), 3);
    // What the hint says: made smaller, it travels and the status is ok.
    sql(&a.db, &["UPDATE t SET v = randomblob(1000) WHERE id = 2"]);
    a.sync_ok(&["--push"]);
    assert_eq!(
        arrived(&b),
        vec![
            serde_json::json!([1, 5000000]),
            serde_json::json!([2, 1000]),
            serde_json::json!([3, 1]),
            serde_json::json!([4, 2])
        ]
    );
    assert!(served.stop().success());
}

/// Adversary round 2, finding 10: a pull that left a row too large to travel behind said
/// `ok` (received 0) on the pulling device: 17040013 reached only the serving device's log,
/// though README promises the row is "left out and named (table and key) at every sync of the
/// table". The sending side's stream now ends with a notice, so the puller's line (and its
/// `--json` entry) carries 17040013 naming the row, like the pusher's; the rows around it
/// arrive, and once the row is made smaller the pull is ok again.
#[test]
fn a_pull_that_leaves_a_row_too_large_behind_says_so() {
    let (_root, a, b, served) = blob_devices();
    sql(
        &b.db,
        &["INSERT INTO t VALUES (1, x'01'), (2, randomblob(9000000)), (3, x'03')"],
    );
    for round in 0..2 {
        let (code, out, err) = a.sync(&["--pull"]);
        assert_eq!(code, 2, "round {round}: {out}\n{err}");
        assert!(
            out.starts_with(&format!("{} error[17040013] row too large to sync: ", b.id)),
            "round {round}: {out}\n{err}"
        );
        assert!(out.contains("table t with key 2 "), "{out}");
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(
            err.contains("hint: ") && err.contains("peerlite sql"),
            "{err}"
        );
    }
    let (code, out, _) = a.sync(&["--pull", "--json"]);
    assert_eq!(code, 2);
    let entry = &serde_json::from_str::<serde_json::Value>(&out).unwrap()[0];
    assert_eq!(entry["code"], serde_json::json!(17040013), "{entry}");
    let table = stdout_of(
        peerlite()
            .arg("table-name")
            .arg(&a.db)
            .args(["--device", &b.id, "--table", "t"]),
    );
    let arrived = || a.rows(&format!("SELECT id FROM \"{}\" ORDER BY id", table.trim()));
    assert_eq!(
        arrived(),
        vec![serde_json::json!([1]), serde_json::json!([3])]
    );
    sql(&b.db, &["UPDATE t SET v = x'02' WHERE id = 2"]);
    a.sync_ok(&["--pull"]);
    assert_eq!(arrived().len(), 3);
    assert!(served.stop().success());
}

/// Adversary round 2, finding 9: a reset against a device that holds a row too large to sync
/// (over 8 MiB) installed a state without it and dropped this device's own copy of the row,
/// with no 17040013 anywhere. The pull into the seed now says 17040013, so the reset is given
/// up: the store is left as it was (the row with it), the hint says what to do, and no failed
/// attempt is counted.
#[test]
fn a_reset_against_a_device_holding_a_row_too_large_leaves_the_store_as_it_was() {
    let (_root, a, b, served) = blob_devices();
    sql(
        &b.db,
        &["INSERT INTO t VALUES (2, randomblob(9000000)), (3, x'03')"],
    );
    sql(&a.db, &["INSERT INTO t VALUES (1, x'01')"]);
    let before = a.rows("SELECT id, length(v) FROM t ORDER BY id");
    let (code, _, err) = run(peerlite()
        .args(["reset", "--home"])
        .arg(&a.home)
        .arg(&a.db)
        .args(["--device", &b.id, "--mode", "recover"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("17040013"), "{err}");
    assert!(
        err.contains("hint: ") && err.contains("peerlite sql"),
        "{err}"
    );
    assert_eq!(a.rows("SELECT id, length(v) FROM t ORDER BY id"), before);
    let kept = a.dir.join("backup").join("notes.db");
    let left: Vec<String> = std::fs::read_dir(&kept)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("pre-reset-"))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "an abandoned reset leaves no backup: {left:?}"
    );
    assert!(served.stop().success());
}

/// Two SL1 devices with a distributed `t(id, v BLOB)`; b serves a.
fn blob_devices() -> (tempfile::TempDir, Device, Device, Served) {
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL1");
    let b = Device::new(root.path(), "b", "SL1");
    for d in [&a, &b] {
        sql(&d.db, &["CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)"]);
        peerlite()
            .arg("distribute")
            .arg(&d.db)
            .arg("t")
            .assert()
            .success();
    }
    let served = serve_for(&a, &b, "SL1", "SL1");
    (root, a, b, served)
}
