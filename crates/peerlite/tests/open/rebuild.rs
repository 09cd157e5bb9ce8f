//! `rebuild_table`: SQLite's 12-step ALTER TABLE, keeping rows, rowids, indexes, triggers,
//! views and foreign keys.

use std::sync::{Arc, Mutex};

use peerlite::{
    ColumnMapping, Migration, Migrations, RdbStore, RebuildReport, StoreConfig, Value, bucket,
};
use peerlite_testkit::{
    all_rows, count_rows, create_at_version, migrate_to, query_column, scalar, temp_store_path,
};

use crate::common::{columns, inspect, migration_parts, schema_sql};

const V1: &str = "
CREATE TABLE person(id INTEGER PRIMARY KEY, first TEXT NOT NULL, last TEXT NOT NULL, junk TEXT, age INTEGER);
CREATE INDEX person_last ON person(last);
CREATE UNIQUE INDEX person_first_last ON person(first, last);
CREATE TABLE audit(id INTEGER PRIMARY KEY, what TEXT NOT NULL);
CREATE TRIGGER person_ins AFTER INSERT ON person BEGIN INSERT INTO audit(what) VALUES ('ins ' || new.id); END;
CREATE VIEW adults AS SELECT id, first FROM person WHERE age >= 18;
CREATE TABLE pet(id INTEGER PRIMARY KEY, owner INTEGER NOT NULL REFERENCES person(id) ON DELETE CASCADE, name TEXT);
";

const NEW_PERSON: &str = "CREATE TABLE person(id INTEGER PRIMARY KEY, first TEXT NOT NULL, last TEXT NOT NULL, full_name TEXT, age INTEGER, country TEXT NOT NULL DEFAULT 'NL')";

fn v1() -> Migrations {
    Migrations::new().step(Migration::sql("0001_init", V1))
}

/// A database at version 1 with four people (ids with gaps), their pets and audit rows.
fn populated() -> (peerlite_testkit::TempDir, std::path::PathBuf) {
    let (dir, path) = temp_store_path();
    create_at_version(&path, &v1(), 1).unwrap();
    let s = inspect(&path);
    for (id, first, last, age) in [
        (1, "Ada", "Lovelace", 36),
        (2, "Alan", "Turing", 41),
        (5, "Grace", "Hopper", 85),
        (9, "Kid", "Young", 9),
    ] {
        s.insert(
            "person",
            &bucket! { "id" => id, "first" => first, "last" => last, "junk" => "j", "age" => age },
        )
        .unwrap();
    }
    for (id, owner, name) in [(1, 1, "cat"), (2, 5, "dog"), (3, 5, "fish")] {
        s.insert(
            "pet",
            &bucket! { "id" => id, "owner" => owner, "name" => name },
        )
        .unwrap();
    }
    s.close().unwrap();
    (dir, path)
}

/// v1 plus a step rebuilding `person`; the step's report is captured.
fn with_rebuild(
    create_sql: &'static str,
    mapping: ColumnMapping,
) -> (Migrations, Arc<Mutex<Option<RebuildReport>>>) {
    let report = Arc::new(Mutex::new(None));
    let sink = Arc::clone(&report);
    let m = v1().step(Migration::closure("0002_rebuild_person", move |tx| {
        let r = tx.rebuild_table("person", create_sql, &mapping)?;
        *sink.lock().unwrap() = Some(r);
        Ok(())
    }));
    (m, report)
}

