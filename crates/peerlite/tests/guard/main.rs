#![allow(clippy::unwrap_used)]
//! peerlite's own objects out of reach of the app's SQL (issue 9, items 4 and 5), and
//! `check --full` verifying them.
//!
//! Before: one `DROP TABLE peerlite_meta` from `execute` bricked the store for every command,
//! `check` and `repair` included; a dropped capture trigger silently stopped capture while
//! `check` said ok; a deleted meta row gave the store a new identity; a device table's
//! "read-only" rows could be forged by renaming it away, writing it and renaming it back.

mod common;
mod hostile_sql;
mod own_objects;
mod regress_identity;
mod still_allowed;
