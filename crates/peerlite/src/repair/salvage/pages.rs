//! Where salvage gets its pages from. A plaintext database is read straight from its file
//! (and its WAL), so nothing SQLite would refuse — a damaged header, a file cut short — stops
//! it. An encrypted one is read through SQLCipher's `sqlite_dbpage`, which decrypts and checks
//! each page's HMAC; pages SQLCipher's own check finds damaged are never asked for, because a
//! page that fails to decrypt leaves the connection unable to decrypt anything after it.
//! Neither ever writes to the damaged files.

use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::wal::{self, WalIndex};
use crate::error::{Error, Result};
use crate::store::EncryptionKey;

/// One page as read: `bytes` is always a whole page; only `valid` of them came from the file
/// (fewer when the file ends inside the page).
pub(super) struct Page {
    pub bytes: Vec<u8>,
    pub valid: usize,
}

/// How a damaged database's pages are laid out.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Layout {
    pub page_size: usize,
    /// Bytes reserved at the end of each page (SQLCipher keeps its IV and HMAC there).
    pub reserved: usize,
    /// Pages that may be asked for: 1..=page_count.
    pub page_count: u32,
}

/// The pages of a damaged database.
pub(super) trait PageSource {
    fn layout(&self) -> Layout;
    /// Page `pgno`, one of 1..=page_count, or `None` when it cannot be read (fails its HMAC,
    /// I/O error).
    fn read_in_range(&mut self, pgno: u32) -> Option<Page>;
    /// SQLite connections (and re-attachments) opened on the damaged file so far.
    fn connections(&self) -> u64;
    /// Whether page 1 (the schema) could not be read and was stood in for (see
    /// [`CipherPages::open`]): the schema must then come from elsewhere.
    fn schema_lost(&self) -> bool {
        false
    }

    /// The page, or `None` when it cannot be read (past the end, fails its HMAC, I/O error).
    fn read(&mut self, pgno: u32) -> Option<Page> {
        if pgno == 0 || pgno > self.layout().page_count {
            return None;
        }
        self.read_in_range(pgno)
    }
}

/// SQLite's header page size field: a power of two from 512 to 65536 (1 means 65536). Only
/// trusted when the header still looks like one: the magic string, and the three payload
/// fractions every SQLite file has (64, 32, 32).
fn header_page_size(header: &[u8]) -> Option<usize> {
    if header.get(..16) != Some(b"SQLite format 3\0".as_slice())
        || header.get(21..24) != Some([64u8, 32, 32].as_slice())
    {
        return None;
    }
    let raw = usize::from(u16::from_be_bytes([*header.get(16)?, *header.get(17)?]));
    let size = if raw == 1 { 65536 } else { raw };
    ((512..=65536).contains(&size) && size.is_power_of_two()).then_some(size)
}

/// A plaintext database file and its WAL, read in place.
pub(super) struct FilePages {
    db: Option<File>,
    wal_file: Option<File>,
    wal: Option<WalIndex>,
    layout: Layout,
}

impl FilePages {
    pub fn open(db: &Path, wal_path: &Path) -> Result<FilePages> {
        let mut file = match File::open(db) {
            Ok(f) => Some(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io("reading the damaged database", db, e)),
        };
        let len = file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map_or(0, |m| m.len());
        let mut header = vec![0u8; 100];
        let header = match file.as_mut().map(|f| f.read_exact(&mut header)) {
            Some(Ok(())) => Some(header),
            _ => None,
        };
        let wal = wal::read(wal_path);
        let from_header = header.as_deref().and_then(header_page_size);
        // A header that lost its page size falls back on the WAL's, then on 4096 (SQLite's
        // and SQLCipher's default, which peerlite never changes).
        let page_size = from_header
            .or(wal.as_ref().map(|w| w.page_size))
            .unwrap_or(4096);
        let wal = wal.filter(|w| w.page_size == page_size);
        let reserved = match (from_header, header.as_deref()) {
            (Some(_), Some(h)) => usize::from(h[20]),
            _ => 0,
        };
        let file_pages = u32::try_from(len.div_ceil(page_size as u64)).unwrap_or(u32::MAX);
        let page_count = wal.as_ref().map_or(file_pages, |w| w.db_pages);
        let wal_file = match wal {
            Some(_) => File::open(wal_path).ok(),
            None => None,
        };
        Ok(FilePages {
            db: file,
            wal_file,
            wal,
            layout: Layout {
                page_size,
                reserved,
                page_count,
            },
        })
    }
}

fn read_at(file: &mut File, offset: u64, buf: &mut [u8]) -> usize {
    if file.seek(SeekFrom::Start(offset)).is_err() {
        return 0;
    }
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    got
}

impl PageSource for FilePages {
    fn layout(&self) -> Layout {
        self.layout
    }