#[test]
fn rebuild_keeps_rows_indexes_triggers_views_and_foreign_keys() {
    let (_dir, path) = populated();
    let (m, report) = with_rebuild(
        NEW_PERSON,
        ColumnMapping::new().expr("full_name", "first || ' ' || last"),
    );
    let s = migrate_to(&path, &m, 2).unwrap();
    assert_eq!(s.version().unwrap(), 2);

    let report = report.lock().unwrap().clone().unwrap();
    assert_eq!(report.rows, 4);
    let mut recreated = report.recreated.clone();
    recreated.sort();
    assert_eq!(
        recreated,
        ["person_first_last", "person_ins", "person_last"]
    );

    // Every row, with its id, the computed column and the new column's default.
    assert_eq!(
        columns(&s, "person"),
        ["id", "first", "last", "full_name", "age", "country"]
    );
    assert_eq!(
        all_rows(
            &s,
            "SELECT id, full_name, age, country FROM person ORDER BY id",
            &[]
        )
        .unwrap(),
        vec![
            vec![
                Value::Integer(1),
                Value::from("Ada Lovelace"),
                Value::Integer(36),
                Value::from("NL")
            ],
            vec![
                Value::Integer(2),
                Value::from("Alan Turing"),
                Value::Integer(41),
                Value::from("NL")
            ],
            vec![
                Value::Integer(5),
                Value::from("Grace Hopper"),
                Value::Integer(85),
                Value::from("NL")
            ],
            vec![
                Value::Integer(9),
                Value::from("Kid Young"),
                Value::Integer(9),
                Value::from("NL")
            ],
        ]
    );

    // Indexes and the trigger are back in the schema, attached to the new table.
    let attached = query_column::<String>(
        &s,
        "SELECT type || ' ' || name FROM sqlite_schema WHERE tbl_name = 'person' AND type IN ('index', 'trigger') AND sql IS NOT NULL ORDER BY name",
        &[],
    )
    .unwrap();
    assert_eq!(
        attached,
        [
            "index person_first_last",
            "trigger person_ins",
            "index person_last"
        ]
    );
    assert_eq!(
        query_column::<String>(
            &s,
            "SELECT name FROM sqlite_schema WHERE name LIKE 'peerlite_rebuild%'",
            &[]
        )
        .unwrap(),
        Vec::<String>::new(),
        "no temporary table is left"
    );
    // The index is used ...
    let plan = all_rows(
        &s,
        "EXPLAIN QUERY PLAN SELECT id FROM person WHERE last = 'Hopper'",
        &[],
    )
    .unwrap();
    assert!(
        plan.iter()
            .any(|row| matches!(row.last(), Some(Value::Text(d)) if d.contains("person_last"))),
        "{plan:?}"
    );
    // ... the unique index is enforced ...
    let err = s
        .insert(
            "person",
            &bucket! { "first" => "Ada", "last" => "Lovelace" },
        )
        .unwrap_err();
    assert_eq!(err.code(), 14800032);
    // ... and the trigger still fires.
    let audits_before = count_rows(&s, "audit").unwrap();
    let id = s
        .insert(
            "person",
            &bucket! { "first" => "New", "last" => "Person", "age" => 30 },
        )
        .unwrap();
    assert_eq!(id, 10);
    assert_eq!(count_rows(&s, "audit").unwrap(), audits_before + 1);
    assert_eq!(
        scalar::<String>(&s, "SELECT what FROM audit ORDER BY id DESC LIMIT 1").unwrap(),
        "ins 10"
    );

    // The view still works.
    assert_eq!(
        query_column::<String>(&s, "SELECT first FROM adults ORDER BY id", &[]).unwrap(),
        ["Ada", "Alan", "Grace", "New"]
    );

    // The child's foreign key still names the parent, the references are intact, and the
    // key is still enforced, cascade included.
    assert_eq!(
        query_column::<String>(
            &s,
            r#"SELECT "table" FROM pragma_foreign_key_list('pet')"#,
            &[]
        )
        .unwrap(),
        ["person"]
    );
    assert_eq!(
        scalar::<i64>(&s, "SELECT count(*) FROM pragma_foreign_key_check").unwrap(),
        0
    );
    assert_eq!(
        s.insert("pet", &bucket! { "owner" => 999, "name" => "ghost" })
            .unwrap_err()
            .code(),
        14800032
    );
    s.execute("DELETE FROM person WHERE id = 5", &[]).unwrap();
    assert_eq!(
        query_column::<String>(&s, "SELECT name FROM pet ORDER BY id", &[]).unwrap(),
        ["cat"]
    );
    // SQLite's own check is happy.
    assert_eq!(
        scalar::<String>(&s, "PRAGMA integrity_check").unwrap(),
        "ok"
    );
}

