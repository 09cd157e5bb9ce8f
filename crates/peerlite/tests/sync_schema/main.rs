#![allow(clippy::unwrap_used)]
//! Integration tests of the sync schema of single-version distributed tables (seed 002:
//! ArkData's `sync_schema.json`): every wrong example of the seed is refused with its own
//! rule, the correct one is accepted, and the rules hold across schema versions and modes.

mod common;
mod distribute;
mod rules;
mod seed_examples;
