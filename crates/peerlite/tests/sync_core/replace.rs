//! Rows that a REPLACE removes (issue 9, item 6).
//!
//! Story: SQLite deletes the rows that stand in the way of an `INSERT OR REPLACE`, `REPLACE
//! INTO`, `UPDATE OR REPLACE`, an upsert under REPLACE or a constraint declared `ON CONFLICT
//! REPLACE` without firing DELETE triggers (unless `recursive_triggers` is on), so no tombstone
//! was written and peers kept those rows forever. Now every row that disappears from a
//! distributed table gets a tombstone, whatever statement removed it — and a REPLACE that
//! removes the row it writes (the same identity) is a re-insert of it, not a delete.
//!
//! Each case runs on a device-collaboration table and on a single-version table: the rows in
//! its way first reach the peer, then the statement runs, then the capture must match the
//! table (every live row has a live clock row, every other clock row is a tombstone) and one
//! sync must leave the peer holding exactly the local rows.

use std::collections::BTreeSet;

use peerlite::changes::{DistributedConfig, DistributedType};
use peerlite::schema::SyncSchema;
use peerlite::sync::SyncMode;
use peerlite::{ConflictResolution, RdbPredicates, RdbStore, Value, bucket};

use crate::common::*;

/// Collaboration: `id` is the identity; `name` is UNIQUE, `slug` UNIQUE ON CONFLICT REPLACE.
const CREATE_TAG: &str = "CREATE TABLE tag(id INTEGER PRIMARY KEY, name TEXT UNIQUE, slug TEXT UNIQUE ON CONFLICT REPLACE, n INTEGER)";
/// Single version: `uuid` is the identity; `id` (local) and `code` are UNIQUE, `slug` UNIQUE
/// ON CONFLICT REPLACE.
const CREATE_DOC: &str = "CREATE TABLE doc(id INTEGER PRIMARY KEY AUTOINCREMENT, uuid TEXT NOT NULL UNIQUE, code TEXT UNIQUE, slug TEXT UNIQUE ON CONFLICT REPLACE, title TEXT)";
const DOC_SCHEMA: &str = r#"{"dbSchema":[{"version":1,"bundleName":"com.example.peerlite","dbName":"notes","tables":[{"tableName":"doc",
  "deviceSyncFields":["uuid","code","slug","title"],
  "fields":[{"columnName":"uuid","type":"Text","primaryKey":true,"notNull":true},
            {"columnName":"code","type":"Text"},{"columnName":"slug","type":"Text"},
            {"columnName":"title","type":"Text"}]}]}]}"#;

/// An app table whose trigger REPLACEs into the distributed table.
const INBOX: &str = "CREATE TABLE inbox(k, v)";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Collaboration,
    SingleVersion,
}

fn device(root: &std::path::Path, name: &str, mode: Mode) -> RdbStore {
    let store = open_store(root, name, &clock_at(T0));
    let (ddl, table, config) = match mode {
        Mode::Collaboration => (CREATE_TAG, "tag", DistributedConfig::default()),
        Mode::SingleVersion => (
            CREATE_DOC,
            "doc",
            DistributedConfig::single_version(SyncSchema::parse(DOC_SCHEMA).unwrap()),
        ),
    };
    store.execute(ddl, &[]).unwrap();
    store.execute(INBOX, &[]).unwrap();
    store
        .set_distributed_tables(&[table], DistributedType::Device, &config)
        .unwrap();
    store
}

/// The synced content of the distributed table (or of `phone`'s device table on the peer).
fn content(store: &RdbStore, mode: Mode, table: Option<&str>) -> Vec<Vec<Value>> {
    match mode {
        Mode::Collaboration => rows(
            store,
            &format!(
                "SELECT id, name, slug, n FROM {} ORDER BY id",
                peerlite_testkit::quote(table.unwrap_or("tag"))
            ),
        ),
        Mode::SingleVersion => rows(
            store,
            "SELECT uuid, code, slug, title FROM doc ORDER BY uuid",
        ),
    }
}

/// An identity, comparable.
fn key(v: &Value) -> String {
    format!("{v:?}")
}

fn keys(values: impl IntoIterator<Item = Value>) -> BTreeSet<String> {
    values.into_iter().map(|v| key(&v)).collect()
}

