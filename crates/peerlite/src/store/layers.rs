//! How the layers above the store attach to it without the store knowing them.
//!
//! Change capture, sync, backup, repair and the versioned open each keep state per store and
//! act at a few moments of its life: when the writer connection opens, just before and just
//! after a commit, when corruption is detected, when the store closes. The store names those
//! moments — the methods of [`Layer`], all no-ops by default — and calls every attached layer
//! there; each layer finds its own state again by type ([`Inner::layer`]). The store itself
//! never names a type of the layers above it (`tests/layers` enforces this).
//!
//! Layers are attached once, while the store opens (`open::layers` composes them), so reading
//! them takes no lock, and a moment with no work costs one indirect call per layer.

use std::any::Any;
use std::path::Path;
use std::sync::Arc;

use rusqlite::Connection;

use super::rdb::Inner;
use crate::error::Error;

/// What a layer above the store does at the moments of the store's life. Every method
/// defaults to doing nothing.
pub(crate) trait Layer: Send + Sync + 'static {
    /// The writer connection has just opened, before any statement runs on it: register what
    /// the database's triggers call (change capture's SQL functions).
    fn writer_opened(&self, _conn: &Connection) -> rusqlite::Result<()> {
        Ok(())
    }

    /// True while the writer applies changes that are not the caller's (sync merging a peer's
    /// rows): device tables may be written then, and top-level statements are not judged as
    /// the caller's.
    fn applying_remote(&self) -> bool {
        false
    }

    /// A write transaction has just begun (the write lock is held): catch up with what other
    /// connections committed since this one last wrote. An error ends the transaction.
    fn began(&self, _conn: &Connection) -> rusqlite::Result<()> {
        Ok(())
    }

    /// Inside the write transaction, just before `COMMIT`: what must commit with the changes.
    /// An error rolls the transaction back.
    fn before_commit(&self, _conn: &Connection, _db: &Path) -> rusqlite::Result<()> {
        Ok(())
    }

    /// After a commit, once the observers have heard of it.
    fn after_commit(&self, _store: &Inner) {}

    /// `err`, a corruption of the database at `db`, is on its way to the caller.
    fn corruption(&self, _db: &Path, _err: &Error) {}

    /// The store is closing (`close()`, or the drop of the app's last handle; it may come
    /// twice); its connections are still open.
    fn closing(&self) {}
}

/// The layers attached to one store, in the order they were added.
#[derive(Default)]
pub(crate) struct Layers {
    hooks: Vec<Arc<dyn Layer>>,
    /// The same layers, to find one by its type.
    states: Vec<Arc<dyn Any + Send + Sync>>,
}

impl std::fmt::Debug for Layers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Layers")
            .field("len", &self.hooks.len())
            .finish()
    }
}

impl Layers {
    /// Attaches `layer`.
    #[must_use]
    pub fn with<T: Layer>(mut self, layer: Arc<T>) -> Self {
        self.states
            .push(Arc::clone(&layer) as Arc<dyn Any + Send + Sync>);
        self.hooks.push(layer);
        self
    }

    /// The attached layer of type `T`.
    pub fn get<T: Layer>(&self) -> Option<&T> {
        self.states.iter().find_map(|s| s.downcast_ref::<T>())
    }

    pub fn writer_opened(&self, conn: &Connection) -> rusqlite::Result<()> {
        self.hooks.iter().try_for_each(|l| l.writer_opened(conn))
    }

    pub fn applying_remote(&self) -> bool {
        self.hooks.iter().any(|l| l.applying_remote())
    }

    pub fn began(&self, conn: &Connection) -> rusqlite::Result<()> {
        self.hooks.iter().try_for_each(|l| l.began(conn))
    }

    pub fn before_commit(&self, conn: &Connection, db: &Path) -> rusqlite::Result<()> {
        self.hooks
            .iter()
            .try_for_each(|l| l.before_commit(conn, db))
    }

    pub fn after_commit(&self, store: &Inner) {
        self.hooks.iter().for_each(|l| l.after_commit(store));
    }

    pub fn corruption(&self, db: &Path, err: &Error) {
        self.hooks.iter().for_each(|l| l.corruption(db, err));
    }

    pub fn closing(&self) {
        self.hooks.iter().for_each(|l| l.closing());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Default)]
    struct Counting(AtomicUsize);

    impl Layer for Counting {
        fn closing(&self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    struct Quiet;

    impl Layer for Quiet {}

    #[test]
    fn layers_are_found_by_type_and_all_hear_a_moment() {
        let layers = Layers::default()
            .with(Arc::new(Quiet))
            .with(Arc::new(Counting::default()));
        assert!(layers.get::<Quiet>().is_some());
        layers.closing();
        layers.closing();
        assert_eq!(
            layers
                .get::<Counting>()
                .map(|c| c.0.load(Ordering::Relaxed)),
            Some(2)
        );
        assert!(!layers.applying_remote());
        assert!(Layers::default().get::<Quiet>().is_none());
    }
}