    fn read_in_range(&mut self, pgno: u32) -> Option<Page> {
        let page_size = self.layout.page_size;
        let mut bytes = vec![0u8; page_size];
        let in_wal = self.wal.as_ref().and_then(|w| w.frames.get(&pgno).copied());
        let valid = match (in_wal, self.wal_file.as_mut(), self.db.as_mut()) {
            (Some(offset), Some(wal), _) => read_at(wal, offset, &mut bytes),
            (_, _, Some(db)) => read_at(db, u64::from(pgno - 1) * page_size as u64, &mut bytes),
            _ => 0,
        };
        (valid > 0).then_some(Page { bytes, valid })
    }

    fn connections(&self) -> u64 {
        0
    }
}

/// `file:` URI of a path, so a read-only ATTACH can name it whatever characters it has.
/// Without a WAL beside it the file is opened `immutable`: SQLite then creates no WAL or
/// shared-memory file beside it either.
fn file_uri(path: &Path, immutable: bool) -> String {
    let mut uri = String::from("file:");
    for b in path.as_os_str().as_encoded_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'.' | b'_' | b'-' | b'~' => {
                uri.push(char::from(*b));
            }
            _ => uri.push_str(&format!("%{b:02X}")),
        }
    }
    uri.push_str(if immutable {
        "?mode=ro&immutable=1"
    } else {
        "?mode=ro"
    });
    uri
}

/// An encrypted database read through SQLCipher, one page at a time.
pub(super) struct CipherPages {
    conn: Connection,
    uri: String,
    /// The schema pages are read from: `main`, then `s1`, `s2`, … after a page poisoned the
    /// one before (an ATTACH reuses the key derived once: no second PBKDF2).
    schema: String,
    attached: u64,
    /// Pages SQLCipher's HMAC check refused (and pages that failed to decrypt since).
    bad: HashSet<u32>,
    page1: Option<Vec<u8>>,
    layout: Layout,
    dead: bool,
    /// The copy read instead of the damaged file when its page 1 did not decrypt (removed
    /// when done).
    scratch: Option<std::path::PathBuf>,
}

impl Drop for CipherPages {
    fn drop(&mut self) {
        if let Some(scratch) = &self.scratch {
            let _ = std::fs::remove_file(scratch);
        }
    }
}

/// SQLCipher's page size, which peerlite never changes.
const CIPHER_PAGE: u64 = 4096;

impl CipherPages {
    /// The encrypted database `db` (and its WAL), read through SQLCipher with `key`.
    ///
    /// When page 1 does not decrypt — its body damaged, or the salt in its first 16 bytes —
    /// SQLCipher refuses every page, although each of the others carries its own HMAC and
    /// decrypts with the right key and salt. Then the other pages are read from a copy of
    /// the file whose page 1 is a fresh one SQLCipher made with the key and a salt — the
    /// file's own, or one its backups recorded (`salts`) — in plaintext-header mode, where
    /// the salt is given rather than read, and that says how many pages there are. The first
    /// salt under which pages past 1 verify is used. The copy (at `scratch`, removed when done)
    /// costs the file's size on disk; the damaged file's WAL is not read in this mode. The
    /// schema page is gone with page 1: [`PageSource::schema_lost`] says so.
    pub fn open(
        db: &Path,
        wal_path: &Path,
        key: &EncryptionKey,
        salts: &[String],
        scratch: &Path,
    ) -> Result<CipherPages> {
        match CipherPages::open_in_place(db, wal_path, key)? {
            Some(pages) => Ok(pages),
            None => CipherPages::transplanted(db, key, salts, scratch),
        }
    }

    /// [`CipherPages::open`] when page 1 decrypts; `None` when it does not.
    fn open_in_place(
        db: &Path,
        wal_path: &Path,
        key: &EncryptionKey,
    ) -> Result<Option<CipherPages>> {
        // Which pages the WAL has newer copies of: their damaged file copies do not matter.
        let in_wal: HashSet<u32> = wal::read(wal_path)
            .map(|w| w.frames.into_keys().collect())
            .unwrap_or_default();
        let uri = file_uri(db, !wal_path.exists());
        let sql = |e| Error::from_sqlite(e, db);
        let conn = Connection::open_with_flags(
            &uri,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql)?;
        let _ = conn.execute_batch("PRAGMA cipher_log_level = NONE");
        conn.pragma_update(None, "key", key.secret()).map_err(sql)?;
        // A file cut short has fewer pages than its header says; SQLite reads it anyway only
        // with writable_schema (which also lets a damaged schema load).
        conn.execute_batch("PRAGMA writable_schema = ON")
            .map_err(sql)?;
        let report: Vec<String> = conn
            .prepare("PRAGMA cipher_integrity_check")
            .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
            .map_err(sql)?;
        let bad: HashSet<u32> = report
            .iter()
            .filter_map(|line| page_named(line))
            .filter(|p| !in_wal.contains(p))
            .collect();
        let mut pages = CipherPages {
            conn,
            uri,
            schema: "main".into(),
            attached: 0,
            bad,
            page1: None,
            layout: Layout::default(),
            dead: false,
            scratch: None,
        };
        let Some(page1) = pages.fetch(1) else {
            return Ok(None);
        };
        pages.layout.page_size = page1.len();
        pages.layout.reserved = usize::from(page1.get(20).copied().unwrap_or(0));
        pages.layout.page_count = pages
            .conn
            .query_row("PRAGMA page_count", [], |r| r.get::<_, i64>(0))
            .map_or(0, |n| u32::try_from(n).unwrap_or(0));
        pages.page1 = Some(page1);
        Ok(Some(pages))
    }