/// The identities the table holds and the ones its clock says are alive: always equal.
fn live(store: &RdbStore, mode: Mode) -> (BTreeSet<String>, BTreeSet<String>) {
    let (table, id) = match mode {
        Mode::Collaboration => ("tag", "id"),
        Mode::SingleVersion => ("doc", "uuid"),
    };
    let in_table = keys(
        rows(store, &format!("SELECT {id} FROM {table}"))
            .into_iter()
            .map(|r| r[0].clone()),
    );
    let in_clock = keys(
        store
            .changes(Some(table), 0)
            .unwrap()
            .into_iter()
            .filter(|c| !c.tombstone)
            .map(|c| c.key),
    );
    (in_table, in_clock)
}

/// One statement form: the SQL for each mode (or a call), and the identities alive after it.
struct Case {
    name: &'static str,
    tag: &'static str,
    doc: &'static str,
    tag_live: &'static [i64],
    doc_live: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        name: "INSERT OR REPLACE colliding on a secondary UNIQUE",
        tag: "INSERT OR REPLACE INTO tag(id, name, slug, n) VALUES (3, 'a', 's3', 3)",
        doc: "INSERT OR REPLACE INTO doc(uuid, code, slug, title) VALUES ('u3', 'c1', 's3', 't3')",
        tag_live: &[2, 3],
        doc_live: &["u2", "u3"],
    },
    Case {
        name: "REPLACE INTO colliding on a secondary UNIQUE",
        tag: "REPLACE INTO tag(id, name, slug, n) VALUES (3, 'b', 's3', 3)",
        doc: "REPLACE INTO doc(uuid, code, slug, title) VALUES ('u3', 'c2', 's3', 't3')",
        tag_live: &[1, 3],
        doc_live: &["u1", "u3"],
    },
    Case {
        name: "INSERT OR REPLACE colliding on the local key only",
        tag: "INSERT OR REPLACE INTO tag(id, name, slug, n) VALUES (1, 'a', 's1', 10)",
        doc: "INSERT OR REPLACE INTO doc(id, uuid, code, slug, title) VALUES ((SELECT id FROM doc WHERE uuid = 'u2'), 'u3', 'c3', 's3', 't3')",
        tag_live: &[1, 2],
        doc_live: &["u1", "u3"],
    },
    Case {
        name: "INSERT OR REPLACE of the same identity (a re-insert, not a delete)",
        tag: "INSERT OR REPLACE INTO tag(id, name, slug, n) VALUES (1, 'a again', 's1', 10)",
        doc: "INSERT OR REPLACE INTO doc(uuid, code, slug, title) VALUES ('u1', 'c1', 's1', 'again')",
        tag_live: &[1, 2],
        doc_live: &["u1", "u2"],
    },
    Case {
        name: "INSERT OR REPLACE of the same identity that also removes another row",
        tag: "INSERT OR REPLACE INTO tag(id, name, slug, n) VALUES (1, 'b', 's9', 10)",
        doc: "INSERT OR REPLACE INTO doc(uuid, code, slug, title) VALUES ('u1', 'c2', 's9', 'both')",
        tag_live: &[1],
        doc_live: &["u1"],
    },
    Case {
        name: "INSERT OR REPLACE of several rows",
        tag: "INSERT OR REPLACE INTO tag(id, name, slug, n) VALUES (3, 'a', 's3', 3), (4, 'b', 's4', 4)",
        doc: "INSERT OR REPLACE INTO doc(uuid, code, slug, title) VALUES ('u3', 'c1', 's3', 't3'), ('u4', 'c2', 's4', 't4')",
        tag_live: &[3, 4],
        doc_live: &["u3", "u4"],
    },
    Case {
        name: "UPDATE OR REPLACE",
        tag: "UPDATE OR REPLACE tag SET name = 'b' WHERE id = 1",
        doc: "UPDATE OR REPLACE doc SET code = 'c2' WHERE uuid = 'u1'",
        tag_live: &[1],
        doc_live: &["u1"],
    },
    Case {
        name: "UPDATE OR REPLACE of the identity onto another row's",
        tag: "UPDATE OR REPLACE tag SET id = 2 WHERE id = 1",
        doc: "UPDATE OR REPLACE doc SET uuid = 'u2' WHERE uuid = 'u1'",
        tag_live: &[2],
        doc_live: &["u2"],
    },
    // (An upsert's DO UPDATE always aborts on another UNIQUE, whatever the OR clause or the
    // declared conflict clause say; its insert follows them.)
    Case {
        name: "an upsert that inserts, colliding under OR REPLACE on another UNIQUE",
        tag: "INSERT OR REPLACE INTO tag(id, name, slug, n) VALUES (3, 'a', 's3', 3) ON CONFLICT(id) DO UPDATE SET n = 0",
        doc: "INSERT OR REPLACE INTO doc(uuid, code, slug, title) VALUES ('u3', 'c1', 's3', 't3') ON CONFLICT(uuid) DO UPDATE SET title = 'x'",
        tag_live: &[2, 3],
        doc_live: &["u2", "u3"],
    },
    Case {
        name: "an upsert that inserts, colliding with an ON CONFLICT REPLACE constraint",
        tag: "INSERT INTO tag(id, name, slug, n) VALUES (3, 'c', 's1', 3) ON CONFLICT(id) DO UPDATE SET n = 0",
        doc: "INSERT INTO doc(uuid, code, slug, title) VALUES ('u3', 'c3', 's1', 't3') ON CONFLICT(uuid) DO UPDATE SET title = 'x'",
        tag_live: &[2, 3],
        doc_live: &["u2", "u3"],
    },
    Case {
        name: "a plain INSERT hitting an ON CONFLICT REPLACE constraint",
        tag: "INSERT INTO tag(id, name, slug, n) VALUES (3, 'c', 's1', 3)",
        doc: "INSERT INTO doc(uuid, code, slug, title) VALUES ('u3', 'c3', 's1', 't3')",
        tag_live: &[2, 3],
        doc_live: &["u2", "u3"],
    },
    Case {
        name: "a plain UPDATE hitting an ON CONFLICT REPLACE constraint",
        tag: "UPDATE tag SET slug = 's2' WHERE id = 1",
        doc: "UPDATE doc SET slug = 's2' WHERE uuid = 'u1'",
        tag_live: &[1],
        doc_live: &["u1"],
    },
    Case {
        name: "a REPLACE done by an app trigger's body",
        tag: "CREATE TRIGGER fan AFTER INSERT ON inbox BEGIN INSERT OR REPLACE INTO tag(id, name, slug, n) VALUES (NEW.k, NEW.v, NULL, 0); END;
              INSERT INTO inbox VALUES (3, 'a')",
        doc: "CREATE TRIGGER fan AFTER INSERT ON inbox BEGIN INSERT OR REPLACE INTO doc(uuid, code, slug, title) VALUES (NEW.k, NEW.v, NULL, NULL); END;
              INSERT INTO inbox VALUES ('u3', 'c1')",
        tag_live: &[2, 3],
        doc_live: &["u2", "u3"],
    },
];

