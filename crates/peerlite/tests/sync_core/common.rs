//! Fixtures shared by the sync-core tests: devices with clocks the test drives, the two kinds of
//! distributed table, table contents as sorted plain values, and a message pump that can lose,
//! duplicate and reorder what it carries.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;

use peerlite::changes::{DistributedConfig, DistributedType, ManualClock};
use peerlite::schema::SyncSchema;
use peerlite::sync::{
    DeviceLevel, DeviceResult, Dispatcher, MessageV1, Peer, Session, SyncMessage, SyncMode,
    sync_in_memory,
};
use peerlite::{RdbPredicates, RdbStore, StoreConfig, Value, bucket, values};

/// The wall clock every test starts from (ms since the Unix epoch).
pub const T0: u64 = 1_700_000_000_000;

/// The store's file name: the same on every device (the sync store name is its stem).
pub const STORE_FILE: &str = "notes.db";

/// A device-collaboration table.
pub const CREATE_NOTE: &str = "CREATE TABLE note(id INTEGER PRIMARY KEY, text TEXT, n INTEGER)";

/// A single-version table: auto-increment ids (local only), a uuid conflict column, a second
/// UNIQUE column (`code`, synced as seed 002 requires) and a column that does not sync.
pub const CREATE_ITEM: &str = "CREATE TABLE item(id INTEGER PRIMARY KEY AUTOINCREMENT, uuid TEXT NOT NULL UNIQUE, title TEXT, qty INTEGER, code TEXT UNIQUE, local TEXT)";

/// The sync schema of `item` in `notes.db`.
pub const ITEM_SCHEMA: &str = r#"{"dbSchema":[{"version":1,"bundleName":"com.example.peerlite","dbName":"notes","tables":[{"tableName":"item",
  "deviceSyncFields":["uuid","title","qty","code"],
  "fields":[{"columnName":"uuid","type":"Text","primaryKey":true,"notNull":true},
            {"columnName":"title","type":"Text"},
            {"columnName":"qty","type":"Integer"},
            {"columnName":"code","type":"Text"}]}]}]}"#;

/// A clock showing `ms`.
pub fn clock_at(ms: u64) -> Arc<ManualClock> {
    Arc::new(ManualClock::new(ms))
}

/// Opens (creating) `root/<device>/notes.db` as device `device` on `clock`.
pub fn open_store(root: &Path, device: &str, clock: &Arc<ManualClock>) -> RdbStore {
    let dir = root.join(device);
    std::fs::create_dir_all(&dir).unwrap();
    RdbStore::open(
        StoreConfig::new(dir.join(STORE_FILE))
            .device_id(device)
            .clock(clock.clone()),
    )
    .unwrap()
}

/// A device whose `note` table is distributed in device-collaboration mode.
pub fn note_device(root: &Path, device: &str, clock: &Arc<ManualClock>) -> RdbStore {
    let store = open_store(root, device, clock);
    store.execute(CREATE_NOTE, &[]).unwrap();
    store
        .set_distributed_tables(
            &["note"],
            DistributedType::Device,
            &DistributedConfig::default(),
        )
        .unwrap();
    store
}

/// The single-version configuration of `item`.
pub fn item_config() -> DistributedConfig {
    DistributedConfig::single_version(SyncSchema::parse(ITEM_SCHEMA).unwrap())
}

/// A device whose `item` table is distributed in single-version mode.
pub fn item_device(root: &Path, device: &str, clock: &Arc<ManualClock>) -> RdbStore {
    let store = open_store(root, device, clock);
    store.execute(CREATE_ITEM, &[]).unwrap();
    store
        .set_distributed_tables(&["item"], DistributedType::Device, &item_config())
        .unwrap();
    store
}

/// Every row of a query as plain values.
pub fn rows(store: &RdbStore, sql: &str) -> Vec<Vec<Value>> {
    peerlite_testkit::all_rows(store, sql, &[]).unwrap()
}

