//! The backups in a directory: listing (only complete backups with a manifest — never a
//! `.tmp`), deletion with a result per name, retention, and cleaning up after interruptions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::BackupInfo;
use super::manifest::{Manifest, checksum_file, sync_dir};
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
        let Ok(meta) = std::fs::metadata(&backup) else {
            continue;
        };
        match Manifest::read(&manifest_path) {
            Ok(m) => {
                let mut info = BackupInfo::from_manifest(backup, &m, Some(&meta));
                if !info.verified && meta.len() == m.file_size {
                    // Written since, or only copied (a copy has a new modification time): the
                    // checksum tells the two apart.
                    info.verified =
                        checksum_file(&info.path).is_ok_and(|(checksum, _)| checksum == m.checksum);
                }
                found.push(info);
            }
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

/// Every readable manifest in `dir` with the backup it describes (whether or not that file is
/// still there): what the store's backups say about it, without opening any of them.
pub(crate) fn manifests(dir: &Path) -> Vec<(PathBuf, Manifest)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| !naming::is_tmp(&e.path()))
        .filter_map(|e| {
            let backup = naming::backup_of_manifest(&e.path())?;
            Some((backup, Manifest::read(&e.path()).ok()?))
        })
        .collect()
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
/// or process must keep its files. A backup killed while replacing one of the same name may
/// have left the name without a manifest and both manifests under temporary names: the one
/// that describes the data under the name is put back.
pub(crate) fn clean_tmp(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut manifests: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
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
        let backup = stem
            .rsplit_once('.')
            .and_then(|(manifest, _)| naming::backup_of_manifest(&dir.join(manifest)));
        match backup {
            Some(backup) if name.ends_with(".tmp") => {
                manifests.entry(backup).or_default().push(path);
            }
            _ => remove_leftover(&path),
        }
    }
    for (backup, candidates) in manifests {
        let candidates: Vec<&Path> = candidates.iter().map(PathBuf::as_path).collect();
        if naming::manifest_path(&backup).exists() {
            candidates.iter().for_each(|p| remove_leftover(p));
        } else {
            reinstate_manifest(&backup, &candidates);
        }
    }
    let _ = sync_dir(dir);
}

fn remove_leftover(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => tracing::info!(?path, "removed the leftover of an interrupted backup"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(?path, %e, "could not remove a leftover backup file"),
    }
}

