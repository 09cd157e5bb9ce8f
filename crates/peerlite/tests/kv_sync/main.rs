#![allow(clippy::unwrap_used)]
//! Integration tests of key-value store sync: single-version stores merging entries by key
//! (last writer wins by hybrid logical clock, then device id), device-collaboration stores
//! keeping each device's entries apart, remote change notifications, typed values on the
//! wire, mixed and encrypted peers, and sessions driven by hand through lost batches.

mod common;
mod device_collab;
mod mixed;
mod notifications;
mod regress_cloned_older;
mod regress_put_back;
mod regress_recreated_ahead;
mod reset;
mod retransmit;
mod single_version;
mod types;