/// `SELECT count(*)` of a table.
pub fn count(store: &RdbStore, table: &str) -> i64 {
    peerlite_testkit::count_rows(store, table).unwrap()
}

/// `(id, text, n)` of every row of a note table (the local one or a device table), by id.
pub fn notes(store: &RdbStore, table: &str) -> Vec<Vec<Value>> {
    rows(
        store,
        &format!(
            "SELECT id, text, n FROM {} ORDER BY id",
            peerlite_testkit::quote(table)
        ),
    )
}

/// The device table holding `device`'s notes on `store`.
pub fn device_table(store: &RdbStore, device: &str) -> String {
    store.obtain_distributed_table_name(device, "note").unwrap()
}

/// True when `table` exists in `store`.
pub fn table_exists(store: &RdbStore, table: &str) -> bool {
    let found = rows(
        store,
        &format!(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = '{}'",
            table.replace('\'', "''")
        ),
    );
    found[0][0] == Value::Integer(1)
}

/// One `item` row as everyone sees it (the local id is not part of it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Item {
    pub uuid: String,
    pub title: Option<String>,
    pub qty: Option<i64>,
    pub code: Option<String>,
}

/// An item from plain values.
pub fn item(uuid: &str, title: Option<&str>, qty: Option<i64>, code: Option<&str>) -> Item {
    Item {
        uuid: uuid.to_owned(),
        title: title.map(str::to_owned),
        qty,
        code: code.map(str::to_owned),
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::Text(s) => Some(s.clone()),
        other => panic!("expected text, got {other:?}"),
    }
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Null => None,
        Value::Integer(i) => Some(*i),
        other => panic!("expected an integer, got {other:?}"),
    }
}

/// The full contents of `item` (synced columns), sorted by uuid.
pub fn items(store: &RdbStore) -> Vec<Item> {
    let mut out: Vec<Item> = rows(store, "SELECT uuid, title, qty, code FROM item")
        .iter()
        .map(|r| Item {
            uuid: text(&r[0]).unwrap(),
            title: text(&r[1]),
            qty: int(&r[2]),
            code: text(&r[3]),
        })
        .collect();
    out.sort();
    out
}

/// Inserts an item.
pub fn add_item(store: &RdbStore, uuid: &str, title: &str, qty: i64) {
    store
        .insert(
            "item",
            &peerlite::bucket! { "uuid" => uuid, "title" => title, "qty" => qty },
        )
        .unwrap();
}

/// The predicates selecting one item.
pub fn by_uuid(uuid: &str) -> RdbPredicates {
    RdbPredicates::new("item").equal_to("uuid", uuid)
}

/// Inserts item `uuid` with code `code` (a UNIQUE column: two devices giving one code to
/// different items clash).
pub fn add_coded(store: &RdbStore, uuid: &str, code: &str) {
    store
        .insert(
            "item",
            &bucket! { "uuid" => uuid, "title" => format!("{uuid} title"), "qty" => 1, "code" => code },
        )
        .unwrap();
}

/// Sets the title of item `uuid`, which must exist.
pub fn set_title(store: &RdbStore, uuid: &str, title: &str) {
    set_item_text(store, uuid, "title", title);
}

/// Sets the code of item `uuid`, which must exist.
pub fn set_code(store: &RdbStore, uuid: &str, code: &str) {
    set_item_text(store, uuid, "code", code);
}

fn set_item_text(store: &RdbStore, uuid: &str, column: &'static str, value: &str) {
    assert_eq!(
        store
            .update(&bucket! { column => value }, &by_uuid(uuid))
            .unwrap(),
        1
    );
}

/// A push-pull session started by each side in turn.
pub fn both_ways(a: &RdbStore, b: &RdbStore) {
    sync(a, b, SyncMode::PushPull);
    sync(b, a, SyncMode::PushPull);
}

/// One lossless session, which must succeed on both sides.
pub fn sync(a: &RdbStore, b: &RdbStore, mode: SyncMode) -> (DeviceResult, DeviceResult) {
    let (x, y) = sync_in_memory(a, b, mode, None).unwrap();
    assert_eq!(x.status, 0, "initiator: {x:?}");
    assert_eq!(y.status, 0, "responder: {y:?}");
    (x, y)
}

