//! Where a store is put together: `store/` opens the file and knows nothing of the layers
//! above it; this attaches them (see `store::layers`) — change capture, remote-change
//! observers, automatic backups, the corruption watch and the migrations to remember — and
//! settles, on the first connection, what they keep in the database.

use std::sync::{Arc, Mutex};

use super::OpenCallbacks;
use crate::backup::{self, AutoState};
use crate::changes::layer::Capture;
use crate::changes::mark;
use crate::error::Result;
use crate::repair::{CorruptionWatch, RepairReport};
use crate::store::layers::{Layer, Layers};
use crate::store::{RdbStore, StoreConfig};

/// The callbacks a store was opened with, to upgrade data restored from an older backup.
#[derive(Default)]
pub(crate) struct OpenedWith(pub Mutex<Option<Box<dyn OpenCallbacks + Send>>>);

impl Layer for OpenedWith {}

/// Opens the file as it is, with every layer attached; `repair` records a rebuild that just
/// happened.
pub(crate) fn open_as_is(config: StoreConfig, repair: Option<RepairReport>) -> Result<RdbStore> {
    // A rebuild just put this file in place: it gets a new epoch, and its clock resumes past
    // what the damaged file's salvaged copy still shows.
    let replaced = repair.is_some();
    let salvage = repair.as_ref().and_then(|r| r.salvage.path.clone());
    let capture = Arc::new(Capture::new(Arc::clone(&config.clock)));
    let layers = Layers::default()
        .with(Arc::clone(&capture))
        .with(Arc::new(crate::sync::remote_observers()))
        .with(Arc::new(AutoState::default()))
        .with(Arc::new(CorruptionWatch { report: repair }))
        .with(Arc::new(OpenedWith::default()));
    RdbStore::open_layered(config, layers, |conn, config, writable| {
        if writable {
            backup::clean_tmp(&backup::naming::default_dir(config));
        }
        let learned = salvage.as_deref().map_or(0, |p| {
            mark::learned_from(p, config.key.as_ref(), config.clock.now_ms())
        });
        capture.resume(conn, config, writable, replaced, learned)
    })
}
