#![allow(clippy::unwrap_used)]
//! Integration tests of the key-value store: API, typed values, limits, the manager,
//! observers, encryption, and a model-based property test.

mod api;
mod common;
mod limits;
mod manager;
mod model;
mod observers;
mod typed;