/// The error code of a failed call.
pub fn code<T: std::fmt::Debug>(r: peerlite::Result<T>) -> u32 {
    r.expect_err("the call should fail").code()
}

/// The batches of a message list.
pub fn is_batch(msg: &SyncMessage) -> bool {
    matches!(
        msg,
        SyncMessage::V1(MessageV1::Batch(_) | MessageV1::Packed(_) | MessageV1::Compact(_))
    )
}

/// Which way a message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    ToResponder,
    ToInitiator,
}

/// What a pumped session did.
#[derive(Debug)]
pub struct Pumped {
    pub initiator: DeviceResult,
    pub responder: DeviceResult,
    /// How often both sides had to retransmit after a silence.
    pub silences: usize,
    /// Every message handed to `deliver`, in order.
    pub seen: Vec<(Dir, SyncMessage)>,
}

/// The peer a store is to another store in one process: its device id, at the level that
/// matches its data's label (as `sync_in_memory` sees it).
pub fn peer_of(store: &RdbStore) -> Peer {
    Peer::new(
        store.device_id(),
        DeviceLevel::matching(store.config().level()),
    )
}

/// Runs a session between `initiator` and `responder` through a channel the test controls:
/// every message passes through `deliver`, which returns what actually arrives (nothing to
/// lose it, two copies to duplicate it, older ones it kept back to reorder). When nothing is
/// in flight and the session is not over, both dispatchers retransmit. Messages travel
/// encoded; batches uncompressed and classic, so tests can look into them.
pub fn pump(
    initiator: &RdbStore,
    responder: &RdbStore,
    mode: SyncMode,
    predicates: Option<&RdbPredicates>,
    batch_rows: usize,
    mut deliver: impl FnMut(Dir, &SyncMessage) -> Vec<SyncMessage>,
) -> Pumped {
    let dispatcher = || {
        Dispatcher::new()
            .batch_rows(batch_rows)
            .compression(false)
            .compact_rows(false)
            .max_silences(1000)
    };
    let (mut a, mut b) = (dispatcher(), dispatcher());
    let (as_a, as_b) = (peer_of(initiator), peer_of(responder));
    let hello = a.start(initiator, &as_b, mode, predicates).unwrap();
    let mut queue: VecDeque<(Dir, SyncMessage)> = VecDeque::from([(Dir::ToResponder, hello)]);
    let mut silences = 0;
    let mut seen = Vec::new();
    let (mut mine, mut theirs) = (None, None);
    loop {
        mine = mine.or_else(|| a.take_finished().pop());
        theirs = theirs.or_else(|| b.take_finished().pop());
        if mine.is_some() && theirs.is_some() {
            break;
        }
        let Some((dir, msg)) = queue.pop_front() else {
            silences += 1;
            assert!(silences < 100, "the session does not finish");
            queue.extend(
                a.silence(|_, _| true)
                    .into_iter()
                    .map(|(_, m)| (Dir::ToResponder, m)),
            );
            queue.extend(
                b.silence(|_, _| true)
                    .into_iter()
                    .map(|(_, m)| (Dir::ToInitiator, m)),
            );
            continue;
        };
        seen.push((dir, msg.clone()));
        assert!(
            seen.len() < 20_000,
            "the session never ends: {} messages",
            seen.len()
        );
        for m in deliver(dir, &msg) {
            let m = SyncMessage::decode(&m.encode().unwrap()).unwrap();
            match dir {
                Dir::ToResponder => queue.extend(
                    b.deliver(&as_a, &m, |_| Some(responder.into()))
                        .into_iter()
                        .map(|m| (Dir::ToInitiator, m)),
                ),
                Dir::ToInitiator => queue.extend(
                    a.deliver(&as_b, &m, |_| None)
                        .into_iter()
                        .map(|m| (Dir::ToResponder, m)),
                ),
            }
        }
    }
    let result = |f: Option<peerlite::sync::Finished>| f.map(|f| f.result).unwrap_or_default();
    Pumped {
        initiator: result(mine),
        responder: result(theirs),
        silences,
        seen,
    }
}

