//! Migrations: downgrades, read-only stores, the foreign-key check, dry runs and races.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

use peerlite::{Error, Migration, Migrations, RdbStore, StoreConfig, Value, bucket};
use peerlite_testkit::{
    all_rows, count_rows, create_at_version, migrate_to, migrate_to_with, query_column,
    temp_store_path,
};

use crate::common::{columns, inspect, migration_parts, schema_sql};

fn three_steps() -> Migrations {
    Migrations::new()
        .step(Migration::sql(
            "0001_init",
            "CREATE TABLE note(id INTEGER PRIMARY KEY, body TEXT NOT NULL)",
        ))
        .step(
            Migration::sql(
                "0002_add_tag",
                "ALTER TABLE note ADD COLUMN tag TEXT NOT NULL DEFAULT 'none'",
            )
            .with_down_sql("ALTER TABLE note DROP COLUMN tag"),
        )
        .step(
            Migration::sql("0003_tag_index", "CREATE INDEX note_tag ON note(tag)")
                .with_down_sql("DROP INDEX note_tag"),
        )
}

fn add_notes(path: &std::path::Path, n: i64) {
    let store = inspect(path);
    for i in 0..n {
        store
            .insert("note", &bucket! { "body" => format!("note {i}") })
            .unwrap();
    }
    store.close().unwrap();
}

#[test]
fn step_by_step_upgrades_keep_rows() {
    let (_dir, path) = temp_store_path();
    let m = three_steps();
    assert_eq!(m.latest(), 3);
    assert_eq!(m.names(), ["0001_init", "0002_add_tag", "0003_tag_index"]);
    create_at_version(&path, &m, 1).unwrap();
    add_notes(&path, 5);
    let store = migrate_to(&path, &m, 2).unwrap();
    assert_eq!(store.version().unwrap(), 2);
    assert_eq!(columns(&store, "note"), ["id", "body", "tag"]);
    assert_eq!(
        query_column::<String>(&store, "SELECT DISTINCT tag FROM note", &[]).unwrap(),
        ["none"]
    );
    store.close().unwrap();
    let store = migrate_to(&path, &m, 3).unwrap();
    assert_eq!(store.version().unwrap(), 3);
    assert_eq!(count_rows(&store, "note").unwrap(), 5);
    assert!(schema_sql(&store).iter().any(|(n, _)| n == "note_tag"));
}

#[test]
fn migrate_reports_the_steps_it_ran() {
    let (_dir, path) = temp_store_path();
    let m = three_steps();
    create_at_version(&path, &m, 1).unwrap();
    let store = inspect(&path);
    let report = store.migrate(3, &mut m.clone(), false).unwrap();
    assert_eq!((report.from, report.to, report.dry_run), (1, 3, false));
    assert_eq!(report.steps, ["0002_add_tag", "0003_tag_index"]);
    assert_eq!(store.version().unwrap(), 3);
    // Already there: nothing runs.
    let report = store.migrate(3, &mut m.clone(), false).unwrap();
    assert!(report.steps.is_empty());
    // And down again.
    let report = store.migrate(1, &mut m.clone(), false).unwrap();
    assert_eq!(
        report.steps,
        ["0003_tag_index (down)", "0002_add_tag (down)"]
    );
    assert_eq!(store.version().unwrap(), 1);
    assert_eq!(columns(&store, "note"), ["id", "body"]);
}

#[test]
fn a_target_beyond_the_last_step_fails_and_changes_nothing() {
    let (_dir, path) = temp_store_path();
    let m = three_steps();
    create_at_version(&path, &m, 2).unwrap();
    let err = migrate_to(&path, &m, 4).unwrap_err();
    assert_eq!(err.code(), 17010001, "{err}");
    assert_eq!(inspect(&path).version().unwrap(), 2);
}

