//! The rebuild of a corrupted store, crash-safe and resumable. What can refuse it (the
//! chosen backup's verification, the encryption check) is decided before anything is made;
//! then it takes the store's repair lock and runs its steps, each durable before the next:
//!
//! 1. a new quarantine folder, then the journal (`NAME.repair`) naming it: from here on the
//!    repair is pending, and every open either refuses the store or finishes the repair;
//! 2. the damaged database, WAL and shared-memory files are hard-linked into quarantine (or,
//!    where links are refused, the WAL files are moved there and the journal says so);
//! 3. the replacement is made beside the database under a temporary name — a copy of the
//!    newest backup that passes full verification, or an empty file — and synced; the
//!    damaged WAL files are taken off the path, then the replacement is renamed over the
//!    database in one atomic step (without links, the damaged file is first moved into
//!    quarantine: the journal covers the moment the path is empty);
//! 4. salvage reads the quarantined files and writes `NAME.salvage.db` — or
//!    `NAME.salvage-2.db`, … beside earlier ones, which are never replaced (a failure is
//!    reported and the rebuild goes on);
//! 5. the corruption flag joins the quarantine and the journal is removed.
//!
//! A kill at any point leaves the damaged store at the path (still flagged, still refused)
//! or the repaired one, never nothing and never an empty store a later open made; the next
//! open with `allow_rebuild` (`peerlite repair`) runs the remaining steps. Every step can run
//! twice: links and moves skip what is already in quarantine, and a second install puts the
//! same backup in place again.

use std::path::{Path, PathBuf};

use super::journal::{self, Journal};
use super::quarantine::{self, LinkError};
use super::{RebuiltType, RepairReport, salvage};
use crate::backup::naming::with_suffix;
use crate::backup::{list_backups, naming, sync_dir};
use crate::error::{Error, Result};
use crate::store::{StoreConfig, connection};

/// Rebuilds the store, or finishes the rebuild its journal says is pending. Repairs of one
/// store are serialised by a lock: one that had to wait finds the store repaired by the
/// other and returns `None` (nothing left to do) unless it is still damaged.
pub(crate) fn rebuild(config: &StoreConfig) -> Result<Option<RepairReport>> {
    // What can refuse a new repair is decided before anything is made (the lock included):
    // a refused repair leaves no file behind.
    let pending = journal::pending(config.path());
    let chosen = if pending { None } else { precheck(config)? };
    // A client reset running meanwhile would install its seed over the repaired store; a
    // repair under way (a journal) is finished whatever runs.
    let _no_reset = if pending {
        None
    } else {
        crate::store::reset_lock::RunningReset::hold_if_any(config.path())?
    };
    let _lock = match RepairLock::acquire(config.path())? {
        (lock, false) => lock,
        (lock, true) if still_needed(config)? => lock,
        (_, true) => return Ok(None),
    };
    rebuild_locked(config, chosen).map(Some)
}

/// A new repair's checks: the chosen backup verified with the key (that also proves the key,
/// or its absence, right for what will be installed), else the store's encryption unchanged.
fn precheck(config: &StoreConfig) -> Result<Option<PathBuf>> {
    match &config.rebuild_from {
        Some(source) => chosen_backup(config, source).map(Some),
        None => check_encryption(config).map(|()| None),
    }
}

/// Whether the store still needs the repair a process decided on before it waited for the
/// lock: a pending journal, a corruption flag, a lost or empty file, or a damaged file.
fn still_needed(config: &StoreConfig) -> Result<bool> {
    let db = config.path();
    if journal::pending(db) || super::flag_path(db).exists() {
        return Ok(true);
    }
    match super::evidence::at_path(db, &naming::default_dir(config)) {
        super::evidence::AtPath::File => {}
        _ => return Ok(true),
    }
    Ok(matches!(
        super::soundness(config)?,
        super::Soundness::Damaged
    ))
}

/// An exclusive lock on `quarantine/NAME.lock`, held for the whole repair: two processes
/// repairing one store at once would quarantine, install and salvage over each other. The
/// lock goes with the process (a killed repair never leaves it held); the file stays.
struct RepairLock(std::fs::File);

impl RepairLock {
    /// Takes the lock, waiting for a repair running elsewhere; says whether it had to wait.
    fn acquire(db: &Path) -> Result<(RepairLock, bool)> {
        let root = quarantine::root(db);
        std::fs::create_dir_all(&root)
            .map_err(|e| Error::io("creating quarantine folder", &root, e))?;
        let path = root.join(format!("{}.lock", quarantine::file_name(db)));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io("opening the repair lock", &path, e))?;
        match file.try_lock() {
            Ok(()) => Ok((RepairLock(file), false)),
            Err(std::fs::TryLockError::WouldBlock) => {
                tracing::info!(
                    ?path,
                    "another repair of this store is running; waiting for it"
                );
                file.lock()
                    .map_err(|e| Error::io("waiting for the repair lock", &path, e))?;
                Ok((RepairLock(file), true))
            }
            Err(std::fs::TryLockError::Error(e)) => {
                Err(Error::io("taking the repair lock", &path, e))
            }
        }
    }
}