/// Delivers every message once, in order.
pub fn lossless(_: Dir, msg: &SyncMessage) -> Vec<SyncMessage> {
    vec![msg.clone()]
}

/// The name of a message's kind.
pub fn kind(msg: &SyncMessage) -> &'static str {
    let SyncMessage::V1(m) = msg;
    match m {
        MessageV1::Hello(_) => "Hello",
        MessageV1::Welcome(_) => "Welcome",
        MessageV1::Batch(_) | MessageV1::Packed(_) | MessageV1::Compact(_) => "Batch",
        MessageV1::Ack(_) => "Ack",
        MessageV1::Finish(_) => "Finish",
        MessageV1::Done(_) => "Done",
        MessageV1::Abort(_) => "Abort",
        MessageV1::Query(_) => "Query",
        MessageV1::QueryReply(_) => "QueryReply",
        MessageV1::Notice(_) => "Notice",
    }
}

/// Inserts notes `<prefix>1..=n` with n = 1..=n.
pub fn add_notes(store: &RdbStore, prefix: &str, n: i64) {
    for i in 1..=n {
        store
            .insert(
                "note",
                &bucket! { "text" => format!("{prefix}{i}"), "n" => i },
            )
            .unwrap();
    }
}

/// The rows `add_notes(prefix, n)` makes, as `notes` returns them.
pub fn expected_notes(prefix: &str, n: i64) -> Vec<Vec<Value>> {
    (1..=n)
        .map(|i| values![i, format!("{prefix}{i}"), i].to_vec())
        .collect()
}

/// A phone with `p` notes, laptop with `l` notes.
pub fn two(root: &std::path::Path, p: i64, l: i64) -> (RdbStore, RdbStore) {
    let clock = clock_at(T0);
    let phone = note_device(root, "phone", &clock);
    let laptop = note_device(root, "laptop", &clock);
    add_notes(&phone, "p", p);
    add_notes(&laptop, "l", l);
    (phone, laptop)
}

/// The notes `store` holds from `device` (none when its device table does not exist yet).
pub fn has_from(store: &RdbStore, device: &str) -> Vec<Vec<Value>> {
    let table = device_table(store, device);
    if table_exists(store, &table) {
        notes(store, &table)
    } else {
        Vec::new()
    }
}

/// Opens a session from `store` with `peer` (trusted with all data), batches uncompressed.
pub fn start(
    store: &RdbStore,
    peer: &str,
    mode: SyncMode,
    predicates: Option<&RdbPredicates>,
) -> (Session, SyncMessage) {
    try_start(store, peer, mode, predicates).unwrap()
}

/// `start`, when the test expects it may fail.
pub fn try_start(
    store: &RdbStore,
    peer: &str,
    mode: SyncMode,
    predicates: Option<&RdbPredicates>,
) -> peerlite::Result<(Session, SyncMessage)> {
    Session::start_with_features(
        store,
        &Peer::new(peer, DeviceLevel::Sl4),
        mode,
        predicates,
        &[],
    )
}

/// Answers `hello` at `store`, as if the channel had proven the device the Hello names.
pub fn accept(store: &RdbStore, hello: &SyncMessage) -> (Session, Vec<SyncMessage>) {
    let device = match hello {
        SyncMessage::V1(MessageV1::Hello(h)) => h.device.clone(),
        _ => "unknown".to_owned(),
    };
    Session::accept_with_features(store, &Peer::new(device, DeviceLevel::Sl4), hello, &[])
}

/// The code of the `Abort` among `messages` (panics when there is none).
pub fn abort_code(messages: &[SyncMessage]) -> u32 {
    messages
        .iter()
        .find_map(|m| match m {
            SyncMessage::V1(MessageV1::Abort(a)) => Some(a.code),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no Abort among {messages:?}"))
}
