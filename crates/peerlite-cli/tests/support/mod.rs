//! What the end-to-end tests of the command line share, whichever test binary includes it
//! (`#[path = "../support/mod.rs"] mod support;`): the binary without a key from the
//! environment, the output of a run, and databases set up through `peerlite sql`.
// Each test binary uses its own share of these.
#![allow(dead_code)]

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value as Json;

/// The binary, without a key from the environment.
pub fn peerlite() -> Command {
    let mut cmd = Command::cargo_bin("peerlite").unwrap();
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

/// (exit code, stdout, stderr) of a run, whatever its outcome.
pub fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Runs SQL statements on `db` with `peerlite sql` (creating the database).
pub fn sql(db: &Path, statements: &[&str]) {
    peerlite()
        .arg("sql")
        .arg(db)
        .args(statements)
        .assert()
        .success();
}
