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

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value as Json;

/// The binary, without a key from the environment.
pub fn peerlite() -> Command {
    let mut cmd = Command::cargo_bin("peerlite").unwrap();
    cmd.env_remove("PEERLITE_KEY");
    cmd
}

/// The binary as a plain process (to signal it, limit it, or read its output as it comes).
pub fn process() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_peerlite"));
    cmd.env_remove("PEERLITE_KEY");
    cmd
}

/// Stdout of a command that must succeed.
pub fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.assert().success().get_output().stdout.clone();
    String::from_utf8(out).unwrap()
}

/// Stdout of a command that must succeed, as JSON.
pub fn json_of(cmd: &mut Command) -> Json {
    serde_json::from_str(stdout_of(cmd).trim()).unwrap()
}

/// Runs SQL on `db` with `peerlite sql` (creating it).
pub fn sql(db: &Path, statements: &[&str]) {
    peerlite()
        .arg("sql")
        .arg(db)
        .args(statements)
        .assert()
        .success();
}

/// The file names in `dir`, sorted (empty when it does not exist).
pub fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Stdout of a command that must succeed, one JSON value per line.
pub fn json_lines(cmd: &mut Command) -> Vec<Json> {
    stdout_of(cmd)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}
