//! Three devices where A and C never connect to each other converge through B: rows relay.

use serde_json::json;

use crate::common::*;

#[test]
fn a_and_c_converge_through_b() {
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL1").with_items();
    let b = Device::new(root.path(), "b", "SL1").with_items();
    let c = Device::new(root.path(), "c", "SL1").with_items();
    b.trusts(&a, "SL1", None);
    b.trusts(&c, "SL1", None);
    let served = b.serve(&[]);
    a.trusts(&b, "SL1", Some(&served.addr));
    c.trusts(&b, "SL1", Some(&served.addr));
    sql(
        &a.db,
        &["INSERT INTO item(uuid, title) VALUES ('from-a', 'x')"],
    );
    sql(
        &c.db,
        &["INSERT INTO item(uuid, title) VALUES ('from-c', 'y')"],
    );
    a.sync_ok(&["--push"]);
    c.sync_ok(&["--push"]);
    a.sync_ok(&["--pull"]);
    c.sync_ok(&["--pull"]);
    let all = vec![json!(["from-a", "x"]), json!(["from-c", "y"])];
    for d in [&a, &b, &c] {
        assert_eq!(d.rows("SELECT uuid, title FROM item ORDER BY uuid"), all);
    }
    // A and C know nothing of each other.
    for (d, other) in [(&a, &c), (&c, &a)] {
        let trusted = stdout_of(peerlite().args(["trust", "list", "--home"]).arg(&d.home));
        assert!(!trusted.contains(&other.id));
    }
    assert!(served.stop().success());
}
