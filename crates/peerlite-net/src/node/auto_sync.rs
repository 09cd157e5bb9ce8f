//! Pending syncs and auto-sync, carried out: the task that feeds the [`Planner`] what
//! happens (commits, devices reached, sessions ended) and starts the sessions it decides.
//!
//! Commits are seen two ways, both cheap and bounded: this process's own (the store's local
//! observer, through [`Node::local_commits`]) and other processes' (`PRAGMA data_version` on
//! the store's writer connection, read every poll interval; it never moves for this
//! process's own commits, so a sync applied here does not count as a local change and two
//! serving nodes never push each other's pushes back and forth). Commits coalesce into one
//! flag per store, so nothing queues however fast they come.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use peerlite::sync::SyncMode;
use peerlite::{RdbPredicates, RdbStore};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::pending::{Planner, Start};
use super::{Inner, Node, lock};
use crate::DeviceId;
use crate::error::Result;

/// How a serving node keeps its trusted devices up to date ([`Node::keep_in_sync`]).
///
/// ```
/// use std::time::Duration;
/// use peerlite_net::AutoSync;
///
/// let settings = AutoSync::default().debounce(Duration::from_millis(50));
/// assert_eq!(settings.get_debounce(), Duration::from_millis(50));
/// ```
#[derive(Debug, Clone)]
pub struct AutoSync {
    debounce: Duration,
    poll: Duration,
    timeout: Duration,
}

impl Default for AutoSync {
    fn default() -> Self {
        AutoSync {
            debounce: Duration::from_millis(100),
            poll: Duration::from_millis(250),
            timeout: Duration::from_secs(120),
        }
    }
}

impl AutoSync {
    /// How long after a commit its push starts (default 100 ms): commits within it, or
    /// during the push before, go in one push.
    #[must_use]
    pub fn debounce(mut self, debounce: Duration) -> Self {
        self.debounce = debounce;
        self
    }

    /// How often other processes' commits are looked for (default 250 ms).
    #[must_use]
    pub fn poll(mut self, poll: Duration) -> Self {
        self.poll = poll.max(Duration::from_millis(10));
        self
    }

    /// How long one session may take (default 120 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The debounce.
    pub fn get_debounce(&self) -> Duration {
        self.debounce
    }
}

/// Stores with commits not yet told to the planner, with whether they have auto-sync tables
/// now (read when the commit was seen: `peerlite distribute --auto-sync` in another process
/// takes effect with its own commit).
type Dirty = Arc<(Mutex<BTreeMap<String, bool>>, Notify)>;

impl Node {
    /// Keeps the trusted devices up to date with the stores served now (see the module
    /// [`pending`](super::pending) for the exact rules): when this node reaches a device
    /// ([`Node::keep_dialling`], discovery, [`Node::reach`]) every store pending for it is
    /// synced both ways, and a store with auto-sync tables (`DistributedConfig::auto_sync`)
    /// pushes its commits — this process's or another's — to the connected devices shortly
    /// after they commit, coalesced. Runs until [`Node::shutdown`]; calling it again does
    /// nothing.
    ///
    /// # Errors
    /// A served store's error when its observer cannot be registered.
    pub fn keep_in_sync(&self, settings: AutoSync) -> Result<()> {
        let (reach_tx, reach_rx) = mpsc::channel(64);
        {
            let mut slot = lock(&self.inner.reached);
            if slot.is_some() {
                return Ok(());
            }
            *slot = Some(reach_tx);
        }
        let dirty: Dirty = Arc::new((Mutex::new(BTreeMap::new()), Notify::new()));
        let mut planner = Planner::new(settings.debounce);
        for name in self.stores() {
            let Some(store) = self.store(&name) else {
                continue;
            };
            planner.add_store(&name, has_auto_sync(&store));
            let commits = self.local_commits(&name)?;
            let task = tokio::spawn(watch_store(
                Arc::clone(&self.inner),
                name,
                store,
                commits,
                Arc::clone(&dirty),
                settings.poll,
            ));
            self.inner.track(task);
        }
        let task = tokio::spawn(drive(self.clone(), planner, dirty, reach_rx, settings));
        self.inner.track(task);
        Ok(())
    }

    /// Connects to `device` unless a connection is open, and tells [`Node::keep_in_sync`]
    /// this node reached it (its pending stores sync). Returns whether this call opened the
    /// connection. What the dialer and discovery call.
    ///
    /// # Errors
    /// As [`Node::connect`].
    pub async fn reach(&self, device: DeviceId) -> Result<bool> {
        if self.connected().contains(&device) {
            return Ok(false);
        }
        self.connect(device).await?;
        let reached = lock(&self.inner.reached).clone();
        if let Some(tx) = reached
            && tx.try_send(device).is_err()
        {
            tracing::debug!(peer = %device, "too many devices reached at once: its pending syncs wait for the next commit or connection");
        }
        Ok(true)
    }
}

