//! Migrations read from a directory of `NNNN_name.sql` files.

use std::path::Path;

use peerlite::{Error, Migrations};
use peerlite_testkit::{create_at_version, migrate_to, query_column, temp_store_path};

use crate::common::{columns, inspect, migration_parts};

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, sql) in files {
        std::fs::write(dir.join(name), sql).unwrap();
    }
}

fn assert_invalid(err: &Error) {
    assert_eq!(err.code(), 14800001, "{err}");
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
}

#[test]
fn reads_ups_and_downs_in_order_and_ignores_other_files() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            (
                "0002_add_email.sql",
                "ALTER TABLE user ADD COLUMN email TEXT DEFAULT '';",
            ),
            (
                "0002_add_email.down.sql",
                "ALTER TABLE user DROP COLUMN email;",
            ),
            (
                "0001_init.sql",
                "CREATE TABLE user(id INTEGER PRIMARY KEY, name TEXT);\nINSERT INTO user(name) VALUES ('root');",
            ),
            ("0003_index.sql", "CREATE INDEX user_email ON user(email);"),
            ("0003_index.down.sql", "DROP INDEX user_email;"),
            ("README.md", "not a migration"),
            ("notes.sql.bak", "not a migration either"),
        ],
    );
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let m = Migrations::from_dir(dir.path()).unwrap();
    assert_eq!(m.latest(), 3);
    assert_eq!(m.names(), ["0001_init", "0002_add_email", "0003_index"]);

    let (_db, path) = temp_store_path();
    let store = migrate_to(&path, &m, 3).unwrap();
    assert_eq!(columns(&store, "user"), ["id", "name", "email"]);
    assert_eq!(
        query_column::<String>(&store, "SELECT name FROM user", &[]).unwrap(),
        ["root"]
    );
    store.close().unwrap();
    // The .down.sql files make the way back.
    let store = migrate_to(&path, &m, 1).unwrap();
    assert_eq!(store.version().unwrap(), 1);
    assert_eq!(columns(&store, "user"), ["id", "name"]);
    assert_eq!(
        query_column::<String>(&store, "SELECT name FROM user", &[]).unwrap(),
        ["root"]
    );
}

#[test]
fn a_failing_file_is_named_by_its_stem() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("0001_init.sql", "CREATE TABLE t(a);"),
            (
                "0002_oops.sql",
                "ALTER TABLE t ADD COLUMN b; ALTER TABLE missing ADD COLUMN c;",
            ),
        ],
    );
    let m = Migrations::from_dir(dir.path()).unwrap();
    let (_db, path) = temp_store_path();
    create_at_version(&path, &m, 1).unwrap();
    let err = migrate_to(&path, &m, 2).unwrap_err();
    assert_eq!(err.code(), 17010001);
    assert_eq!(migration_parts(&err).0, "0002_oops");
    assert!(err.to_string().contains("0002_oops"));
    let look = inspect(&path);
    assert_eq!(look.version().unwrap(), 1);
    assert_eq!(columns(&look, "t"), ["a"]);
}

#[test]
fn a_gap_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[("0001_a.sql", "SELECT 1;"), ("0003_c.sql", "SELECT 1;")],
    );
    let err = Migrations::from_dir(dir.path()).unwrap_err();
    assert_invalid(&err);
    assert!(err.to_string().contains('2'), "{err}");

    // Not starting at 1 is a gap too.
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &[("0002_b.sql", "SELECT 1;")]);
    assert_invalid(&Migrations::from_dir(dir.path()).unwrap_err());
}

#[test]
fn bad_file_names_are_refused() {
    for bad in [
        "init.sql",
        "0001.sql",
        "0001_.sql",
        "_init.sql",
        "x001_init.sql",
        "1a_init.sql",
        "-001_init.sql",
        "0001-init.sql",
        "99999999999_big.sql",
    ] {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &[("0001_ok.sql", "SELECT 1;"), (bad, "SELECT 1;")],
        );
        let err = Migrations::from_dir(dir.path()).unwrap_err();
        assert_invalid(&err);
        assert!(err.to_string().contains(bad), "{bad}: {err}");
    }
}

#[test]
fn duplicates_and_orphan_downs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[("0001_a.sql", "SELECT 1;"), ("1_b.sql", "SELECT 1;")],
    );
    assert_invalid(&Migrations::from_dir(dir.path()).unwrap_err());

    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("0001_a.sql", "SELECT 1;"),
            ("0002_b.down.sql", "SELECT 1;"),
        ],
    );
    assert_invalid(&Migrations::from_dir(dir.path()).unwrap_err());

    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &[("0000_zero.sql", "SELECT 1;")]);
    assert_invalid(&Migrations::from_dir(dir.path()).unwrap_err());
}

#[test]
fn a_down_file_for_version_zero_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("0001_a.sql", "SELECT 1;"),
            ("0000_a.down.sql", "SELECT 1;"),
        ],
    );
    let result = std::panic::catch_unwind(|| Migrations::from_dir(dir.path()));
    let err = result.expect("from_dir must not panic").unwrap_err();
    assert_invalid(&err);
}

#[test]
fn an_empty_directory_has_no_steps_and_a_missing_one_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let m = Migrations::from_dir(dir.path()).unwrap();
    assert_eq!(m.latest(), 0);
    let err = Migrations::from_dir(dir.path().join("missing")).unwrap_err();
    assert_eq!(err.code(), 17000002);
    assert!(matches!(err, Error::Io { .. }));
}
