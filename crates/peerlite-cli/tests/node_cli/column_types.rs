//! Tables whose column names matched but whose types differed (`note(id INTEGER PRIMARY KEY,
//! text TEXT)` on one device, `note(id TEXT PRIMARY KEY, text BLOB)` on the other) passed the
//! handshake: `peerlite sync --push` converted the values silently and every `--pull` then
//! failed with SQLite's "datatype mismatch". Between two real processes, both directions now
//! fail at once with 17040005 naming the column and both types, and nothing is sent.

use crate::common::*;

#[test]
fn another_column_type_is_refused_both_ways_naming_the_column() {
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL1");
    let b = Device::new(root.path(), "b", "SL1");
    for (d, create) in [
        (&a, "CREATE TABLE note(id INTEGER PRIMARY KEY, text TEXT)"),
        (&b, "CREATE TABLE note(id TEXT PRIMARY KEY, text BLOB)"),
    ] {
        sql(&d.db, &[create]);
        peerlite()
            .arg("distribute")
            .arg(&d.db)
            .arg("note")
            .assert()
            .success();
    }
    sql(&a.db, &["INSERT INTO note VALUES (1, 'a')"]);
    sql(&b.db, &["INSERT INTO note VALUES ('x', x'00ff')"]);
    let served = serve_for(&a, &b, "SL1", "SL1");
    for mode in ["--push", "--pull"] {
        let (code, out, err) = a.sync(&[mode]);
        assert_eq!(code, 2, "{mode}: {out}{err}");
        let said = format!("{out}{err}");
        assert!(said.contains("17040005"), "{mode}: {said}");
        assert!(said.contains("note.id is "), "{mode}: {said}");
        assert!(
            said.contains("INTEGER") && said.contains("TEXT"),
            "{mode}: {said}"
        );
    }
    assert_eq!(a.device_tables(), 0);
    assert_eq!(b.device_tables(), 0);
    assert!(served.stop().success());
}