    /// Page 1 did not decrypt: the other pages, read from a copy with a stand-in page 1.
    fn transplanted(
        db: &Path,
        key: &EncryptionKey,
        salts: &[String],
        scratch: &Path,
    ) -> Result<CipherPages> {
        let unreadable = |why: &str| Error::Corrupted {
            path: db.to_path_buf(),
            detail: format!(
                "page 1 cannot be decrypted with this key, and {why}: nothing can be salvaged"
            ),
            sqlite: None,
            kind: crate::StoreKind::Relational,
        };
        let len = std::fs::metadata(db)
            .map_err(|e| Error::io("reading the damaged database", db, e))?
            .len();
        let pages = len / CIPHER_PAGE;
        if pages < 2 {
            return Err(unreadable("the file holds no other whole page"));
        }
        let page_count = u32::try_from(pages).map_err(|_| unreadable("the file is too large"))?;
        let mut own = [0u8; 16];
        File::open(db)
            .and_then(|mut f| f.read_exact(&mut own))
            .map_err(|e| Error::io("reading the damaged database", db, e))?;
        let own: String = own.iter().map(|b| format!("{b:02x}")).collect();
        let mut candidates = vec![own];
        candidates.extend(
            salts
                .iter()
                .filter(|s| crate::store::connection::is_salt(s))
                .cloned(),
        );
        candidates.dedup();
        for salt in &candidates {
            let made = make_scratch(db, key, salt, page_count, scratch);
            let conn = made.and_then(|()| {
                crate::store::connection::open_with_salt(scratch, key, salt).ok_or_else(|| {
                    Error::io(
                        "opening the salvage copy",
                        scratch,
                        std::io::Error::other("refused"),
                    )
                })
            });
            let conn = match conn {
                Ok(conn) => conn,
                Err(e) => {
                    let _ = std::fs::remove_file(scratch);
                    return Err(e);
                }
            };
            let report: Vec<String> = conn
                .prepare("PRAGMA cipher_integrity_check")
                .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
                .unwrap_or_default();
            let bad: HashSet<u32> = report.iter().filter_map(|l| page_named(l)).collect();
            if (2..=page_count).all(|p| bad.contains(&p)) {
                drop(conn);
                let _ = std::fs::remove_file(scratch);
                continue; // not the salt these pages were written with
            }
            let _ = conn.execute_batch("PRAGMA writable_schema = ON");
            let mut pages = CipherPages {
                conn,
                uri: file_uri(scratch, true),
                schema: "main".into(),
                attached: 0,
                bad,
                page1: None,
                layout: Layout::default(),
                dead: false,
                scratch: Some(scratch.to_path_buf()),
            };
            let page1 = pages
                .fetch(1)
                .ok_or_else(|| unreadable("its stand-in did not read"))?;
            pages.layout = Layout {
                page_size: page1.len(),
                reserved: usize::from(page1.get(20).copied().unwrap_or(0)),
                page_count,
            };
            // The stand-in holds no schema: it is not the store's page 1.
            pages.bad.insert(1);
            return Ok(pages);
        }
        Err(unreadable(
            "no salt (its own, or one its backups recorded) decrypts its other pages",
        ))
    }
}

