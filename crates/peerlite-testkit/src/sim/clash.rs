//! Rows that clash on `item.code`, a UNIQUE column besides the conflict column: the writes
//! that make clashes, the fix a user makes (another code), and resolving the recorded
//! conflicts — checked against the principle that resolving never deletes a row that breaks
//! no constraint. Deletes that a resolution makes become writes in the model.

use std::collections::BTreeMap;

use peerlite::sync::{Conflict, Resolution};
use peerlite::{Result, Value};

use super::device::Device;
use super::model::{Event, EventKind};
use super::rng::Rng;
use crate::all_rows;

/// Codes rows are given: few, so that rows of different devices clash.
const CODES: usize = 4;

/// What resolving did.
#[derive(Debug, Default)]
pub(super) struct Settled {
    /// The deletes the resolutions made.
    pub events: Vec<Event>,
    /// Records resolved.
    pub resolved: u64,
    /// Every way a resolution broke the rules.
    pub violations: Vec<String>,
}

impl Settled {
    pub fn add(&mut self, other: Settled) {
        self.events.extend(other.events);
        self.resolved += other.resolved;
        self.violations.extend(other.violations);
    }
}

fn is_constraint(e: &peerlite::Error) -> bool {
    e.sqlite_code().map(|c| c & 0xff) == Some(19)
}

/// A remote row's recorded code.
fn recorded_code(c: &Conflict) -> Option<Value> {
    c.values
        .iter()
        .find(|(col, _)| col == "code")
        .map(|(_, v)| v.clone())
        .filter(|v| !matches!(v, Value::Null))
}

/// Whether a record's remote row, as recorded, still needs a code another row here holds.
pub(super) fn still_clashes(c: &Conflict, codes: &BTreeMap<String, Value>) -> bool {
    let Some(code) = recorded_code(c) else {
        return false;
    };
    codes
        .iter()
        .any(|(k, v)| *v == code && c.key != Value::Text(k.clone()))
}

impl Device {
    /// Every row's code here: uuid → code.
    pub(super) fn item_codes(&self) -> Result<BTreeMap<String, Value>> {
        Ok(all_rows(&self.items, "SELECT uuid, code FROM item", &[])?
            .into_iter()
            .filter_map(|r| {
                let mut r = r.into_iter();
                match (r.next(), r.next()) {
                    (Some(Value::Text(k)), Some(code)) => Some((k, code)),
                    _ => None,
                }
            })
            .collect())
    }

    /// Gives a random row a code from a small set (or none). A code another row here holds is
    /// refused by the UNIQUE constraint, and then nothing is written.
    pub(super) fn write_code(&mut self, rng: &mut Rng) -> Result<Vec<Event>> {
        let keys: Vec<String> = self.item_codes()?.into_keys().collect();
        let Some(key) = rng.pick(&keys).cloned() else {
            return Ok(Vec::new());
        };
        let code = if rng.chance(0.2) {
            Value::Null
        } else {
            Value::from(format!("c{}", rng.below(CODES)))
        };
        self.set_code(&key, code)
    }

    fn set_code(&mut self, key: &str, code: Value) -> Result<Vec<Event>> {
        if self.item_codes()?.get(key) == Some(&code) {
            return Ok(Vec::new()); // not a write: no column changes, nothing is stamped
        }
        match self.items.execute(
            "UPDATE item SET code = ?1 WHERE uuid = ?2",
            &[code.clone(), key.into()],
        ) {
            Ok(_) => self.stamped(key, EventKind::Update("code".into(), code)),
            Err(e) if is_constraint(&e) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Fixes the clash of one recorded conflict, on this side or on the remote row's device
    /// (`there`): the row in the way here, or the remote row there, gets a code of its own.
    /// Returns the write.
    pub(super) fn fix_clash(
        &mut self,
        there: &mut Device,
        conflict: &Conflict,
        here_fixes: bool,
    ) -> Result<Vec<Event>> {
        let Some(code) = recorded_code(conflict) else {
            return Ok(Vec::new());
        };
        let Value::Text(remote_key) = &conflict.key else {
            return Ok(Vec::new());
        };
        if here_fixes {
            let blocker = self
                .item_codes()?
                .into_iter()
                .find(|(k, c)| *c == code && k != remote_key)
                .map(|(k, _)| k);
            let Some(blocker) = blocker else {
                return Ok(Vec::new());
            };
            let fresh = Value::from(self.fresh("fix"));
            self.set_code(&blocker, fresh)
        } else {
            if !there.item_codes()?.contains_key(remote_key) {
                return Ok(Vec::new());
            }
            let fresh = Value::from(there.fresh("fix"));
            there.set_code(remote_key, fresh)
        }
    }

    /// Resolves the conflict records `choose` gives a resolution for, checking each: a row a
    /// resolution deletes must have held the code the resolved remote row holds afterwards.
    pub(super) fn resolve(
        &self,
        mut choose: impl FnMut(&Conflict) -> Option<Resolution>,
    ) -> Result<Settled> {
        let mut settled = Settled::default();
        for conflict in self.items.conflicts()? {
            let Some(resolution) = choose(&conflict) else {
                continue;
            };
            let before = self.item_codes()?;
            if let Err(e) = self.items.resolve_conflict(conflict.id, resolution) {
                settled.violations.push(format!(
                    "{}: resolving conflict {} ({:?} from {}) with {resolution:?} failed: {e}",
                    self.id, conflict.id, conflict.key, conflict.device
                ));
                continue;
            }
            settled.resolved += 1;
            let after = self.item_codes()?;
            let remote_now = match &conflict.key {
                Value::Text(k) => after.get(k),
                _ => None,
            };
            for (key, code) in before.iter().filter(|(k, _)| !after.contains_key(*k)) {
                let clashed = !matches!(code, Value::Null) && remote_now == Some(code);
                if !clashed {
                    settled.violations.push(format!(
                        "{}: resolving conflict {} ({:?} from {}) with {resolution:?} deleted {key} (code {code:?}), which clashed with nothing",
                        self.id, conflict.id, conflict.key, conflict.device
                    ));
                }
                settled.events.extend(self.stamped(key, EventKind::Delete)?);
            }
        }
        Ok(settled)
    }
}
