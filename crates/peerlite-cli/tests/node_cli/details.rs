//! Small defects an outside tester found in the network commands (issue 10, F16): each test
//! tells its story and checks the contract the command keeps.

use crate::common::*;

/// `peerlite sync … --device X --device X` ran two sessions with X and printed two `X ok`
/// lines, although the contract is one line (one JSON object) per device. A device named
/// twice is synced once and reported once, in text and in JSON, whichever the direction.
#[test]
fn a_device_named_twice_is_synced_once_and_reported_once() {
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL1").with_notes(&[]);
    let b = Device::new(root.path(), "b", "SL1").with_notes(&[]);
    let served = serve_for(&a, &b, "SL1", "SL1");
    sql(&a.db, &["INSERT INTO note(text) VALUES ('once')"]);
    for direction in ["--push", "--pull"] {
        let out = a.sync_ok(&[direction, "--device", &b.id, "--device", &b.id]);
        assert_eq!(out, format!("{} ok\n", b.id), "{direction}");
        let out = a.sync_ok(&[
            direction, "--device", &b.id, "--device", &b.id, "--table", "note", "--json",
        ]);
        let list: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(list.as_array().unwrap().len(), 1, "{direction}: {out}");
    }
    assert!(served.stop().success());
}