/// True when a local distributed table of `store` has auto-sync on.
fn has_auto_sync(store: &RdbStore) -> bool {
    auto_tables(store).is_some_and(|(auto, _)| !auto.is_empty())
}

/// The local distributed tables with auto-sync on, and whether they are all of them.
fn auto_tables(store: &RdbStore) -> Option<(Vec<String>, bool)> {
    let tables = store.distributed_tables().ok()?;
    let local: Vec<_> = tables.iter().filter(|m| m.base.is_none()).collect();
    let auto: Vec<String> = local
        .iter()
        .filter(|m| m.auto_sync)
        .map(|m| m.name.clone())
        .collect();
    let all = auto.len() == local.len();
    Some((auto, all))
}

/// Marks `name` dirty when it commits: this process's commits through the observer,
/// another process's through the writer's `data_version`.
async fn watch_store(
    inner: Arc<Inner>,
    name: String,
    store: RdbStore,
    mut commits: tokio::sync::watch::Receiver<u64>,
    dirty: Dirty,
    poll: Duration,
) {
    let mut stop = inner.stop.subscribe();
    let mut tick = tokio::time::interval(poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen: Option<i64> = None;
    loop {
        let polled = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            r = commits.changed() => {
                if r.is_err() {
                    return;
                }
                false
            }
            _ = tick.tick() => true,
        };
        let changed = if polled {
            let s = store.clone();
            let version = tokio::task::spawn_blocking(move || s.data_version())
                .await
                .ok()
                .and_then(|v| v.ok())
                .flatten();
            match version {
                // The first reading is the baseline: serving starts pending anyway.
                Some(v) if seen.is_none() => {
                    seen = Some(v);
                    false
                }
                Some(v) if seen != Some(v) => {
                    seen = Some(v);
                    true
                }
                _ => false,
            }
        } else {
            true
        };
        if changed {
            let s = store.clone();
            let auto = tokio::task::spawn_blocking(move || has_auto_sync(&s))
                .await
                .unwrap_or(false);
            lock(&dirty.0).insert(name.clone(), auto);
            dirty.1.notify_one();
        }
    }
}

/// The planner's loop: commits, devices reached, sessions ended and due pushes, until the
/// node stops.
async fn drive(
    node: Node,
    mut planner: Planner,
    dirty: Dirty,
    mut reached: mpsc::Receiver<DeviceId>,
    settings: AutoSync,
) {
    let mut stop = node.inner.stop.subscribe();
    let mut running: JoinSet<(Start, bool)> = JoinSet::new();
    let far = Duration::from_secs(86_400);
    loop {
        let due = planner.due().unwrap_or_else(|| Instant::now() + far);
        let starts = tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            _ = dirty.1.notified() => {
                let now = Instant::now();
                for (name, auto) in std::mem::take(&mut *lock(&dirty.0)) {
                    planner.set_auto(&name, auto);
                    planner.changed(&name, now);
                }
                Vec::new()
            }
            Some(device) = reached.recv() => planner.reached(device),
            _ = tokio::time::sleep_until(due) => planner.flush(Instant::now(), &node.connected()),
            Some(done) = running.join_next() => {
                if let Ok((start, ok)) = done {
                    let connected = node.connected().contains(&start.device);
                    planner.finished(&start, ok, connected, Instant::now());
                }
                Vec::new()
            }
        };
        for start in starts {
            let node = node.clone();
            let timeout = settings.timeout;
            running.spawn(async move {
                let ok = run(&node, &start, timeout).await;
                (start, ok)
            });
        }
    }
}

/// One planned sync: the whole store when reached or when every table auto-syncs, else one
/// push per auto-sync table (a table-only filter shares the whole table's watermark).
async fn run(node: &Node, start: &Start, timeout: Duration) -> bool {
    let Some(store) = node.store(&start.store) else {
        return false;
    };
    let reason = if start.mode == SyncMode::Push {
        "auto-sync push"
    } else {
        "pending sync"
    };
    let tables = match tokio::task::spawn_blocking(move || auto_tables(&store)).await {
        Ok(Some((auto, all))) if start.mode == SyncMode::Push && !all => {
            auto.into_iter().map(Some).collect()
        }
        _ => vec![None],
    };
    tracing::info!(peer = %start.device, store = %start.store, mode = ?start.mode, "{reason}");
    let mut ok = true;
    for table in tables {
        let predicates = table.map(RdbPredicates::new);
        let r = node
            .sync_with(
                start.device,
                &start.store,
                start.mode,
                predicates.as_ref(),
                timeout,
            )
            .await;
        ok &= r.status.is_ok();
    }
    ok
}
