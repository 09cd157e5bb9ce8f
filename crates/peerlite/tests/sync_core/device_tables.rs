//! Device collaboration: every other device's rows in a read-only table of their own, relayed
//! between devices, never echoed back to their origin.

use peerlite::sync::SyncMode;
use peerlite::{RdbPredicates, Value, bucket, values};

use crate::common::*;

fn row(id: i64, text: &str, n: i64) -> Vec<Value> {
    values![id, text, n].to_vec()
}

#[test]
fn remote_rows_land_in_the_device_table_never_in_the_local_one() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let phone = note_device(dir.path(), "phone", &clock);
    let laptop = note_device(dir.path(), "laptop", &clock);
    phone
        .insert("note", &bucket! { "text" => "phone's", "n" => 0 })
        .unwrap();
    laptop
        .insert("note", &bucket! { "text" => "laptop 1", "n" => 1 })
        .unwrap();
    laptop
        .insert("note", &bucket! { "text" => "laptop 2", "n" => 2 })
        .unwrap();
    let table = device_table(&phone, "laptop");
    assert!(!table_exists(&phone, &table), "made when rows first arrive");
    let (on_laptop, on_phone) = sync(&laptop, &phone, SyncMode::Push);
    assert_eq!((on_laptop.sent, on_phone.received), (2, 2));
    assert_eq!(on_laptop.device, "phone");
    assert_eq!(on_phone.device, "laptop");
    assert_eq!(notes(&phone, "note"), vec![row(1, "phone's", 0)]);
    assert_eq!(
        notes(&phone, &table),
        vec![row(1, "laptop 1", 1), row(2, "laptop 2", 2)],
        "same ids as on the laptop: no collision with the phone's id 1"
    );
    // The laptop got nothing.
    assert!(!table_exists(&laptop, &device_table(&laptop, "phone")));
    // The captured changes of the device table say where the rows come from.
    let changes = phone.changes(Some("note"), 0).unwrap();
    let remote: Vec<_> = changes.iter().filter(|c| c.table == table).collect();
    assert_eq!(remote.len(), 2);
    assert!(remote.iter().all(|c| c.origin == "laptop"));
}

#[test]
fn the_device_table_name_is_the_same_on_every_device_and_per_device() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let phone = note_device(dir.path(), "phone", &clock);
    let tablet = note_device(dir.path(), "tablet", &clock);
    let on_phone = phone
        .obtain_distributed_table_name("laptop", "note")
        .unwrap();
    let on_tablet = tablet
        .obtain_distributed_table_name("laptop", "note")
        .unwrap();
    assert_eq!(on_phone, on_tablet);
    assert_ne!(
        on_phone,
        phone
            .obtain_distributed_table_name("watch", "note")
            .unwrap()
    );
    assert_eq!(
        code(phone.obtain_distributed_table_name("laptop", "nope")),
        17040001
    );
}

#[test]
fn single_version_tables_have_no_device_tables() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let phone = item_device(dir.path(), "phone", &clock);
    assert!(
        phone
            .obtain_distributed_table_name("laptop", "item")
            .is_err()
    );
}

fn phone_with_laptop_rows() -> (
    tempfile::TempDir,
    peerlite::RdbStore,
    peerlite::RdbStore,
    String,
) {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let phone = note_device(dir.path(), "phone", &clock);
    let laptop = note_device(dir.path(), "laptop", &clock);
    laptop
        .insert("note", &bucket! { "text" => "laptop 1", "n" => 1 })
        .unwrap();
    sync(&laptop, &phone, SyncMode::Push);
    let table = device_table(&phone, "laptop");
    (dir, phone, laptop, table)
}