/// Two devices with rows 1/u1 and 2/u2 on the phone, already on the peer.
fn pair(root: &std::path::Path, mode: Mode) -> (RdbStore, RdbStore) {
    let phone = device(root, "phone", mode);
    let laptop = device(root, "laptop", mode);
    let setup = match mode {
        Mode::Collaboration => "INSERT INTO tag VALUES (1, 'a', 's1', 1), (2, 'b', 's2', 2)",
        Mode::SingleVersion => {
            "INSERT INTO doc(uuid, code, slug, title) VALUES ('u1', 'c1', 's1', 't1'), ('u2', 'c2', 's2', 't2')"
        }
    };
    phone.execute(setup, &[]).unwrap();
    sync(&phone, &laptop, SyncMode::PushPull);
    (phone, laptop)
}

/// After the statement: capture matches the table, and the peer ends holding the same rows.
fn check(phone: &RdbStore, laptop: &RdbStore, mode: Mode, expected: &BTreeSet<String>, what: &str) {
    let (in_table, in_clock) = live(phone, mode);
    assert_eq!(&in_table, expected, "{mode:?} {what}: the table");
    assert_eq!(
        in_clock, in_table,
        "{mode:?} {what}: a removed row has no tombstone"
    );
    let (_, on_laptop) = sync(phone, laptop, SyncMode::PushPull);
    assert_eq!(on_laptop.conflicts, 0, "{mode:?} {what}");
    let theirs = match mode {
        Mode::Collaboration => content(laptop, mode, Some(&laptop_table(laptop))),
        Mode::SingleVersion => content(laptop, mode, None),
    };
    assert_eq!(
        theirs,
        content(phone, mode, None),
        "{mode:?} {what}: the peer"
    );
}

