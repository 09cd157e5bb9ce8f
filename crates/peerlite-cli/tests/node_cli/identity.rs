//! A store takes the device id of the home that syncs or serves it; one that synced under
//! another home's id is refused (17040009, with a hint naming `--reidentify`) until
//! `peerlite sync --reidentify` gives it the new id (a new epoch), after which it syncs.

use crate::common::*;

#[test]
fn a_store_synced_as_another_device_needs_reidentify() {
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL1").with_notes(&[]);
    let b = Device::new(root.path(), "b", "SL1").with_notes(&[]);
    // Another home on the same machine, trusted by b, will take a's store.
    let other = Device::new(root.path(), "other", "SL1");
    b.trusts(&other, "SL1", None);
    let served = serve_for(&a, &b, "SL1", "SL1");
    sql(&a.db, &["INSERT INTO note(text) VALUES ('one')"]);
    a.sync_ok(&["--push"]);
    other.trusts(&b, "SL1", Some(&served.addr));
    let sync_as_other = |extra: &[&str]| {
        run(peerlite()
            .args(["sync", "--push", "--home"])
            .arg(&other.home)
            .arg(&a.db)
            .args(extra))
    };
    let (code, out, err) = sync_as_other(&[]);
    assert_eq!((code, out.as_str()), (2, ""), "{err}");
    assert!(err.starts_with("error[17040009]"), "{err}");
    assert!(
        err.contains("hint: ") && err.contains("--reidentify"),
        "{err}"
    );
    let (code, out, err) = sync_as_other(&["--reidentify"]);
    assert_eq!((code, out), (0, format!("{} ok\n", b.id)), "{err}");
    // b now holds the note under both ids: the re-identified store is a device it never met.
    assert_eq!(
        b.rows(&format!("SELECT text FROM \"{}\"", b.table_of(&a))),
        vec![serde_json::json!(["one"])]
    );
    assert_eq!(
        b.rows(&format!("SELECT text FROM \"{}\"", b.table_of(&other))),
        vec![serde_json::json!(["one"])]
    );
    assert!(served.stop().success());
}
