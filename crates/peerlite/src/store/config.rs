//! How a store is opened: where it lives, how secret it is, and what version it must be at.
//!
//! ```
//! use peerlite::{SecurityLevel, StoreConfig};
//!
//! let config = StoreConfig::named("RdbTest.db", "/data/app")?
//!     .security_level(SecurityLevel::S3)
//!     .encryption_key("correct horse battery staple")
//!     .version(2);
//! assert_eq!(config.path(), std::path::Path::new("/data/app/RdbTest.db"));
//! # Ok::<(), peerlite::Error>(())
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::clock::{Clock, SystemClock};
use crate::error::{Error, Result};

/// ArkData's data security labels, lowest to highest. Data labelled S_k is only ever sent to
/// devices whose level allows it (see the sync issue); stores at S3 and above are created
/// readable by their owner only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum SecurityLevel {
    /// Low: public data whose leak has little impact.
    #[default]
    S1,
    /// Medium.
    S2,
    /// High: personal data.
    S3,
    /// Critical: data whose leak causes serious harm.
    S4,
}

impl SecurityLevel {
    /// 1..=4.
    pub fn as_u8(self) -> u8 {
        match self {
            SecurityLevel::S1 => 1,
            SecurityLevel::S2 => 2,
            SecurityLevel::S3 => 3,
            SecurityLevel::S4 => 4,
        }
    }

    /// The level for 1..=4.
    pub fn from_u8(level: u8) -> Option<Self> {
        Some(match level {
            1 => SecurityLevel::S1,
            2 => SecurityLevel::S2,
            3 => SecurityLevel::S3,
            4 => SecurityLevel::S4,
            _ => return None,
        })
    }
}

impl fmt::Display for SecurityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "S{}", self.as_u8())
    }
}

/// A SQLCipher passphrase. Its `Debug` output never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct EncryptionKey(String);

impl EncryptionKey {
    /// A passphrase; SQLCipher derives the page key from it (PBKDF2-HMAC-SHA512).
    pub fn passphrase(secret: impl Into<String>) -> Self {
        EncryptionKey(secret.into())
    }

    pub(crate) fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EncryptionKey(***)")
    }
}

impl<S: Into<String>> From<S> for EncryptionKey {
    fn from(secret: S) -> Self {
        EncryptionKey::passphrase(secret)
    }
}

/// How hard a commit tries to reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// fsync at every commit (`synchronous=FULL`): a committed transaction survives a power cut.
    #[default]
    Full,
    /// fsync at checkpoints only (`synchronous=NORMAL`): always consistent, but the last
    /// commits before a power cut may be lost.
    Normal,
}

/// When to take automatic backups besides the one before each migration (see `backup`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoBackup {
    /// After every `n` committed write transactions.
    EveryCommits(u64),
    /// At the first commit at least `n` minutes after the last automatic backup.
    EveryMinutes(u64),
}

/// Everything needed to open a [`crate::RdbStore`].
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub(crate) path: PathBuf,
    pub(crate) security_level: SecurityLevel,
    pub(crate) key: Option<EncryptionKey>,
    pub(crate) read_only: bool,
    pub(crate) allow_rebuild: bool,
    pub(crate) version: Option<u32>,
    pub(crate) readers: usize,
    pub(crate) busy_timeout: Duration,
    pub(crate) durability: Durability,
    pub(crate) foreign_keys: bool,
    pub(crate) backup_dir: Option<PathBuf>,
    pub(crate) max_backups: Option<usize>,
    pub(crate) max_auto_backups: usize,
    pub(crate) backup_before_migration: bool,
    pub(crate) auto_backup: Option<AutoBackup>,
    pub(crate) kind: crate::StoreKind,
    pub(crate) for_recovery: bool,
    pub(crate) device_id: Option<String>,
    pub(crate) reidentify: bool,
    pub(crate) clock: std::sync::Arc<dyn Clock>,
    pub(crate) repair_pause: Option<Duration>,
    pub(crate) rebuild_from: Option<String>,
}

