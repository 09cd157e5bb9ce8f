//! Seed 004: Android's SQLiteOpenHelper upgrade story, reproduced.
//!
//! Version 1.0 of an app creates its tables (`onCreate`); version 1.1 adds columns in
//! `onUpgrade` and every old row must stay, with the new column's default. The author's
//! `onUpgrade` also called `onCreate`, whose `CREATE TABLE offlinePause` (no `IF NOT EXISTS`)
//! failed because the table existed: the version was never bumped, and `onUpgrade` ran — and
//! failed — at every start. Here the failure rolls back everything, keeps version 1, names the
//! step, and once fixed the upgrade simply runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use peerlite::{
    Error, Migration, Migrations, OpenCallbacks, RdbStore, StoreConfig, Transaction, Value, bucket,
};
use peerlite_testkit::{
    all_rows, count_rows, create_at_version, migrate_to, query_column, temp_store_path,
};

use crate::common::{columns, inspect, migration_parts};

/// The seed's `DBOpenHelper`. `fixed` makes `onCreate` idempotent (`IF NOT EXISTS`
/// everywhere), which is the fix the seed arrives at.
#[derive(Default)]
struct AdsHelper {
    fixed: bool,
    configured: Arc<AtomicUsize>,
    created: Arc<AtomicUsize>,
    upgrades: Arc<AtomicUsize>,
    opened: Arc<AtomicUsize>,
}

impl AdsHelper {
    fn create_tables(&self, tx: &Transaction<'_>) -> peerlite::Result<()> {
        tx.execute(
            "CREATE TABLE IF NOT EXISTS offlineBanner(id integer primary key autoincrement, vid VARCHAR(100), Impression VARCHAR(2000), Duration VARCHAR(50), ClickThrough VARCHAR(500), time VARCHAR(50))",
            &[],
        )?;
        let pause = if self.fixed {
            "CREATE TABLE IF NOT EXISTS offlinePause(id integer primary key autoincrement, vid VARCHAR(100), Impression VARCHAR(2000), time VARCHAR(50))"
        } else {
            // The line the seed marks "这行代码会报异常" (this line throws).
            "CREATE TABLE offlinePause(id integer primary key autoincrement, vid VARCHAR(100), Impression VARCHAR(2000), time VARCHAR(50))"
        };
        tx.execute(pause, &[])?;
        tx.execute(
            "CREATE TABLE IF NOT EXISTS download_url(id integer primary key autoincrement, url varchar(500), status integer, length integer)",
            &[],
        )?;
        Ok(())
    }
}

