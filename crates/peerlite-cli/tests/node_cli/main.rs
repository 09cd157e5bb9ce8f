//! End-to-end tests of the network commands with real `peerlite serve` processes on loopback:
//! each device has its own home and stores, ports are the ones `serve` prints, every wait is
//! a poll with a deadline (never a sleep standing for "long enough"), and every process is
//! stopped by the test (or its guard) whatever happens.
#![allow(clippy::unwrap_used)]

mod column_types;
mod common;
mod conflict;
mod details;
mod discovery;
mod identity;
mod interrupted;
mod kv;
mod levels;
mod limits;
mod modes;
mod put_back;
mod refusals;
mod relay;
mod remote_query;
mod repair_from_peers;
mod reset_kills;
mod retention;
mod schema_change;
mod serve;
#[path = "../support/mod.rs"]
mod support;
