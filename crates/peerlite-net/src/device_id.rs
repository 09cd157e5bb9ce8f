//! Device ids: who a device is, derived from its public key.
//!
//! As in Syncthing, an id is the SHA-256 of the device's public key (here its DER
//! SubjectPublicKeyInfo, so the key algorithm is part of what is hashed), written in base32
//! (RFC 4648, no padding: 52 characters), with a Luhn mod 32 check character after each 13
//! characters (56), shown in 8 groups of 7 joined by dashes:
//!
//! ```text
//! MFZWI3D-BONSGYC-YLTMRWG-C43ENR5-QXGZDMM-FZWI3DP-BONSGYY-LTMRWAD
//! ```
//!
//! Luhn mod N changes the check character for every single-character substitution, and a
//! dropped or added character changes the length, so any one-character typo is refused instead
//! of naming another device. Parsing ignores dashes, spaces and letter case.
//!
//! ```
//! use peerlite_net::DeviceId;
//!
//! let id = DeviceId::from_public_key(b"an example public key");
//! let text = id.to_string();
//! assert_eq!(text.len(), 63);
//! assert_eq!(text.parse::<DeviceId>().unwrap(), id);
//! assert_eq!(text.to_lowercase().replace('-', "").parse::<DeviceId>().unwrap(), id);
//!
//! // One character changed: refused.
//! let mut typo = text.into_bytes();
//! typo[10] = if typo[10] == b'A' { b'B' } else { b'A' };
//! assert!(String::from_utf8(typo).unwrap().parse::<DeviceId>().is_err());
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
/// Characters of base32 data per check character.
const CHUNK: usize = 13;
/// Base32 characters of a 32-byte hash (256 bits in 5-bit characters, the last one padded).
const DATA_CHARS: usize = 52;
/// Characters of an id without dashes: 4 chunks of 13, each with its check character.
const ID_CHARS: usize = DATA_CHARS + DATA_CHARS / CHUNK;
/// Characters per dash-separated group when displayed.
const GROUP: usize = 7;

/// A device's identity: the SHA-256 of its public key, shown with check characters.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeviceId([u8; 32]);

/// Why a text is not a device id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceIdError {
    /// Not 56 characters once dashes and spaces are removed.
    #[error("{found} characters where a device id has {ID_CHARS} (dashes and spaces aside)")]
    WrongLength {
        /// Characters found (dashes and spaces aside).
        found: usize,
    },
    /// A character outside base32 (`A`–`Z`, `2`–`7`).
    #[error("character {ch:?} at position {position} is not in a device id (A-Z, 2-7)")]
    InvalidCharacter {
        /// The character.
        ch: char,
        /// Its position (1-based, dashes and spaces aside).
        position: usize,
    },
    /// A check character does not match: the id was mistyped.
    #[error("check character of group {group} does not match: the id was mistyped")]
    CheckFailed {
        /// Which 14-character chunk (1–4) failed.
        group: usize,
    },
    /// The last data character has bits set that no hash produces.
    #[error("the id is not in canonical form (its last data character is impossible)")]
    NotCanonical,
}

impl DeviceId {
    /// The id of the device whose public key (DER SubjectPublicKeyInfo) is `public_key`.
    pub fn from_public_key(public_key: &[u8]) -> DeviceId {
        let digest = ring::digest::digest(&ring::digest::SHA256, public_key);
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(digest.as_ref());
        DeviceId(bytes)
    }

