//! The TLS channel over real loopback sockets: who may connect, what the handshake proves,
//! frames with and without compression, faults that close one connection and never the
//! listener, timeouts and keep-alive, and fuzzing of the frame decoder and the handshake.
#![allow(clippy::unwrap_used)]

mod common;
mod frames;
mod fuzz;
mod handshake;
mod timeouts;
mod traffic;
