//! Proving a key right on an encrypted store whose header is damaged.
//!
//! SQLCipher derives the page key from the passphrase and the salt in the file's first 16
//! bytes, and checks every page's HMAC with it. When those bytes are damaged (or the file is
//! cut shorter than a page), no page verifies and the right key looks exactly like a wrong
//! one — the store could then be neither repaired nor restored. Only proof may turn "wrong
//! key" into "damaged" (a damaged store may be rebuilt; a wrong key must never lead there), and
//! the proof comes from the store's backups:
//!
//! - every backup's manifest records the store's salt (a backup is a new SQLCipher file with a
//!   salt of its own, so its file cannot tell): the key with that salt verifies the HMAC of
//!   some page past page 1 — the pages themselves say the key is right;
//! - a file too short to hold any page past page 1 holds no data to protect: there, the key
//!   opening the store's own newest encrypted backup (a verified backup in its backup folder)
//!   is the proof.
//!
//! Anything else stays a key problem (14800020).

use std::path::Path;

use crate::backup;
use crate::store::EncryptionKey;
use crate::store::connection;

/// SQLCipher's page size, which peerlite never changes.
const PAGE: u64 = 4096;
/// Distinct recorded salts tried (a store has one unless it was re-created at its path).
const MAX_SALTS: usize = 4;

/// How `key` is proven to be the store's key although the file's own salt proves nothing;
/// `None` when it is not.
pub(crate) fn proven_elsewhere(
    db: &Path,
    key: &EncryptionKey,
    backup_dir: &Path,
) -> Option<String> {
    if connection::is_open_in_this_process(db) {
        return None; // open with its key elsewhere: the key question is settled there
    }
    let manifests: Vec<_> = backup::manifests(backup_dir)
        .into_iter()
        .filter(|(_, m)| m.encrypted)
        .collect();
    let len = std::fs::metadata(db).map_or(0, |m| m.len());
    if len >= 2 * PAGE {
        let mut tried: Vec<&str> = Vec::new();
        for (path, m) in &manifests {
            let Some(salt) = m.store_salt.as_deref() else {
                continue;
            };
            // Each try derives a key (PBKDF2) and reads the file: a few salts at most.
            if tried.contains(&salt) || tried.len() == MAX_SALTS {
                continue;
            }
            tried.push(salt);
            if connection::key_verifies_with_salt(db, key, salt) {
                return Some(format!(
                    "the key decrypts its pages with the salt its backup {} recorded; its header is damaged",
                    path.display()
                ));
            }
        }
        return None;
    }
    let (newest, _) = manifests.first()?;
    connection::open_file(newest, Some(key)).ok()?;
    Some(format!(
        "the file is too short ({len} bytes) to hold a page the key can be checked on, and the key opens the store's newest backup {}",
        newest.display()
    ))
}

/// The salts the store's backups recorded, newest first, each once.
pub(crate) fn recorded_salts(backup_dir: &Path) -> Vec<String> {
    let manifests = backup::manifests(backup_dir);
    let mut salts: Vec<String> = Vec::new();
    for (_, m) in manifests {
        if let Some(salt) = m.store_salt.filter(|s| connection::is_salt(s))
            && !salts.contains(&salt)
        {
            salts.push(salt);
        }
    }
    salts
}