impl Drop for RepairLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

fn rebuild_locked(config: &StoreConfig, chosen: Option<PathBuf>) -> Result<RepairReport> {
    let db = config.path();
    let journal = match journal::read(db) {
        Some(Ok(journal)) => {
            check_key(config, &journal)?;
            journal
        }
        Some(Err(why)) if db.exists() => {
            tracing::warn!(
                ?db,
                why,
                "the repair journal is unreadable; starting the repair over"
            );
            begin(config, chosen)?
        }
        Some(Err(why)) => {
            return Err(Error::Corrupted {
                path: db.to_path_buf(),
                detail: format!(
                    "a repair is pending but its journal is unreadable ({why}) and the database \
                     is not at its path: the damaged files are in the quarantine folder beside it"
                ),
                sqlite: None,
                kind: config.kind,
            });
        }
        None => begin(config, chosen)?,
    };
    run(config, journal)
}

/// Steps 1: quarantine folder, then the journal.
fn begin(config: &StoreConfig, chosen: Option<PathBuf>) -> Result<Journal> {
    let db = config.path();
    // A repair that waited for another found its journal gone: checked again.
    let chosen = match chosen {
        Some(path) => Some(path),
        None => precheck(config)?,
    };
    let dir = quarantine::new_dir(db)?;
    kill_point(1)?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let journal = Journal {
        started: naming::rfc3339(naming::now_ms()),
        quarantine: name,
        links: true,
        encrypted: config.key.is_some(),
        installed: None,
        salvage: None,
        chosen,
    };
    journal::write(db, &journal)?;
    kill_point(2)?;
    Ok(journal)
}

/// A pending repair is finished only with the key the damaged store was opened with: a wrong
/// or missing key would put an empty store (or a backup it cannot read) in its place.
fn check_key(config: &StoreConfig, journal: &Journal) -> Result<()> {
    let db = config.path();
    let damaged = journal.dir(db).join(quarantine::file_name(db));
    let damaged = if damaged.exists() {
        damaged
    } else {
        db.to_path_buf()
    };
    let wrong = |detail: &str| Error::WrongKey {
        path: db.to_path_buf(),
        detail: detail.into(),
    };
    match (&config.key, journal.encrypted) {
        (None, true) => Err(wrong(
            "the pending repair is of an encrypted store; give its key",
        )),
        (Some(_), false) => Err(wrong(
            "the pending repair is of a store that is not encrypted, but a key was given",
        )),
        (Some(key), true)
            if !connection::key_decrypts(&damaged, key)
                && super::keys::proven_elsewhere(&damaged, key, &naming::default_dir(config))
                    .is_none() =>
        {
            Err(wrong(
                "the key does not decrypt the store whose repair is pending",
            ))
        }
        _ => Ok(()),
    }
}

/// The backup a restore over a damaged store names (in the backup directory, or a path),
/// verified in full with the store's key and of the store's kind.
fn chosen_backup(config: &StoreConfig, source: &str) -> Result<PathBuf> {
    let path = if source.contains('/') || source.contains('\\') {
        PathBuf::from(source)
    } else {
        naming::check_name(source)?;
        naming::default_dir(config).join(source)
    };
    if !path.is_file() {
        return Err(Error::BackupNotFound {
            what: path.display().to_string(),
        });
    }
    let manifest = crate::backup::verify_backup(&path, config.key.as_ref())?;
    let kind = crate::backup::kind_name(config.kind);
    if manifest.kind != kind {
        return Err(Error::BackupInvalid {
            path,
            reason: format!("it is a {} backup; this is a {kind} store", manifest.kind),
        });
    }
    key_is_the_stores(config, &manifest)?;
    Ok(path)
}

/// A key that does not decrypt the store replaces it only when something proves it is the
/// store's key and the header is what is damaged: the salt the chosen backup (or one of the
/// store's own) recorded makes it verify a page past page 1, or the file is too short to hold
/// data. Else it is a wrong key (14800020) — a healthy store under another key, or a
/// plaintext one given a key, is never quarantined for a backup that opens with it.
fn key_is_the_stores(config: &StoreConfig, chosen: &crate::backup::Manifest) -> Result<()> {
    let db = config.path();
    let Some(key) = &config.key else {
        return Ok(());
    };
    if !db.is_file() || connection::key_decrypts(db, key) {
        return Ok(());
    }
    let short = std::fs::metadata(db).map_or(0, |m| m.len()) < 2 * 4096;
    let by_chosen = chosen
        .store_salt
        .as_deref()
        .is_some_and(|salt| connection::key_verifies_with_salt(db, key, salt));
    if short
        || by_chosen
        || super::keys::proven_elsewhere(db, key, &naming::default_dir(config)).is_some()
    {
        return Ok(());
    }
    Err(Error::WrongKey {
        path: db.to_path_buf(),
        detail: "the key does not decrypt the store, and nothing shows it is the store's key                  with a damaged header (no page past the first verifies with the salt its                  backups recorded)"
            .into(),
    })
}

