//! The backups in a directory: listing (every backup, those without a manifest as not
//! verified — never a `.tmp`), deletion with a result per name, retention, the safety copies
//! of restores, and cleaning up after interruptions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::BackupInfo;
use super::manifest::{Manifest, checksum_file, sync_dir};
use super::naming::{self, PRE_RESTORE};
use crate::error::{Error, Result};

/// Every backup in `dir`, newest first: each complete backup with its manifest, and every other
/// file that may be one (a manifest missing or unreadable) as not verified, with why — nothing
/// in the folder is hidden. Leftovers of interrupted backups (`.tmp`) and SQLite's side files
/// are not backups.
pub(crate) fn list_backups(dir: &Path) -> Result<Vec<BackupInfo>> {
    Ok(entries(dir)?.into_iter().map(|(info, _)| info).collect())
}

/// [`list_backups`], each with whether it has a readable manifest (only those are ever
/// pruned or used by a repair).
fn entries(dir: &Path) -> Result<Vec<(BackupInfo, bool)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("listing backups in", dir, e)),
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if !meta.is_file() || naming::is_tmp(&path) || is_side_file(&path) {
            continue;
        }
        if naming::backup_of_manifest(&path).is_some() {
            continue; // described with its backup
        }
        let manifest_path = naming::manifest_path(&path);
        let manifest = match Manifest::read(&manifest_path) {
            Ok(m) => Ok(m),
            Err(_) if !manifest_path.exists() => Err("there is no manifest beside it".to_owned()),
            Err(e) => Err(format!("its manifest is unreadable: {e}")),
        };
        match manifest {
            Ok(m) => {
                let mut info = BackupInfo::from_manifest(path, &m, Some(&meta));
                if !info.verified && meta.len() == m.file_size {
                    // Written since, or only copied (a copy has a new modification time): the
                    // checksum tells the two apart.
                    info.verified =
                        checksum_file(&info.path).is_ok_and(|(checksum, _)| checksum == m.checksum);
                }
                if !info.verified {
                    info.problem =
                        Some("the file changed since its checksum was recorded".to_owned());
                }
                found.push((info, true));
            }
            Err(why) => found.push((unverified(path, &meta, why), false)),
        }
    }
    found.sort_by(|(a, _), (b, _)| {
        b.created_at_ms
            .cmp(&a.created_at_ms)
            .then_with(|| a.name.cmp(&b.name))
    });
    Ok(found)
}

/// `-journal`, `-wal` and `-shm` files SQLite keeps beside a database (a backup opened by
/// another tool): not backups of their own.
fn is_side_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| ["-journal", "-wal", "-shm"].iter().any(|s| n.ends_with(s)))
}

/// A file in the backup folder whose manifest is missing or unreadable: what the file itself
/// says (its time; version, page size and pages from a plaintext SQLite header).
fn unverified(path: PathBuf, meta: &std::fs::Metadata, why: String) -> BackupInfo {
    let mut header = [0u8; 100];
    let plain = std::fs::File::open(&path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut header))
        .is_ok()
        && header.starts_with(b"SQLite format 3\0");
    let be32 = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65536,
        n => u64::from(n),
    };
    let created_at_ms = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as u64);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    BackupInfo {
        automatic: naming::is_automatic(&name) || name.starts_with(PRE_RESTORE),
        name,
        path,
        created_at_ms,
        created: naming::rfc3339(created_at_ms),
        size_bytes: meta.len(),
        page_count: if plain && page_size > 0 {
            meta.len() / page_size
        } else {
            0
        },
        version: if plain { i64::from(be32(60) as i32) } else { 0 },
        checksum: String::new(),
        encrypted: !plain,
        verified: false,
        problem: Some(why),
        restarts: 0,
    }
}

/// Every readable manifest in `dir` with the backup it describes (whether or not that file is
/// still there), newest first: what the store's backups say about it, without opening any.
pub(crate) fn manifests(dir: &Path) -> Vec<(PathBuf, Manifest)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(PathBuf, Manifest)> = entries
        .flatten()
        .filter(|e| !naming::is_tmp(&e.path()))
        .filter_map(|e| {
            let backup = naming::backup_of_manifest(&e.path())?;
            Some((backup, Manifest::read(&e.path()).ok()?))
        })
        .collect();
    found.sort_by_key(|(_, m)| std::cmp::Reverse(m.created_at_ms));
    found
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