#[test]
fn downgrade_without_a_down_path_is_17010002_and_changes_nothing() {
    let (_dir, path) = temp_store_path();
    let no_down = Migrations::new()
        .step(Migration::sql("0001_init", "CREATE TABLE t(a)"))
        .step(Migration::sql("0002_b", "ALTER TABLE t ADD COLUMN b"));
    create_at_version(&path, &no_down, 2).unwrap();
    {
        let s = inspect(&path);
        s.execute("INSERT INTO t VALUES (1, 2)", &[]).unwrap();
        s.close().unwrap();
    }
    let before = schema_sql(&inspect(&path));
    let err = migrate_to(&path, &no_down, 1).unwrap_err();
    assert_eq!(err.code(), 17010002);
    assert!(matches!(err, Error::Downgrade { from: 2, to: 1 }));
    let look = inspect(&path);
    assert_eq!(look.version().unwrap(), 2);
    assert_eq!(schema_sql(&look), before);
    assert_eq!(
        all_rows(&look, "SELECT a, b FROM t", &[]).unwrap(),
        vec![vec![Value::Integer(1), Value::Integer(2)]]
    );

    // Only some steps have a down path: a downgrade that needs the missing one is refused
    // as a whole.
    let (_dir2, path2) = temp_store_path();
    let m = Migrations::new()
        .step(Migration::sql(
            "0001_init",
            "CREATE TABLE note(id INTEGER PRIMARY KEY, body TEXT NOT NULL)",
        ))
        .step(Migration::sql(
            "0002_add_tag",
            "ALTER TABLE note ADD COLUMN tag TEXT NOT NULL DEFAULT 'none'",
        ))
        .step(
            Migration::sql("0003_tag_index", "CREATE INDEX note_tag ON note(tag)")
                .with_down_sql("DROP INDEX note_tag"),
        );
    create_at_version(&path2, &m, 3).unwrap();
    let err = migrate_to(&path2, &m, 1).unwrap_err();
    assert_eq!(err.code(), 17010002);
    let look = inspect(&path2);
    assert_eq!(look.version().unwrap(), 3);
    assert!(
        schema_sql(&look).iter().any(|(n, _)| n == "note_tag"),
        "step 3 was not undone alone"
    );
    // But down to 2 only needs step 3's down path.
    look.close().unwrap();
    let store = migrate_to(&path2, &m, 2).unwrap();
    assert_eq!(store.version().unwrap(), 2);
    assert!(!schema_sql(&store).iter().any(|(n, _)| n == "note_tag"));
}

#[test]
fn downgrade_with_down_sql_keeps_the_rows() {
    let (_dir, path) = temp_store_path();
    let m = three_steps();
    create_at_version(&path, &m, 3).unwrap();
    {
        let s = inspect(&path);
        s.insert("note", &bucket! { "body" => "a", "tag" => "x" })
            .unwrap();
        s.insert("note", &bucket! { "body" => "b" }).unwrap();
        s.close().unwrap();
    }
    let store = migrate_to(&path, &m, 1).unwrap();
    assert_eq!(store.version().unwrap(), 1);
    assert_eq!(columns(&store, "note"), ["id", "body"]);
    assert_eq!(
        query_column::<String>(&store, "SELECT body FROM note ORDER BY id", &[]).unwrap(),
        ["a", "b"]
    );
    assert!(!schema_sql(&store).iter().any(|(n, _)| n == "note_tag"));
    store.close().unwrap();
    // And up again.
    let store = migrate_to(&path, &m, 3).unwrap();
    assert_eq!(count_rows(&store, "note").unwrap(), 2);
}

#[test]
fn a_failing_down_step_is_named_and_rolled_back() {
    let (_dir, path) = temp_store_path();
    let m = Migrations::new()
        .step(Migration::sql("0001_init", "CREATE TABLE t(a)"))
        .step(Migration::sql("0002_u", "CREATE TABLE u(b)").with_down_sql("DROP TABLE u"))
        .step(
            Migration::sql("0003_v", "CREATE TABLE v(c)")
                .with_down_sql("DROP TABLE v; DROP TABLE no_such_table"),
        );
    create_at_version(&path, &m, 3).unwrap();
    let err = migrate_to(&path, &m, 1).unwrap_err();
    assert_eq!(err.code(), 17010001);
    let (step, from, to, source) = migration_parts(&err);
    assert_eq!(
        (step.as_str(), from, to, source),
        ("0003_v (down)", 3, 1, 14800021)
    );
    let look = inspect(&path);
    assert_eq!(look.version().unwrap(), 3);
    let names: Vec<String> = schema_sql(&look).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["t", "u", "v"]);
}