impl StoreConfig {
    /// A store at `path` (the file is created on first open unless read-only).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        StoreConfig {
            path: path.into(),
            security_level: SecurityLevel::S1,
            key: None,
            read_only: false,
            allow_rebuild: false,
            version: None,
            readers: 4,
            busy_timeout: Duration::from_secs(5),
            durability: Durability::Full,
            foreign_keys: true,
            backup_dir: None,
            max_backups: None,
            max_auto_backups: 3,
            backup_before_migration: true,
            auto_backup: None,
            kind: crate::StoreKind::Relational,
            for_recovery: false,
            device_id: None,
            reidentify: false,
            clock: std::sync::Arc::new(SystemClock),
            repair_pause: None,
            rebuild_from: None,
        }
    }

    /// ArkData's form: a file name (`RdbTest.db`) inside a directory.
    ///
    /// # Errors
    /// 14800010 when `name` is empty, has a path separator, or is `.`/`..`.
    pub fn named(name: &str, dir: impl AsRef<Path>) -> Result<Self> {
        check_file_name(name)?;
        Ok(StoreConfig::new(dir.as_ref().join(name)))
    }

    /// The data's security label (default S1).
    #[must_use]
    pub fn security_level(mut self, level: SecurityLevel) -> Self {
        self.security_level = level;
        self
    }

    /// Encrypts the store at rest with SQLCipher under this passphrase.
    #[must_use]
    pub fn encryption_key(mut self, key: impl Into<EncryptionKey>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Opens without a writer; writes and migrations fail with a clear error.
    #[must_use]
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Lets an open that finds the file corrupted rebuild it (from the newest good backup).
    #[must_use]
    pub fn allow_rebuild(mut self, allow: bool) -> Self {
        self.allow_rebuild = allow;
        self
    }

    /// The schema version the store must be at (`PRAGMA user_version`), ≥ 1.
    #[must_use]
    pub fn version(mut self, version: u32) -> Self {
        self.version = Some(version);
        self
    }

    /// Maximum number of reader connections (default 4, at least 1).
    #[must_use]
    pub fn readers(mut self, readers: usize) -> Self {
        self.readers = readers.max(1);
        self
    }

    /// How long a write waits for another process's lock before failing with busy (default 5 s).
    #[must_use]
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Commit durability (default [`Durability::Full`]).
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Enforces foreign keys (default on; migrations turn them off while they run).
    #[must_use]
    pub fn foreign_keys(mut self, enforce: bool) -> Self {
        self.foreign_keys = enforce;
        self
    }

    /// Where `backup(name)` writes (default: `backup/<database file name>/` beside the database).
    #[must_use]
    pub fn backup_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.backup_dir = Some(dir.into());
        self
    }

    /// Keep at most `n` named backups; the oldest go first (default: keep all).
    #[must_use]
    pub fn max_backups(mut self, n: usize) -> Self {
        self.max_backups = Some(n.max(1));
        self
    }

    /// Keep at most `n` automatic backups (default 3).
    #[must_use]
    pub fn max_auto_backups(mut self, n: usize) -> Self {
        self.max_auto_backups = n.max(1);
        self
    }

    /// Take an automatic backup before every migration of an existing database (default on).
    #[must_use]
    pub fn backup_before_migration(mut self, on: bool) -> Self {
        self.backup_before_migration = on;
        self
    }

    /// Take automatic backups on a schedule, in the background.
    #[must_use]
    pub fn auto_backup(mut self, schedule: AutoBackup) -> Self {
        self.auto_backup = Some(schedule);
        self
    }

    /// Opens even a store flagged as corrupted, to check it, back up what is readable or
    /// restore over it (a successful restore or check clears the flag). Nothing is rebuilt.
    #[must_use]
    pub fn for_recovery(mut self, on: bool) -> Self {
        self.for_recovery = on;
        self
    }

    /// With [`allow_rebuild`](StoreConfig::allow_rebuild): a damaged (or lost) store is rebuilt
    /// from this backup — a name in the backup directory or a path — instead of the newest
    /// verified one: a restore over a store that cannot be opened (`peerlite restore`). The
    /// backup is verified before anything is touched; if it fails, nothing changes and no
    /// other backup (nor an empty store) is put in its place. A healthy store is opened as it
    /// is.
    #[must_use]
    pub fn rebuild_from(mut self, backup: impl Into<String>) -> Self {
        self.rebuild_from = Some(backup.into());
        self
    }

    /// Sleeps this long between the steps of a rebuild, so crash tests can stop it at every
    /// step (`peerlite repair --step-pause-ms`). Not for production use.
    #[doc(hidden)]
    #[must_use]
    pub fn repair_step_pause(mut self, pause: Duration) -> Self {
        self.repair_pause = Some(pause);
        self
    }

    /// This device's id for sync (default: one made when the store is created, then kept).
    /// A store that never synced takes the id it is opened with; one that has synced under
    /// another id is refused (17040009) unless [`reidentify`](StoreConfig::reidentify) is set.
    #[must_use]
    pub fn device_id(mut self, id: impl Into<String>) -> Self {
        self.device_id = Some(id.into());
        self
    }

    /// Lets an open give a store that has synced under another device id the id of
    /// [`device_id`](StoreConfig::device_id); it then starts a new epoch, so peers read it
    /// from the start as a device they have never met.
    #[must_use]
    pub fn reidentify(mut self, yes: bool) -> Self {
        self.reidentify = yes;
        self
    }

    /// The wall clock behind the store's hybrid logical clock (tests drive a `ManualClock`).
    #[must_use]
    pub fn clock(mut self, clock: std::sync::Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True when a key is set.
    pub fn is_encrypted(&self) -> bool {
        self.key.is_some()
    }

    /// The configured version, if any.
    pub fn target_version(&self) -> Option<u32> {
        self.version
    }

    /// The configured security level.
    pub fn level(&self) -> SecurityLevel {
        self.security_level
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.version == Some(0) {
            return Err(Error::invalid(
                crate::StoreKind::Relational,
                "version must be >= 1, was 0 (version 0 means \"not created yet\")",
            ));
        }
        if self.path.as_os_str().is_empty() {
            return Err(Error::InvalidPath {
                path: self.path.clone(),
                reason: "empty path".into(),
            });
        }
        if self.path.is_dir() {
            return Err(Error::InvalidPath {
                path: self.path.clone(),
                reason: "is a directory".into(),
            });
        }
        Ok(())
    }
}