/// A rebuild must not change whether the store is encrypted: without a key, one whose
/// backups are encrypted would become an empty *plaintext* store (encryption at rest silently
/// dropped, the backups unreachable with the key), and with a key, a plaintext one an
/// encrypted store. The damaged file proves a key only when classification found it decrypts
/// the file's pages (an open reports corruption with a key only then); a missing or empty file
/// proves nothing, and then the key must open one of the store's encrypted backups. The
/// backups' manifests say which the store was (the newest one that can be read decides).
fn check_encryption(config: &StoreConfig) -> Result<()> {
    let db = config.path();
    let manifests = crate::backup::manifests(&naming::default_dir(config));
    let Some((newest, m)) = manifests.first() else {
        return Ok(());
    };
    let refuse = |detail: String| {
        Err(Error::WrongKey {
            path: db.to_path_buf(),
            detail,
        })
    };
    let file_proves_key =
        config.key.is_some() && std::fs::metadata(db).is_ok_and(|meta| meta.len() > 0);
    match (&config.key, m.encrypted) {
        (None, true) => refuse(format!(
            "the store is encrypted (its backup {} is): a repair without its key would replace \
             it with an empty plaintext store; give the key with --key",
            newest.display()
        )),
        (Some(_), false) if !file_proves_key => refuse(format!(
            "the store is not encrypted (its backup {} is not), but a key was given; repair it \
             without --key",
            newest.display()
        )),
        (Some(key), true) if !file_proves_key => {
            let opens = manifests
                .iter()
                .filter(|(_, m)| m.encrypted)
                .any(|(path, _)| connection::open_file(path, Some(key)).is_ok());
            if opens {
                Ok(())
            } else {
                refuse(format!(
                    "the key opens none of the store's encrypted backups (newest: {}); give the \
                     key the store was created with",
                    newest.display()
                ))
            }
        }
        _ => Ok(()),
    }
}

fn pause(config: &StoreConfig) {
    if let Some(pause) = config.repair_pause {
        std::thread::sleep(pause);
    }
}

/// Steps 2 to 5.
fn run(config: &StoreConfig, mut journal: Journal) -> Result<RepairReport> {
    let db = config.path();
    let dir = journal.dir(db);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("creating quarantine folder", &dir, e))?;
    remove_install_leftovers(db);
    if journal.links {
        let linked = if links_refused() {
            Err(LinkError::Unsupported(std::io::Error::other(
                "links refused (test)",
            )))
        } else {
            quarantine::link_all(db, &dir)
        };
        match linked {
            Ok(()) => {}
            Err(LinkError::Unsupported(e)) => {
                tracing::info!(%e, "no hard links here: moving the damaged files instead");
                journal.links = false;
                journal::write(db, &journal)?;
            }
            Err(LinkError::Failed(e)) => return Err(e),
        }
    }
    kill_point(3)?;
    pause(config);
    if journal.installed.is_none() {
        // Whatever database the next open finds at the path is a new epoch to the peers.
        crate::changes::mark::mark_replaced(db);
        let backup = install(config, &journal)?;
        journal.installed = Some(backup);
        journal::write(db, &journal)?;
        kill_point(7)?;
        pause(config);
    }
    let damaged = dir.join(quarantine::file_name(db));
    let report = match journal.salvage.take() {
        Some(report) => report,
        None => {
            let hints = salvage::Hints {
                salts: super::keys::recorded_salts(&naming::default_dir(config)),
                schema_from: installed_path(config, &journal),
            };
            let report = salvage::salvage_quarantined(&damaged, db, config.key.as_ref(), &hints);
            journal.salvage = Some(report.clone());
            journal::write(db, &journal)?;
            report
        }
    };
    kill_point(8)?;
    pause(config);
    quarantine::move_file(
        &with_suffix(db, ".corrupt"),
        &dir.join(format!("{}.corrupt", quarantine::file_name(db))),
    )?;
    let _ = std::fs::remove_file(with_suffix(db, ".corrupt"));
    kill_point(9)?;
    // A lost store whose files were all gone left nothing to keep: no empty folder stays.
    let _ = std::fs::remove_dir(&dir);
    journal::remove(db)?;
    let backup_path = installed_path(config, &journal);
    let backup = journal.installed.flatten();
    Ok(RepairReport {
        backup_path,
        status: if backup.is_some() {
            RebuiltType::Repaired
        } else {
            RebuiltType::Rebuilt
        },
        backup,
        quarantine: dir,
        salvage: report,
    })
}

