//! Device identity and trust store: ids that catch typos, homes whose files are private and
//! stable, trust stores that survive restarts and never go half-written.
#![allow(clippy::unwrap_used)]

mod device_id;
mod home;
mod trust;
