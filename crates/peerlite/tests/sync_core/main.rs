#![allow(clippy::unwrap_used)]
//! Integration tests of change capture, the hybrid logical clock, merge semantics and the sync
//! protocol core. No network: the tests move the messages, and can lose, duplicate and reorder
//! them on the way.

mod capture;
mod capture_forms;
mod common;
mod compact_rows;
mod conflicts;
mod delivery;
mod device_identity;
mod device_tables;
mod handshake;
mod hlc;
mod merge;
mod protocol;
mod regress_added_column;
mod regress_batch_bytes;
mod regress_clock_carry;
mod regress_cloned_older;
mod regress_column_types;
mod regress_filter_leavers;
mod regress_purged_relays;
mod regress_recreated_echo;
mod regress_repaired_behind_purge;
mod regress_reset_own_epoch;
mod regress_reset_record;
mod regress_rolled_back;
mod regress_seq_resume;
mod regress_seq_two_processes;
mod regress_stale_conflicts;
mod regress_stale_states;
mod regress_unsynced_filter;
mod remote_query;
mod replace;
mod reset;
mod retention;
mod seams;
mod wire_golden;