#[test]
fn local_writes_to_a_device_table_fail_with_17040002() {
    let (_dir, phone, laptop, table) = phone_with_laptop_rows();
    let q = peerlite_testkit::quote(&table);
    let only = RdbPredicates::new(table.as_str()).equal_to("id", 1);
    assert_eq!(
        code(phone.insert(&table, &bucket! { "id" => 9, "text" => "mine" })),
        17040002
    );
    assert_eq!(
        code(phone.update(&bucket! { "text" => "mine" }, &only)),
        17040002
    );
    assert_eq!(code(phone.delete(&only)), 17040002);
    assert_eq!(
        code(phone.execute(&format!("INSERT INTO {q}(id, text) VALUES (9, 'x')"), &[])),
        17040002
    );
    assert_eq!(
        code(phone.execute(&format!("UPDATE {q} SET text = 'x'"), &[])),
        17040002
    );
    assert_eq!(
        code(phone.execute(&format!("DELETE FROM {q}"), &[])),
        17040002
    );
    assert_eq!(
        code(phone.execute(&format!("REPLACE INTO {q}(id, text) VALUES (1, 'x')"), &[])),
        17040002
    );
    // Spelled another way (case), and from inside a transaction.
    let upper = q.to_uppercase();
    assert_eq!(
        code(phone.execute(&format!("DELETE FROM {upper}"), &[])),
        17040002
    );
    let in_tx: peerlite::Result<()> = phone.transaction(|tx| {
        tx.insert("note", &bucket! { "text" => "mine" })?;
        tx.execute(&format!("DELETE FROM {q}"), &[])?;
        Ok(())
    });
    assert_eq!(code(in_tx), 17040002);
    assert_eq!(
        count(&phone, "note"),
        0,
        "the whole transaction rolled back"
    );
    let in_tx: peerlite::Result<()> = phone.transaction(|tx| {
        tx.update(&bucket! { "n" => 5 }, &only)?;
        Ok(())
    });
    assert_eq!(code(in_tx), 17040002);
    // Nothing changed, and reading works.
    assert_eq!(notes(&phone, &table), vec![row(1, "laptop 1", 1)]);

    // A trigger writing the device table is refused when it is created (17050001: peerlite's
    // own object); one made by another tool is refused whenever it fires (17040002).
    assert_eq!(
        code(phone.execute(
            &format!("CREATE TRIGGER sneaky AFTER INSERT ON note BEGIN DELETE FROM {q}; END"),
            &[],
        )),
        17050001
    );
    rusqlite::Connection::open(phone.path())
        .unwrap()
        .execute_batch(&format!(
            "CREATE TRIGGER sneaky AFTER INSERT ON note BEGIN DELETE FROM {q}; END"
        ))
        .unwrap();
    assert_eq!(
        code(phone.insert("note", &bucket! { "text" => "x" })),
        17040002
    );
    rusqlite::Connection::open(phone.path())
        .unwrap()
        .execute_batch("DROP TRIGGER sneaky")
        .unwrap();
    assert_eq!(notes(&phone, &table), vec![row(1, "laptop 1", 1)]);

    // Sync still writes it after all those refusals.
    laptop
        .update(
            &bucket! { "text" => "laptop 1 edited" },
            &RdbPredicates::new("note").equal_to("id", 1),
        )
        .unwrap();
    laptop
        .insert("note", &bucket! { "text" => "laptop 2", "n" => 2 })
        .unwrap();
    let (_, on_phone) = sync(&laptop, &phone, SyncMode::Push);
    assert_eq!(on_phone.received, 2);
    assert_eq!(
        notes(&phone, &table),
        vec![row(1, "laptop 1 edited", 1), row(2, "laptop 2", 2)]
    );
    // And the refusals still hold after sync used the table.
    assert_eq!(
        code(phone.execute(&format!("DELETE FROM {q}"), &[])),
        17040002
    );
}

#[test]
fn updates_and_deletes_propagate_to_the_device_table() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let phone = note_device(dir.path(), "phone", &clock);
    let laptop = note_device(dir.path(), "laptop", &clock);
    for i in 1..=3 {
        laptop
            .insert("note", &bucket! { "text" => format!("n{i}"), "n" => i })
            .unwrap();
    }
    sync(&laptop, &phone, SyncMode::Push);
    clock.advance(10);
    laptop
        .delete(&RdbPredicates::new("note").equal_to("id", 2))
        .unwrap();
    laptop
        .update(
            &bucket! { "n" => 30 },
            &RdbPredicates::new("note").equal_to("id", 3),
        )
        .unwrap();
    let (a, b) = sync(&laptop, &phone, SyncMode::Push);
    assert_eq!((a.sent, b.received), (2, 2));
    let table = device_table(&phone, "laptop");
    assert_eq!(
        notes(&phone, &table),
        vec![row(1, "n1", 1), row(3, "n3", 30)]
    );
    let tomb = phone
        .changes(Some("note"), 0)
        .unwrap()
        .into_iter()
        .find(|c| c.key == Value::Integer(2))
        .unwrap();
    assert!(tomb.tombstone);
    assert_eq!(tomb.origin, "laptop");
}