/// Keeps the `keep` newest backups of one kind (automatic or named); the safety copies a
/// restore takes are never pruned, nor is a file without a manifest (it is not peerlite's).
pub(crate) fn prune(dir: &Path, automatic: bool, keep: usize) -> Result<()> {
    let candidates: Vec<BackupInfo> = entries(dir)?
        .into_iter()
        .filter(|(b, described)| {
            *described && b.automatic == automatic && !b.name.starts_with(PRE_RESTORE)
        })
        .map(|(b, _)| b)
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

/// Before a restore takes its safety copy `pre-restore`: the one an earlier restore took is
/// kept as `pre-restore-<its time>` (a hard link and a manifest of that name; a copy where the
/// file system has no links), so a second restore never replaces the only copy of the data
/// the first one replaced. It is skipped only when a kept copy has the same checksum already
/// and still verifies (a duplicate). Safety copies are never pruned; `delete-backup` removes
/// them. Returns the path of the copy kept now. Each step leaves `pre-restore` intact: a kill
/// at most leaves a manifest without its file, which is not listed and is rewritten next time.
pub(crate) fn keep_pre_restore(dir: &Path) -> Result<Option<PathBuf>> {
    let current = dir.join(PRE_RESTORE);
    let Ok(manifest) = Manifest::read(&naming::manifest_path(&current)) else {
        return Ok(None); // none yet (or no longer described: then it is listed as unverified)
    };
    if !current.is_file() {
        return Ok(None);
    }
    let duplicate = entries(dir)?.into_iter().any(|(b, described)| {
        described
            && b.verified
            && b.name != PRE_RESTORE
            && b.name.starts_with(PRE_RESTORE)
            && b.checksum == manifest.checksum
    });
    if duplicate {
        return Ok(None);
    }
    let name = naming::stamped(&format!("{PRE_RESTORE}-"), manifest.created_at_ms);
    let mut kept = dir.join(&name);
    let mut n = 1;
    while kept.exists() {
        n += 1;
        kept = dir.join(format!("{name}-{n}"));
    }
    let name = kept
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or(name);
    let described = Manifest { name, ..manifest };
    let manifest_tmp = naming::unique_tmp_path(&naming::manifest_path(&kept));
    described.write(&manifest_tmp)?;
    std::fs::rename(&manifest_tmp, naming::manifest_path(&kept))
        .map_err(|e| Error::io("keeping the earlier pre-restore copy", &kept, e))?;
    let linked = std::fs::hard_link(&current, &kept).or_else(|_| {
        // No hard links here: a copy, under a temporary name until complete.
        let tmp = naming::unique_tmp_path(&kept);
        let copied = std::fs::copy(&current, &tmp)
            .and_then(|_| std::fs::File::open(&tmp)?.sync_all())
            .and_then(|()| std::fs::rename(&tmp, &kept));
        if copied.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        copied
    });
    if let Err(e) = linked {
        let _ = std::fs::remove_file(naming::manifest_path(&kept));
        return Err(Error::io("keeping the earlier pre-restore copy", &kept, e));
    }
    sync_dir(dir)?;
    Ok(Some(kept))
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
pub(crate) fn process_alive(pid: u32, _path: &Path) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Without /proc, a file untouched for an hour is taken to be abandoned.
#[cfg(not(target_os = "linux"))]
pub(crate) fn process_alive(_pid: u32, path: &Path) -> bool {
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
            store_salt: None,
            automatic: false,
            peerlite_version: String::new(),
            checked: None,
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
                let listed = list_backups(dir.path()).unwrap();
                assert!(
                    listed.iter().all(|b| !b.verified && b.problem.is_some()),
                    "step {step}: listed, but not as verified"
                );
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
        let listed = list_backups(dir.path()).unwrap();
        assert_eq!(listed.len(), 1, "the file is listed…");
        assert!(!listed[0].verified, "…but not as verified");
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
