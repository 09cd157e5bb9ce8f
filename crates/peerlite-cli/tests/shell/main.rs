//! End-to-end tests of the command line as a shell user meets it (issue 9, items 9–13):
//! reads that never wait for a writer, lossless and streamed query output, input from files
//! and standard input, a demo that never panics, and failed or interrupted commands that
//! leave nothing behind. Every test runs the real binary.
#![allow(clippy::unwrap_used)]

mod demo;
mod input;
mod leftovers;
mod output;
mod reads;
#[path = "../support/mod.rs"]
mod support;

use assert_cmd::Command;
use serde_json::Value as Json;

pub use peerlite_testkit::dir_entries;
pub use support::{json_of, peerlite, sql, stdout_of};

/// The binary as a plain process (to signal it, limit it, or read its output as it comes).
pub fn process() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_peerlite"));
    cmd.env_remove("PEERLITE_KEY");
    cmd
}

/// Stdout of a command that must succeed, one JSON value per line.
pub fn json_lines(cmd: &mut Command) -> Vec<Json> {
    stdout_of(cmd)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}
