//! A concurrent edit of one row on two devices converges: after both sync, both hold the
//! same value (the later write, column by column), whichever started the sync.

use serde_json::json;

use crate::common::*;

#[test]
fn concurrent_edits_of_one_row_converge() {
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL1").with_items();
    let b = Device::new(root.path(), "b", "SL1").with_items();
    let served = serve_for(&a, &b, "SL1", "SL1");
    sql(
        &a.db,
        &["INSERT INTO item(uuid, title, shop) VALUES ('u1', 'pen', 'north')"],
    );
    a.sync_ok(&["--push"]);
    // Both edit the row before hearing of the other's edit.
    sql(
        &a.db,
        &["UPDATE item SET title = 'red pen' WHERE uuid = 'u1'"],
    );
    sql(
        &b.db,
        &["UPDATE item SET title = 'blue pen', shop = 'south' WHERE uuid = 'u1'"],
    );
    a.sync_ok(&["--push"]);
    a.sync_ok(&["--pull"]);
    let on_a = a.rows("SELECT uuid, title, shop FROM item");
    let on_b = b.rows("SELECT uuid, title, shop FROM item");
    assert_eq!(on_a, on_b);
    // b wrote last: its title wins; its shop too (only b wrote it).
    assert_eq!(on_a, vec![json!(["u1", "blue pen", "south"])]);
    assert!(served.stop().success());
}
