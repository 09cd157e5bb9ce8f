//! Errors of peerlite-net, each with a stable numeric code.
//!
//! Codes 17060001–17060099 belong to the network crate (the library's own codes stop at
//! 1705xxxx). They are part of the CLI contract (`error[CODE]`) and never change meaning.
//!
//! | code | meaning |
//! | --- | --- |
//! | 17060001 | the peer is not in this device's trust store (refused during the handshake) |
//! | 17060002 | the peer refused this device during the handshake (it does not trust us) |
//! | 17060003 | TLS or channel handshake failed |
//! | 17060004 | handshake timed out |
//! | 17060005 | frame larger than the maximum |
//! | 17060006 | protocol error: malformed or unexpected frame |
//! | 17060007 | peer unreachable (connect failed) |
//! | 17060008 | connection closed |
//! | 17060009 | idle timeout: nothing from the peer for too long |
//! | 17060010 | invalid device id (mistyped: wrong length, foreign character, check character) |
//! | 17060011 | the home already holds a device identity |
//! | 17060012 | the home holds no device identity |
//! | 17060013 | the device identity is damaged or incomplete |
//! | 17060014 | device already trusted |
//! | 17060015 | device not trusted |
//! | 17060016 | invalid argument (address, name, level, channel setting) |
//! | 17060017 | trust store damaged |
//! | 17060018 | file operation in the home failed |
//! | 17060019 | the peer proved another trusted id than the one dialled |
//! | 17060020 | incompatible peer (other channel protocol version) |
//! | 17060021 | no address known for a trusted device |
//! | 17060022 | cannot listen on the address given |
//! | 17060023 | the node serves no store of that name |
//! | 17060024 | the node is shutting down |
//! | 17060025 | the peer runs too many sessions on one connection (retry later) |
//!
//! [`Error::Store`] carries an error of the library (a store that cannot be opened or read,
//! a query the peer refused) with the library's own code.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::DeviceId;
use crate::device_id::DeviceIdError;

