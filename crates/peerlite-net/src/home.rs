//! A device home: the directory that holds one device's identity and trust store.
//!
//! ```text
//! HOME/            0700
//!   device.key     0600  the private key (PKCS#8 PEM), written once, never replaced
//!   device.json    0600  {"format":1,"id":…,"name":…,"level":"SL1"}
//!   trust.json     0600  the trusted devices (see `TrustStore`)
//! ```
//!
//! The key is Ed25519: rustls verifies it with the ring provider and rcgen signs certificates
//! with it; its signatures are deterministic (no per-signature randomness to get wrong), and its
//! public key has one 32-byte encoding, so the id derived from it is unambiguous. P-256 would do
//! the same job with a larger key and randomised signatures.
//!
//! `init` writes the key first (no-clobber) and `device.json` second, each atomically; an init
//! interrupted between the two is finished by running it again.
//!
//! ```
//! use peerlite_net::{DeviceLevel, Home};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let home = Home::init(dir.path().join("home"), Some("laptop"), DeviceLevel::Sl3).unwrap();
//! let again = Home::open(dir.path().join("home")).unwrap();
//! assert_eq!(again.id(), home.id());
//! assert_eq!(again.name(), "laptop");
//! assert_eq!(again.level(), DeviceLevel::Sl3);
//! // A second init never replaces the key.
//! let err = Home::init(dir.path().join("home"), None, DeviceLevel::Sl1).unwrap_err();
//! assert_eq!(err.code(), 17060011);
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fsutil;
use crate::{DeviceId, DeviceLevel, TrustStore};

const KEY_FILE: &str = "device.key";
const DEVICE_FILE: &str = "device.json";
const FORMAT: u32 = 1;
const MAX_NAME_CHARS: usize = 64;

/// One device's identity, opened from its home directory.
pub struct Home {
    dir: PathBuf,
    id: DeviceId,
    name: String,
    level: DeviceLevel,
    key: PrivatePkcs8KeyDer<'static>,
    cert: CertificateDer<'static>,
}

#[derive(Serialize, Deserialize)]
struct DeviceFile {
    format: u32,
    id: DeviceId,
    name: String,
    level: DeviceLevel,
}

impl Home {
    /// Creates a device identity in `dir` (created 0700 if missing): a new key pair, a name
    /// (default `device-` and the id's first group) and a security level.
    ///
    /// # Errors
    /// [`Error::IdentityExists`] when `dir` already holds one (the key is never replaced);
    /// [`Error::InvalidArgument`] for a bad name; [`Error::Io`] when files cannot be written.
    pub fn init(dir: impl AsRef<Path>, name: Option<&str>, level: DeviceLevel) -> Result<Home> {
        let dir = dir.as_ref().to_path_buf();
        let name = name.map(validate_name).transpose()?;
        refuse_foreign_dir(&dir)?;
        fsutil::create_private_dir(&dir)?;
        let key_path = dir.join(KEY_FILE);
        let device_path = dir.join(DEVICE_FILE);
        let key_pem = match fsutil::read_optional(&key_path)? {
            // A key without device.json: an init that stopped halfway; finish it.
            Some(pem) if !device_path.exists() => pem,
            Some(pem) => {
                let (_, id) = parse_key(&key_path, &pem)?;
                return Err(Error::IdentityExists { home: dir, id });
            }
            // device.json names an identity whose key is gone: a new key would be another
            // device to every peer (and to every store synced as this one), silently.
            None if device_path.exists() => {
                return Err(Error::IdentityDamaged {
                    path: key_path,
                    reason: format!(
                        "the key file is missing; {} records the identity it belongs to, which a new key cannot restore",
                        device_path.display()
                    ),
                });
            }
            None => {
                let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).map_err(|e| {
                    Error::IdentityDamaged {
                        path: key_path.clone(),
                        reason: format!("cannot generate a key: {e}"),
                    }
                })?;
                let pem = pair.serialize_pem().into_bytes();
                if !fsutil::write_new(&key_path, &pem)? {
                    // Another init won the race: its key stands.
                    let existing = fsutil::read_optional(&key_path)?.unwrap_or_default();
                    let (_, id) = parse_key(&key_path, &existing)?;
                    return Err(Error::IdentityExists { home: dir, id });
                }
                pem
            }
        };
        let (_, id) = parse_key(&key_path, &key_pem)?;
        let file = DeviceFile {
            format: FORMAT,
            id,
            name: name.unwrap_or_else(|| format!("device-{}", id.short())),
            level,
        };
        let json = serde_json::to_vec_pretty(&file).map_err(|e| Error::IdentityDamaged {
            path: device_path.clone(),
            reason: e.to_string(),
        })?;
        fsutil::write_atomic(&device_path, &json)?;
        Home::open(&dir)
    }

    /// Opens the identity in `dir`.
    ///
    /// # Errors
    /// [`Error::NoIdentity`] when there is none; [`Error::IdentityDamaged`] when its files are
    /// unreadable or disagree (a key that does not match the recorded id, a missing half);
    /// [`Error::UnsafePermissions`] when other users may write the directory, the key, the
    /// device record, or a directory above the home that is not sticky.
    pub fn open(dir: impl AsRef<Path>) -> Result<Home> {
        let dir = dir.as_ref().to_path_buf();
        let key_path = dir.join(KEY_FILE);
        let device_path = dir.join(DEVICE_FILE);
        fsutil::refuse_shared_write(&dir, "the home directory")?;
        fsutil::refuse_open_parents(&dir)?;
        fsutil::refuse_shared_write(&key_path, "the device key")?;
        // It holds the device's own level, which decides what data the device may hold.
        fsutil::refuse_shared_write(&device_path, "the device record")?;
        let key_pem = fsutil::read_optional(&key_path)?;
        let device_json = fsutil::read_optional(&device_path)?;
        let (key_pem, device_json) = match (key_pem, device_json) {
            (None, None) => return Err(Error::NoIdentity { home: dir }),
            (None, Some(_)) => {
                return Err(Error::IdentityDamaged {
                    path: key_path,
                    reason: "the key file is missing".into(),
                });
            }
            (Some(_), None) => {
                return Err(Error::IdentityDamaged {
                    path: device_path,
                    reason: "missing (device init did not finish)".into(),
                });
            }
            (Some(k), Some(d)) => (k, d),
        };
        #[cfg(unix)]
        if fsutil::mode_of(&key_path).is_some_and(|m| m & 0o077 != 0) {
            tracing::warn!(path = %key_path.display(), "device key is readable by others; chmod 600 it");
        }
        let (pair, id) = parse_key(&key_path, &key_pem)?;
        let file: DeviceFile =
            serde_json::from_slice(&device_json).map_err(|e| Error::IdentityDamaged {
                path: device_path.clone(),
                reason: e.to_string(),
            })?;
        if file.format != FORMAT {
            return Err(Error::IdentityDamaged {
                path: device_path,
                reason: format!("format {} is not known to this peerlite", file.format),
            });
        }
        if file.id != id {
            return Err(Error::IdentityDamaged {
                path: device_path,
                reason: format!("records id {} but the key is {id}", file.id),
            });
        }
        let cert = self_signed_cert(&pair, &id).map_err(|e| Error::IdentityDamaged {
            path: key_path,
            reason: format!("cannot make a certificate: {e}"),
        })?;
        Ok(Home {
            dir,
            id,
            name: file.name,
            level: file.level,
            key: PrivatePkcs8KeyDer::from(pair.serialize_der()),
            cert,
        })
    }

    /// The home directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// This device's id.
    pub fn id(&self) -> DeviceId {
        self.id
    }

    /// This device's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// This device's security level.
    pub fn level(&self) -> DeviceLevel {
        self.level
    }

    /// The trust store kept in this home (empty when none was written yet).
    ///
    /// # Errors
    /// See [`TrustStore::open`].
    pub fn trust_store(&self) -> Result<TrustStore> {
        TrustStore::open(self)
    }

    /// The self-signed certificate of this device's key (what the TLS handshake presents).
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    pub(crate) fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key.clone_key())
    }
}

