//! Data a `Hello` or `Welcome` carries in its `features` list as `prefix:JSON` entries:
//! watermark stamps ([`super::stamps`]), the tables a receiver holds rows of but nothing of
//! the sender (`populated:`), and how far a sender has received other devices' changes
//! (`relayed:`). The bytes of every V1 message stay as they were, and builds that predate an
//! entry ignore it. Entries are data, never features to agree on.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::message::Watermark;
use super::surface::SyncStore;
use crate::error::Result;

/// Watermark stamps.
pub(crate) const STAMPS: &str = "stamps:";
/// Single-version tables holding rows but nothing of the peer.
pub(crate) const POPULATED: &str = "populated:";
/// Watermarks of third devices.
pub(crate) const RELAYED: &str = "relayed:";

/// `features` with `items` appended as one `prefix` entry (none when there are no items).
pub(crate) fn add<T: Serialize>(
    mut features: Vec<String>,
    prefix: &str,
    items: &[T],
) -> Vec<String> {
    if !items.is_empty()
        && let Ok(json) = serde_json::to_string(items)
    {
        features.push(format!("{prefix}{json}"));
    }
    features
}

/// The items of a peer's `prefix` entries (an unreadable entry gives none).
pub(crate) fn read<T: DeserializeOwned>(features: &[String], prefix: &str) -> Vec<T> {
    features
        .iter()
        .filter_map(|f| f.strip_prefix(prefix))
        .filter_map(|json| serde_json::from_str::<Vec<T>>(json).ok())
        .flatten()
        .collect()
}

/// Adds to `features` the `populated:` entry ([`FEATURE_POPULATED`](super::FEATURE_POPULATED))
/// when `wanted`: the single-version tables of `store` that hold rows while `holds` (what it
/// holds of the peer) names nothing of them.
pub(crate) fn populated(
    store: &dyn SyncStore,
    wanted: bool,
    holds: &[Watermark],
    features: Vec<String>,
) -> Result<Vec<String>> {
    if !wanted {
        return Ok(features);
    }
    let mut tables = Vec::new();
    for t in store.tables()? {
        let single = t.mode == crate::changes::DistributedTableType::SingleVersion;
        let heard = holds.iter().any(|w| w.table == t.name && w.seq > 0);
        if single && !heard && store.holds_rows(&t.name)? {
            tables.push(t.name);
        }
    }
    Ok(add(features, POPULATED, &tables))
}

/// Adds to `features` the `relayed:` entry ([`FEATURE_RELAYED`](super::FEATURE_RELAYED)) when
/// `wanted`: how far `store` has received the changes of devices other than `peer`.
pub(crate) fn relayed(
    store: &dyn SyncStore,
    wanted: bool,
    peer: &str,
    features: Vec<String>,
) -> Result<Vec<String>> {
    if !wanted {
        return Ok(features);
    }
    Ok(add(features, RELAYED, &store.received_from_others(peer)?))
}

/// True for a data entry (not a feature).
pub(crate) fn is_entry(feature: &str) -> bool {
    [STAMPS, POPULATED, RELAYED]
        .iter()
        .any(|p| feature.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_survive_the_features_list_and_junk_is_ignored() {
        let features = add(vec!["zstd".into()], POPULATED, &["item".to_owned()]);
        assert_eq!(features[0], "zstd");
        assert!(is_entry(&features[1]) && !is_entry(&features[0]));
        let mut with_junk = features.clone();
        with_junk.push("populated:[{not json".into());
        assert_eq!(
            read::<String>(&with_junk, POPULATED),
            vec!["item".to_owned()]
        );
        assert!(read::<String>(&with_junk, RELAYED).is_empty());
        assert!(add::<String>(Vec::new(), STAMPS, &[]).is_empty());
    }
}