fn laptop_table(laptop: &RdbStore) -> String {
    laptop
        .obtain_distributed_table_name("phone", "tag")
        .unwrap()
}

#[test]
fn every_statement_form_that_replaces_rows_leaves_tombstones_that_reach_the_peer() {
    for mode in [Mode::Collaboration, Mode::SingleVersion] {
        for case in CASES {
            let dir = tempfile::tempdir().unwrap();
            let (phone, laptop) = pair(dir.path(), mode);
            let (sql, expected) = match mode {
                Mode::Collaboration => (
                    case.tag,
                    keys(case.tag_live.iter().map(|i| Value::from(*i))),
                ),
                Mode::SingleVersion => (
                    case.doc,
                    keys(case.doc_live.iter().map(|u| Value::from(*u))),
                ),
            };
            phone
                .execute_script(sql)
                .unwrap_or_else(|e| panic!("{mode:?} {}: {e}", case.name));
            check(&phone, &laptop, mode, &expected, case.name);
        }
    }
}

/// Story: the same holds for the table-name API's `ConflictResolution::Replace`.
#[test]
fn the_table_name_apis_replace_leaves_tombstones_too() {
    for mode in [Mode::Collaboration, Mode::SingleVersion] {
        let dir = tempfile::tempdir().unwrap();
        let (phone, laptop) = pair(dir.path(), mode);
        let (table, row, keep) = match mode {
            Mode::Collaboration => (
                "tag",
                bucket! { "id" => 3, "name" => "a", "n" => 3 },
                Value::from(2),
            ),
            Mode::SingleVersion => (
                "doc",
                bucket! { "uuid" => "u3", "code" => "c1" },
                Value::from("u2"),
            ),
        };
        phone
            .insert_with_conflict(table, &row, ConflictResolution::Replace)
            .unwrap();
        let new = if mode == Mode::Collaboration {
            Value::from(3)
        } else {
            Value::from("u3")
        };
        check(
            &phone,
            &laptop,
            mode,
            &keys([keep, new.clone()]),
            "insert_with_conflict",
        );
        let (set, only) = match mode {
            Mode::Collaboration => (
                bucket! { "name" => "b" },
                RdbPredicates::new("tag").equal_to("id", 3),
            ),
            Mode::SingleVersion => (
                bucket! { "code" => "c2" },
                RdbPredicates::new("doc").equal_to("uuid", "u3"),
            ),
        };
        phone
            .update_with_conflict(&set, &only, ConflictResolution::Replace)
            .unwrap();
        check(&phone, &laptop, mode, &keys([new]), "update_with_conflict");
    }
}

/// Guards the fix: with DELETE triggers firing for REPLACE, a REPLACE that removes the row it
/// writes (same identity) runs the delete capture and then the insert capture; it must reach
/// the peer as the row's new state — an insert stamped after the removal — never as a delete
/// that beats it.
#[test]
fn a_replace_of_the_same_identity_is_a_reinsert_everywhere() {
    for mode in [Mode::Collaboration, Mode::SingleVersion] {
        let dir = tempfile::tempdir().unwrap();
        let (phone, laptop) = pair(dir.path(), mode);
        let (sql, key) = match mode {
            Mode::Collaboration => (
                "INSERT OR REPLACE INTO tag(id, name, slug, n) VALUES (1, 'new', 's1', 9)",
                Value::from(1),
            ),
            Mode::SingleVersion => (
                "INSERT OR REPLACE INTO doc(uuid, code, slug, title) VALUES ('u1', 'c1', 's1', 'new')",
                Value::from("u1"),
            ),
        };
        let table = if mode == Mode::Collaboration {
            "tag"
        } else {
            "doc"
        };
        let before = phone.change_of(table, &key).unwrap().unwrap();
        phone.execute(sql, &[]).unwrap();
        let after = phone.change_of(table, &key).unwrap().unwrap();
        assert!(!after.tombstone, "{mode:?}");
        assert!(after.hlc > before.hlc, "{mode:?}: a new existence event");
        assert!(
            after.columns.is_empty(),
            "{mode:?}: an insert writes every column"
        );
        let live_before = live(&phone, mode).0;
        check(&phone, &laptop, mode, &live_before, "same identity");
        // The peer holds the new state of the row.
        let theirs = match mode {
            Mode::Collaboration => content(&laptop, mode, Some(&laptop_table(&laptop))),
            Mode::SingleVersion => content(&laptop, mode, None),
        };
        assert!(
            theirs.iter().any(|r| r.contains(&Value::from("new"))),
            "{mode:?}: {theirs:?}"
        );
    }
}