impl Clone for Home {
    fn clone(&self) -> Self {
        Home {
            dir: self.dir.clone(),
            id: self.id,
            name: self.name.clone(),
            level: self.level,
            key: self.key.clone_key(),
            cert: self.cert.clone(),
        }
    }
}

impl fmt::Debug for Home {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key.
        f.debug_struct("Home")
            .field("dir", &self.dir)
            .field("id", &self.id)
            .field("name", &self.name)
            .field("level", &self.level)
            .finish_non_exhaustive()
    }
}

/// A certificate for `pair`, self-signed: no CA; the key is the identity and the peer pins it.
/// Names and dates are decoration the verifiers do not read (rcgen's defaults never expire
/// in practice), so a device whose clock is wrong still connects.
pub(crate) fn self_signed_cert(
    pair: &rcgen::KeyPair,
    id: &DeviceId,
) -> std::result::Result<CertificateDer<'static>, rcgen::Error> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, id.to_string());
    Ok(params.self_signed(pair)?.der().clone())
}

fn parse_key(path: &Path, pem: &[u8]) -> Result<(rcgen::KeyPair, DeviceId)> {
    let damaged = |reason: String| Error::IdentityDamaged {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::str::from_utf8(pem).map_err(|_| damaged("not a PEM file".into()))?;
    let pair = rcgen::KeyPair::from_pem(text).map_err(|e| damaged(e.to_string()))?;
    if pair.algorithm() != &rcgen::PKCS_ED25519 {
        return Err(damaged("not an Ed25519 key".into()));
    }
    let id = DeviceId::from_public_key(&rcgen::PublicKeyData::subject_public_key_info(&pair));
    Ok((pair, id))
}

/// A device name: 1–64 characters after trimming, no control characters.
pub(crate) fn validate_name(name: &str) -> Result<String> {
    let trimmed = name.trim();
    let invalid = |reason: &str| Error::InvalidArgument {
        what: "name",
        reason: format!("{}: {reason}", crate::error::excerpt(name)),
    };
    if trimmed.is_empty() {
        return Err(invalid("empty"));
    }
    if trimmed.chars().count() > MAX_NAME_CHARS {
        return Err(invalid("longer than 64 characters"));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(invalid("control characters"));
    }
    Ok(trimmed.to_string())
}

/// A home is a new directory, an empty one, or one that already holds peerlite's identity files
/// (an init that stopped halfway): never a directory in use for something else, whose mode
/// `init` would narrow to 0700 (`--home ~` or `--home /tmp` by a slip would lock others out).
fn refuse_foreign_dir(dir: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("read directory", dir, e)),
    };
    let ours = |name: &str| {
        [KEY_FILE, DEVICE_FILE, "trust.json"].contains(&name)
            || name.starts_with(".device.")
            || name.starts_with(".trust.")
    };
    for entry in entries.take(1_000) {
        let entry = entry.map_err(|e| Error::io("read directory", dir, e))?;
        let name = entry.file_name();
        if !ours(&name.to_string_lossy()) {
            return Err(Error::InvalidArgument {
                what: "home",
                reason: format!(
                    "{} holds other files ({}) and no peerlite identity; give a new or empty directory",
                    dir.display(),
                    name.to_string_lossy()
                ),
            });
        }
    }
    Ok(())
}
