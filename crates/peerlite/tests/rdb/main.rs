#![allow(clippy::unwrap_used)]
//! Integration tests of the relational store: basics, predicates (including injection
//! attempts), result sets, transactions, observers, encryption and bad input.

mod bad_input;
mod checkpoints;
mod common;
mod encryption;
mod observers;
mod predicates;
mod result_set;
mod scripts;
mod store_basics;
mod transactions;