/// Puts back, as the manifest of `backup`, the candidate whose size and checksum are those of
/// the file under the name now; removes the others. Hashes the file only when some candidate
/// is readable and has its size. Returns whether one was put back.
pub(crate) fn reinstate_manifest(backup: &Path, candidates: &[&Path]) -> bool {
    let size = std::fs::metadata(backup).map(|m| m.len()).ok();
    let mut checksum: Option<Option<String>> = None;
    let mut reinstated = false;
    for candidate in candidates {
        let fits = !reinstated
            && Manifest::read(candidate).is_ok_and(|m| {
                Some(m.file_size) == size
                    && checksum
                        .get_or_insert_with(|| checksum_file(backup).ok().map(|(sum, _)| sum))
                        .as_deref()
                        == Some(m.checksum.as_str())
            });
        if fits {
            match std::fs::rename(candidate, naming::manifest_path(backup)) {
                Ok(()) => {
                    tracing::info!(?backup, "put back the manifest of an interrupted backup");
                    reinstated = true;
                    continue;
                }
                Err(e) => tracing::warn!(?backup, %e, "could not put back a backup's manifest"),
            }
        }
        remove_leftover(candidate);
    }
    if let Some(dir) = backup.parent() {
        let _ = sync_dir(dir);
    }
    reinstated
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

    /// A manifest describing `data` (as written to `BK`), stored at `path`.
    fn manifest_for(data: &[u8], created_at_ms: u64, path: &Path) {
        Manifest {
            format: super::super::manifest::FORMAT,
            name: "BK".into(),
            created_at_ms,
            created: String::new(),
            source: String::new(),
            store_id: String::new(),
            kind: "relational".into(),
            user_version: 0,
            page_size: 4096,
            page_count: 1,
            file_size: data.len() as u64,
            checksum: format!("blake3:{}", blake3::hash(data).to_hex()),
            file_mtime_ns: None,
            schema_hash: String::new(),
            encrypted: false,
            automatic: false,
            peerlite_version: String::new(),
        }
        .write(path)
        .unwrap();
    }

    /// The files a backup of `BK` replacing an older one leaves when killed at `step` (a dead
    /// writer's pid): 0 after setting the old manifest aside, 1 after renaming the new data
    /// into place, 2 after renaming the new manifest into place.
    fn killed_while_replacing(dir: &Path, step: u32) -> (PathBuf, Vec<u8>, Vec<u8>) {
        let (old, new) = (b"old data".to_vec(), b"new data, longer".to_vec());
        let backup = dir.join("BK");
        let manifest = naming::manifest_path(&backup);
        let retired = dir.join("BK.manifest.json.4000000000-2.tmp");
        let new_manifest = dir.join("BK.manifest.json.4000000000-1.tmp");
        let new_data = dir.join("BK.4000000000-0.tmp");
        std::fs::write(&backup, &old).unwrap();
        manifest_for(&old, 1, &retired);
        std::fs::write(&new_data, &new).unwrap();
        manifest_for(&new, 2, &new_manifest);
        if step >= 1 {
            std::fs::rename(&new_data, &backup).unwrap();
        }
        if step >= 2 {
            std::fs::rename(&new_manifest, &manifest).unwrap();
        }
        (backup, old, new)
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_replacement_killed_between_its_renames_gets_the_matching_manifest_back() {
        for (step, expect_new) in [(0, false), (1, true), (2, true)] {
            let dir = tempfile::tempdir().unwrap();
            let (backup, old, new) = killed_while_replacing(dir.path(), step);
            if step < 2 {
                assert!(list_backups(dir.path()).unwrap().is_empty(), "step {step}");
            }
            clean_tmp(dir.path());
            assert!(
                leftovers(dir.path()).is_empty(),
                "step {step}: {:?}",
                leftovers(dir.path())
            );
            let listed = list_backups(dir.path()).unwrap();
            assert_eq!(listed.len(), 1, "step {step}: BK is listed again");
            let data = std::fs::read(&backup).unwrap();
            let m = Manifest::read(&naming::manifest_path(&backup)).unwrap();
            assert_eq!(data, if expect_new { new.clone() } else { old.clone() });
            assert_eq!(
                m.created_at_ms,
                if expect_new { 2 } else { 1 },
                "step {step}"
            );
            assert_eq!(
                m.checksum,
                format!("blake3:{}", blake3::hash(&data).to_hex())
            );
        }
    }

    #[test]
    fn a_torn_or_foreign_manifest_is_never_put_back() {
        let dir = tempfile::tempdir().unwrap();
        let backup = dir.path().join("BK");
        std::fs::write(&backup, b"the data under the name!!").unwrap();
        let torn = dir.path().join("BK.manifest.json.4000000000-0.tmp");
        std::fs::write(&torn, b"{\"format\": 1, \"na").unwrap();
        // Same size, other bytes: the checksum decides, not the size.
        let foreign = dir.path().join("BK.manifest.json.4000000000-1.tmp");
        manifest_for(b"other data under the name", 1, &foreign);
        assert_eq!(
            std::fs::metadata(&backup).unwrap().len(),
            b"other data under the name".len() as u64
        );
        clean_tmp(dir.path());
        assert!(leftovers(dir.path()).is_empty());
        assert!(!naming::manifest_path(&backup).exists());
        assert!(list_backups(dir.path()).unwrap().is_empty());
        assert!(backup.exists(), "the data is never deleted by the cleanup");
    }

    #[test]
    fn a_live_writer_keeps_its_manifest_in_progress() {
        let dir = tempfile::tempdir().unwrap();
        let mine = dir
            .path()
            .join(format!("BK.manifest.json.{}-9.tmp", std::process::id()));
        manifest_for(b"x", 1, &mine);
        clean_tmp(dir.path());
        assert!(mine.exists());
    }

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
