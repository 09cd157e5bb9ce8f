//! What a device tells its peer about its own failure. The peer's user reads it next to their
//! own files, so a local path must not travel: `database corrupted: "cor2/c.db": …` read on
//! the other device looked like one of its files (and told it where this one keeps its
//! data). The code travels as it is; the text says "the other device" (as the peer reads it)
//! instead of a path.

use crate::Error;

/// `e` as the peer reads it: its message without local file paths.
pub(crate) fn peer_text(e: &Error) -> String {
    match e {
        Error::Corrupted { detail, .. } => {
            format!("the other device's copy of the store is damaged: {detail}")
        }
        Error::WrongKey { detail, .. } => {
            format!("the other device cannot decrypt its store: {detail}")
        }
        Error::InvalidPath { reason, .. } => {
            format!("the other device's store path cannot be used: {reason}")
        }
        Error::Io { op, source, .. } => {
            format!("{op} a file of the other device's store: {source}")
        }
        Error::BackupInvalid { reason, .. } => {
            format!("a backup on the other device failed verification: {reason}")
        }
        Error::ResetFailing { attempts, .. } => format!(
            "{attempts} client resets of the other device's store failed in a row; no further one is begun"
        ),
        Error::Migration {
            step,
            from,
            to,
            source,
        } => format!(
            "migration step `{step}` failed while moving version {from} -> {to}: {}",
            peer_text(source)
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    //! A serving device whose store was damaged answered a pull with
    //! `database corrupted: "cor2/c.db": database disk image is malformed`: its local path
    //! reached the other device's user, who took it for one of their own files. No error
    //! that names a file keeps the path in what the peer is told.

    use super::*;
    use crate::StoreKind;

    #[test]
    fn no_local_path_reaches_the_peer() {
        let path = "/home/me/secret-dir/c.db";
        let errors = [
            Error::Corrupted {
                path: path.into(),
                detail: "database disk image is malformed".into(),
                sqlite: None,
                kind: StoreKind::Relational,
            },
            Error::WrongKey {
                path: path.into(),
                detail: "d".into(),
            },
            Error::InvalidPath {
                path: path.into(),
                reason: "r".into(),
            },
            Error::Io {
                op: "writing",
                path: path.into(),
                source: std::io::Error::from(std::io::ErrorKind::StorageFull),
            },
            Error::BackupInvalid {
                path: path.into(),
                reason: "r".into(),
            },
            Error::ResetFailing {
                path: path.into(),
                attempts: 3,
            },
        ];
        for e in errors {
            assert!(e.to_string().contains("secret-dir"), "{e}");
            let text = peer_text(&e);
            assert!(!text.contains("secret-dir"), "{text}");
            assert!(!text.is_empty());
        }
        let corrupted = Error::Corrupted {
            path: path.into(),
            detail: "database disk image is malformed".into(),
            sqlite: None,
            kind: StoreKind::Relational,
        };
        let wrapped = Error::Migration {
            step: "s".into(),
            from: 1,
            to: 2,
            source: Box::new(corrupted),
        };
        assert!(!peer_text(&wrapped).contains("secret-dir"));
        assert!(peer_text(&wrapped).contains("malformed"));
    }
}