impl OpenCallbacks for AdsHelper {
    fn on_configure(&mut self, _store: &RdbStore) -> peerlite::Result<()> {
        self.configured.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn on_create(&mut self, tx: &Transaction<'_>, _version: u32) -> peerlite::Result<()> {
        self.created.fetch_add(1, Ordering::SeqCst);
        self.create_tables(tx)
    }

    fn on_upgrade(&mut self, tx: &Transaction<'_>, old: u32, new: u32) -> peerlite::Result<()> {
        self.upgrades.fetch_add(1, Ordering::SeqCst);
        if old != new {
            tx.execute(
                "ALTER TABLE offlineBanner ADD COLUMN adsequence integer",
                &[],
            )?;
            tx.execute(
                "ALTER TABLE offlineBanner ADD COLUMN isofflinead integer DEFAULT 0",
                &[],
            )?;
            tx.execute("DROP TABLE IF EXISTS download_url", &[])?;
        }
        // "onUpgrade calls onCreate".
        self.create_tables(tx)
    }

    fn on_open(&mut self, _store: &RdbStore) -> peerlite::Result<()> {
        self.opened.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

fn banner_rows(store: &RdbStore) -> Vec<Vec<Value>> {
    all_rows(
        store,
        "SELECT id, vid, time FROM offlineBanner ORDER BY id",
        &[],
    )
    .unwrap()
}

#[test]
fn on_upgrade_that_fails_keeps_version_1_and_the_data_then_retries_cleanly() {
    let (_dir, path) = temp_store_path();

    // App 1.0: DBOpenHelper with VERSION = 1.
    let mut v1 = AdsHelper::default();
    let store = RdbStore::open_with(StoreConfig::new(&path).version(1), &mut v1).unwrap();
    assert_eq!(v1.created.load(Ordering::SeqCst), 1);
    assert_eq!(v1.upgrades.load(Ordering::SeqCst), 0);
    assert_eq!(v1.opened.load(Ordering::SeqCst), 1);
    assert_eq!(store.version().unwrap(), 1);
    for i in 1..=3 {
        store
            .insert(
                "offlineBanner",
                &bucket! { "vid" => format!("v{i}"), "time" => format!("2014-09-2{i}") },
            )
            .unwrap();
    }
    store
        .insert(
            "download_url",
            &bucket! { "url" => "http://x/y", "status" => 1 },
        )
        .unwrap();
    let before = banner_rows(&store);
    store.close().unwrap();

    // App 1.1 with the seed's buggy helper, VERSION = 2. It fails at every start.
    let upgrades = Arc::new(AtomicUsize::new(0));
    for attempt in 1..=2 {
        let mut broken = AdsHelper {
            upgrades: Arc::clone(&upgrades),
            ..AdsHelper::default()
        };
        let err = RdbStore::open_with(StoreConfig::new(&path).version(2), &mut broken).unwrap_err();
        assert_eq!(upgrades.load(Ordering::SeqCst), attempt);
        assert_eq!(err.code(), 17010001, "{err}");
        let (step, from, to, source_code) = migration_parts(&err);
        assert_eq!(step, "on_upgrade(1 -> 2)");
        assert_eq!((from, to), (1, 2));
        assert_eq!(source_code, 14800021); // "table offlinePause already exists"
        assert!(err.to_string().contains("on_upgrade(1 -> 2)"), "{err}");
        assert!(err.to_string().contains("offlinePause"), "{err}");
        assert_eq!(err.sqlite_code(), Some(1));
        assert_eq!(broken.opened.load(Ordering::SeqCst), 0, "on_open never ran");

        // Nothing of the failed upgrade is left: version 1, no new columns, the dropped table
        // still there with its row, and every banner row unchanged.
        let look = inspect(&path);
        assert_eq!(look.version().unwrap(), 1);
        assert_eq!(
            columns(&look, "offlineBanner"),
            [
                "id",
                "vid",
                "Impression",
                "Duration",
                "ClickThrough",
                "time"
            ]
        );
        assert_eq!(count_rows(&look, "download_url").unwrap(), 1);
        assert_eq!(banner_rows(&look), before);
        look.close().unwrap();
    }

    // The fix: onCreate with IF NOT EXISTS. The same open now upgrades.
    let mut fixed = AdsHelper {
        fixed: true,
        upgrades: Arc::clone(&upgrades),
        ..AdsHelper::default()
    };
    let store = RdbStore::open_with(StoreConfig::new(&path).version(2), &mut fixed).unwrap();
    assert_eq!(upgrades.load(Ordering::SeqCst), 3);
    assert_eq!(
        fixed.created.load(Ordering::SeqCst),
        0,
        "on_create is for version 0 only"
    );
    assert_eq!(fixed.configured.load(Ordering::SeqCst), 1);
    assert_eq!(fixed.opened.load(Ordering::SeqCst), 1);
    assert_eq!(store.version().unwrap(), 2);
    assert_eq!(
        columns(&store, "offlineBanner"),
        [
            "id",
            "vid",
            "Impression",
            "Duration",
            "ClickThrough",
            "time",
            "adsequence",
            "isofflinead"
        ]
    );
    // Every row kept, the new columns at their defaults.
    assert_eq!(banner_rows(&store), before);
    assert_eq!(
        query_column::<Option<i64>>(&store, "SELECT adsequence FROM offlineBanner", &[]).unwrap(),
        [None, None, None]
    );
    assert_eq!(
        query_column::<i64>(&store, "SELECT isofflinead FROM offlineBanner", &[]).unwrap(),
        [0, 0, 0]
    );
    // onUpgrade dropped download_url and its onCreate call made it again, empty.
    assert_eq!(count_rows(&store, "download_url").unwrap(), 0);
    assert_eq!(count_rows(&store, "offlinePause").unwrap(), 0);
    store.close().unwrap();

    // The version was stored: the next start does not upgrade again.
    let mut again = AdsHelper {
        fixed: true,
        upgrades: Arc::clone(&upgrades),
        ..AdsHelper::default()
    };
    let store = RdbStore::open_with(StoreConfig::new(&path).version(2), &mut again).unwrap();
    assert_eq!(upgrades.load(Ordering::SeqCst), 3);
    assert_eq!(again.opened.load(Ordering::SeqCst), 1);
    assert_eq!(banner_rows(&store), before);
}

/// The seed's second example: `book` gets a `bookContent` column by renaming the table,
/// creating the new one and copying the rows with a default for the new column.
#[test]
fn book_gets_a_new_column_and_keeps_every_row() {
    let (_dir, path) = temp_store_path();
    let migrations = Migrations::new()
        .step(Migration::sql(
            "0001_book",
            "create table book(bookId integer primary key, bookName text);",
        ))
        .step(Migration::sql(
            "0002_book_content",
            "alter table book rename to _temp_book;
             create table book(bookId integer primary key, bookName text, bookContent text);
             insert into book select *, '' from _temp_book;
             drop table _temp_book;",
        ));
    create_at_version(&path, &migrations, 1).unwrap();
    {
        let store = inspect(&path);
        for (id, name) in [(1, "Dune"), (5, "Solaris"), (9, "Ubik")] {
            store
                .insert("book", &bucket! { "bookId" => id, "bookName" => name })
                .unwrap();
        }
        store.close().unwrap();
    }
    let store = migrate_to(&path, &migrations, 2).unwrap();
    assert_eq!(store.version().unwrap(), 2);
    assert_eq!(
        all_rows(
            &store,
            "SELECT bookId, bookName, bookContent FROM book ORDER BY bookId",
            &[]
        )
        .unwrap(),
        vec![
            vec![Value::Integer(1), Value::from("Dune"), Value::from("")],
            vec![Value::Integer(5), Value::from("Solaris"), Value::from("")],
            vec![Value::Integer(9), Value::from("Ubik"), Value::from("")],
        ]
    );
    assert_eq!(
        query_column::<i64>(
            &store,
            "SELECT count(*) FROM sqlite_schema WHERE name = '_temp_book'",
            &[]
        )
        .unwrap(),
        [0]
    );
}

/// Same story with `ALTER TABLE ADD COLUMN ... DEFAULT`, the way the seed describes the 1.0 →
/// 1.1 change ("add the column and give it a default").
#[test]
fn add_column_with_default_through_migrations() {
    let (_dir, path) = temp_store_path();
    let migrations = Migrations::new()
        .step(Migration::sql(
            "0001_init",
            "CREATE TABLE Subscription(OrderId VARCHAR(32) PRIMARY KEY, UserName VARCHAR(32) NOT NULL, ProductId VARCHAR(16) NOT NULL)",
        ))
        .step(Migration::sql(
            "0002_activation",
            "ALTER TABLE Subscription ADD COLUMN Activation TEXT NOT NULL DEFAULT 'inactive'",
        ));
    create_at_version(&path, &migrations, 1).unwrap();
    {
        let store = inspect(&path);
        for i in 0..100 {
            store
                .insert(
                    "Subscription",
                    &bucket! { "OrderId" => format!("o{i:03}"), "UserName" => format!("u{i}"), "ProductId" => "p" },
                )
                .unwrap();
        }
        store.close().unwrap();
    }
    let store = migrate_to(&path, &migrations, 2).unwrap();
    assert_eq!(count_rows(&store, "Subscription").unwrap(), 100);
    assert_eq!(
        query_column::<String>(&store, "SELECT DISTINCT Activation FROM Subscription", &[])
            .unwrap(),
        ["inactive"]
    );
    assert_eq!(
        query_column::<String>(
            &store,
            "SELECT UserName FROM Subscription WHERE OrderId = 'o042'",
            &[]
        )
        .unwrap(),
        ["u42"]
    );
}

#[test]
fn a_failing_second_statement_undoes_the_first_and_a_fixed_step_then_runs() {
    let (_dir, path) = temp_store_path();
    let v1 = Migrations::new().step(Migration::sql(
        "0001_init",
        "CREATE TABLE book(id INTEGER PRIMARY KEY, name TEXT); INSERT INTO book(name) VALUES ('Dune');",
    ));
    create_at_version(&path, &v1, 1).unwrap();

    let broken = v1.clone().step(Migration::sql(
        "0002_add_author",
        "ALTER TABLE book ADD COLUMN author TEXT DEFAULT 'unknown'; INSERT INTO no_such_table VALUES (1);",
    ));
    for _ in 0..2 {
        let err = migrate_to(&path, &broken, 2).unwrap_err();
        assert_eq!(err.code(), 17010001);
        let (step, from, to, source) = migration_parts(&err);
        assert_eq!(step, "0002_add_author");
        assert_eq!((from, to, source), (1, 2, 14800021));
        assert!(err.to_string().contains("0002_add_author"), "{err}");
        let look = inspect(&path);
        assert_eq!(look.version().unwrap(), 1);
        assert_eq!(columns(&look, "book"), ["id", "name"]);
        look.close().unwrap();
    }

    let fixed = v1.step(Migration::sql(
        "0002_add_author",
        "ALTER TABLE book ADD COLUMN author TEXT DEFAULT 'unknown'",
    ));
    let store = migrate_to(&path, &fixed, 2).unwrap();
    assert_eq!(store.version().unwrap(), 2);
    assert_eq!(
        all_rows(&store, "SELECT name, author FROM book", &[]).unwrap(),
        vec![vec![Value::from("Dune"), Value::from("unknown")]]
    );
}

#[test]
fn a_failing_closure_step_is_named_and_rolled_back() {
    let (_dir, path) = temp_store_path();
    let migrations = Migrations::new()
        .step(Migration::sql("0001_init", "CREATE TABLE t(a INTEGER)"))
        .step(Migration::closure("0002_fill", |tx| {
            tx.insert("t", &bucket! { "a" => 1 })?;
            tx.insert("t", &bucket! { "nope" => 2 })?; // unknown column
            Ok(())
        }));
    let err = migrate_to(&path, &migrations, 2).unwrap_err();
    assert_eq!(err.code(), 17010001);
    let (step, from, to, source) = migration_parts(&err);
    // A new database runs every step in one transaction; the failing one is named.
    assert_eq!(
        (step.as_str(), from, to, source),
        ("0002_fill", 0, 2, 14800001)
    );
    // Nothing was created, not even step 1.
    let look = inspect(&path);
    assert_eq!(look.version().unwrap(), 0);
    assert!(columns(&look, "t").is_empty());
}

#[test]
fn version_zero_is_refused_before_anything_happens() {
    let (_dir, path) = temp_store_path();
    let mut helper = AdsHelper::default();
    let err = RdbStore::open_with(StoreConfig::new(&path).version(0), &mut helper).unwrap_err();
    assert_eq!(err.code(), 14800001);
    assert!(matches!(err, Error::InvalidArgument { .. }));
    assert!(!path.exists());
    assert_eq!(helper.configured.load(Ordering::SeqCst), 0);
    assert_eq!(helper.created.load(Ordering::SeqCst), 0);

    // migrate(0) on an open store too.
    let store = RdbStore::open(StoreConfig::new(&path)).unwrap();
    assert_eq!(
        store.migrate(0, &mut helper, false).unwrap_err().code(),
        14800001
    );
    assert_eq!(store.version().unwrap(), 0);
}

#[test]
fn default_on_downgrade_refuses_with_17010002() {
    let (_dir, path) = temp_store_path();
    let mut helper = AdsHelper {
        fixed: true,
        ..AdsHelper::default()
    };
    RdbStore::open_with(StoreConfig::new(&path).version(3), &mut helper)
        .unwrap()
        .close()
        .unwrap();
    let err = RdbStore::open_with(StoreConfig::new(&path).version(2), &mut helper).unwrap_err();
    assert_eq!(err.code(), 17010002);
    assert!(matches!(err, Error::Downgrade { from: 3, to: 2 }));
    assert_eq!(inspect(&path).version().unwrap(), 3);
}
