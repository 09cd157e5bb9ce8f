//! The manifest written beside every backup: what it is a copy of, and how to tell that it is
//! still intact (size, BLAKE3 checksum of the whole file, schema hash).

use std::io::Read;
use std::path::Path;

use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Manifest format version.
pub(crate) const FORMAT: u32 = 1;

/// `NAME.manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Manifest format version (1).
    pub format: u32,
    /// The backup's name (its file name).
    pub name: String,
    /// When the snapshot was taken, in milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    /// The same instant in RFC 3339.
    pub created: String,
    /// The database it was taken from.
    pub source: String,
    /// The identity of that database (kept in `peerlite_meta`).
    pub store_id: String,
    /// "relational" or "key_value".
    pub kind: String,
    /// The schema version (`user_version`) in the backup, as SQLite keeps it (signed: another
    /// tool may have set it negative).
    pub user_version: i64,
    /// Page size in bytes.
    pub page_size: u32,
    /// Pages copied.
    pub page_count: u64,
    /// Size of the backup file in bytes.
    pub file_size: u64,
    /// `blake3:<hex>` of the whole backup file.
    pub checksum: String,
    /// The backup file's modification time when it was checksummed, in nanoseconds since
    /// the Unix epoch (absent in manifests written before it was recorded): a listing compares
    /// it, with the size, to tell a file written since from the one that was verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_mtime_ns: Option<u64>,
    /// `blake3:<hex>` of the schema (`sqlite_schema` in order).
    pub schema_hash: String,
    /// True when the backup is encrypted (with the store's key).
    pub encrypted: bool,
    /// The key-derivation salt of the *store* (hex; encrypted stores only). A backup is a new
    /// SQLCipher file with a salt of its own, so this is the one record of the store's: with
    /// it the store's key can still be proven on its pages, and its pages read, when its
    /// header (where SQLCipher keeps the salt) is damaged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_salt: Option<String>,
    /// True for peerlite's automatic backups.
    pub automatic: bool,
    /// The peerlite version that wrote it.
    pub peerlite_version: String,
    /// The check the backup passed before this manifest was written ([`CHECKED`] for every
    /// backup peerlite takes). Absent in manifests written before it was recorded, or by
    /// another tool: restore then runs the full `integrity_check`, since the checksum proves
    /// only that the file is the one described, not that it was sound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked: Option<String>,
}

/// What [`Manifest::checked`] says of a backup that passed `quick_check` before its manifest
/// was written.
pub const CHECKED: &str = "quick_check";

/// A file's modification time in nanoseconds since the Unix epoch, when the file system
/// keeps one.
pub(crate) fn mtime_ns(meta: &std::fs::Metadata) -> Option<u64> {
    let since = meta
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    u64::try_from(since.as_nanos()).ok()
}

/// The largest manifest read: they are a few hundred bytes.
const MAX_MANIFEST_BYTES: u64 = 1 << 20;

impl Manifest {
    /// Reads and parses a manifest.
    pub(crate) fn read(path: &Path) -> Result<Manifest> {
        use std::io::Read;
        let io = |e| Error::io("reading backup manifest", path, e);
        let invalid = |reason: String| Error::BackupInvalid {
            path: path.to_path_buf(),
            reason,
        };
        // A manifest is a few hundred bytes: anything else (a device such as /dev/zero, a
        // FIFO, a huge file) is refused before it is read, and the read itself is bounded.
        let file = std::fs::File::open(path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        if !meta.is_file() {
            return Err(invalid("the manifest is not a regular file".into()));
        }
        if meta.len() > MAX_MANIFEST_BYTES {
            return Err(invalid(format!(
                "the manifest is {} bytes; a manifest is at most {MAX_MANIFEST_BYTES}",
                meta.len()
            )));
        }
        let mut text = String::new();
        file.take(MAX_MANIFEST_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(io)?;
        if text.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(invalid("the manifest grew while it was read".into()));
        }
        let manifest: Manifest = serde_json::from_str(&text).map_err(|e| Error::BackupInvalid {
            path: path.to_path_buf(),
            reason: format!("the manifest is not valid: {e}"),
        })?;
        if manifest.format > FORMAT {
            return Err(Error::BackupInvalid {
                path: path.to_path_buf(),
                reason: format!(
                    "manifest format {} is newer than this peerlite understands ({FORMAT})",
                    manifest.format
                ),
            });
        }
        Ok(manifest)
    }

    /// Writes the manifest to `path` and flushes it to disk.
    pub(crate) fn write(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::io("encoding manifest", path, std::io::Error::other(e)))?;
        write_synced(path, &text)
    }
}

/// Writes `bytes` to `path` and fsyncs the file.
pub(crate) fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut file = std::fs::File::create(path).map_err(|e| Error::io("creating", path, e))?;
    file.write_all(bytes)
        .map_err(|e| Error::io("writing", path, e))?;
    file.sync_all().map_err(|e| Error::io("syncing", path, e))
}

/// Replaces `path` whole with `bytes`: a synced temporary file renamed over it, the directory
/// synced. A crash leaves the old content or the new, never a mix.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    write_synced(&tmp, bytes)?;
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io("renaming", path, e));
    }
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Fsyncs a directory, so renames inside it survive a power cut.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    #[cfg(unix)]
    {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io("syncing directory", dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// `blake3:<hex>` of a file's bytes, and its size.
pub(crate) fn checksum_file(path: &Path) -> Result<(String, u64)> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io("reading", path, e))?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| Error::io("reading", path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((format!("blake3:{}", hasher.finalize().to_hex()), size))
}

/// `blake3:<hex>` of the schema: every `sqlite_schema` row in order.
pub(crate) fn schema_hash(conn: &Connection, path: &Path) -> Result<String> {
    let mut hasher = blake3::Hasher::new();
    let mut stmt = conn
        .prepare(
            "SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_schema ORDER BY type, name",
        )
        .map_err(|e| Error::from_sqlite(e, path))?;
    let mut rows = stmt.query([]).map_err(|e| Error::from_sqlite(e, path))?;
    while let Some(row) = rows.next().map_err(|e| Error::from_sqlite(e, path))? {
        for i in 0..4 {
            let text: String = row.get(i).map_err(|e| Error::from_sqlite(e, path))?;
            hasher.update(text.as_bytes());
            hasher.update(&[0]);
        }
    }
    Ok(format!("blake3:{}", hasher.finalize().to_hex()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_changes_with_one_flipped_bit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, vec![7u8; 3 << 20]).unwrap();
        let (a, size) = checksum_file(&p).unwrap();
        assert_eq!(size, 3 << 20);
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[2 << 20] ^= 1;
        std::fs::write(&p, bytes).unwrap();
        assert_ne!(checksum_file(&p).unwrap().0, a);
    }

    #[test]
    fn a_newer_format_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.json");
        let m = Manifest {
            format: FORMAT + 1,
            name: "x".into(),
            created_at_ms: 0,
            created: String::new(),
            source: String::new(),
            store_id: String::new(),
            kind: "relational".into(),
            user_version: 0,
            page_size: 4096,
            page_count: 1,
            file_size: 4096,
            checksum: String::new(),
            file_mtime_ns: None,
            schema_hash: String::new(),
            encrypted: false,
            store_salt: None,
            automatic: false,
            peerlite_version: String::new(),
            checked: None,
        };
        m.write(&p).unwrap();
        assert_eq!(Manifest::read(&p).unwrap_err().code(), 17020002);
        std::fs::write(&p, "{ not json").unwrap();
        assert_eq!(Manifest::read(&p).unwrap_err().code(), 17020002);
    }
}