/// The file of the backup this repair installed, if it installed one.
fn installed_path(config: &StoreConfig, journal: &Journal) -> Option<PathBuf> {
    let name = journal.installed.clone().flatten()?;
    Some(
        journal
            .chosen
            .clone()
            .unwrap_or_else(|| naming::default_dir(config).join(name)),
    )
}

/// Step 3: puts the newest verified backup (or an empty file) at the path; the backup's name.
fn install(config: &StoreConfig, journal: &Journal) -> Result<Option<String>> {
    let db = config.path();
    let (name, source) = match &journal.chosen {
        Some(path) => {
            // Verified again: it may have changed since the repair began.
            crate::backup::verify_backup(path, config.key.as_ref())?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (Some(name), Some(path.clone()))
        }
        None => match newest_verified_backup(config)? {
            Some((name, path)) => (Some(name), Some(path)),
            None => (None, None),
        },
    };
    let tmp = naming::unique_tmp_path(db);
    let made = (|| {
        match &source {
            Some(backup) => {
                std::fs::copy(backup, &tmp)
                    .map_err(|e| Error::io("copying the backup into place", &tmp, e))?;
            }
            None => {
                std::fs::File::create(&tmp).map_err(|e| Error::io("creating", &tmp, e))?;
            }
        }
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::io("syncing", &tmp, e))
    })();
    if let Err(e) = made {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    kill_point(4)?;
    pause(config);
    let dir = &journal.dir(db);
    let put_in_place = (|| {
        quarantine::clear_side_files(db, dir)?;
        kill_point(5)?;
        if !journal.links {
            quarantine::move_file(db, &dir.join(quarantine::file_name(db)))?;
            kill_point(6)?;
        }
        std::fs::rename(&tmp, db)
            .map_err(|e| Error::io("putting the repaired database in place", db, e))?;
        sync_dir(db.parent().unwrap_or(Path::new("")))
    })();
    if let Err(e) = put_in_place {
        if !is_kill(&e) {
            let _ = std::fs::remove_file(&tmp);
        }
        return Err(e);
    }
    Ok(name)
}

/// The newest backup that passes full verification (never a pre-restore copy: it holds data a
/// restore chose to replace).
fn newest_verified_backup(config: &StoreConfig) -> Result<Option<(String, PathBuf)>> {
    let candidates = list_backups(&naming::default_dir(config))?
        .into_iter()
        .filter(|b| !b.name.starts_with(naming::PRE_RESTORE));
    for candidate in candidates {
        // The user hears why a newer backup was passed over.
        if let Some(problem) = &candidate.problem {
            tracing::warn!(backup = %candidate.name, %problem, "skipping a backup that fails verification");
            continue;
        }
        match crate::backup::verify_backup(&candidate.path, config.key.as_ref()) {
            Ok(_) => return Ok(Some((candidate.name, candidate.path))),
            Err(e) => {
                tracing::warn!(backup = %candidate.name, %e, "skipping a backup that fails verification")
            }
        }
    }
    Ok(None)
}

/// Removes `NAME.<pid>-<n>.tmp` replacements a killed repair left beside the database.
fn remove_install_leftovers(db: &Path) {
    let dir = match db.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let prefix = format!("{}.", quarantine::file_name(db));
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with(&prefix) && name.ends_with(".tmp") && !name.ends_with(".repair.tmp") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(not(test))]
fn kill_point(_: u32) -> Result<()> {
    Ok(())
}

#[cfg(not(test))]
fn is_kill(_: &Error) -> bool {
    false
}

#[cfg(not(test))]
fn links_refused() -> bool {
    false
}

#[cfg(test)]
thread_local! {
    /// The kill point at which the current test's repair stops dead (no clean-up runs).
    static KILL_AT: std::cell::Cell<Option<u32>> = const { std::cell::Cell::new(None) };
    /// Makes the current test's repair behave as on a file system without hard links.
    static NO_LINKS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[cfg(test)]
fn links_refused() -> bool {
    NO_LINKS.with(std::cell::Cell::get)
}

#[cfg(test)]
fn kill_point(n: u32) -> Result<()> {
    if KILL_AT.with(|k| k.get()) == Some(n) {
        return Err(Error::io(
            "simulated kill",
            PathBuf::from("kill"),
            std::io::Error::other(format!("killed at point {n}")),
        ));
    }
    Ok(())
}

#[cfg(test)]
fn is_kill(e: &Error) -> bool {
    matches!(
        e,
        Error::Io {
            op: "simulated kill",
            ..
        }
    )
}

#[cfg(test)]
mod tests;
