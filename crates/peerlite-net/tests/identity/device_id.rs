//! Device ids: round trips through every accepted spelling, and every one-character typo is
//! refused with a typed error.

use peerlite_net::{DeviceId, DeviceIdError};
use proptest::prelude::*;

fn any_id() -> impl Strategy<Value = DeviceId> {
    any::<[u8; 32]>().prop_map(DeviceId::from_bytes)
}

/// The 56 significant characters of an id (dashes removed).
fn compact(id: &DeviceId) -> Vec<char> {
    id.to_string().chars().filter(|c| *c != '-').collect()
}

proptest! {
    #[test]
    fn formats_and_parses_back(id in any_id()) {
        let text = id.to_string();
        prop_assert_eq!(text.len(), 63);
        prop_assert_eq!(text.matches('-').count(), 7);
        prop_assert!(text.split('-').all(|g| g.len() == 7));
        prop_assert_eq!(text.parse::<DeviceId>().unwrap(), id);
        // Lower case, no dashes, spaces instead of dashes: the same id.
        prop_assert_eq!(DeviceId::parse(&text.to_lowercase()).unwrap(), id);
        prop_assert_eq!(DeviceId::parse(&text.replace('-', "")).unwrap(), id);
        prop_assert_eq!(DeviceId::parse(&text.replace('-', " ")).unwrap(), id);
        let json = serde_json::to_string(&id).unwrap();
        prop_assert_eq!(&json, &format!("\"{text}\""));
        prop_assert_eq!(serde_json::from_str::<DeviceId>(&json).unwrap(), id);
    }

    /// Every substitution of one character by any other printable ASCII character (other than
    /// the same letter in another case, which is the same id) is refused.
    #[test]
    fn every_substitution_is_refused(id in any_id()) {
        let chars = compact(&id);
        for i in 0..chars.len() {
            for c in (b' '..=b'~').map(char::from) {
                if c.to_ascii_uppercase() == chars[i] {
                    continue;
                }
                let mut typo = chars.clone();
                typo[i] = c;
                let typo: String = typo.into_iter().collect();
                prop_assert!(DeviceId::parse(&typo).is_err(), "accepted {typo} for {id}");
            }
        }
    }

    /// A dropped, doubled or inserted character is refused too.
    #[test]
    fn every_deletion_and_insertion_is_refused(id in any_id()) {
        let chars = compact(&id);
        for i in 0..chars.len() {
            let mut dropped = chars.clone();
            dropped.remove(i);
            let dropped: String = dropped.into_iter().collect();
            prop_assert_eq!(
                DeviceId::parse(&dropped),
                Err(DeviceIdError::WrongLength { found: 55 })
            );
            for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".chars() {
                let mut inserted = chars.clone();
                inserted.insert(i, c);
                let inserted: String = inserted.into_iter().collect();
                prop_assert!(DeviceId::parse(&inserted).is_err());
            }
        }
    }
}

#[test]
fn errors_say_what_is_wrong() {
    let id = DeviceId::from_public_key(b"key");
    let text = id.to_string();
    assert_eq!(
        DeviceId::parse("ABC"),
        Err(DeviceIdError::WrongLength { found: 3 })
    );
    // A foreign character (digits 0, 1, 8, 9 are not base32) at its position.
    let mut chars: Vec<char> = text.chars().collect();
    chars[9] = '0'; // the 9th significant character (one dash before it)
    let bad: String = chars.iter().collect();
    assert_eq!(
        DeviceId::parse(&bad),
        Err(DeviceIdError::InvalidCharacter {
            ch: '0',
            position: 9
        })
    );
    // A substitution in the third chunk of 14 is reported against that chunk.
    let mut chars = compact(&id);
    chars[30] = if chars[30] == 'A' { 'B' } else { 'A' };
    let bad: String = chars.into_iter().collect();
    assert_eq!(
        DeviceId::parse(&bad),
        Err(DeviceIdError::CheckFailed { group: 3 })
    );
    // Through the crate error, with its code.
    let err: peerlite_net::Error = DeviceId::parse("ABC").unwrap_err().into();
    assert_eq!(err.code(), 17060010);
}

#[test]
fn the_same_key_gives_the_same_id_and_another_key_another() {
    let a = DeviceId::from_public_key(b"key a");
    assert_eq!(a, DeviceId::from_public_key(b"key a"));
    assert_ne!(a, DeviceId::from_public_key(b"key b"));
    assert_eq!(a.short(), a.to_string()[..7]);
}
