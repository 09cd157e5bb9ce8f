#![allow(clippy::unwrap_used)]
//! Integration tests of backup, restore and repair: online backups under a steady writer,
//! verified restores, the `sqlite3` shell reading a backup, damaged and foreign backups,
//! deletion and retention, automatic backups, encryption, version rules, corruption detection
//! with rebuild and salvage, leftover temporary files, and readers during a restore.

mod catalog;
mod common;
mod damaged;
mod encrypted;
mod keys;
mod online;
mod pre_restore;
mod proof;
mod regress_auto_backup_outlives_store;
mod regress_encrypted_damage;
mod regress_header_damage;
mod regress_lost_store;
#[cfg(target_os = "linux")]
mod regress_unread_connection;
mod repair;
mod restore;
mod retention;
mod salvage;
mod salvage_cases;
mod shell;
mod versions;
