//! Where backups live and what they may be called.
//!
//! The default directory is `backup/<database file name>/` beside the database, so the
//! backups of two databases in one directory never collide. Names are plain file names;
//! `auto-…` belongs to peerlite's automatic backups and `pre-restore` to the safety copy a
//! restore takes first.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
use crate::store::StoreConfig;
use crate::store::config::check_file_name;

/// Prefix of automatic backups (before migrations, on a schedule); `delete_backup` refuses them.
pub const AUTO_PREFIX: &str = "auto-";
/// The safety backup a restore takes of the database it replaces (the newest one; earlier
/// ones are kept as `pre-restore-<time>`).
pub const PRE_RESTORE: &str = "pre-restore";
const TMP_SUFFIX: &str = ".tmp";
const MANIFEST_SUFFIX: &str = ".manifest.json";

/// The directory backups of this store go to by default.
pub(crate) fn default_dir(config: &StoreConfig) -> PathBuf {
    if let Some(dir) = &config.backup_dir {
        return dir.clone();
    }
    let db = config.path();
    let parent = db.parent().unwrap_or(Path::new(""));
    let file = db
        .file_name()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("database"));
    parent.join("backup").join(file)
}

/// Refuses names that are not plain file names or that end like peerlite's own files.
pub(crate) fn check_name(name: &str) -> Result<()> {
    // ArkData reports a bad backup name as an invalid path (14800010).
    let bad = |why: String| {
        Err(Error::InvalidPath {
            path: PathBuf::from(name),
            reason: format!("not a usable backup name: {why}"),
        })
    };
    if check_file_name(name).is_err() {
        return bad("a backup name is a plain file name, without `/`, `\\` or `..`".into());
    }
    // The manifest and temporary files add their suffixes to the name, and file systems
    // take 255 bytes at most.
    if name.len() > MAX_NAME_BYTES {
        return bad(format!("longer than {MAX_NAME_BYTES} bytes"));
    }
    if name.ends_with(TMP_SUFFIX) || name.ends_with(MANIFEST_SUFFIX) {
        return bad(format!(
            "it may not end in {TMP_SUFFIX} or {MANIFEST_SUFFIX}"
        ));
    }
    Ok(())
}

/// The longest backup name, leaving room for the suffixes of its companion files.
pub(crate) const MAX_NAME_BYTES: usize = 200;

/// `check_name`, and refuses the reserved names for backups a caller asks for.
pub(crate) fn check_user_name(name: &str) -> Result<()> {
    check_name(name)?;
    if name.starts_with(AUTO_PREFIX) {
        return Err(Error::ReservedBackupName {
            name: name.to_owned(),
            reason: "auto-… names are peerlite's automatic backups",
        });
    }
    if name.starts_with(PRE_RESTORE) {
        return Err(Error::ReservedBackupName {
            name: name.to_owned(),
            reason: "pre-restore… names are the safety copies restores take",
        });
    }
    Ok(())
}

/// True for automatic backups, which only peerlite deletes.
pub(crate) fn is_automatic(name: &str) -> bool {
    name.starts_with(AUTO_PREFIX)
}

/// `path` with `suffix` appended to its file name: `a.db` and `-wal` give `a.db-wal`.
pub(crate) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut os = path.as_os_str().to_owned();
    os.push(suffix);
    PathBuf::from(os)
}

/// `NAME.manifest.json` beside the backup `NAME`.
pub(crate) fn manifest_path(backup: &Path) -> PathBuf {
    with_suffix(backup, MANIFEST_SUFFIX)
}

/// `NAME.<pid>-<n>.tmp`: a temporary file no other writer (thread or process) uses, so two
/// backups taken at the same moment never write into each other.
pub(crate) fn unique_tmp_path(path: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    with_suffix(path, &format!(".{}-{n}{TMP_SUFFIX}", std::process::id()))
}

/// The backup a manifest describes, or `None` for other files.
pub(crate) fn backup_of_manifest(manifest: &Path) -> Option<PathBuf> {
    let name = manifest.file_name()?.to_str()?;
    let stem = name.strip_suffix(MANIFEST_SUFFIX)?;
    Some(manifest.with_file_name(stem))
}

/// True for leftovers of an interrupted backup.
pub(crate) fn is_tmp(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(TMP_SUFFIX))
}

/// A name for a backup taken now: `backup-20261121T080102.123Z` (sorts by time).
pub fn default_backup_name() -> String {
    stamped("backup-", now_ms())
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `(year, month, day, hour, minute, second, millisecond)` in UTC.
fn civil(ms: u64) -> (i64, u32, u32, u32, u32, u32, u32) {
    let secs = (ms / 1000) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        month,
        day,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
        (ms % 1000) as u32,
    )
}

/// RFC 3339 in UTC with milliseconds: `2026-11-21T08:01:02.123Z`.
pub(crate) fn rfc3339(ms: u64) -> String {
    let (y, mo, d, h, mi, s, milli) = civil(ms);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

/// A sortable name: `{prefix}20261121T080102.123Z`.
pub(crate) fn stamped(prefix: &str, ms: u64) -> String {
    let (y, mo, d, h, mi, s, milli) = civil(ms);
    format!("{prefix}{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}.{milli:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_civil_time() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_248_062_123), "2026-11-21T08:01:02.123Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(
            stamped("auto-", 1_795_248_062_123),
            "auto-20261121T080102.123Z"
        );
    }

    #[test]
    fn names_are_checked() {
        assert!(check_user_name("BK001").is_ok());
        for bad in ["../x", "a/b", "", "..", "x.tmp", "x.manifest.json"] {
            assert_eq!(check_name(bad).unwrap_err().code(), 14800010, "{bad}");
        }
        assert_eq!(check_user_name("auto-1").unwrap_err().code(), 17020006);
        assert_eq!(check_user_name("pre-restore").unwrap_err().code(), 17020006);
        assert_eq!(
            check_user_name("pre-restore-20261121T080102.123Z")
                .unwrap_err()
                .code(),
            17020006
        );
    }

    #[test]
    fn default_dir_is_per_database() {
        let c = StoreConfig::new("/data/app/RdbTest.db");
        assert_eq!(
            default_dir(&c),
            PathBuf::from("/data/app/backup/RdbTest.db")
        );
        assert_eq!(
            manifest_path(Path::new("/b/BK")),
            PathBuf::from("/b/BK.manifest.json")
        );
        assert_eq!(
            backup_of_manifest(Path::new("/b/BK.manifest.json")),
            Some(PathBuf::from("/b/BK"))
        );
        assert!(is_tmp(Path::new("/b/BK.tmp")));
    }
}
