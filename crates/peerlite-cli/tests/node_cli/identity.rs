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

/// Adversary F22: b's store was backed up before it ever synced (it still had the random id
/// it was created with), then `peerlite serve` took it (as b) and a synced its rows. A
/// `peerlite restore` of that backup while serve ran brought the backup's id back into the
/// file: the rows captured after it went to a under that id — a device nobody knows — while
/// b's copy on a went stale; and once serve stopped, b's own home was refused with "this
/// store synced as device B; it cannot become B" (the same id twice). A restore under a
/// running serve must leave the store syncing as b, and the store stays b's.
#[test]
fn a_restore_under_a_running_serve_keeps_the_device_id() {
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL1").with_notes(&[]);
    let b = Device::new(root.path(), "b", "SL1").with_notes(&[]);
    sql(&b.db, &["INSERT INTO note(id, text) VALUES (1, 'one')"]);
    let backup = "b1";
    peerlite()
        .arg("backup")
        .arg(&b.db)
        .arg(backup)
        .assert()
        .success();
    sql(&b.db, &["INSERT INTO note(id, text) VALUES (2, 'two')"]);
    let served = serve_for(&a, &b, "SL1", "SL1");
    a.sync_ok(&["--pull"]);
    peerlite()
        .arg("restore")
        .arg(&b.db)
        .arg(backup)
        .assert()
        .success();
    sql(&b.db, &["INSERT INTO note(id, text) VALUES (4, 'four')"]);
    a.sync_ok(&["--pull"]);
    // Only b's table on a, and it holds the row written after the restore. (Row 2, which
    // the restore took back, stays on a: a restore sends no deletes.)
    assert_eq!(a.device_tables(), serde_json::json!(1));
    assert_eq!(
        a.rows(&format!(
            "SELECT id, text FROM \"{}\" ORDER BY id",
            a.table_of(&b)
        )),
        vec![
            serde_json::json!([1, "one"]),
            serde_json::json!([2, "two"]),
            serde_json::json!([4, "four"])
        ]
    );
    assert_eq!(
        b.rows("SELECT value FROM peerlite_meta WHERE key IN ('device_id', 'synced_as')"),
        vec![serde_json::json!([b.id]), serde_json::json!([b.id])]
    );
    assert!(served.stop().success());
    // The store is still b's: its own home syncs and serves it.
    let a_served = a.serve(&[]);
    b.distrusts(&a);
    b.trusts(&a, "SL1", Some(&a_served.addr));
    sql(&b.db, &["INSERT INTO note(id, text) VALUES (5, 'five')"]);
    assert_eq!(b.sync_ok(&["--push"]), format!("{} ok\n", a.id));
    assert_eq!(a.device_tables(), serde_json::json!(1));
    assert_eq!(
        a.rows(&format!(
            "SELECT text FROM \"{}\" WHERE id = 5",
            a.table_of(&b)
        )),
        vec![serde_json::json!(["five"])]
    );
    assert!(a_served.stop().success());
}

/// Adversary F20: a home directory or trust.json writable by other users was used without a
/// word, although whoever can write trust.json decides which devices connect and at which
/// level (any local user could make their own device trusted at SL5, and a running serve
/// re-reads the file). Such a home is refused by every command that reads it, with 17060027
/// and a hint naming `chmod`; a key readable by others is still only warned about; once the
/// permissions are fixed, everything works again.
#[cfg(unix)]
#[test]
fn a_home_or_trust_store_others_can_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL1").with_notes(&[]);
    let b = Device::new(root.path(), "b", "SL1");
    a.trusts(&b, "SL1", Some("127.0.0.1:9"));
    let chmod = |path: &std::path::Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    let home = |args: &[&str]| {
        run(peerlite()
            .args(args)
            .arg("--home")
            .arg(&a.home)
            .args(if args[0] == "serve" {
                vec!["--no-mdns", "--listen", "127.0.0.1:0", "--db"]
            } else {
                vec![]
            })
            .args(if args[0] == "serve" || args[0] == "sync" {
                vec![a.db.to_str().unwrap()]
            } else {
                vec![]
            }))
    };
    let trust = a.home.join("trust.json");
    // device.json holds the device's own level: a user who can write it raises the device.
    let record = a.home.join("device.json");
    for (path, bad, good) in [
        (&a.home, 0o777, 0o700),
        (&trust, 0o666, 0o600),
        (&record, 0o606, 0o600),
    ] {
        chmod(path, bad);
        for args in [
            &["trust", "list"][..],
            &["device", "id"],
            &["sync", "--push"],
            &["serve"],
        ] {
            if path == &trust && args[0] == "device" {
                continue; // printing its own id reads no trust store
            }
            let (code, _, err) = home(args);
            assert_eq!(code, 2, "{args:?} with {path:?} {bad:o}: {err}");
            assert!(err.contains("error[17060027]"), "{args:?}: {err}");
            assert!(err.contains("writable by other users"), "{err}");
            assert!(
                err.contains("hint: ") && err.contains("chmod go-w"),
                "{err}"
            );
        }
        chmod(path, good);
    }
    // A key others can read is warned about; the command works.
    chmod(&a.home.join("device.key"), 0o644);
    let (code, out, err) = home(&["device", "id"]);
    assert_eq!((code, out.trim()), (0, a.id.as_str()), "{err}");
    assert!(err.contains("readable by others"), "{err}");
    chmod(&a.home.join("device.key"), 0o600);
    let (code, out, err) = home(&["trust", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&b.id), "{out}");
}

/// Adversary round 2, finding 7 (the rest): a home inside a directory every user may write
/// (`mkdir pw; chmod 777 pw; cp -a H pw/H`) was used without a word, though any user could
/// rename the home away and put their own in its place (their trust store, their level). A
/// directory above the home that others may write and that is not sticky is now refused as
/// the home itself is (17060027, naming the directory, with a `chmod` hint); a sticky one like
/// /tmp is fine, and so is the directory once fixed, at any depth of the chain.
#[cfg(unix)]
#[test]
fn a_home_inside_a_directory_others_can_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let outer = root.path().join("shared");
    let inner = outer.join("deeper");
    std::fs::create_dir_all(&inner).unwrap();
    let a = Device::new(&inner, "a", "SL1");
    let chmod = |path: &std::path::Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    let list = || run(peerlite().args(["trust", "list", "--home"]).arg(&a.home));
    for dir in [&outer, &inner, &a.dir] {
        chmod(dir, 0o777);
        for args in [&["trust", "list"][..], &["device", "id"]] {
            let (code, _, err) = run(peerlite().args(args).arg("--home").arg(&a.home));
            assert_eq!(code, 2, "{args:?} under {dir:?}: {err}");
            assert!(err.contains("error[17060027]"), "{err}");
            assert!(err.contains(&dir.display().to_string()), "{err}");
            assert!(err.contains("hint: ") && err.contains("chmod"), "{err}");
        }
        // Sticky, as /tmp is: only a file's owner may rename it.
        chmod(dir, 0o1777);
        let (code, _, err) = list();
        assert_eq!(code, 0, "{dir:?} sticky: {err}");
        chmod(dir, 0o755);
    }
    let (code, _, err) = list();
    assert_eq!(code, 0, "{err}");
}
