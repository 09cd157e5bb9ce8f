//! End-to-end tests of `peerlite device` and `peerlite trust` with the real binary: the
//! documented output (the id as the only stdout line), exit codes (0 ok, 1 usage, 2 failed
//! with `error[CODE]` and a `hint:` naming a command or flag) and files.
#![allow(clippy::unwrap_used)]

mod device;
#[path = "../support/mod.rs"]
mod support;
mod trust;

use std::path::Path;

use assert_cmd::Command;
use peerlite_net::DeviceId;

pub use support::stdout_of;

/// The binary, without a key or a home from the environment.
pub fn peerlite() -> Command {
    let mut cmd = support::peerlite();
    cmd.env_remove("PEERLITE_HOME");
    cmd
}

/// `peerlite device init --home HOME`; returns the id it printed.
pub fn init(home: &Path, extra: &[&str]) -> DeviceId {
    let out = stdout_of(
        peerlite()
            .args(["device", "init", "--home"])
            .arg(home)
            .args(extra),
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{out:?}");
    lines[0].parse().unwrap()
}

/// Runs a command expected to fail with exit 2, `error[CODE]` and a hint naming a command
/// or flag; returns stderr.
pub fn fails_with(cmd: &mut Command, code: u32) -> String {
    let out = cmd.assert().code(2).get_output().clone();
    assert!(out.stdout.is_empty(), "stdout: {:?}", out.stdout);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with(&format!("error[{code}]: ")),
        "expected error[{code}], got {stderr}"
    );
    let hint = stderr
        .lines()
        .find(|l| l.starts_with("hint: "))
        .unwrap_or_else(|| panic!("no hint in {stderr}"));
    assert!(
        hint.contains("`peerlite ") || hint.contains("`--"),
        "the hint names no command or flag: {hint}"
    );
    stderr
}
