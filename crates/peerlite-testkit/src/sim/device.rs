//! One simulated device: its own clock and two stores — `items.db` with a single-version
//! table (`item`, merged by its `uuid`, with a second UNIQUE column `code` on which rows of
//! different devices can clash) and `notes.db` with a device-collaboration table (`note`,
//! each device's rows kept apart) — and the random writes it makes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use peerlite::changes::{DistributedConfig, DistributedType, ManualClock};
use peerlite::schema::SyncSchema;
use peerlite::{RdbStore, Result, StoreConfig, Value};

use super::model::{Event, EventKind};
use super::rng::Rng;
use crate::all_rows;

/// Which of a device's two stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `items.db`: single-version.
    SingleVersion,
    /// `notes.db`: device collaboration.
    Collaboration,
}

const ITEM_DDL: &str = "CREATE TABLE IF NOT EXISTS item(id INTEGER PRIMARY KEY AUTOINCREMENT, uuid TEXT NOT NULL UNIQUE, title TEXT, qty INTEGER, code TEXT UNIQUE)";
const NOTE_DDL: &str =
    "CREATE TABLE IF NOT EXISTS note(id INTEGER PRIMARY KEY, body TEXT, n INTEGER)";
const ITEM_SCHEMA: &str = r#"{"dbSchema": [{"version": 1, "bundleName": "peerlite.sim", "dbName": "items",
  "tables": [{"tableName": "item", "deviceSyncFields": ["uuid", "title", "qty", "code"], "fields": [
    {"columnName": "uuid", "type": "Text", "primaryKey": true, "notNull": true},
    {"columnName": "title", "type": "Text"},
    {"columnName": "qty", "type": "Integer"},
    {"columnName": "code", "type": "Text"}]}]}]}"#;

/// The synced columns of `item` besides its conflict column.
pub const ITEM_COLUMNS: [&str; 3] = ["title", "qty", "code"];

/// A device of the simulation.
#[derive(Debug)]
pub struct Device {
    /// Its id.
    pub id: String,
    /// The clock its stores read (each device's runs a little off the others').
    pub clock: Arc<ManualClock>,
    /// The single-version store.
    pub items: RdbStore,
    /// The device-collaboration store.
    pub notes: RdbStore,
    /// The folder of its stores.
    pub(super) home: PathBuf,
    writes: u64,
}

impl Device {
    /// Creates device `index` under `dir`, its clock at `now_ms`.
    pub fn create(dir: &Path, index: usize, now_ms: u64) -> Result<Device> {
        let id = format!("device-{index}");
        let clock = Arc::new(ManualClock::new(now_ms));
        let home = dir.join(&id);
        std::fs::create_dir_all(&home).map_err(|source| peerlite::Error::Io {
            op: "creating a device directory",
            path: home.clone(),
            source,
        })?;
        let (items, notes) = Device::make_stores(&home, &id, &clock)?;
        Ok(Device {
            id,
            clock,
            items,
            notes,
            home,
            writes: 0,
        })
    }

    /// Opens the device's two stores, making them (and their distributed tables) when new.
    pub(super) fn make_stores(
        home: &Path,
        id: &str,
        clock: &Arc<ManualClock>,
    ) -> Result<(RdbStore, RdbStore)> {
        let items = Device::open_store(home, id, clock, "items.db")?;
        items.execute(ITEM_DDL, &[])?;
        items.set_distributed_tables(
            &["item"],
            DistributedType::Device,
            &DistributedConfig::single_version(SyncSchema::parse(ITEM_SCHEMA)?),
        )?;
        let notes = Device::open_store(home, id, clock, "notes.db")?;
        notes.execute(NOTE_DDL, &[])?;
        notes.set_distributed_tables(
            &["note"],
            DistributedType::Device,
            &DistributedConfig::default(),
        )?;
        Ok((items, notes))
    }

    /// Opens one of the device's stores as it is.
    pub(super) fn open_store(
        home: &Path,
        id: &str,
        clock: &Arc<ManualClock>,
        file: &str,
    ) -> Result<RdbStore> {
        RdbStore::open(
            StoreConfig::new(home.join(file))
                .device_id(id)
                .clock(clock.clone())
                .durability(peerlite::Durability::Normal),
        )
    }

    /// The store of `kind`.
    pub fn store(&self, kind: Kind) -> &RdbStore {
        match kind {
            Kind::SingleVersion => &self.items,
            Kind::Collaboration => &self.notes,
        }
    }