#[test]
fn rows_relay_through_a_third_device() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let phone = note_device(dir.path(), "phone", &clock);
    let laptop = note_device(dir.path(), "laptop", &clock);
    let tablet = note_device(dir.path(), "tablet", &clock);
    phone
        .insert("note", &bucket! { "text" => "p1", "n" => 1 })
        .unwrap();
    phone
        .insert("note", &bucket! { "text" => "p2", "n" => 2 })
        .unwrap();
    laptop
        .insert("note", &bucket! { "text" => "l1", "n" => 1 })
        .unwrap();
    sync(&phone, &laptop, SyncMode::Push);
    let (a, b) = sync(&laptop, &tablet, SyncMode::Push);
    assert_eq!(
        (a.sent, b.received),
        (3, 3),
        "the laptop's row and the phone's two"
    );
    assert_eq!(
        notes(&tablet, &device_table(&tablet, "phone")),
        vec![row(1, "p1", 1), row(2, "p2", 2)]
    );
    assert_eq!(
        notes(&tablet, &device_table(&tablet, "laptop")),
        vec![row(1, "l1", 1)]
    );
    assert_eq!(count(&tablet, "note"), 0);
    let relayed: Vec<_> = tablet
        .changes(None, 0)
        .unwrap()
        .into_iter()
        .filter(|c| c.table == device_table(&tablet, "phone"))
        .collect();
    assert!(relayed.iter().all(|c| c.origin == "phone"));

    // A delete on the phone relays too; and the phone's own later edits win over nothing.
    clock.advance(10);
    phone
        .delete(&RdbPredicates::new("note").equal_to("id", 1))
        .unwrap();
    sync(&phone, &laptop, SyncMode::Push);
    sync(&laptop, &tablet, SyncMode::Push);
    assert_eq!(
        notes(&tablet, &device_table(&tablet, "phone")),
        vec![row(2, "p2", 2)]
    );
}

#[test]
fn relayed_rows_are_not_sent_back_to_their_origin() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let phone = note_device(dir.path(), "phone", &clock);
    let laptop = note_device(dir.path(), "laptop", &clock);
    for i in 0..3 {
        phone.insert("note", &bucket! { "n" => i }).unwrap();
    }
    sync(&phone, &laptop, SyncMode::Push);
    let (a, b) = sync(&laptop, &phone, SyncMode::Push);
    assert_eq!((a.sent, b.received), (0, 0), "echo suppression");
    // No device table for the phone's own rows.
    assert!(!table_exists(
        &phone,
        &peerlite::changes::device_table_name("phone", "note")
    ));
    // The laptop's own rows still go; the phone's rows still do not.
    laptop.insert("note", &bucket! { "n" => 9 }).unwrap();
    let (a, b) = sync(&laptop, &phone, SyncMode::PushPull);
    assert_eq!((a.sent, b.received), (1, 1));
    assert_eq!((a.received, b.sent), (0, 0));
    assert_eq!(count(&phone, "note"), 3);
    assert_eq!(count(&phone, &device_table(&phone, "laptop")), 1);
}

#[test]
fn own_rows_relayed_back_by_a_third_device_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let phone = note_device(dir.path(), "phone", &clock);
    let laptop = note_device(dir.path(), "laptop", &clock);
    let tablet = note_device(dir.path(), "tablet", &clock);
    phone
        .insert("note", &bucket! { "text" => "p", "n" => 1 })
        .unwrap();
    sync(&phone, &laptop, SyncMode::Push);
    sync(&laptop, &tablet, SyncMode::Push);
    // The phone edits its row after the relay; then the tablet's old copy comes back.
    clock.advance(10);
    phone
        .update(
            &bucket! { "text" => "p edited" },
            &RdbPredicates::new("note").equal_to("id", 1),
        )
        .unwrap();
    let (_, on_phone) = sync(&tablet, &phone, SyncMode::Push);
    assert_eq!(on_phone.received, 0);
    assert_eq!(
        notes(&phone, "note"),
        vec![row(1, "p edited", 1)],
        "the phone's own table is the truth for its rows"
    );
    // No device table for the phone's own rows.
    assert!(!table_exists(
        &phone,
        &peerlite::changes::device_table_name("phone", "note")
    ));
}

