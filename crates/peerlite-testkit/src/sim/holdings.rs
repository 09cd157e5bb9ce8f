//! Which writes are still held somewhere: the register clocks of every device's `item` table
//! and of every conflict record (a remote row not applied, which a resolution may still
//! apply). A write is held by a place whose registers are all at least as new as the write's
//! — it got there, or something newer overwrote it there, which the model then has too.
//! Comparing what is held before and after a database is lost (re-created, restored) or a
//! conflict record discarded tells exactly which writes that loss took with it.

use std::collections::HashMap;

use peerlite::changes::ChangeRecord;
use peerlite::{RdbStore, Result, Value};

use super::device::{Device, ITEM_COLUMNS};
use super::model::{Event, EventKind};

/// A register: (timestamp, device id), ordered as the merge orders them.
type Reg = (u64, String);

/// One row's clock in one place.
#[derive(Debug)]
struct RowClock {
    existence: Reg,
    columns: HashMap<String, Reg>,
}

impl RowClock {
    fn from_record(record: &ChangeRecord) -> RowClock {
        RowClock {
            existence: (record.hlc, record.origin.clone()),
            columns: record
                .columns
                .iter()
                .map(|(c, hlc, device)| (c.clone(), (*hlc, device.clone())))
                .collect(),
        }
    }

    /// A column's register: its own, or the existence event's (which wrote it, or, for a
    /// deleted row, supersedes it).
    fn column(&self, name: &str) -> &Reg {
        self.columns.get(name).unwrap_or(&self.existence)
    }

    fn holds(&self, e: &Event) -> bool {
        let at = |r: &Reg| (r.0, r.1.as_str()) >= (e.hlc, e.device.as_str());
        match &e.kind {
            EventKind::Insert(_) => {
                at(&self.existence) && ITEM_COLUMNS.iter().all(|c| at(self.column(c)))
            }
            EventKind::Update(c, _) => at(self.column(c)),
            EventKind::Delete => at(&self.existence),
        }
    }
}

/// Every place's row clocks, by key.
#[derive(Debug, Default)]
pub(super) struct Holdings {
    places: Vec<HashMap<String, RowClock>>,
}

fn text(key: &Value) -> Option<String> {
    match key {
        Value::Text(t) => Some(t.clone()),
        _ => None,
    }
}

impl Holdings {
    /// What the devices hold now: each device's table, and each conflict record on its own.
    pub fn of(devices: &[Device]) -> Result<Holdings> {
        let mut holdings = Holdings::default();
        for d in devices {
            holdings.add(&d.items)?;
        }
        Ok(holdings)
    }

    fn add(&mut self, store: &RdbStore) -> Result<()> {
        let rows = store
            .changes(Some("item"), 0)?
            .iter()
            .filter_map(|r| Some((text(&r.key)?, RowClock::from_record(r))))
            .collect();
        self.places.push(rows);
        for c in store.conflicts()? {
            if let Some(key) = text(&c.key) {
                self.places
                    .push(HashMap::from([(key, RowClock::from_record(&c.change))]));
            }
        }
        Ok(())
    }

    /// True when some place holds `e` (or something newer in each register it wrote).
    pub fn holds(&self, e: &Event) -> bool {
        self.places
            .iter()
            .any(|p| p.get(&e.key).is_some_and(|r| r.holds(e)))
    }
}