    /// A value no write has used before (so every update really changes its column).
    pub(super) fn fresh(&mut self, prefix: &str) -> String {
        self.writes += 1;
        format!("{prefix}-{}-{}", self.id, self.writes)
    }

    /// One random write to `item`; returns the events it made (for the model).
    pub fn write_item(&mut self, rng: &mut Rng, key_space: usize) -> Result<Vec<Event>> {
        let keys: Vec<String> = all_rows(&self.items, "SELECT uuid FROM item ORDER BY uuid", &[])?
            .into_iter()
            .filter_map(|r| match r.into_iter().next() {
                Some(Value::Text(t)) => Some(t),
                _ => None,
            })
            .collect();
        let roll = rng.below(100);
        if roll < 45 || keys.is_empty() {
            let key = format!("u{}", rng.below(key_space.max(1)));
            if !keys.contains(&key) {
                let title = self.fresh("t");
                let qty = self.writes as i64;
                self.items.execute(
                    "INSERT INTO item(uuid, title, qty) VALUES (?1, ?2, ?3)",
                    &[key.clone().into(), title.clone().into(), qty.into()],
                )?;
                let values = BTreeMap::from([
                    ("title".to_owned(), Value::from(title)),
                    ("qty".to_owned(), Value::from(qty)),
                ]);
                return self.stamped(&key, EventKind::Insert(values));
            }
            return self.update_item(rng, &key);
        }
        let Some(key) = rng.pick(&keys).cloned() else {
            return Ok(Vec::new());
        };
        match roll {
            ..80 => self.update_item(rng, &key),
            // REPLACE forms: SQLite removes the rows in the way, and each removal is a delete
            // event for the model (a row of the same key is re-inserted, not deleted).
            80..85 => self.replace_item(&key, None),
            85..88 => {
                let new_key = format!("u{}", rng.below(key_space.max(1)));
                self.replace_item(&new_key, Some(&key))
            }
            88..90 => match rng.pick(&keys).cloned() {
                Some(victim) if victim != key => {
                    // `key` takes the victim's local id: the victim's row is removed.
                    self.items.execute(
                        "UPDATE OR REPLACE item SET id = (SELECT id FROM item WHERE uuid = ?1) WHERE uuid = ?2",
                        &[victim.clone().into(), key.into()],
                    )?;
                    self.stamped(&victim, EventKind::Delete)
                }
                _ => self.update_item(rng, &key),
            },
            _ => {
                self.items
                    .execute("DELETE FROM item WHERE uuid = ?1", &[key.clone().into()])?;
                self.stamped(&key, EventKind::Delete)
            }
        }
    }

    /// `INSERT OR REPLACE` of row `key`: on its own key (a re-insert when it exists), or, with
    /// `over`, into the local id of row `over`, which it removes (a secondary UNIQUE).
    fn replace_item(&mut self, key: &str, over: Option<&str>) -> Result<Vec<Event>> {
        let title = self.fresh("t");
        let qty = self.writes as i64;
        let mut params: Vec<Value> = vec![key.into(), title.clone().into(), qty.into()];
        let sql = match over {
            None => "INSERT OR REPLACE INTO item(uuid, title, qty) VALUES (?1, ?2, ?3)",
            Some(victim) => {
                params.push(victim.into());
                "INSERT OR REPLACE INTO item(id, uuid, title, qty) VALUES ((SELECT id FROM item WHERE uuid = ?4), ?1, ?2, ?3)"
            }
        };
        self.items.execute(sql, &params)?;
        let mut events = Vec::new();
        if let Some(victim) = over.filter(|v| *v != key) {
            events.extend(self.stamped(victim, EventKind::Delete)?);
        }
        let values = BTreeMap::from([
            ("title".to_owned(), Value::from(title)),
            ("qty".to_owned(), Value::from(qty)),
        ]);
        events.extend(self.stamped(key, EventKind::Insert(values))?);
        Ok(events)
    }