#[test]
fn device_tables_of_several_peers_stay_apart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let phone = note_device(dir.path(), "phone", &clock);
    let laptop = note_device(dir.path(), "laptop", &clock);
    let tablet = note_device(dir.path(), "tablet", &clock);
    laptop
        .insert("note", &bucket! { "id" => 1, "text" => "laptop", "n" => 1 })
        .unwrap();
    tablet
        .insert("note", &bucket! { "id" => 1, "text" => "tablet", "n" => 1 })
        .unwrap();
    sync(&laptop, &phone, SyncMode::Push);
    sync(&tablet, &phone, SyncMode::Push);
    assert_eq!(
        notes(&phone, &device_table(&phone, "laptop")),
        vec![row(1, "laptop", 1)]
    );
    assert_eq!(
        notes(&phone, &device_table(&phone, "tablet")),
        vec![row(1, "tablet", 1)]
    );
    let names: Vec<String> = phone
        .distributed_tables()
        .unwrap()
        .into_iter()
        .filter(|m| m.base.as_deref() == Some("note"))
        .map(|m| m.origin.unwrap())
        .collect();
    let mut names = names;
    names.sort();
    assert_eq!(names, ["laptop", "tablet"]);
}

#[test]
fn a_table_without_a_primary_key_syncs_by_rowid() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let mk = |name: &str| {
        let s = open_store(dir.path(), name, &clock);
        s.execute("CREATE TABLE log(msg TEXT, level INTEGER)", &[])
            .unwrap();
        s.set_distributed_tables(
            &["log"],
            peerlite::changes::DistributedType::Device,
            &peerlite::changes::DistributedConfig::default(),
        )
        .unwrap();
        s
    };
    let phone = mk("phone");
    let laptop = mk("laptop");
    phone
        .insert("log", &bucket! { "msg" => "boot", "level" => 1 })
        .unwrap();
    phone
        .insert("log", &bucket! { "msg" => "ready", "level" => 2 })
        .unwrap();
    let (p, l) = sync(&phone, &laptop, SyncMode::Push);
    assert_eq!((p.sent, l.received), (2, 2));
    let table = laptop
        .obtain_distributed_table_name("phone", "log")
        .unwrap();
    assert_eq!(
        rows(
            &laptop,
            &format!(
                "SELECT msg, level FROM {} ORDER BY level",
                peerlite_testkit::quote(&table)
            )
        ),
        vec![values!["boot", 1].to_vec(), values!["ready", 2].to_vec()]
    );
    clock.advance(5);
    phone
        .update(
            &bucket! { "msg" => "booted" },
            &RdbPredicates::new("log").equal_to("level", 1),
        )
        .unwrap();
    phone
        .delete(&RdbPredicates::new("log").equal_to("level", 2))
        .unwrap();
    sync(&phone, &laptop, SyncMode::Push);
    assert_eq!(
        rows(
            &laptop,
            &format!("SELECT msg, level FROM {}", peerlite_testkit::quote(&table))
        ),
        vec![values!["booted", 1].to_vec()]
    );
}

#[test]
fn values_of_every_type_arrive_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let mk = |name: &str| {
        let s = open_store(dir.path(), name, &clock);
        s.execute(
            "CREATE TABLE doc(key TEXT PRIMARY KEY, i INTEGER, r REAL, t TEXT, b BLOB, absent TEXT, \"order\" INTEGER, \"odd \"\"name\"\"\" TEXT)",
            &[],
        )
        .unwrap();
        s.set_distributed_tables(
            &["doc"],
            peerlite::changes::DistributedType::Device,
            &peerlite::changes::DistributedConfig::default(),
        )
        .unwrap();
        s
    };
    let phone = mk("phone");
    let laptop = mk("laptop");
    let blob: Vec<u8> = (0..=255u8).collect();
    phone
        .insert(
            "doc",
            &bucket! { "key" => "k1", "i" => i64::MIN, "r" => 2.5e-300, "t" => "ünïcödé ✓ 'quoted' \"x\"", "b" => blob.clone(), "order" => 3, "odd \"name\"" => "odd" },
        )
        .unwrap();
    phone
        .insert("doc", &bucket! { "key" => "", "i" => i64::MAX, "t" => "" })
        .unwrap();
    sync(&phone, &laptop, SyncMode::Push);
    let table = laptop
        .obtain_distributed_table_name("phone", "doc")
        .unwrap();
    let sql = |t: &str| {
        format!(
            "SELECT key, i, r, t, b, absent, \"order\", \"odd \"\"name\"\"\", typeof(i), typeof(r), typeof(b) FROM {} ORDER BY key",
            peerlite_testkit::quote(t)
        )
    };
    assert_eq!(rows(&laptop, &sql(&table)), rows(&phone, &sql("doc")));
    let got = rows(&laptop, &sql(&table));
    assert_eq!(got[1][4], Value::Blob(blob));
    assert_eq!(got[0][5], Value::Null);
    // Updates of columns whose names need quoting are captured and sync.
    clock.advance(5);
    phone
        .execute(
            "UPDATE doc SET \"order\" = 4, \"odd \"\"name\"\"\" = 'odder' WHERE key = 'k1'",
            &[],
        )
        .unwrap();
    let (p, _) = sync(&phone, &laptop, SyncMode::Push);
    assert_eq!(p.sent, 1);
    assert_eq!(rows(&laptop, &sql(&table)), rows(&phone, &sql("doc")));
}