#[test]
fn rebuild_keeps_implicit_rowids() {
    let (_dir, path) = temp_store_path();
    let v1 = Migrations::new().step(Migration::sql(
        "0001_init",
        "CREATE TABLE note(body TEXT, tag TEXT);
         INSERT INTO note VALUES ('a', 'x'), ('b', 'y'), ('c', 'z'), ('d', 'w');
         DELETE FROM note WHERE body IN ('a', 'c');",
    ));
    let m = v1.step(Migration::closure("0002_rebuild", |tx| {
        let r = tx.rebuild_table(
            "note",
            "CREATE TABLE note(body TEXT NOT NULL, label TEXT, extra INTEGER DEFAULT 7)",
            &ColumnMapping::new().rename("label", "tag"),
        )?;
        assert_eq!(r.rows, 2);
        Ok(())
    }));
    create_at_version(&path, &m, 1).unwrap();
    let before = all_rows(
        &inspect(&path),
        "SELECT rowid, body, tag FROM note ORDER BY rowid",
        &[],
    )
    .unwrap();
    assert_eq!(before[0][0], Value::Integer(2));
    assert_eq!(before[1][0], Value::Integer(4));
    let s = migrate_to(&path, &m, 2).unwrap();
    assert_eq!(
        all_rows(
            &s,
            "SELECT rowid, body, label, extra FROM note ORDER BY rowid",
            &[]
        )
        .unwrap(),
        vec![
            vec![
                Value::Integer(2),
                Value::from("b"),
                Value::from("y"),
                Value::Integer(7)
            ],
            vec![
                Value::Integer(4),
                Value::from("d"),
                Value::from("w"),
                Value::Integer(7)
            ],
        ]
    );
}

#[test]
fn rebuild_works_on_without_rowid_tables() {
    let (_dir, path) = temp_store_path();
    let m = Migrations::new()
        .step(Migration::sql(
            "0001_init",
            "CREATE TABLE kv(k TEXT PRIMARY KEY, v) WITHOUT ROWID; INSERT INTO kv VALUES ('b', 2), ('a', 1);",
        ))
        .step(Migration::closure("0002_rebuild", |tx| {
            tx.rebuild_table(
                "kv",
                "CREATE TABLE kv(k TEXT PRIMARY KEY, v, updated INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID",
                &ColumnMapping::new(),
            )?;
            Ok(())
        }));
    let s = migrate_to(&path, &m, 2).unwrap();
    assert_eq!(
        all_rows(&s, "SELECT k, v, updated FROM kv ORDER BY k", &[]).unwrap(),
        vec![
            vec![Value::from("a"), Value::Integer(1), Value::Integer(0)],
            vec![Value::from("b"), Value::Integer(2), Value::Integer(0)],
        ]
    );
}

#[test]
fn not_null_without_default_or_source_is_refused_and_nothing_changes() {
    let (_dir, path) = populated();
    let schema_before = schema_sql(&inspect(&path));
    let (m, report) = with_rebuild(
        "CREATE TABLE person(id INTEGER PRIMARY KEY, first TEXT NOT NULL, last TEXT NOT NULL, age INTEGER, email TEXT NOT NULL)",
        ColumnMapping::new(),
    );
    let err = migrate_to(&path, &m, 2).unwrap_err();
    assert_eq!(err.code(), 17010001);
    let (step, _, _, source) = migration_parts(&err);
    assert_eq!((step.as_str(), source), ("0002_rebuild_person", 14800001));
    assert!(err.to_string().contains("email"), "{err}");
    assert!(report.lock().unwrap().is_none());

    let look = inspect(&path);
    assert_eq!(look.version().unwrap(), 1);
    assert_eq!(schema_sql(&look), schema_before);
    assert_eq!(count_rows(&look, "person").unwrap(), 4);
    look.close().unwrap();

    // With a source for the column it works.
    let (m, _) = with_rebuild(
        "CREATE TABLE person(id INTEGER PRIMARY KEY, first TEXT NOT NULL, last TEXT NOT NULL, age INTEGER, email TEXT NOT NULL)",
        ColumnMapping::new().expr("email", "lower(first) || '@example.com'"),
    );
    let s = migrate_to(&path, &m, 2).unwrap();
    assert_eq!(
        query_column::<String>(&s, "SELECT email FROM person ORDER BY id", &[]).unwrap(),
        [
            "ada@example.com",
            "alan@example.com",
            "grace@example.com",
            "kid@example.com"
        ]
    );
}