    fn update_item(&mut self, rng: &mut Rng, key: &str) -> Result<Vec<Event>> {
        let which = rng.below(3);
        let mut sets = Vec::new();
        if which != 1 {
            sets.push(("title", Value::from(self.fresh("t"))));
        }
        if which != 0 {
            self.writes += 1;
            sets.push(("qty", Value::from(self.writes as i64)));
        }
        let sql = format!(
            "UPDATE item SET {} WHERE uuid = ?{}",
            sets.iter()
                .enumerate()
                .map(|(i, (c, _))| format!("{c} = ?{}", i + 1))
                .collect::<Vec<_>>()
                .join(", "),
            sets.len() + 1
        );
        let mut params: Vec<Value> = sets.iter().map(|(_, v)| v.clone()).collect();
        params.push(key.into());
        self.items.execute(&sql, &params)?;
        let mut events = Vec::new();
        for (column, value) in sets {
            events.extend(self.stamped(key, EventKind::Update(column.to_owned(), value))?);
        }
        Ok(events)
    }

    /// The event a write just made, with the timestamp peerlite gave it.
    pub(super) fn stamped(&self, key: &str, kind: EventKind) -> Result<Vec<Event>> {
        let Some(record) = self.items.change_of("item", &Value::from(key))? else {
            return Ok(Vec::new());
        };
        let hlc = match &kind {
            EventKind::Update(column, _) => {
                match record
                    .columns
                    .iter()
                    .find(|(c, _, d)| c == column && *d == self.id)
                {
                    Some((_, hlc, _)) => *hlc,
                    None => return Ok(Vec::new()),
                }
            }
            _ => record.hlc,
        };
        Ok(vec![Event {
            key: key.to_owned(),
            hlc,
            device: self.id.clone(),
            kind,
        }])
    }

    /// One random write to this device's own notes.
    pub fn write_note(&mut self, rng: &mut Rng) -> Result<()> {
        let ids: Vec<i64> = crate::query_column(&self.notes, "SELECT id FROM note", &[])?;
        let roll = rng.below(100);
        let body = self.fresh("b");
        if roll < 45 || ids.is_empty() {
            self.notes.execute(
                "INSERT INTO note(body, n) VALUES (?1, ?2)",
                &[body.into(), (self.writes as i64).into()],
            )?;
            return Ok(());
        }
        let Some(id) = rng.pick(&ids).copied() else {
            return Ok(());
        };
        match roll {
            45..=74 => {
                self.notes.execute(
                    "UPDATE note SET body = ?1 WHERE id = ?2",
                    &[body.into(), id.into()],
                )?;
            }
            75..=79 => {
                // REPLACE of an existing key: removed and written again, a re-insert.
                self.notes.execute(
                    "INSERT OR REPLACE INTO note(id, body, n) VALUES (?1, ?2, ?3)",
                    &[id.into(), body.into(), (self.writes as i64).into()],
                )?;
            }
            80..=84 => {
                // A key change: the old key is deleted and the new one inserted everywhere.
                self.notes.execute(
                    "UPDATE note SET id = (SELECT max(id) + 1 FROM note) WHERE id = ?1",
                    &[id.into()],
                )?;
            }
            _ => {
                self.notes
                    .execute("DELETE FROM note WHERE id = ?1", &[id.into()])?;
            }
        }
        Ok(())
    }

    /// `item` as every device must end up holding it: uuid → column → value.
    pub fn items(&self) -> Result<BTreeMap<String, BTreeMap<String, Value>>> {
        let rows = all_rows(
            &self.items,
            &format!("SELECT uuid, {} FROM item", ITEM_COLUMNS.join(", ")),
            &[],
        )?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let mut r = r.into_iter();
                let Some(Value::Text(key)) = r.next() else {
                    return None;
                };
                let row = ITEM_COLUMNS
                    .iter()
                    .map(|c| ((*c).to_owned(), r.next().unwrap_or(Value::Null)))
                    .collect();
                Some((key, row))
            })
            .collect())
    }

    /// Every note this device holds, by the device that wrote it: device → sorted rows.
    pub fn notes(&self, devices: &[String]) -> Result<BTreeMap<String, Vec<Vec<Value>>>> {
        let mut out = BTreeMap::new();
        for device in devices {
            let table = if *device == self.id {
                "note".to_owned()
            } else {
                self.notes.obtain_distributed_table_name(device, "note")?
            };
            let exists: i64 = crate::scalar(
                &self.notes,
                &format!(
                    "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = '{table}'"
                ),
            )?;
            let rows = if exists == 1 {
                all_rows(
                    &self.notes,
                    &format!(
                        "SELECT id, body, n FROM {} ORDER BY id",
                        crate::quote(&table)
                    ),
                    &[],
                )?
            } else {
                Vec::new()
            };
            out.insert(device.clone(), rows);
        }
        Ok(out)
    }
}
