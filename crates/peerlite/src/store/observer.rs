//! Data-change observers. One registry type serves both stores: the relational store notifies
//! with the names of the tables a transaction changed, the key-value store with the entries.
//! Observers run after the commit, on the committing thread, with no lock held — they may
//! read or write the store. Nothing is reported for a rolled-back transaction.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::StoreKind;
use crate::error::{Error, Result};

/// ArkData's cap on observers per store.
pub const DEFAULT_MAX_OBSERVERS: usize = 8;

/// Which changes an observer hears about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubscribeType {
    /// Changes committed on this device.
    Local,
    /// Changes that arrived from other devices through sync.
    Remote,
}

/// Identifies a subscription, for [`off`](crate::RdbStore::off_data_change).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ObserverId(u64);

type Callback<T> = Arc<dyn Fn(&T) + Send + Sync>;

/// Observers of notifications of type `T`, at most `max` of them.
pub(crate) struct ObserverRegistry<T: ?Sized> {
    max: usize,
    kind: StoreKind,
    next: AtomicU64,
    list: RwLock<Vec<(ObserverId, SubscribeType, Callback<T>)>>,
}

impl<T: ?Sized> std::fmt::Debug for ObserverRegistry<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObserverRegistry")
            .field("max", &self.max)
            .field("len", &self.len())
            .finish()
    }
}

impl<T: ?Sized> ObserverRegistry<T> {
    pub fn new(kind: StoreKind, max: usize) -> Self {
        ObserverRegistry {
            max,
            kind,
            next: AtomicU64::new(1),
            list: RwLock::new(Vec::new()),
        }
    }

    pub fn len(&self) -> usize {
        self.list.read().map_or(0, |l| l.len())
    }

    pub fn has(&self, ty: SubscribeType) -> bool {
        self.list
            .read()
            .is_ok_and(|l| l.iter().any(|(_, t, _)| *t == ty))
    }

    pub fn add(&self, ty: SubscribeType, callback: Callback<T>) -> Result<ObserverId> {
        let mut list = self
            .list
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if list.len() >= self.max {
            return Err(Error::TooManyObservers {
                max: self.max,
                kind: self.kind,
            });
        }
        let id = ObserverId(self.next.fetch_add(1, Ordering::Relaxed));
        list.push((id, ty, callback));
        Ok(id)
    }

    /// Removes one observer (`Some(id)`) or every observer of `ty` (`None`); returns how many.
    pub fn remove(&self, ty: SubscribeType, id: Option<ObserverId>) -> usize {
        let mut list = self
            .list
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let before = list.len();
        list.retain(|(i, t, _)| !(*t == ty && id.is_none_or(|id| id == *i)));
        before - list.len()
    }

    pub fn clear(&self) {
        if let Ok(mut list) = self.list.write() {
            list.clear();
        }
    }

    /// Calls every observer of `ty`; the list is copied first so callbacks may (un)subscribe.
    pub fn notify(&self, ty: SubscribeType, event: &T) {
        let callbacks: Vec<Callback<T>> = match self.list.read() {
            Ok(list) => list
                .iter()
                .filter(|(_, t, _)| *t == ty)
                .map(|(_, _, c)| Arc::clone(c))
                .collect(),
            Err(_) => return,
        };
        for callback in callbacks {
            callback(event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn cap_and_removal() {
        let reg: ObserverRegistry<str> = ObserverRegistry::new(StoreKind::KeyValue, 2);
        let hits = Arc::new(AtomicUsize::new(0));
        let h = Arc::clone(&hits);
        let a = reg
            .add(
                SubscribeType::Local,
                Arc::new(move |_: &str| {
                    h.fetch_add(1, Ordering::SeqCst);
                }),
            )
            .unwrap();
        reg.add(SubscribeType::Remote, Arc::new(|_: &str| {}))
            .unwrap();
        assert_eq!(
            reg.add(SubscribeType::Local, Arc::new(|_: &str| {}))
                .unwrap_err()
                .code(),
            15100001
        );
        reg.notify(SubscribeType::Local, "x");
        reg.notify(SubscribeType::Remote, "x");
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        assert_eq!(reg.remove(SubscribeType::Local, Some(a)), 1);
        assert_eq!(reg.remove(SubscribeType::Remote, None), 1);
        assert_eq!(reg.len(), 0);
    }
}