/// Refuses names that would escape their directory.
pub(crate) fn check_file_name(name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.contains('/')
        || name.contains('\\')
        || name.contains('\0');
    if bad {
        return Err(Error::InvalidPath {
            path: PathBuf::from(name),
            reason: "expected a plain file name without path separators or `..`".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_rejects_traversal() {
        for bad in ["", "..", "a/b.db", "../x.db", "a\\b"] {
            let err = StoreConfig::named(bad, "/tmp").unwrap_err();
            assert_eq!(err.code(), 14800010, "{bad}");
        }
        assert!(StoreConfig::named("ok.db", "/tmp").is_ok());
    }

    #[test]
    fn version_zero_is_invalid() {
        let err = StoreConfig::new("/tmp/x.db")
            .version(0)
            .validate()
            .unwrap_err();
        assert_eq!(err.code(), 14800001);
    }

    #[test]
    fn key_is_never_printed() {
        let c = StoreConfig::new("x.db").encryption_key("hunter2");
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn levels_order_and_round_trip() {
        assert!(SecurityLevel::S1 < SecurityLevel::S4);
        for l in 1..=4 {
            assert_eq!(SecurityLevel::from_u8(l).map(SecurityLevel::as_u8), Some(l));
        }
        assert_eq!(SecurityLevel::from_u8(5), None);
    }
}