#[test]
fn relayed_and_direct_copies_of_a_row_are_the_same_row() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let phone = note_device(dir.path(), "phone", &clock);
    let laptop = note_device(dir.path(), "laptop", &clock);
    let tablet = note_device(dir.path(), "tablet", &clock);
    for i in 1..=3 {
        phone
            .insert("note", &bucket! { "text" => format!("p{i}"), "n" => i })
            .unwrap();
    }
    sync(&phone, &laptop, SyncMode::Push);
    sync(&laptop, &tablet, SyncMode::Push);
    let (p, t) = sync(&phone, &tablet, SyncMode::Push);
    assert_eq!(
        p.sent, 3,
        "the tablet's watermark for the phone itself is new"
    );
    assert_eq!(t.received, 0, "but it already has these states");
    assert_eq!(count(&tablet, &device_table(&tablet, "phone")), 3);
    // A newer edit coming directly is not undone by the older relayed state.
    clock.advance(10);
    phone
        .update(
            &bucket! { "text" => "direct" },
            &RdbPredicates::new("note").equal_to("id", 1),
        )
        .unwrap();
    sync(&phone, &tablet, SyncMode::Push);
    sync(&laptop, &tablet, SyncMode::Push);
    assert_eq!(
        notes(&tablet, &device_table(&tablet, "phone"))[0],
        row(1, "direct", 1)
    );
}

#[test]
fn relays_from_several_device_tables_in_small_batches_arrive_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let names = ["phone", "tablet", "watch"];
    let hub = note_device(dir.path(), "laptop", &clock);
    for (k, name) in names.iter().enumerate() {
        let d = note_device(dir.path(), name, &clock);
        for i in 1..=(k as i64 + 2) {
            d.insert(
                "note",
                &bucket! { "text" => format!("{name}{i}"), "n" => i },
            )
            .unwrap();
            // Interleave the hub's own writes with what arrives.
            hub.insert(
                "note",
                &bucket! { "text" => format!("hub {name}{i}"), "n" => i },
            )
            .unwrap();
        }
        sync(&d, &hub, SyncMode::Push);
    }
    let tv = note_device(dir.path(), "tv", &clock);
    let pumped = pump(&hub, &tv, SyncMode::Push, None, 1, lossless);
    // 2 + 3 + 4 relayed rows and 9 of the hub's own.
    assert_eq!((pumped.initiator.sent, pumped.responder.received), (18, 18));
    for (k, name) in names.iter().enumerate() {
        let got = notes(&tv, &device_table(&tv, name));
        let want: Vec<Vec<Value>> = (1..=(k as i64 + 2))
            .map(|i| row(i, &format!("{name}{i}"), i))
            .collect();
        assert_eq!(got, want, "{name}");
    }
    assert_eq!(count(&tv, &device_table(&tv, "laptop")), 9);
}

#[test]
fn sync_while_another_thread_writes_misses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let phone = note_device(dir.path(), "phone", &clock);
    let laptop = note_device(dir.path(), "laptop", &clock);
    let writer = {
        let phone = phone.clone();
        std::thread::spawn(move || {
            for i in 0..150i64 {
                if i % 10 == 9 {
                    phone
                        .transaction(|tx| {
                            tx.insert("note", &bucket! { "n" => i })?;
                            tx.execute(
                                "UPDATE note SET text = 'touched' WHERE n = ?",
                                &values![i - 5],
                            )?;
                            Ok(())
                        })
                        .unwrap();
                } else {
                    phone.insert("note", &bucket! { "n" => i }).unwrap();
                }
            }
        })
    };
    let mut rounds = 0;
    while !writer.is_finished() {
        sync(&phone, &laptop, SyncMode::Push);
        rounds += 1;
    }
    writer.join().unwrap();
    sync(&phone, &laptop, SyncMode::Push);
    assert!(rounds >= 1);
    let table = device_table(&laptop, "phone");
    assert_eq!(notes(&laptop, &table), notes(&phone, "note"));
    assert_eq!(count(&laptop, &table), 150);
}