    /// The id with these hash bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> DeviceId {
        DeviceId(bytes)
    }

    /// The 32 hash bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The first group (7 characters): enough to tell devices apart in a log or a name.
    pub fn short(&self) -> String {
        self.to_string().chars().take(GROUP).collect()
    }

    /// Parses an id (dashes, spaces and case ignored); the same as `str::parse`.
    ///
    /// # Errors
    /// [`DeviceIdError`] saying what is wrong: length, a foreign character, a check
    /// character that does not match (a typo).
    pub fn parse(text: &str) -> Result<DeviceId, DeviceIdError> {
        let chars = || text.chars().filter(|c| *c != '-' && !c.is_whitespace());
        let found = chars().count();
        if found != ID_CHARS {
            return Err(DeviceIdError::WrongLength { found });
        }
        let mut values = Vec::with_capacity(ID_CHARS);
        for (i, ch) in chars().enumerate() {
            match base32_value(ch) {
                Some(v) => values.push(v),
                None => {
                    return Err(DeviceIdError::InvalidCharacter {
                        ch,
                        position: i + 1,
                    });
                }
            }
        }
        let mut data = Vec::with_capacity(DATA_CHARS);
        for (group, chunk) in values.chunks(CHUNK + 1).enumerate() {
            let (body, check) = chunk.split_at(CHUNK);
            if luhn32(body) != check[0] {
                return Err(DeviceIdError::CheckFailed { group: group + 1 });
            }
            data.extend_from_slice(body);
        }
        base32_decode(&data).map(DeviceId)
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let data = base32_encode(&self.0);
        let mut chars = Vec::with_capacity(ID_CHARS);
        for chunk in data.chunks(CHUNK) {
            chars.extend_from_slice(chunk);
            chars.push(luhn32(chunk));
        }
        for (i, group) in chars.chunks(GROUP).enumerate() {
            if i > 0 {
                f.write_str("-")?;
            }
            for v in group {
                write!(f, "{}", char::from(ALPHABET[usize::from(*v)]))?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceId({self})")
    }
}

impl FromStr for DeviceId {
    type Err = DeviceIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DeviceId::parse(s)
    }
}

impl Serialize for DeviceId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DeviceId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        DeviceId::parse(&text).map_err(serde::de::Error::custom)
    }
}

fn base32_value(ch: char) -> Option<u8> {
    match ch.to_ascii_uppercase() {
        c @ 'A'..='Z' => Some(c as u8 - b'A'),
        c @ '2'..='7' => Some(c as u8 - b'2' + 26),
        _ => None,
    }
}

/// 5-bit values (0..32) of `bytes`, most significant bits first, the last one zero-padded.
fn base32_encode(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut acc, mut bits) = (0u32, 0u32);
    for b in bytes {
        acc = (acc << 8) | u32::from(*b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(((acc >> bits) & 31) as u8);
        }
    }
    if bits > 0 {
        out.push(((acc << (5 - bits)) & 31) as u8);
    }
    out
}

/// Inverse of [`base32_encode`] for 52 values; refuses padding bits that are not zero, so every
/// id has exactly one spelling.
fn base32_decode(values: &[u8]) -> Result<[u8; 32], DeviceIdError> {
    let mut out = [0u8; 32];
    let (mut acc, mut bits, mut n) = (0u32, 0u32, 0usize);
    for v in values {
        acc = ((acc << 5) | u32::from(*v)) & 0xFFF;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            if n < out.len() {
                out[n] = (acc >> bits) as u8;
            }
            n += 1;
        }
    }
    if n != out.len() || acc & ((1 << bits) - 1) != 0 {
        return Err(DeviceIdError::NotCanonical);
    }
    Ok(out)
}

/// The Luhn mod 32 check value of `values` (each 0..32). Doubling from the right maps 0..32
/// onto itself one-to-one, so changing any single value changes the sum modulo 32.
fn luhn32(values: &[u8]) -> u8 {
    let mut factor = 2u32;
    let mut sum = 0u32;
    for v in values.iter().rev() {
        let addend = factor * u32::from(*v);
        sum += addend / 32 + addend % 32;
        factor = 3 - factor;
    }
    ((32 - sum % 32) % 32) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_doubling_is_a_permutation() {
        let mut seen: Vec<u32> = (0..32u32).map(|v| (2 * v) / 32 + (2 * v) % 32).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..32).collect::<Vec<_>>());
    }

    #[test]
    fn base32_round_trips() {
        let bytes: [u8; 32] = std::array::from_fn(|i| (i * 37 + 11) as u8);
        let values = base32_encode(&bytes);
        assert_eq!(values.len(), DATA_CHARS);
        assert_eq!(base32_decode(&values).unwrap(), bytes);
    }

    #[test]
    fn nonzero_padding_bits_are_refused() {
        let mut values = base32_encode(&[0xAB; 32]);
        let last = values.len() - 1;
        values[last] |= 1;
        assert_eq!(base32_decode(&values), Err(DeviceIdError::NotCanonical));
    }
}