/// Writes `scratch`: a page 1 SQLCipher makes with `key` and `salt` in plaintext-header mode
/// (its first 32 bytes stay plain, so the page count at 28 is set after), then the damaged
/// file's pages 2..=`pages`.
fn make_scratch(
    db: &Path,
    key: &EncryptionKey,
    salt: &str,
    pages: u32,
    scratch: &Path,
) -> Result<()> {
    let fresh = crate::backup::naming::with_suffix(scratch, "-page1");
    let _ = std::fs::remove_file(&fresh);
    let made = (|| {
        let conn = Connection::open(&fresh).map_err(|e| Error::from_sqlite(e, &fresh))?;
        let _ = conn.execute_batch("PRAGMA cipher_log_level = NONE");
        conn.pragma_update(None, "key", key.secret())
            .map_err(|e| Error::from_sqlite(e, &fresh))?;
        conn.execute_batch(&format!(
            "PRAGMA cipher_plaintext_header_size = 32; PRAGMA cipher_salt = \"x'{salt}'\"; PRAGMA user_version = 1"
        ))
        .map_err(|e| Error::from_sqlite(e, &fresh))?;
        drop(conn);
        std::fs::read(&fresh).map_err(|e| Error::io("reading", &fresh, e))
    })();
    let _ = std::fs::remove_file(&fresh);
    let mut page1 = made?;
    page1.truncate(CIPHER_PAGE as usize);
    if page1.len() != CIPHER_PAGE as usize {
        return Err(Error::io(
            "making a stand-in page 1",
            &fresh,
            std::io::Error::other("short"),
        ));
    }
    page1[28..32].copy_from_slice(&pages.to_be_bytes());
    let copied = (|| {
        use std::io::Write;
        let mut out = File::create(scratch)?;
        out.write_all(&page1)?;
        let mut from = File::open(db)?;
        from.seek(SeekFrom::Start(CIPHER_PAGE))?;
        std::io::copy(&mut from.take(u64::from(pages - 1) * CIPHER_PAGE), &mut out)?;
        out.flush()
    })();
    copied.map_err(|e| {
        let _ = std::fs::remove_file(scratch);
        Error::io("copying the damaged pages for salvage", scratch, e)
    })
}

impl CipherPages {
    /// Reads one page through the current schema; a page that fails to decrypt comes back
    /// zeroed and leaves the codec in error, which `cipher_status` reveals.
    fn fetch(&mut self, pgno: u32) -> Option<Vec<u8>> {
        if self.dead || self.bad.contains(&pgno) {
            return None;
        }
        let data: rusqlite::Result<Vec<u8>> = self.conn.query_row(
            "SELECT data FROM sqlite_dbpage(?1) WHERE pgno = ?2",
            rusqlite::params![self.schema, pgno],
            |r| r.get(0),
        );
        match data {
            Ok(data) if data.iter().any(|b| *b != 0) => Some(data),
            Ok(data) if self.codec_ok() => Some(data),
            Err(rusqlite::Error::QueryReturnedNoRows) => None,
            _ => {
                self.bad.insert(pgno);
                self.reattach();
                None
            }
        }
    }

    fn codec_ok(&self) -> bool {
        let pragma = format!("PRAGMA \"{}\".cipher_status", self.schema);
        self.conn
            .query_row(&pragma, [], |r| r.get::<_, String>(0))
            .is_ok_and(|s| s == "1")
    }

    /// A fresh codec for the same file: ATTACH without a key takes the main database's
    /// derived key, so this costs a file open, not a key derivation.
    fn reattach(&mut self) {
        self.attached += 1;
        let name = format!("s{}", self.attached);
        if self.schema != "main" {
            let _ = self
                .conn
                .execute_batch(&format!("DETACH DATABASE \"{}\"", self.schema));
        }
        match self.conn.execute(
            "ATTACH DATABASE ?1 AS ?2",
            rusqlite::params![self.uri, name],
        ) {
            Ok(_) => self.schema = name,
            Err(e) => {
                tracing::warn!(%e, "salvage cannot re-open the damaged database; stopping");
                self.dead = true;
            }
        }
    }
}

/// The page number in one line of `PRAGMA cipher_integrity_check`.
fn page_named(line: &str) -> Option<u32> {
    let (_, rest) = line.split_once("page ")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

impl PageSource for CipherPages {
    fn layout(&self) -> Layout {
        self.layout
    }

    fn read_in_range(&mut self, pgno: u32) -> Option<Page> {
        let bytes = match (pgno, &self.page1) {
            (1, Some(p)) => p.clone(),
            _ => self.fetch(pgno)?,
        };
        let valid = bytes.len();
        (valid == self.layout.page_size).then_some(Page { bytes, valid })
    }

    fn connections(&self) -> u64 {
        1 + self.attached
    }

    fn schema_lost(&self) -> bool {
        self.scratch.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_escape_what_sqlite_would_read_as_syntax() {
        assert_eq!(
            file_uri(Path::new("/a b/c?d#e%f.db"), false),
            "file:/a%20b/c%3Fd%23e%25f.db?mode=ro"
        );
        assert_eq!(
            file_uri(Path::new("/q/a.db"), true),
            "file:/q/a.db?mode=ro&immutable=1"
        );
    }

    #[test]
    fn integrity_lines_name_their_page() {
        assert_eq!(page_named("HMAC verification failed for page 10"), Some(10));
        assert_eq!(
            page_named("page 8 has an invalid size of 100 bytes (expected 4096 bytes)"),
            Some(8)
        );
        assert_eq!(page_named("unable to derive keys"), None);
    }
}
