//! What a single-version table must hold once every device has every change: the reference
//! the simulation checks the merged table against, written from the rules alone.
//!
//! Each local write is an event stamped with the timestamp peerlite gave it. For one key, the
//! row exists when its newest insert-or-delete event (by timestamp, then device id) is an
//! insert; each column then holds the value of the newest event that wrote it — an insert
//! writes every column (NULL where it names none), an update only its own. So an acknowledged
//! write is missing from the end state only when a later write overwrote it by these rules —
//! or when the last place that held it was lost (a database re-created or restored before the
//! write reached anyone else, a conflict record discarded): the simulation takes exactly
//! those out with [`Model::retain`] at the moment they are lost, and records them again if a
//! restored backup brings them back. Deletes that resolving a conflict makes are writes like
//! any other.

use std::collections::BTreeMap;

use peerlite::Value;

/// What a local write did.
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// Inserted the row with these column values.
    Insert(BTreeMap<String, Value>),
    /// Set one column.
    Update(String, Value),
    /// Deleted the row.
    Delete,
}

/// One write, as peerlite stamped it.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The row's conflict-column value.
    pub key: String,
    /// Its hybrid-logical-clock timestamp.
    pub hlc: u64,
    /// The device that made it.
    pub device: String,
    /// What it did.
    pub kind: EventKind,
}

impl Event {
    fn order(&self) -> (u64, &str) {
        (self.hlc, self.device.as_str())
    }
}

/// Every write of the run.
#[derive(Debug, Default, Clone)]
pub struct Model {
    events: Vec<Event>,
}

impl Model {
    /// Records a write.
    pub fn record(&mut self, event: Event) {
        self.events.push(event);
    }

    /// Writes recorded.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// True before the first write.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Keeps only the writes `keep` accepts; returns the others.
    pub fn retain(&mut self, mut keep: impl FnMut(&Event) -> bool) -> Vec<Event> {
        let (kept, gone) = std::mem::take(&mut self.events)
            .into_iter()
            .partition(|e| keep(e));
        self.events = kept;
        gone
    }

    /// The rows the table must hold: key → column → value, for `columns`.
    pub fn expected(&self, columns: &[&str]) -> BTreeMap<String, BTreeMap<String, Value>> {
        let mut by_key: BTreeMap<&str, Vec<&Event>> = BTreeMap::new();
        for e in &self.events {
            by_key.entry(e.key.as_str()).or_default().push(e);
        }
        let mut rows = BTreeMap::new();
        for (key, events) in by_key {
            let existence = events
                .iter()
                .filter(|e| !matches!(e.kind, EventKind::Update(..)))
                .max_by(|a, b| a.order().cmp(&b.order()));
            if !matches!(existence.map(|e| &e.kind), Some(EventKind::Insert(_))) {
                continue;
            }
            let mut row = BTreeMap::new();
            for column in columns {
                let newest = events
                    .iter()
                    .filter_map(|e| {
                        let value = match &e.kind {
                            EventKind::Insert(values) => {
                                values.get(*column).unwrap_or(&Value::Null)
                            }
                            EventKind::Update(c, v) if c == column => v,
                            _ => return None,
                        };
                        Some((e.order(), value))
                    })
                    .max_by(|a, b| a.0.cmp(&b.0));
                row.insert(
                    (*column).to_owned(),
                    newest.map_or(Value::Null, |(_, v)| v.clone()),
                );
            }
            rows.insert(key.to_owned(), row);
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insert(key: &str, hlc: u64, device: &str, title: &str) -> Event {
        Event {
            key: key.into(),
            hlc,
            device: device.into(),
            kind: EventKind::Insert(BTreeMap::from([("title".to_owned(), Value::from(title))])),
        }
    }

    fn update(key: &str, hlc: u64, device: &str, title: &str) -> Event {
        Event {
            key: key.into(),
            hlc,
            device: device.into(),
            kind: EventKind::Update("title".into(), Value::from(title)),
        }
    }

    fn delete(key: &str, hlc: u64, device: &str) -> Event {
        Event {
            key: key.into(),
            hlc,
            device: device.into(),
            kind: EventKind::Delete,
        }
    }

    fn title(m: &Model, key: &str) -> Option<Value> {
        m.expected(&["title"]).get(key).map(|r| r["title"].clone())
    }

    #[test]
    fn newest_write_of_a_column_wins_and_ties_go_to_the_greater_device() {
        let mut m = Model::default();
        m.record(insert("k", 1, "a", "first"));
        m.record(update("k", 5, "a", "from a"));
        m.record(update("k", 5, "b", "from b"));
        m.record(update("k", 3, "c", "old"));
        assert_eq!(title(&m, "k"), Some(Value::from("from b")));
    }

    #[test]
    fn delete_beats_concurrent_updates_and_a_newer_insert_revives() {
        let mut m = Model::default();
        m.record(insert("k", 1, "a", "x"));
        m.record(delete("k", 4, "b"));
        m.record(update("k", 6, "a", "after the delete"));
        assert_eq!(title(&m, "k"), None);
        m.record(insert("k", 5, "c", "revived"));
        // The insert at 5 revives the row; the update at 6 is newer than it, so it shows.
        assert_eq!(title(&m, "k"), Some(Value::from("after the delete")));
        m.record(insert("k", 7, "c", "again"));
        assert_eq!(title(&m, "k"), Some(Value::from("again")));
    }
}
