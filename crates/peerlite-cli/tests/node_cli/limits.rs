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