#[test]
fn bad_rebuild_arguments_are_14800001() {
    let (_dir, path) = populated();
    let cases: Vec<(&str, &str, ColumnMapping)> = vec![
        // A mapping naming a column the new table lacks.
        (
            "person",
            NEW_PERSON,
            ColumnMapping::new().rename("nope", "first"),
        ),
        // A mapping reading a column the old table lacks.
        (
            "person",
            NEW_PERSON,
            ColumnMapping::new().rename("full_name", "nope"),
        ),
        // A statement for another table.
        (
            "person",
            "CREATE TABLE other(id INTEGER PRIMARY KEY)",
            ColumnMapping::new(),
        ),
        // Not a CREATE TABLE at all.
        ("person", "DROP TABLE person", ColumnMapping::new()),
        // A table that does not exist, and a view.
        ("nobody", "CREATE TABLE nobody(a)", ColumnMapping::new()),
        ("adults", "CREATE TABLE adults(a)", ColumnMapping::new()),
        // Dropping a column an index needs.
        (
            "person",
            "CREATE TABLE person(id INTEGER PRIMARY KEY, first TEXT NOT NULL, age INTEGER)",
            ColumnMapping::new(),
        ),
    ];
    let schema_before = schema_sql(&inspect(&path));
    for (table, sql, mapping) in cases {
        let m = v1().step(Migration::closure("0002_bad", move |tx| {
            tx.rebuild_table(table, sql, &mapping)?;
            Ok(())
        }));
        let err = migrate_to(&path, &m, 2).unwrap_err();
        let (step, _, _, source) = migration_parts(&err);
        assert_eq!(
            (step.as_str(), source),
            ("0002_bad", 14800001),
            "{table} {sql}: {err}"
        );
        let look = inspect(&path);
        assert_eq!(look.version().unwrap(), 1);
        assert_eq!(schema_sql(&look), schema_before, "{sql}");
        look.close().unwrap();
    }
}

#[test]
fn a_view_that_stops_compiling_fails_the_rebuild() {
    let (_dir, path) = populated();
    // The view `adults` reads `age`, which the new table drops.
    let (m, _) = with_rebuild(
        "CREATE TABLE person(id INTEGER PRIMARY KEY, first TEXT NOT NULL, last TEXT NOT NULL)",
        ColumnMapping::new(),
    );
    let err = migrate_to(&path, &m, 2).unwrap_err();
    assert_eq!(migration_parts(&err).3, 14800001);
    assert!(err.to_string().contains("adults"), "{err}");
    assert_eq!(inspect(&path).version().unwrap(), 1);

    // Dropping the view in the same migration makes it work.
    let m = v1().step(Migration::closure("0002_rebuild", |tx| {
        tx.execute("DROP VIEW adults", &[])?;
        tx.rebuild_table(
            "person",
            "CREATE TABLE person(id INTEGER PRIMARY KEY, first TEXT NOT NULL, last TEXT NOT NULL)",
            &ColumnMapping::new(),
        )?;
        Ok(())
    }));
    let s = migrate_to(&path, &m, 2).unwrap();
    assert_eq!(columns(&s, "person"), ["id", "first", "last"]);
    assert_eq!(count_rows(&s, "person").unwrap(), 4);
}

