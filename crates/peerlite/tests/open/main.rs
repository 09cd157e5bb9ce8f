#![allow(clippy::unwrap_used)]
//! Integration tests of versioned open: the SQLiteOpenHelper story of seed 004, migrations
//! (SQL, closures, directories, downgrades, dry runs, races) and rebuild_table.

mod common;
mod from_dir;
mod migrations;
mod rebuild;
mod seed_story;
