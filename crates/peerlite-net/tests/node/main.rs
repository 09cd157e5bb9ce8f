//! The node with real TLS connections on loopback, in one process: what only the library
//! can show (a forged Hello on a genuine channel, hostile messages from a trusted peer, a
//! peer that vanishes or goes silent, notifications on the receiving store).
#![allow(clippy::unwrap_used)]

mod auto_sync;
mod common;
mod connections;
mod faults;
mod forged;
mod fuzz;
mod notify;
mod revoke;
mod seams;
