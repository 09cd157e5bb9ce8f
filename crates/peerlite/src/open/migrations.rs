//! An ordered list of migrations: step *n* takes the schema from version *n − 1* to *n*.
//! Steps are SQL text, `NNNN_name.sql` files in a directory, or closures; a step may carry its
//! way back down, which is what makes a downgrade possible.
//!
//! ```
//! use peerlite::{Migration, Migrations};
//!
//! let dir = tempfile::tempdir()?;
//! std::fs::write(dir.path().join("0001_init.sql"), "CREATE TABLE t(a);")?;
//! std::fs::write(dir.path().join("0002_b.sql"), "ALTER TABLE t ADD COLUMN b;")?;
//! std::fs::write(dir.path().join("0002_b.down.sql"), "ALTER TABLE t DROP COLUMN b;")?;
//! let m = Migrations::from_dir(dir.path())?;
//! assert_eq!(m.latest(), 2);
//! assert_eq!(m.names(), ["0001_init", "0002_b"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use super::OpenCallbacks;
use crate::StoreKind;
use crate::error::{Error, Result};
use crate::store::Transaction;

type StepFn = Arc<dyn Fn(&Transaction<'_>) -> Result<()> + Send + Sync>;

#[derive(Clone)]
enum Step {
    Sql(String),
    Closure(StepFn),
}

impl Step {
    fn run(&self, tx: &Transaction<'_>) -> Result<()> {
        match self {
            Step::Sql(sql) => tx.execute_script(sql).map(|_| ()),
            Step::Closure(f) => f(tx),
        }
    }
}

/// One step of the list.
#[derive(Clone)]
pub struct Migration {
    name: String,
    up: Step,
    down: Option<Step>,
}

impl fmt::Debug for Migration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Migration")
            .field("name", &self.name)
            .field("has_down", &self.down.is_some())
            .finish()
    }
}

impl Migration {
    /// A step given as SQL (several statements allowed).
    pub fn sql(name: impl Into<String>, sql: impl Into<String>) -> Self {
        Migration {
            name: name.into(),
            up: Step::Sql(sql.into()),
            down: None,
        }
    }

