//! The hostile-SQL table (`peerlite_testkit::hostile`) run through every way caller SQL
//! reaches the writer: `execute`, `execute_script`, and both inside a transaction.

use peerlite::sync::{SyncMode, sync_in_memory};
use peerlite::{CheckMode, RdbPredicates, ValuesBucket, bucket};
use peerlite_testkit::hostile;

use super::common::{code, rows, snapshot};

/// Story: every statement form of issue 9's item 4 (and the device-table forgery of item 5)
/// used to run: `DROP TABLE peerlite_meta` bricked the store, `DROP TRIGGER peerlite_1_ai`
/// stopped capture silently, `PRAGMA writable_schema` opened the schema to rewriting, and a
/// statement with the text of one peerlite runs at every commit was served from the shared
/// statement cache without being judged. Now each is refused with its code through every path,
/// nothing in the database changes, and afterwards the store still passes `check --full`,
/// still captures and still syncs.
#[test]
fn every_hostile_statement_is_refused_through_every_path() {
    let dir = tempfile::tempdir().unwrap();
    let store = hostile::fixture(dir.path()).unwrap();
    // peerlite's commit statement is in the writer's cache now (a stamped write committed).
    store
        .execute("INSERT INTO note(id, body) VALUES (2, 'cached')", &[])
        .unwrap();
    let before = snapshot(store.path());
    let table = hostile::statements(&store).unwrap();
    assert!(table.len() > 70, "{} rows", table.len());
    let mut wrong = Vec::new();
    for h in &table {
        let mut paths: Vec<(&str, u32)> = vec![
            ("execute", code(store.execute(&h.sql, &h.params))),
            (
                "transaction execute",
                code(store.transaction(|tx| tx.execute(&h.sql, &h.params))),
            ),
        ];
        if h.params.is_empty() {
            paths.push(("execute_script", code(store.execute_script(&h.sql))));
            // Behind an allowed write in the same script: all or nothing.
            let script = format!("INSERT INTO plain(a, b) VALUES ('before', 1); {}", h.sql);
            paths.push(("script after a write", code(store.execute_script(&script))));
            paths.push((
                "transaction execute_script",
                code(store.transaction(|tx| tx.execute_script(&h.sql))),
            ));
        }
        for (path, got) in paths {
            if got != h.code {
                wrong.push(format!(
                    "{path}: `{}` gave {got}, expected {}",
                    h.sql, h.code
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert_eq!(
        snapshot(store.path()),
        before,
        "a refused statement changed something"
    );
    assert!(rows(&store, "plain").is_empty());
    let temp: Vec<String> = store
        .transaction(|tx| {
            let mut rs = tx.query_sql("SELECT name FROM temp.sqlite_schema", &[])?;
            let mut names = Vec::new();
            while rs.go_to_next_row()? {
                names.push(rs.get_string(0)?);
            }
            Ok(names)
        })
        .unwrap();
    assert!(temp.is_empty(), "temporary objects left: {temp:?}");

    // Afterwards: the full check passes, capture works, sync converges.
    store.check(CheckMode::Full).unwrap();
    store
        .execute(
            "UPDATE note SET body = 'after the attack' WHERE id = 1",
            &[],
        )
        .unwrap();
    store.execute("DELETE FROM note WHERE id = 2", &[]).unwrap();
    let change = store.change_of("note", &1.into()).unwrap().unwrap();
    assert_eq!(change.columns.len(), 1, "the update was captured");
    assert!(
        store
            .change_of("note", &2.into())
            .unwrap()
            .unwrap()
            .tombstone
    );
    let laptop = hostile::open_peer(dir.path()).unwrap();
    sync_in_memory(&store, &laptop, SyncMode::PushPull, None).unwrap();
    let on_laptop = laptop
        .obtain_distributed_table_name("phone", "note")
        .unwrap();
    assert_eq!(rows(&laptop, &on_laptop), rows(&store, "note"));
    let on_phone = store
        .obtain_distributed_table_name("laptop", "note")
        .unwrap();
    assert_eq!(rows(&store, &on_phone), rows(&laptop, "note"));
    laptop.check(CheckMode::Full).unwrap();
    store.check(CheckMode::Full).unwrap();
}

/// Story: the table-name API (`insert`, `update`, `delete`, `batch_insert`) builds its SQL from
/// a validated name — and `peerlite_meta` is a valid name, so `store.delete(peerlite_meta)`
/// wiped the store's identity. Writes through it are refused like any other; reading through
/// `query` still works.
#[test]
fn the_table_name_api_refuses_peerlite_tables() {
    let dir = tempfile::tempdir().unwrap();
    let store = hostile::fixture(dir.path()).unwrap();
    let before = snapshot(store.path());
    let clock = store.distributed_tables().unwrap()[0].clock();
    let row = bucket! { "key" => "store_id", "value" => "forged" };
    assert_eq!(code(store.insert("peerlite_meta", &row)), 17050001);
    assert_eq!(
        code(store.insert_with_conflict(
            "PEERLITE_META",
            &row,
            peerlite::ConflictResolution::Replace
        )),
        17050001
    );
    assert_eq!(
        code(store.batch_insert("peerlite_meta", &[row.clone(), row.clone()])),
        17050001
    );
    assert_eq!(
        code(store.update(
            &bucket! { "value" => "x" },
            &RdbPredicates::new("peerlite_meta").equal_to("key", "epoch")
        )),
        17050001
    );
    assert_eq!(code(store.delete(&RdbPredicates::new(&clock))), 17050001);
    assert_eq!(
        code(store.delete(&RdbPredicates::new("peerlite_distributed"))),
        17050001
    );
    assert_eq!(
        code(store.transaction(|tx| tx.insert("peerlite_devices", &ValuesBucket::new()))),
        17050001
    );
    assert_eq!(snapshot(store.path()), before);
    let rs = store
        .query(&RdbPredicates::new("peerlite_meta"), &["key"])
        .unwrap();
    assert!(rs.row_count().unwrap() >= 3);
}

/// Story: a trigger made by another tool (the sqlite3 shell, an old build) whose body writes
/// peerlite's tables ran with the app's writes. The authorizer judges the body of every app
/// trigger whenever a statement would fire it — whoever runs the statement — so the write that
/// fires it is refused and nothing changes.
#[test]
fn an_app_trigger_made_elsewhere_is_refused_when_it_fires() {
    let dir = tempfile::tempdir().unwrap();
    let store = hostile::fixture(dir.path()).unwrap();
    let outside = rusqlite::Connection::open(store.path()).unwrap();
    for body in [
        "DELETE FROM peerlite_meta",
        "UPDATE peerlite_clock_1 SET tomb = 1",
        "DELETE FROM sqlite_sequence",
    ] {
        outside
            .execute_batch(&format!(
                "CREATE TRIGGER sneaky AFTER INSERT ON plain BEGIN {body}; END"
            ))
            .unwrap();
        let before = snapshot(store.path());
        assert_eq!(
            code(store.execute("INSERT INTO plain(a) VALUES (1)", &[])),
            17050001,
            "{body}"
        );
        assert_eq!(
            code(store.insert("plain", &bucket! { "a" => 2 })),
            17050001,
            "{body}"
        );
        assert_eq!(snapshot(store.path()), before, "{body}");
        outside.execute_batch("DROP TRIGGER sneaky").unwrap();
    }
    store
        .execute("INSERT INTO plain(a) VALUES (3)", &[])
        .unwrap();
    store.check(CheckMode::Full).unwrap();
}

/// Story: the writer's statement cache is shared by peerlite and the caller, and a statement
/// found in the cache is not prepared again — so the authorizer never saw the caller send the
/// exact text of `INSERT INTO peerlite_meta(key, value) VALUES ('hlc', ?1) …`, which peerlite
/// runs at every commit, and the clock's high-water mark could be rewound (issue 15's
/// reissued timestamps). A caller's statement that names a protected object never comes from
/// the cache.
#[test]
fn peerlites_cached_statement_is_judged_when_the_caller_sends_its_text() {
    let dir = tempfile::tempdir().unwrap();
    let store = hostile::fixture(dir.path()).unwrap();
    store
        .execute(
            "INSERT INTO note(id, body) VALUES (5, 'stamps the clock')",
            &[],
        )
        .unwrap();
    let hlc = |store: &peerlite::RdbStore| -> String {
        let mut rs = store
            .query_sql("SELECT value FROM peerlite_meta WHERE key = 'hlc'", &[])
            .unwrap();
        assert!(rs.go_to_first_row().unwrap());
        rs.get_string(0).unwrap()
    };
    let mark = hlc(&store);
    let sql = "INSERT INTO peerlite_meta(key, value) VALUES ('hlc', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value";
    for _ in 0..3 {
        assert_eq!(code(store.execute(sql, &["0".into()])), 17050001);
        assert_eq!(
            code(store.transaction(|tx| tx.execute(sql, &["0".into()]))),
            17050001
        );
    }
    assert_eq!(hlc(&store), mark);
}

/// Story: a table renamed onto a distributed table's name (or created under it) would pass for
/// the distributed table without its clock rows matching it — SQLite refuses that while the
/// distributed table exists, but not once another tool has dropped it. The name stays the
/// distributed table's; `check --full` reports the missing table.
#[test]
fn no_table_takes_the_name_of_a_missing_distributed_table() {
    let dir = tempfile::tempdir().unwrap();
    let store = hostile::fixture(dir.path()).unwrap();
    rusqlite::Connection::open(store.path())
        .unwrap()
        .execute_batch("DROP TABLE note")
        .unwrap();
    for sql in [
        "ALTER TABLE plain RENAME TO note",
        "ALTER TABLE plain RENAME TO \"NOTE\"",
        "CREATE TABLE note(id INTEGER PRIMARY KEY, body TEXT)",
        "CREATE TABLE IF NOT EXISTS Note(id INTEGER PRIMARY KEY, body TEXT)",
        "CREATE VIEW note AS SELECT 1 AS id",
    ] {
        assert_eq!(code(store.execute(sql, &[])), 17050001, "{sql}");
    }
    assert_eq!(store.check(CheckMode::Full).unwrap_err().code(), 17050002);
}

/// Story: `rebuild_table` is peerlite's own work (it creates `peerlite_rebuild_…` and drops and
/// renames the table, capture triggers included), so its statements are not judged as the
/// caller's — which must not let the caller rebuild peerlite's own tables, or smuggle a second
/// statement in with the new `CREATE TABLE`.
#[test]
fn rebuild_table_takes_only_the_callers_create_table() {
    use peerlite::{ColumnMapping, Migration, Migrations, StoreConfig};
    let dir = tempfile::tempdir().unwrap();
    let path = hostile::fixture(dir.path()).unwrap().path().to_path_buf();
    let before = snapshot(&path);
    let attempts = [
        (
            "peerlite_meta",
            "CREATE TABLE peerlite_meta(key TEXT PRIMARY KEY, value)",
        ),
        (
            "peerlite_clock_1",
            "CREATE TABLE peerlite_clock_1(ident PRIMARY KEY)",
        ),
        (
            "plain",
            "CREATE TABLE plain(a, b); DROP TABLE peerlite_meta",
        ),
        (
            "plain",
            "CREATE TABLE plain(a, b) /* ; */; DELETE FROM peerlite_meta",
        ),
    ];
    for (version, (table, create)) in attempts.iter().enumerate() {
        let (table, create) = (*table, *create);
        let migrations = Migrations::new()
            .step(Migration::closure("0001", |_| Ok(())))
            .step(Migration::closure("0002", move |tx| {
                tx.rebuild_table(table, create, &ColumnMapping::new())
                    .map(|_| ())
            }));
        let opened = peerlite::RdbStore::open_with(
            StoreConfig::new(&path).version(2),
            &mut migrations.clone(),
        );
        let err = opened.unwrap_err();
        let inner = match &err {
            peerlite::Error::Migration { source, .. } => source.code(),
            other => panic!("{other}"),
        };
        let expected = if table == "plain" { 14800001 } else { 17050001 };
        assert_eq!(inner, expected, "{version}: {table} {create}: {err}");
        assert_eq!(snapshot(&path), before, "{create}");
    }
}