#[test]
fn rebuild_refuses_to_run_with_foreign_keys_on() {
    let (_dir, path) = populated();
    let s = inspect(&path); // default config: foreign keys on
    let schema_before = schema_sql(&s);
    let err = s
        .transaction(|tx| tx.rebuild_table("person", NEW_PERSON, &ColumnMapping::new()))
        .unwrap_err();
    assert_eq!(err.code(), 14800001, "{err}");
    assert!(err.to_string().contains("foreign keys"), "{err}");
    assert_eq!(schema_sql(&s), schema_before);
    assert_eq!(count_rows(&s, "person").unwrap(), 4);
    s.close().unwrap();

    // With foreign keys off, it runs outside a migration too.
    let s = RdbStore::open(StoreConfig::new(&path).foreign_keys(false)).unwrap();
    let report = s
        .transaction(|tx| {
            tx.rebuild_table(
                "person",
                NEW_PERSON,
                &ColumnMapping::new().expr("full_name", "first"),
            )
        })
        .unwrap();
    assert_eq!(report.rows, 4);
    assert_eq!(
        query_column::<String>(&s, "SELECT country FROM person WHERE id = 9", &[]).unwrap(),
        ["NL"]
    );
    assert_eq!(
        scalar::<i64>(&s, "SELECT count(*) FROM pragma_foreign_key_check").unwrap(),
        0
    );
    // A failed rebuild inside a transaction that rolls back leaves nothing.
    let before = schema_sql(&s);
    let err = s
        .transaction(|tx| {
            tx.rebuild_table(
                "person",
                "CREATE TABLE person(id INTEGER PRIMARY KEY, must TEXT NOT NULL)",
                &ColumnMapping::new(),
            )
        })
        .unwrap_err();
    assert_eq!(err.code(), 14800001);
    assert_eq!(schema_sql(&s), before);
}

#[test]
fn observers_hear_about_a_rebuilt_table() {
    let (_dir, path) = populated();
    let s = RdbStore::open(StoreConfig::new(&path).foreign_keys(false)).unwrap();
    let seen = Arc::new(Mutex::new(Vec::<Vec<String>>::new()));
    let sink = Arc::clone(&seen);
    s.on_data_change(peerlite::SubscribeType::Local, move |t| {
        sink.lock().unwrap().push(t.to_vec());
    })
    .unwrap();
    s.transaction(|tx| tx.rebuild_table("person", NEW_PERSON, &ColumnMapping::new()))
        .unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].contains(&"person".to_owned()), "{seen:?}");
    assert!(
        !seen[0].iter().any(|t| t.starts_with("peerlite")),
        "internal tables are not reported: {seen:?}"
    );
}

#[test]
fn rebuild_keeps_the_autoincrement_high_water_mark() {
    let (_dir, path) = temp_store_path();
    let m = Migrations::new()
        .step(Migration::sql(
            "0001_init",
            "CREATE TABLE msg(id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT);
             INSERT INTO msg(body) VALUES ('1'), ('2'), ('3'), ('4'), ('5');
             DELETE FROM msg WHERE id >= 4;",
        ))
        .step(Migration::closure("0002_rebuild", |tx| {
            tx.rebuild_table(
                "msg",
                "CREATE TABLE msg(id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT, extra TEXT)",
                &ColumnMapping::new(),
            )?;
            Ok(())
        }));
    create_at_version(&path, &m, 1).unwrap();
    {
        // Without a rebuild, AUTOINCREMENT never reuses 4 or 5.
        let s = inspect(&path);
        assert_eq!(
            scalar::<i64>(&s, "SELECT seq FROM sqlite_sequence WHERE name = 'msg'").unwrap(),
            5
        );
        s.close().unwrap();
    }
    let s = migrate_to(&path, &m, 2).unwrap();
    let id = s.insert("msg", &bucket! { "body" => "new" }).unwrap();
    assert_eq!(id, 6, "an AUTOINCREMENT id is never reused");
}
