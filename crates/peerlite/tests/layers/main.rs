#![allow(clippy::unwrap_used)]
//! Lower layers never import upper ones: `src/store/` knows nothing of change capture, sync,
//! backup, repair, the versioned open, the key-value store or the sync schema.
//!
//! The store once held the change-capture state, the remote-change observers, the automatic
//! backup bookkeeping, the repair report and the migrations in its own `Inner`, flagged
//! corruption through `repair`, opened through `repair` and `open`, and committed the clock's
//! mark through `changes`: every layer above could only be understood together with the one
//! below, and no change to one stayed in one place. The layers now attach to the store through
//! `store::layers` (hooks and state found by type). This test scans every file under
//! `src/store/` for a path to an upper layer — `crate::changes…`, `crate::{sync, …}`, a name
//! the crate root re-exports from an upper module (`crate::RepairReport`), or `super::…`
//! climbing out of `store` into one — and fails naming each line, so the rule cannot regress.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The modules above `store/`.
const UPPER: &[&str] = &[
    "changes", "sync", "backup", "repair", "open", "kv", "schema",
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every name the crate root re-exports from an upper module (`pub use repair::{…}`): a path
/// like `crate::RepairReport` reaches `repair/` just as well.
fn reexported_upper_names(lib_rs: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for stmt in lib_rs.split(';') {
        let stmt = stmt.trim();
        let Some(rest) = stmt.strip_prefix("pub use ") else {
            continue;
        };
        let Some((module, items)) = rest.split_once("::") else {
            continue;
        };
        if !UPPER.contains(&module.trim()) {
            continue;
        }
        let items = items.trim().trim_start_matches('{').trim_end_matches('}');
        for item in items.split(',') {
            // `Name` or `Name as Alias`: the alias is what `crate::` names.
            if let Some(name) = item.split_whitespace().last() {
                names.insert(name.to_owned());
            }
        }
    }
    names
}

/// The identifiers a path names right after `prefix`: `prefix::name` gives `name`,
/// `prefix::{a, b::c}` gives `a` and `b`.
fn names_after(line: &str, prefix: &str) -> Vec<String> {
    let mut found = Vec::new();
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut rest = line;
    while let Some(at) = rest.find(prefix) {
        let before = rest[..at].chars().last();
        let after = &rest[at + prefix.len()..];
        rest = after;
        // `mycrate::` or `a::crate::` is another path.
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        if let Some(group) = after.trim_start().strip_prefix('{') {
            let group = group.split('}').next().unwrap_or_default();
            found.extend(group.split(',').map(ident));
        } else {
            found.push(ident(after));
        }
    }
    found.retain(|n| !n.is_empty());
    found
}

/// How deep below the crate root the module of `file` (under `src/store/`) is.
fn depth(file: &Path) -> usize {
    let rel = file.strip_prefix(src()).unwrap();
    let parts = rel.components().count();
    if rel.file_name().is_some_and(|n| n == "mod.rs") {
        parts - 1
    } else {
        parts
    }
}

/// What in `line` of a store file at module depth `depth` names an upper layer.
fn upper_paths(line: &str, depth: usize, reexported: &BTreeSet<String>) -> Vec<String> {
    let mut bad = Vec::new();
    for name in names_after(line, "crate::") {
        if UPPER.contains(&name.as_str()) || reexported.contains(&name) {
            bad.push(format!("crate::{name}"));
        }
    }
    // `super::super::changes` from `store/rdb.rs` reaches the crate root, then `changes`.
    let climb = "super::".repeat(depth);
    for name in names_after(line, &climb) {
        if UPPER.contains(&name.as_str()) || reexported.contains(&name) {
            bad.push(format!("{climb}{name}"));
        }
    }
    bad
}

#[test]
fn store_never_names_an_upper_layer() {
    let lib_rs = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let reexported = reexported_upper_names(&lib_rs);
    assert!(
        reexported.contains("RepairReport") && reexported.contains("KvStore"),
        "the re-exports of lib.rs were not read: {reexported:?}"
    );
    let mut files = Vec::new();
    rust_files(&src().join("store"), &mut files);
    files.sort();
    assert!(files.len() > 10, "too few store files found: {files:?}");
    let mut violations = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let depth = depth(file);
        for (i, line) in text.lines().enumerate() {
            for path in upper_paths(line, depth, &reexported) {
                violations.push(format!(
                    "{}:{}: `{path}` in: {}",
                    file.strip_prefix(src()).unwrap().display(),
                    i + 1,
                    line.trim()
                ));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "store/ names a layer above it (attach through store::layers instead):\n{}",
        violations.join("\n")
    );
}

/// The scanner itself catches every spelling of a path upward, and leaves the store's own
/// paths alone — a scanner that found nothing would pass the test above for free.
#[test]
fn the_scanner_catches_every_spelling() {
    let reexported: BTreeSet<String> = ["RepairReport".to_owned()].into();
    let caught = |line: &str, depth: usize| !upper_paths(line, depth, &reexported).is_empty();
    for line in [
        "use crate::changes::state::SyncState;",
        "    crate::repair::set_flag(path, &err);",
        "pub auto: crate::backup::AutoState,",
        "use crate::{StoreKind, sync::RemoteChange};",
        "use crate::{open, value};",
        "/// see [`crate::kv::KvStore`]",
        "let s: crate::schema::SyncSchema;",
        "pub repair: Option<crate::RepairReport>,",
    ] {
        assert!(caught(line, 2), "missed: {line}");
    }
    assert!(caught("use super::super::changes::Clock;", 2));
    assert!(caught("use super::super::super::sync::X;", 3));
    for line in [
        "use crate::error::{Error, Result};",
        "use crate::store::schema::quote_ident;",
        "use crate::{StoreKind, value::Value};",
        "use super::schema::SchemaCache;",
        "use super::super::guard::Refusal;",
        "let changes = 1; // crate::store",
        "use othercrate::changes::X;",
        "use crate::RdbStore;",
    ] {
        assert!(!caught(line, 2), "wrongly flagged: {line}");
    }
}