/// Result of peerlite-net operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong; [`Error::code`] is stable, [`Error::hint`] says what to do next.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The peer proved an id that is not in the trust store.
    #[error("refused untrusted device {id}")]
    UntrustedPeer {
        /// The id the peer's certificate proves.
        id: DeviceId,
    },
    /// The peer ended the handshake with an alert: it does not trust this device.
    #[error("the peer refused this device during the handshake ({reason})")]
    RefusedByPeer {
        /// The TLS alert.
        reason: String,
    },
    /// The TLS handshake or the channel hello failed.
    #[error("handshake failed: {reason}")]
    HandshakeFailed {
        /// What failed.
        reason: String,
    },
    /// The handshake did not finish in time.
    #[error("handshake did not finish within {timeout:?}")]
    HandshakeTimeout {
        /// The configured limit.
        timeout: Duration,
    },
    /// A frame over the maximum size (announced by a peer, or given to `send`).
    #[error("frame of {len} bytes exceeds the maximum of {max} bytes")]
    FrameTooLarge {
        /// Its size.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// A malformed or unexpected frame.
    #[error("protocol error: {reason}")]
    Protocol {
        /// What was wrong.
        reason: String,
    },
    /// Could not connect.
    #[error("cannot reach {addr}: {source}")]
    Unreachable {
        /// The address dialled.
        addr: String,
        /// Why.
        source: io::Error,
    },
    /// The connection is closed (by the peer, or after an earlier error).
    #[error("connection closed: {reason}")]
    Closed {
        /// Why.
        reason: String,
    },
    /// Nothing arrived from the peer (or it took nothing) for too long.
    #[error("idle timeout: the peer was silent or stalled for {timeout:?}")]
    IdleTimeout {
        /// The configured limit.
        timeout: Duration,
    },
    /// A text that is not a device id.
    #[error("invalid device id: {0}")]
    InvalidDeviceId(#[from] DeviceIdError),
    /// `Home::init` on a home that already holds an identity.
    #[error("{} already holds a device identity ({id}); a key is never overwritten", home.display())]
    IdentityExists {
        /// The home.
        home: PathBuf,
        /// Its device id.
        id: DeviceId,
    },
    /// `Home::open` on a home without an identity.
    #[error("{} holds no device identity", home.display())]
    NoIdentity {
        /// The home.
        home: PathBuf,
    },
    /// The identity files are unreadable, inconsistent or incomplete.
    #[error("device identity in {} is damaged: {reason}", path.display())]
    IdentityDamaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// `TrustStore::add` of a device already there.
    #[error("device {id} is already trusted")]
    AlreadyTrusted {
        /// The device.
        id: DeviceId,
    },
    /// A device that is not in the trust store.
    #[error("device {id} is not in the trust store")]
    NotTrusted {
        /// The device.
        id: DeviceId,
    },
    /// An argument out of its domain.
    #[error("invalid {what}: {reason}")]
    InvalidArgument {
        /// Which argument.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// `trust.json` cannot be read as a trust store (it is left as it is).
    #[error("trust store {} is damaged: {reason}", path.display())]
    TrustStoreDamaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A file of the home that decides who this device is or whom it trusts (the home
    /// directory, `trust.json`, `device.key`) can be changed by other users: any of them could
    /// make their own device trusted (at SL5), or replace this device's identity.
    #[error("{} is writable by other users (mode {mode:o}): {what} must be changed only by its owner", path.display())]
    UnsafePermissions {
        /// The file or directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
        /// What it is.
        what: &'static str,
    },
    /// A file operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The peer proved a trusted id, but not the one dialled.
    #[error("dialled device {expected} but the peer proved {actual}")]
    WrongPeer {
        /// The device dialled.
        expected: DeviceId,
        /// The device that answered.
        actual: DeviceId,
    },
    /// The peer speaks another version of the channel protocol.
    #[error("incompatible peer: {reason}")]
    IncompatiblePeer {
        /// What differs.
        reason: String,
    },
    /// A trusted device without any address to dial.
    #[error("no address known for device {id}")]
    NoAddress {
        /// The device.
        id: DeviceId,
    },
    /// The listening address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: io::Error,
    },
    /// A store name the node does not serve.
    #[error("no store named {store:?} is served by this node")]
    NotServed {
        /// The name asked for.
        store: String,
    },
    /// The node stopped (or is stopping) and takes no more work.
    #[error("the node is shutting down")]
    ShuttingDown,
    /// The peer runs as many sessions on the connection as it takes.
    #[error("the peer runs too many sessions at once")]
    TooManySessions,
    /// LAN discovery (mDNS) cannot run here (no multicast interface, a sandbox).
    #[error("mDNS discovery cannot start: {reason}")]
    Discovery {
        /// Why.
        reason: String,
    },
    /// A failure of the library: a store, or a request the peer refused (its code kept).
    #[error(transparent)]
    Store(#[from] peerlite::Error),
}

impl Error {
    /// The stable numeric code (17060001–17060099).
    pub fn code(&self) -> u32 {
        match self {
            Error::UntrustedPeer { .. } => 17060001,
            Error::RefusedByPeer { .. } => 17060002,
            Error::HandshakeFailed { .. } => 17060003,
            Error::HandshakeTimeout { .. } => 17060004,
            Error::FrameTooLarge { .. } => 17060005,
            Error::Protocol { .. } => 17060006,
            Error::Unreachable { .. } => 17060007,
            Error::Closed { .. } => 17060008,
            Error::IdleTimeout { .. } => 17060009,
            Error::InvalidDeviceId(_) => 17060010,
            Error::IdentityExists { .. } => 17060011,
            Error::NoIdentity { .. } => 17060012,
            Error::IdentityDamaged { .. } => 17060013,
            Error::AlreadyTrusted { .. } => 17060014,
            Error::NotTrusted { .. } => 17060015,
            Error::InvalidArgument { .. } => 17060016,
            Error::TrustStoreDamaged { .. } => 17060017,
            Error::Io { .. } => 17060018,
            Error::WrongPeer { .. } => 17060019,
            Error::IncompatiblePeer { .. } => 17060020,
            Error::NoAddress { .. } => 17060021,
            Error::Bind { .. } => 17060022,
            Error::NotServed { .. } => 17060023,
            Error::ShuttingDown => 17060024,
            Error::TooManySessions => 17060025,
            Error::Discovery { .. } => 17060026,
            Error::UnsafePermissions { .. } => 17060027,
            Error::Store(e) => e.code(),
        }
    }

    /// What to do next, naming a CLI command or flag.
    pub fn hint(&self) -> &'static str {
        match self {
            Error::UntrustedPeer { .. } => {
                "if you trust that device, pair with it: `peerlite trust add --home H DEVICE_ID`"
            }
            Error::RefusedByPeer { .. } => {
                "the peer does not trust this device: on the peer, run `peerlite trust add` with \
                 the id `peerlite device id --home H` prints here"
            }
            Error::HandshakeFailed { .. } => {
                "check that the address is a peerlite device (`peerlite trust list --home H`) \
                 and that both run the same peerlite version (`peerlite --version`)"
            }
            Error::HandshakeTimeout { .. } | Error::IdleTimeout { .. } | Error::Closed { .. } => {
                "the peer stopped answering or went away; retry, and check that `peerlite serve` \
                 runs there"
            }
            Error::FrameTooLarge { .. } => {
                "a payload over the frame limit (16 MiB by default): check both devices run the \
                 same peerlite version (`peerlite --version`), then retry"
            }
            Error::Protocol { .. } | Error::IncompatiblePeer { .. } => {
                "the peer is not speaking peerlite's protocol; check both run the same peerlite \
                 version (`peerlite --version`)"
            }
            Error::Unreachable { .. } => {
                "check the address with `peerlite trust list --home H` and that `peerlite serve` \
                 runs there"
            }
            Error::InvalidDeviceId(_) => {
                "copy the id exactly as `peerlite device id --home H` prints it on the other device"
            }
            Error::IdentityExists { .. } => {
                "use the existing identity (`peerlite device id --home H`) or choose another `--home`"
            }
            Error::NoIdentity { .. } => "create one with `peerlite device init --home H`",
            Error::IdentityDamaged { reason, .. } if reason.starts_with("missing (device init") => {
                "`peerlite device init --home H` was interrupted: run it again to finish"
            }
            Error::IdentityDamaged { .. } => {
                "restore the home directory (its device.key above all) from a copy; to start over as a new device every peer must pair with again, move the home aside and run `peerlite device init --home H`"
            }
            Error::AlreadyTrusted { .. } => {
                "to change it, run `peerlite trust remove` and then `peerlite trust add` again"
            }
            Error::NotTrusted { .. } => "list trusted devices with `peerlite trust list --home H`",
            Error::InvalidArgument { what: "store", .. } => {
                "serve and sync a store with the home it was opened with, labelled at most this device's level (`peerlite device init --level SLn` sets it; `peerlite --level Sk` labels a store)"
            }
            Error::InvalidArgument {
                what: "store name", ..
            } => {
                "peers know a store by its file name without the directory, so two `--db` files may not share one: serve one of them, or give one another file name"
            }
            Error::InvalidArgument { what: "name", .. } => {
                "give `--name` 1 to 64 characters without control characters"
            }
            Error::InvalidArgument {
                what: "address", ..
            } => "check `--addr HOST:PORT` (IPv6 as [ADDR]:PORT, port 1-65535; each address once)",
            Error::InvalidArgument {
                what: "device id", ..
            } => {
                "give the id of the other device (`peerlite device id --home H` there prints it), not this one's"
            }
            Error::InvalidArgument { what: "home", .. } => {
                "give `--home` a new or empty directory (or the one holding this device's identity)"
            }
            Error::InvalidArgument { .. } => {
                "check the arguments (`peerlite help` lists each command's flags)"
            }
            Error::TrustStoreDamaged { .. } => {
                "the file was left untouched: repair trust.json in the `--home` directory by hand, \
                 or move it away and pair again with `peerlite trust add`"
            }
            Error::UnsafePermissions { .. } => {
                "check that nobody changed it, then remove the write permission of group and others: `chmod go-w PATH` (the `--home` directory, its trust.json, device.key and device.json; a directory above the home: `chmod o-w DIR`, or `chmod +t DIR` to make it sticky like /tmp)"
            }
            Error::Io { .. } => "check permissions and free space of the `--home` directory",
            Error::WrongPeer { .. } => {
                "another device answers at that address: update it with `peerlite trust remove` \
                 and `peerlite trust add --addr`"
            }
            Error::NoAddress { .. } => {
                "give the device an address: `peerlite trust remove`, then `peerlite trust add \
                 --addr HOST:PORT`"
            }
            Error::Bind { .. } => {
                "choose another `--listen` address (port 0 picks a free one) or stop what holds it"
            }
            Error::NotServed { .. } => {
                "serve the store: `peerlite serve --db DB` or `--kv STORE_DIR STORE_ID`"
            }
            Error::ShuttingDown => "start `peerlite serve` again",
            Error::Discovery { .. } => {
                "give peers static addresses with `peerlite trust add --addr HOST:PORT`, or run `peerlite serve --no-mdns`"
            }
            Error::TooManySessions => {
                "the device is busy with other syncs of this device: run `peerlite sync` again later"
            }
            Error::Store(e) => e.hint(),
        }
    }

    /// Whether trying again later may succeed (the network, not the configuration, failed).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Unreachable { .. }
                | Error::HandshakeTimeout { .. }
                | Error::IdleTimeout { .. }
                | Error::Closed { .. }
                | Error::TooManySessions
        )
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn protocol(reason: impl Into<String>) -> Error {
        Error::Protocol {
            reason: reason.into(),
        }
    }
}

/// How many characters of a rejected argument an error repeats.
const EXCERPT_CHARS: usize = 40;

/// A rejected argument as an error quotes it: the first [`EXCERPT_CHARS`] characters, and how
/// long it was when it was longer (a 5000-character name made a 10 KB error line).
pub(crate) fn excerpt(text: &str) -> String {
    let count = text.chars().count();
    if count <= EXCERPT_CHARS {
        return format!("{text:?}");
    }
    let head: String = text.chars().take(EXCERPT_CHARS).collect();
    format!("{head:?}… ({count} characters)")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Codes are a contract: distinct, in the crate's range, each with a hint naming a CLI
    /// command or flag.
    #[test]
    fn codes_are_distinct_in_range_and_hinted() {
        let id = DeviceId::from_public_key(b"k");
        let io = || io::Error::other("x");
        let s = || "x".to_string();
        let all = vec![
            Error::UntrustedPeer { id },
            Error::RefusedByPeer { reason: s() },
            Error::HandshakeFailed { reason: s() },
            Error::HandshakeTimeout {
                timeout: Duration::ZERO,
            },
            Error::FrameTooLarge { len: 2, max: 1 },
            Error::Protocol { reason: s() },
            Error::Unreachable {
                addr: s(),
                source: io(),
            },
            Error::Closed { reason: s() },
            Error::IdleTimeout {
                timeout: Duration::ZERO,
            },
            Error::InvalidDeviceId(DeviceIdError::NotCanonical),
            Error::IdentityExists {
                home: PathBuf::new(),
                id,
            },
            Error::NoIdentity {
                home: PathBuf::new(),
            },
            Error::IdentityDamaged {
                path: PathBuf::new(),
                reason: s(),
            },
            Error::AlreadyTrusted { id },
            Error::NotTrusted { id },
            Error::InvalidArgument {
                what: "x",
                reason: s(),
            },
            Error::TrustStoreDamaged {
                path: PathBuf::new(),
                reason: s(),
            },
            Error::io("read", "x", io()),
            Error::WrongPeer {
                expected: id,
                actual: id,
            },
            Error::IncompatiblePeer { reason: s() },
            Error::NoAddress { id },
            Error::Bind {
                addr: s(),
                source: io(),
            },
            Error::NotServed { store: s() },
            Error::ShuttingDown,
            Error::TooManySessions,
        ];
        let mut codes: Vec<u32> = all.iter().map(Error::code).collect();
        assert!(codes.iter().all(|c| (17060001..=17060099).contains(c)));
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
        for e in &all {
            let hint = e.hint();
            assert!(
                hint.contains("`peerlite ") || hint.contains("`--"),
                "{e:?}: {hint}"
            );
        }
    }
}