/// Story: the writer switches `recursive_triggers` on when it opens a database with distributed
/// tables or distributes one itself — but a table can also become distributed behind its back
/// (another store on the same file, `peerlite distribute` while the app runs, a restore). The
/// first statement that fires a capture trigger switches it on, before it runs.
#[test]
fn a_table_distributed_by_another_connection_captures_replace_deletions_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let app = RdbStore::open(peerlite::StoreConfig::new(&path).device_id("phone")).unwrap();
    app.execute(CREATE_TAG, &[]).unwrap();
    app.execute(
        "INSERT INTO tag VALUES (1, 'a', 's1', 1), (2, 'b', 's2', 2)",
        &[],
    )
    .unwrap();
    let tool = RdbStore::open(peerlite::StoreConfig::new(&path).device_id("phone")).unwrap();
    tool.set_distributed_tables(
        &["tag"],
        DistributedType::Device,
        &DistributedConfig::default(),
    )
    .unwrap();
    tool.close().unwrap();
    app.execute(
        "INSERT OR REPLACE INTO tag(id, name, slug, n) VALUES (3, 'a', 's3', 3)",
        &[],
    )
    .unwrap();
    assert!(
        app.change_of("tag", &Value::from(1))
            .unwrap()
            .unwrap()
            .tombstone
    );
    let (in_table, in_clock) = live(&app, Mode::Collaboration);
    assert_eq!(in_clock, in_table);
}

/// Story: sync applies remote rows with capture paused; when a remote row collided with a local
/// one on a column declared `UNIQUE ON CONFLICT REPLACE`, SQLite removed the local row — no
/// tombstone, no conflict — and the devices drifted apart (an `ON CONFLICT IGNORE` column
/// dropped the remote row just as silently). Sync's writes say `OR ABORT`, so such a clash is a
/// recorded conflict and no row is lost.
#[test]
fn a_remote_row_never_replaces_a_local_one_through_a_declared_conflict_clause() {
    let dir = tempfile::tempdir().unwrap();
    let phone = device(dir.path(), "phone", Mode::SingleVersion);
    let laptop = device(dir.path(), "laptop", Mode::SingleVersion);
    phone
        .execute(
            "INSERT INTO doc(uuid, slug, title) VALUES ('u1', 'same', 'phone')",
            &[],
        )
        .unwrap();
    laptop
        .execute(
            "INSERT INTO doc(uuid, slug, title) VALUES ('u2', 'same', 'laptop')",
            &[],
        )
        .unwrap();
    let (on_phone, on_laptop) = sync(&phone, &laptop, SyncMode::PushPull);
    assert_eq!((on_phone.conflicts, on_laptop.conflicts), (1, 1));
    for store in [&phone, &laptop] {
        let (in_table, in_clock) = live(store, Mode::SingleVersion);
        assert_eq!(
            in_table.len(),
            1,
            "{}: its own row stays",
            store.device_id()
        );
        assert_eq!(in_clock, in_table, "{}", store.device_id());
    }
    assert_eq!(
        content(&phone, Mode::SingleVersion, None)[0][0],
        Value::from("u1")
    );
    assert_eq!(
        content(&laptop, Mode::SingleVersion, None)[0][0],
        Value::from("u2")
    );
}
