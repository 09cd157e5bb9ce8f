#![allow(clippy::unwrap_used)]
//! End-to-end tests of the sync commands of the `peerlite` binary — `distribute`,
//! `schema-check`, `changes`, `conflicts` and `sim` — as real processes on real files: the documented
//! output lines, JSON shapes and exit codes (0 ok, 1 usage, 2 failed operation).

mod changes;
mod common;
mod conflicts;
mod distribute;
mod schema_check;
mod sim;
#[path = "../support/mod.rs"]
mod support;