#[test]
fn a_read_only_store_that_needs_an_upgrade_is_17010003() {
    let (_dir, path) = temp_store_path();
    let m = three_steps();
    create_at_version(&path, &m, 1).unwrap();
    add_notes(&path, 2);
    let err = RdbStore::open_with(
        StoreConfig::new(&path).read_only(true).version(2),
        &mut m.clone(),
    )
    .unwrap_err();
    assert_eq!(err.code(), 17010003);
    assert!(matches!(err, Error::ReadOnlyUpgrade { from: 1, to: 2 }));
    // At the version it already has, a read-only open is fine, and cannot write.
    let store = RdbStore::open_with(
        StoreConfig::new(&path).read_only(true).version(1),
        &mut m.clone(),
    )
    .unwrap();
    assert_eq!(count_rows(&store, "note").unwrap(), 2);
    assert_eq!(
        store
            .insert("note", &bucket! { "body" => "x" })
            .unwrap_err()
            .code(),
        14800027
    );
    store.close().unwrap();
    assert_eq!(inspect(&path).version().unwrap(), 1);
    assert_eq!(columns(&inspect(&path), "note"), ["id", "body"]);
}

fn parent_child() -> Migrations {
    Migrations::new().step(Migration::sql(
        "0001_init",
        "CREATE TABLE parent(id INTEGER PRIMARY KEY, name TEXT);
         CREATE TABLE child(id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL REFERENCES parent(id));
         INSERT INTO parent VALUES (1, 'p1'), (2, 'p2');
         INSERT INTO child VALUES (10, 1), (11, 1), (12, 2);",
    ))
}

#[test]
fn a_foreign_key_violation_at_the_end_of_a_migration_rolls_it_back() {
    let (_dir, path) = temp_store_path();
    let v1 = parent_child();
    create_at_version(&path, &v1, 1).unwrap();
    // Foreign keys are off while the step runs, so the delete itself succeeds ...
    let v2 = v1.clone().step(Migration::sql(
        "0002_drop_p1",
        "DELETE FROM parent WHERE id = 1",
    ));
    let err = migrate_to(&path, &v2, 2).unwrap_err();
    // ... and the check before the commit catches it.
    assert_eq!(err.code(), 17010001);
    match &err {
        Error::Migration { step, source, .. } => {
            assert_eq!(step, "foreign_key_check");
            assert_eq!(source.code(), 17010004);
            match source.as_ref() {
                Error::ForeignKeyViolation { table, violations } => {
                    assert_eq!(table, "child");
                    assert_eq!(*violations, 2);
                }
                other => panic!("expected ForeignKeyViolation, got {other:?}"),
            }
        }
        other => panic!("expected a migration error, got {other:?}"),
    }
    assert!(err.to_string().contains("foreign_key_check"));
    let look = inspect(&path);
    assert_eq!(look.version().unwrap(), 1);
    assert_eq!(
        query_column::<i64>(&look, "SELECT id FROM parent ORDER BY id", &[]).unwrap(),
        [1, 2]
    );
    // Foreign keys are enforced again afterwards.
    assert_eq!(
        look.insert("child", &bucket! { "id" => 99, "parent_id" => 42 })
            .unwrap_err()
            .code(),
        14800032
    );
    look.close().unwrap();

    // A migration that keeps references valid passes the check.
    let v2_ok = v1.step(Migration::sql(
        "0002_drop_p1",
        "DELETE FROM child WHERE parent_id = 1; DELETE FROM parent WHERE id = 1;",
    ));
    let store = migrate_to(&path, &v2_ok, 2).unwrap();
    assert_eq!(store.version().unwrap(), 2);
    assert_eq!(count_rows(&store, "child").unwrap(), 1);
}