    /// A step given as code, for migrations SQL alone cannot express.
    pub fn closure(
        name: impl Into<String>,
        f: impl Fn(&Transaction<'_>) -> Result<()> + Send + Sync + 'static,
    ) -> Self {
        Migration {
            name: name.into(),
            up: Step::Closure(Arc::new(f)),
            down: None,
        }
    }

    /// How to undo this step, as SQL.
    #[must_use]
    pub fn with_down_sql(mut self, sql: impl Into<String>) -> Self {
        self.down = Some(Step::Sql(sql.into()));
        self
    }

    /// How to undo this step, as code.
    #[must_use]
    pub fn with_down(
        mut self,
        f: impl Fn(&Transaction<'_>) -> Result<()> + Send + Sync + 'static,
    ) -> Self {
        self.down = Some(Step::Closure(Arc::new(f)));
        self
    }

    /// The step's name (a file's stem for directory migrations).
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Ordered migrations; the step at index *i* produces version *i + 1*.
#[derive(Clone, Debug, Default)]
pub struct Migrations {
    steps: Vec<Migration>,
}

impl Migrations {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the step producing the next version.
    #[must_use]
    pub fn step(mut self, migration: Migration) -> Self {
        self.steps.push(migration);
        self
    }

    /// Reads `NNNN_name.sql` files (and optional `NNNN_name.down.sql`) from `dir`. Numbers must
    /// run 1, 2, 3, … without gaps or duplicates.
    ///
    /// # Errors
    /// 14800001 for a gap, a duplicate or a `.sql` file not named `NNNN_name.sql`; 17000002 when
    /// the directory cannot be read.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let invalid = |m: String| Error::invalid(StoreKind::Relational, m);
        let mut ups: Vec<(u32, String, String)> = Vec::new();
        let mut downs: Vec<(u32, String)> = Vec::new();
        let entries =
            std::fs::read_dir(dir).map_err(|e| Error::io("reading migrations in", dir, e))?;
        for entry in entries {
            let path = entry
                .map_err(|e| Error::io("reading migrations in", dir, e))?
                .path();
            let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
                continue;
            };
            let Some(stem) = file.strip_suffix(".sql") else {
                continue;
            };
            let (stem, is_down) = match stem.strip_suffix(".down") {
                Some(s) => (s, true),
                None => (stem, false),
            };
            let version = stem
                .split_once('_')
                .filter(|(n, name)| {
                    !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && !name.is_empty()
                })
                .and_then(|(n, _)| n.parse::<u32>().ok())
                .ok_or_else(|| {
                    invalid(format!(
                        "{file}: migration files are named NNNN_name.sql (or NNNN_name.down.sql)"
                    ))
                })?;
            let sql = std::fs::read_to_string(&path)
                .map_err(|e| Error::io("reading migration", &path, e))?;
            if is_down {
                downs.push((version, sql));
            } else {
                ups.push((version, stem.to_owned(), sql));
            }
        }
        ups.sort_by_key(|(v, _, _)| *v);
        let mut migrations = Migrations::new();
        if let Some((_, name, _)) = ups.iter().find(|(v, _, _)| *v == 0) {
            return Err(invalid(format!(
                "{name}: versions start at 1 (version 0 means \"not created yet\")"
            )));
        }
        for (i, (version, name, sql)) in ups.into_iter().enumerate() {
            let expected = i as u32 + 1;
            if version != expected {
                return Err(invalid(if version < expected {
                    format!("two migrations for version {version} in {}", dir.display())
                } else {
                    format!(
                        "no migration for version {expected} in {} (next is {name})",
                        dir.display()
                    )
                }));
            }
            migrations = migrations.step(Migration::sql(name, sql));
        }
        for (version, sql) in downs {
            let slot = (version as usize)
                .checked_sub(1)
                .and_then(|i| migrations.steps.get_mut(i))
                .ok_or_else(|| {
                    invalid(format!(
                        "down migration for version {version} has no up migration"
                    ))
                })?;
            slot.down = Some(Step::Sql(sql));
        }
        Ok(migrations)
    }

    /// The version the last step produces.
    pub fn latest(&self) -> u32 {
        self.steps.len() as u32
    }

    /// Step names in order.
    pub fn names(&self) -> Vec<&str> {
        self.steps.iter().map(Migration::name).collect()
    }

    /// The first `version` steps only (for building a database at an older version in tests).
    #[must_use]
    pub fn up_to(&self, version: u32) -> Self {
        Migrations {
            steps: self.steps.iter().take(version as usize).cloned().collect(),
        }
    }

    fn run_up(&self, tx: &Transaction<'_>, from: u32, to: u32) -> Result<()> {
        if to > self.latest() {
            return Err(Error::invalid(
                StoreKind::Relational,
                format!(
                    "no migration produces version {to}: the latest is {}",
                    self.latest()
                ),
            ));
        }
        for step in self.steps.iter().take(to as usize).skip(from as usize) {
            step.up
                .run(tx)
                .map_err(|e| step_error(&step.name, from, to, e))?;
        }
        Ok(())
    }
}

fn step_error(name: &str, from: u32, to: u32, source: Error) -> Error {
    Error::Migration {
        step: name.to_owned(),
        from,
        to,
        source: Box::new(source),
    }
}

impl OpenCallbacks for Migrations {
    fn on_create(&mut self, tx: &Transaction<'_>, version: u32) -> Result<()> {
        self.run_up(tx, 0, version)
    }

    fn on_upgrade(&mut self, tx: &Transaction<'_>, old: u32, new: u32) -> Result<()> {
        self.run_up(tx, old, new)
    }

    fn on_downgrade(&mut self, tx: &Transaction<'_>, old: u32, new: u32) -> Result<()> {
        let needed = (new as usize..old as usize).rev();
        for i in needed.clone() {
            let down_exists = self.steps.get(i).is_some_and(|s| s.down.is_some());
            if !down_exists {
                return Err(Error::Downgrade { from: old, to: new });
            }
        }
        for i in needed {
            let step = &self.steps[i];
            if let Some(down) = &step.down {
                down.run(tx)
                    .map_err(|e| step_error(&format!("{} (down)", step.name), old, new, e))?;
            }
        }
        Ok(())
    }

    fn boxed_clone(&self) -> Option<Box<dyn OpenCallbacks + Send>> {
        Some(Box::new(self.clone()))
    }

    fn describe(&self, from: u32, to: u32) -> Vec<String> {
        if from <= to {
            self.steps
                .iter()
                .take(to as usize)
                .skip(from as usize)
                .map(|s| s.name.clone())
                .collect()
        } else {
            self.steps
                .iter()
                .take(from as usize)
                .skip(to as usize)
                .rev()
                .map(|s| format!("{} (down)", s.name))
                .collect()
        }
    }
}
