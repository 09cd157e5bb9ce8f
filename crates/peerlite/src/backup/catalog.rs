//! The backups in a directory: listing (only complete backups with a manifest — never a
//! `.tmp`), deletion with a result per name, retention, and cleaning up after interruptions.

use std::path::Path;

use super::BackupInfo;
use super::manifest::{Manifest, sync_dir};
use super::naming::{self, PRE_RESTORE};
use crate::error::{Error, Result};

/// Every complete backup in `dir`, newest first. Leftover `.tmp` files and data files whose
/// manifest is missing are not backups and are not listed.
pub(crate) fn list_backups(dir: &Path) -> Result<Vec<BackupInfo>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("listing backups in", dir, e)),
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let manifest_path = entry.path();
        let Some(backup) = naming::backup_of_manifest(&manifest_path) else {
            continue;
        };
        if naming::is_tmp(&manifest_path) {
            continue;
        }
        let Ok(size) = std::fs::metadata(&backup).map(|m| m.len()) else {
            continue;
        };
        match Manifest::read(&manifest_path) {
            Ok(m) => found.push(BackupInfo::from_manifest(backup, &m, Some(size))),
            Err(e) => {
                tracing::warn!(?manifest_path, %e, "skipping a backup with an unreadable manifest")
            }
        }
    }
    found.sort_by(|a, b| {
        b.created_at_ms
            .cmp(&a.created_at_ms)
            .then_with(|| a.name.cmp(&b.name))
    });
    Ok(found)
}

fn remove_backup_files(path: &Path) -> Result<()> {
    for file in [path.to_path_buf(), naming::manifest_path(path)] {
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("deleting backup", file, e)),
        }
    }
    Ok(())
}

/// Deletes the backup `name` from `dir`.
pub(crate) fn delete(dir: &Path, name: &str) -> Result<()> {
    naming::check_name(name)?;
    if naming::is_automatic(name) {
        return Err(Error::ReservedBackupName {
            name: name.to_owned(),
            reason: "automatic backups are kept and pruned by peerlite (max_auto_backups)",
        });
    }
    let path = dir.join(name);
    if !path.exists() {
        return Err(Error::BackupNotFound {
            what: format!("{name} in {}", dir.display()),
        });
    }
    remove_backup_files(&path)?;
    sync_dir(dir)
}

/// Keeps the `keep` newest backups of one kind (automatic or named); the safety copy a restore
/// takes is never pruned.
pub(crate) fn prune(dir: &Path, automatic: bool, keep: usize) -> Result<()> {
    let candidates: Vec<BackupInfo> = list_backups(dir)?
        .into_iter()
        .filter(|b| b.automatic == automatic && b.name != PRE_RESTORE)
        .collect();
    for old in candidates.iter().skip(keep) {
        tracing::info!(name = %old.name, "retention: deleting old backup");
        remove_backup_files(&old.path)?;
    }
    if candidates.len() > keep {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Removes what an interrupted backup left behind (`NAME.<pid>-<n>.tmp` and its journal) —
/// only when the process that wrote it is gone: a backup running right now in another thread
/// or process must keep its files.
pub(crate) fn clean_tmp(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let stem = [".tmp", ".tmp-journal", ".tmp-wal", ".tmp-shm"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix));
        let Some(stem) = stem else { continue };
        if writer_may_be_running(stem, &path) {
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => tracing::info!(?path, "removed the leftover of an interrupted backup"),
            Err(e) => tracing::warn!(?path, %e, "could not remove a leftover backup file"),
        }
    }
}

/// `stem` ends in `.<pid>-<n>`: is that process (possibly us) still alive?
fn writer_may_be_running(stem: &str, path: &Path) -> bool {
    let pid = stem
        .rsplit_once('.')
        .and_then(|(_, tag)| tag.split_once('-'))
        .and_then(|(pid, _)| pid.parse::<u32>().ok());
    match pid {
        None => false,
        Some(pid) if pid == std::process::id() => true,
        Some(pid) => process_alive(pid, path),
    }
}

#[cfg(target_os = "linux")]
fn process_alive(pid: u32, _path: &Path) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Without /proc, a file untouched for an hour is taken to be abandoned.
#[cfg(not(target_os = "linux"))]
fn process_alive(_pid: u32, path: &Path) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map(|t| {
            t.elapsed()
                .map_or(true, |age| age < std::time::Duration::from_secs(3600))
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_leftovers_of_dead_writers_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let mine = dir.path().join(format!("BK.{}-0.tmp", std::process::id()));
        let dead = dir.path().join("BK.4000000000-1.tmp");
        let dead_journal = dir.path().join("BK.4000000000-1.tmp-journal");
        let legacy = dir.path().join("BK.tmp");
        let backup = dir.path().join("BK");
        for f in [&mine, &dead, &dead_journal, &legacy, &backup] {
            std::fs::write(f, b"x").unwrap();
        }
        clean_tmp(dir.path());
        assert!(mine.exists(), "a backup this process is writing stays");
        assert!(backup.exists());
        assert!(!dead.exists() && !dead_journal.exists() && !legacy.exists());
    }
}