#[test]
fn a_dry_run_runs_everything_and_keeps_nothing() {
    let (_dir, path) = temp_store_path();
    let m = three_steps();
    create_at_version(&path, &m, 1).unwrap();
    add_notes(&path, 3);
    let store = inspect(&path);
    let schema_before = schema_sql(&store);
    let rows_before = all_rows(&store, "SELECT * FROM note ORDER BY id", &[]).unwrap();

    let report = store.migrate(3, &mut m.clone(), true).unwrap();
    assert!(report.dry_run);
    assert_eq!(report.from, 1);
    assert_eq!(report.to, 1, "a dry run leaves the version");
    assert_eq!(report.steps, ["0002_add_tag", "0003_tag_index"]);
    assert_eq!(store.version().unwrap(), 1);
    assert_eq!(schema_sql(&store), schema_before);
    assert_eq!(
        all_rows(&store, "SELECT * FROM note ORDER BY id", &[]).unwrap(),
        rows_before
    );

    // A dry run that fails reports the failure, and also keeps nothing.
    let broken = m.up_to(1).step(Migration::sql(
        "0002_broken",
        "ALTER TABLE note ADD COLUMN x; SELECT * FROM nowhere;",
    ));
    let err = store.migrate(2, &mut broken.clone(), true).unwrap_err();
    assert_eq!(err.code(), 17010001);
    assert_eq!(migration_parts(&err).0, "0002_broken");
    assert_eq!(schema_sql(&store), schema_before);

    // The store works normally afterwards, and the real migration runs.
    store
        .insert("note", &bucket! { "body" => "after" })
        .unwrap();
    let report = store.migrate(3, &mut m.clone(), false).unwrap();
    assert_eq!((report.from, report.to), (1, 3));
    assert_eq!(count_rows(&store, "note").unwrap(), 4);
}

#[test]
fn migrations_work_on_encrypted_stores() {
    let (_dir, path) = temp_store_path();
    let m = three_steps();
    let config = || StoreConfig::new(&path).encryption_key("migration key");
    peerlite_testkit::create_at_version_with(config(), &m, 1).unwrap();
    let store = migrate_to_with(config(), &m, 3).unwrap();
    assert_eq!(store.version().unwrap(), 3);
    store.close().unwrap();
    assert_eq!(migrate_to(&path, &m, 3).unwrap_err().code(), 14800020);
}

/// A migration list whose steps count how often they run (in a table and in memory).
fn counted(runs: &Arc<[AtomicUsize; 2]>) -> Migrations {
    let r1 = Arc::clone(runs);
    let r2 = Arc::clone(runs);
    Migrations::new()
        .step(Migration::closure("0001_init", move |tx| {
            r1[0].fetch_add(1, Ordering::SeqCst);
            tx.execute_script(
                "CREATE TABLE applied(step TEXT NOT NULL); INSERT INTO applied VALUES ('0001');",
            )?;
            Ok(())
        }))
        .step(Migration::closure("0002_more", move |tx| {
            r2[1].fetch_add(1, Ordering::SeqCst);
            // Slow enough that the other opener arrives while it runs.
            std::thread::sleep(std::time::Duration::from_millis(50));
            tx.execute("INSERT INTO applied VALUES ('0002')", &[])?;
            Ok(())
        }))
}

fn race(path: &std::path::Path, migrations: &Migrations, target: u32) {
    let barrier = Arc::new(Barrier::new(2));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            let path = path.to_path_buf();
            let mut m = migrations.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let store =
                    RdbStore::open_with(StoreConfig::new(&path).version(target), &mut m).unwrap();
                assert_eq!(store.version().unwrap(), target);
                store.close().unwrap();
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn two_stores_racing_to_migrate_apply_each_step_once() {
    for _round in 0..5 {
        let (_dir, path) = temp_store_path();
        let runs: Arc<[AtomicUsize; 2]> = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
        let m = counted(&runs);
        create_at_version(&path, &m, 1).unwrap();
        assert_eq!(runs[0].load(Ordering::SeqCst), 1);
        // Two stores on two threads open the same file at version 2 at the same moment.
        race(&path, &m, 2);
        assert_eq!(runs[1].load(Ordering::SeqCst), 1, "step 2 ran exactly once");
        let store = inspect(&path);
        assert_eq!(store.version().unwrap(), 2);
        assert_eq!(
            query_column::<String>(&store, "SELECT step FROM applied ORDER BY step", &[]).unwrap(),
            ["0001", "0002"]
        );
    }
}

#[test]
fn two_stores_racing_to_create_a_new_database_both_succeed() {
    // Each round fails with a probability of roughly a quarter while the bug is there.
    for _round in 0..20 {
        let (_dir, path) = temp_store_path();
        let runs: Arc<[AtomicUsize; 2]> = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
        let m = counted(&runs);
        race(&path, &m.up_to(1), 1);
        assert_eq!(
            runs[0].load(Ordering::SeqCst),
            1,
            "on_create ran exactly once"
        );
        let store = inspect(&path);
        assert_eq!(
            query_column::<String>(&store, "SELECT step FROM applied", &[]).unwrap(),
            ["0001"]
        );
    }
}
