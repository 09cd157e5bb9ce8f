//! The node: one device on the network, serving its stores to trusted peers and syncing them.
//!
//! A [`Node`] holds any number of stores of one device (relational databases and key-value
//! stores, each known to peers by its logical name), accepts connections from trusted devices
//! ([`Node::listen`]) and dials them ([`Node::sync`], [`Node::remote_query`]). Each connection
//! — dialled or accepted — is one task with one [`Dispatcher`](peerlite::sync::Dispatcher)
//! that carries every session and query between the two devices, both ways. The peer a
//! session talks to is the identity the TLS handshake proved, at the level this device's
//! trust store records for it; a `Hello` claiming anything else is refused by the core.
//!
//! SQLite work (reading batches, applying them, answering queries, opening sessions) runs on
//! tokio's blocking pool, never on the async threads. Memory stays bounded: one batch in
//! flight per session, bounded queues between the tasks (a slow side slows the other down),
//! and batches bounded in rows and bytes.
//!
//! For the engineers adding discovery, auto-sync and benchmarks, the seams are:
//! [`Node::learn_addresses`] (addresses found on the LAN, tried before the trust store's),
//! [`Node::local_commits`] (a counter bumped after each local commit of a store),
//! [`Node::events`] (connections, disconnections and finished syncs),
//! [`Node::sync_with`] (one device) and [`NodeConfig`] (batch rows, compression, patience).
//!
//! ```
//! use std::time::Duration;
//! use peerlite::changes::{DistributedConfig, DistributedType};
//! use peerlite::sync::SyncMode;
//! use peerlite::{bucket, RdbStore, StoreConfig};
//! use peerlite_net::{ChannelConfig, DeviceLevel, Endpoint, Home, Node, NodeConfig, TrustSet, TrustedDevice};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let device = |name: &str| -> Result<(Home, RdbStore), Box<dyn std::error::Error>> {
//!     let home = Home::init(dir.path().join(name), Some(name), DeviceLevel::Sl2)?;
//!     let config = StoreConfig::new(dir.path().join(name).join("notes.db")).device_id(home.id().to_string());
//!     let store = RdbStore::open(config)?;
//!     store.execute("CREATE TABLE note (id INTEGER PRIMARY KEY, text TEXT)", &[])?;
//!     store.set_distributed_tables(&["note"], DistributedType::Device, &DistributedConfig::default())?;
//!     Ok((home, store))
//! };
//! let ((phone_home, phone), (laptop_home, laptop)) = (device("phone")?, device("laptop")?);
//! let (phone_trusts, laptop_trusts) = (TrustSet::default(), TrustSet::default());
//! laptop_trusts.insert(TrustedDevice::new(phone_home.id()));
//!
//! let laptop_node = Node::new(Endpoint::new(&laptop_home, laptop_trusts, ChannelConfig::default())?, NodeConfig::default());
//! laptop_node.serve_store(&laptop)?;
//! let addr = laptop_node.listen("127.0.0.1:0").await?;
//! phone_trusts.insert(TrustedDevice::new(laptop_home.id()).addr(addr.to_string()));
//! let phone_node = Node::new(Endpoint::new(&phone_home, phone_trusts, ChannelConfig::default())?, NodeConfig::default());
//! phone_node.serve_store(&phone)?;
//!
//! phone.insert("note", &bucket! { "text" => "buy milk" })?;
//! let results = phone_node.sync("notes", SyncMode::Push, None, Duration::from_secs(30)).await?;
//! assert_eq!(results.len(), 1);
//! assert_eq!((results[0].0, results[0].1.status.code(), results[0].1.sent), (laptop_home.id(), 0, 1));
//! phone_node.shutdown().await;
//! laptop_node.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod auto_sync;
mod dialer;
pub mod discovery;
mod link;
mod outbound;
mod pending;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use peerlite::sync::{DeviceResult, SyncStore};
use peerlite::{KvStore, RdbStore, SubscribeType};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use crate::{Connection, DeviceId, Endpoint};

pub use auto_sync::AutoSync;
pub use dialer::Backoff;
pub use outbound::status_of;

/// How a node runs its sessions.
///
/// ```
/// use std::time::Duration;
/// use peerlite_net::NodeConfig;
///
/// let config = NodeConfig::default().batch_rows(5000).compression(false).silence(Duration::from_secs(1));
/// assert_eq!(config.get_batch_rows(), 5000);
/// ```
#[derive(Debug, Clone)]
pub struct NodeConfig {
    batch_rows: usize,
    compression: bool,
    silence: Duration,
    max_silences: u32,
    grace: Duration,
    commands: usize,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            batch_rows: peerlite::sync::DEFAULT_BATCH_ROWS,
            compression: true,
            silence: Duration::from_secs(2),
            max_silences: 15,
            grace: Duration::from_secs(5),
            commands: 32,
        }
    }
}

impl NodeConfig {
    /// Rows per batch (default 2,000; a batch also stops after 4 MiB of values).
    #[must_use]
    pub fn batch_rows(mut self, rows: usize) -> Self {
        self.batch_rows = rows.max(1);
        self
    }

    /// Whether batches travel zstd-compressed when the peer agrees (default on).
    #[must_use]
    pub fn compression(mut self, on: bool) -> Self {
        self.compression = on;
        self
    }

    /// How long a session may hear nothing before it sends its last message again
    /// (default 2 s).
    #[must_use]
    pub fn silence(mut self, interval: Duration) -> Self {
        self.silence = interval.max(Duration::from_millis(10));
        self
    }

    /// Silences in a row after which a session ends as timed out (default 15).
    #[must_use]
    pub fn max_silences(mut self, n: u32) -> Self {
        self.max_silences = n.max(1);
        self
    }

    /// How long [`Node::shutdown`] lets running sessions finish before it aborts them
    /// (default 5 s).
    #[must_use]
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Rows per batch.
    pub fn get_batch_rows(&self) -> usize {
        self.batch_rows
    }
}

/// Something that happened on a node ([`Node::events`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum NodeEvent {
    /// A connection with a trusted device opened (dialled or accepted).
    Connected {
        /// The device, as the handshake proved it.
        device: DeviceId,
        /// Its address.
        addr: SocketAddr,
    },
    /// A connection closed.
    Disconnected {
        /// The device.
        device: DeviceId,
        /// Why.
        reason: String,
    },
    /// A session ended (started by either side).
    SyncFinished {
        /// The peer.
        device: DeviceId,
        /// The store's logical name.
        store: String,
        /// True when this device started it.
        initiator: bool,
        /// How it went for this side.
        result: DeviceResult,
    },
}

/// A store the node serves.
#[derive(Debug, Clone)]
struct Served {
    surface: Arc<dyn SyncStore>,
    rdb: RdbStore,
    /// Keeps a key-value store (and its manager's registration) alive while served.
    kv: Option<KvStore>,
}

/// Connections one device may hold open to this node at once. A newer one replaces the
/// older as the one sessions use (the link table); the older ones stay open so that two
/// devices dialling each other at the same moment keep one of the two, but past this many the
/// oldest is closed: every connection may hold a frame of up to the frame limit (16 MiB)
/// being received, so a device that opened connection after connection would make this node
/// hold that much per connection, without bound.
pub const MAX_CONNECTIONS_PER_DEVICE: usize = 2;

/// A live connection's task, as the node reaches it.
#[derive(Debug, Clone)]
pub(crate) struct Link {
    tx: mpsc::Sender<link::Command>,
    serial: u64,
    /// The level the trust store gave the device when it connected.
    level: crate::DeviceLevel,
}

pub(crate) struct Inner {
    endpoint: Endpoint,
    config: NodeConfig,
    stores: RwLock<BTreeMap<String, Served>>,
    links: Mutex<HashMap<DeviceId, Link>>,
    /// Connections a newer one replaced in `links` that are still open, oldest first.
    replaced: Mutex<HashMap<DeviceId, std::collections::VecDeque<Link>>>,
    learned: RwLock<HashMap<DeviceId, Vec<String>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    stop: watch::Sender<bool>,
    events: broadcast::Sender<NodeEvent>,
    serial: AtomicU64,
    /// Where [`Node::reach`] tells [`Node::keep_in_sync`] of a device reached (None until it
    /// runs).
    reached: Mutex<Option<mpsc::Sender<DeviceId>>>,
}

/// One device on the network serving its stores (see the module documentation). Cheap to
/// clone: clones share everything.
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.inner.endpoint.id())
            .field("stores", &self.stores())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Node {
    /// A node for `endpoint`'s device (its identity, trust set and channel settings).
    pub fn new(endpoint: Endpoint, config: NodeConfig) -> Node {
        let (stop, _) = watch::channel(false);
        let (events, _) = broadcast::channel(256);
        Node {
            inner: Arc::new(Inner {
                endpoint,
                config,
                stores: RwLock::new(BTreeMap::new()),
                links: Mutex::new(HashMap::new()),
                replaced: Mutex::new(HashMap::new()),
                learned: RwLock::new(HashMap::new()),
                tasks: Mutex::new(Vec::new()),
                stop,
                events,
                serial: AtomicU64::new(0),
                reached: Mutex::new(None),
            }),
        }
    }

    /// This device's id.
    pub fn id(&self) -> DeviceId {
        self.inner.endpoint.id()
    }

    /// The endpoint (identity, trust set, channel settings).
    pub fn endpoint(&self) -> &Endpoint {
        &self.inner.endpoint
    }

    /// Serves a relational store; returns the logical name peers know it by (its file name
    /// without the extension).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the store was opened as another device (open it with
    /// `StoreConfig::device_id` set to this node's id), is labelled above this device's own
    /// level, or a store of that name is served already.
    pub fn serve_store(&self, store: &RdbStore) -> Result<String> {
        self.add(store.clone(), None)
    }

    /// Serves a key-value store (made syncable first); returns its logical name (its id).
    ///
    /// # Errors
    /// As [`Node::serve_store`]; the store's error when it cannot be made syncable.
    pub fn serve_kv_store(&self, store: &KvStore) -> Result<String> {
        let rdb = store.sync_store()?.clone();
        self.add(rdb, Some(store.clone()))
    }

    fn add(&self, rdb: RdbStore, kv: Option<KvStore>) -> Result<String> {
        let surface = rdb.sync_surface();
        let name = surface.store_name();
        let own = self.id().to_string();
        if surface.device_id() != own {
            return Err(Error::InvalidArgument {
                what: "store",
                reason: format!(
                    "store {name:?} is opened as device {}, this node is {own}",
                    surface.device_id()
                ),
            });
        }
        // A device holds only data its own level admits: an SL1 device neither serves nor
        // syncs an S4 store, whatever level a peer recorded for it.
        let (label, level) = (surface.data_label(), self.inner.endpoint.level());
        if !level.admits_label(label.as_u8()) {
            return Err(Error::InvalidArgument {
                what: "store",
                reason: format!(
                    "store {name:?} is labelled {label}, above what this {level} device may hold"
                ),
            });
        }
        let mut stores = self
            .inner
            .stores
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if stores.contains_key(&name) {
            return Err(Error::InvalidArgument {
                what: "store name",
                reason: format!("a store named {name:?} is served already"),
            });
        }
        stores.insert(name.clone(), Served { surface, rdb, kv });
        Ok(name)
    }

    /// The logical names of the stores served.
    pub fn stores(&self) -> Vec<String> {
        self.inner
            .stores
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect()
    }

    /// The relational store served under `name` (a key-value store's underlying one).
    pub fn store(&self, name: &str) -> Option<RdbStore> {
        self.inner.served(name).map(|s| s.rdb)
    }

    /// A counter bumped after every local commit that changed `store`'s tables: the hook
    /// auto-sync waits on (a `watch` coalesces commits that come faster than it syncs).
    ///
    /// # Errors
    /// [`Error::NotServed`]; the store's error (closed, too many observers).
    pub fn local_commits(&self, store: &str) -> Result<watch::Receiver<u64>> {
        let served = self.inner.served(store).ok_or_else(|| Error::NotServed {
            store: store.to_owned(),
        })?;
        let (tx, rx) = watch::channel(0u64);
        served.rdb.on_data_change(SubscribeType::Local, move |_| {
            tx.send_modify(|n| *n = n.wrapping_add(1));
        })?;
        Ok(rx)
    }

    /// Addresses where `device` was seen (by discovery): dialled before the trust store's.
    /// An empty list forgets them.
    pub fn learn_addresses(&self, device: DeviceId, addrs: Vec<String>) {
        let mut learned = self
            .inner
            .learned
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if addrs.is_empty() {
            learned.remove(&device);
        } else {
            learned.insert(device, addrs);
        }
    }

    /// The devices with a live connection to this one.
    pub fn connected(&self) -> Vec<DeviceId> {
        let links = lock(&self.inner.links);
        let mut ids: Vec<DeviceId> = links
            .iter()
            .filter(|(_, l)| !l.tx.is_closed())
            .map(|(id, _)| *id)
            .collect();
        ids.sort();
        ids
    }

    /// How many connections of `device` are open (at most
    /// [`MAX_CONNECTIONS_PER_DEVICE`] once the oldest have closed).
    pub fn connections(&self, device: &DeviceId) -> usize {
        let current = lock(&self.inner.links)
            .get(device)
            .is_some_and(|l| !l.tx.is_closed());
        let older = lock(&self.inner.replaced)
            .get(device)
            .map_or(0, |k| k.iter().filter(|l| !l.tx.is_closed()).count());
        usize::from(current) + older
    }

    /// What happens on the node from now on (connections, finished syncs). A receiver that
    /// falls more than 256 events behind misses the oldest.
    pub fn events(&self) -> broadcast::Receiver<NodeEvent> {
        self.inner.events.subscribe()
    }

    /// Accepts connections from trusted devices on `addr` (`HOST:PORT`, port 0 picks a free
    /// one) until [`Node::shutdown`]; returns the address bound.
    ///
    /// # Errors
    /// [`Error::Bind`]; [`Error::ShuttingDown`].
    pub async fn listen(&self, addr: &str) -> Result<SocketAddr> {
        if *self.inner.stop.borrow() {
            return Err(Error::ShuttingDown);
        }
        let mut listener = self.inner.endpoint.bind(addr).await?;
        let local = listener.local_addr();
        let inner = Arc::clone(&self.inner);
        let mut stop = self.inner.stop.subscribe();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => return,
                    accepted = listener.accept() => match accepted {
                        Ok(conn) => {
                            Inner::attach(&inner, conn);
                        }
                        Err(_) => return,
                    },
                }
            }
        });
        self.inner.track(task);
        tracing::info!(device = %self.id(), addr = %local, "listening");
        Ok(local)
    }

    /// Stops: no more connections or sessions are accepted, running sessions get the grace
    /// period to finish and are then aborted (their peers told why), connections close with
    /// TLS close_notify, and the stores are closed (their WAL checkpointed).
    pub async fn shutdown(&self) {
        self.inner.stop.send_replace(true);
        loop {
            let tasks = std::mem::take(&mut *lock(&self.inner.tasks));
            if tasks.is_empty() {
                break;
            }
            for task in tasks {
                let _ = task.await;
            }
        }
        let served: Vec<Served> = std::mem::take(
            &mut *self
                .inner
                .stores
                .write()
                .unwrap_or_else(PoisonError::into_inner),
        )
        .into_values()
        .collect();
        let closed = tokio::task::spawn_blocking(move || {
            for s in served {
                let closed = match &s.kv {
                    Some(kv) => kv.close(),
                    None => s.rdb.close(),
                };
                if let Err(e) = closed {
                    tracing::warn!(path = ?s.rdb.path(), %e, "closing a store failed");
                }
            }
        });
        let _ = closed.await;
    }

    /// Closes the connections of devices the trust set no longer holds as they connected:
    /// removed (`peerlite trust remove`), or recorded at another level. Nothing more is sent
    /// to them — a session running on such a connection ends there (its peer sees the
    /// connection close) — and one whose level changed reconnects at the new level. Call it
    /// after changing the trust set (`peerlite serve` does when the trust store file changes).
    pub fn enforce_trust(&self) {
        let trust = self.inner.endpoint.trust();
        let links: Vec<(DeviceId, Link)> = lock(&self.inner.links)
            .iter()
            .map(|(d, l)| (*d, l.clone()))
            .collect();
        for (device, link) in links {
            let (reason, removed) = match trust.get(&device) {
                None => ("the device is no longer trusted".to_owned(), true),
                Some(t) if t.level != link.level => (
                    format!(
                        "the device's level changed from {} to {}",
                        link.level, t.level
                    ),
                    false,
                ),
                Some(_) => continue,
            };
            tracing::warn!(device = %self.id(), peer = %device, "closing the connection: {reason}");
            // A removed device hears the refusal a handshake would give it; one whose level
            // changed reconnects at the new level.
            let command = |reason: String| {
                if removed {
                    link::Command::Untrust(reason)
                } else {
                    link::Command::Revoke(reason)
                }
            };
            // A full command queue: the link is busy; it closes at the next command or
            // event. try_send never waits here.
            if link.tx.try_send(command(reason.clone())).is_err() {
                let tx = link.tx.clone();
                let command = command(reason);
                tokio::spawn(async move {
                    let _ = tx.send(command).await;
                });
            }
        }
    }

    /// Dials `device` now (or returns at once when a connection is open), so that it can
    /// sync with this device: what discovery calls when a trusted device appears.
    ///
    /// # Errors
    /// As [`Endpoint::connect`]; [`Error::NotTrusted`], [`Error::NoAddress`],
    /// [`Error::ShuttingDown`].
    pub async fn connect(&self, device: DeviceId) -> Result<()> {
        self.inner.link_to(device).await.map(|_| ())
    }
}

impl Inner {
    fn served(&self, name: &str) -> Option<Served> {
        self.stores
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    fn track(&self, task: JoinHandle<()>) {
        let mut tasks = lock(&self.tasks);
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }

    /// Starts the task of a new connection and makes it the one sessions to its device use.
    fn attach(this: &Arc<Inner>, conn: Connection) -> Link {
        let device = conn.peer().id;
        let (tx, rx) = mpsc::channel(this.config.commands);
        let link = Link {
            tx,
            serial: this.serial.fetch_add(1, Ordering::Relaxed),
            level: conn.peer().level,
        };
        let _ = this.events.send(NodeEvent::Connected {
            device,
            addr: conn.remote_addr(),
        });
        let older = lock(&this.links).insert(device, link.clone());
        if let Some(older) = older {
            this.retire(device, older);
        }
        let task = tokio::spawn(link::run(Arc::clone(this), conn, rx, link.serial));
        this.track(task);
        link
    }

    /// Keeps `older`, a connection of `device` a newer one replaced, open while the device
    /// holds fewer than [`MAX_CONNECTIONS_PER_DEVICE`]; closes the oldest past that.
    fn retire(&self, device: DeviceId, older: Link) {
        let mut replaced = lock(&self.replaced);
        let kept = replaced.entry(device).or_default();
        kept.retain(|l| !l.tx.is_closed());
        kept.push_back(older);
        while kept.len() + 1 > MAX_CONNECTIONS_PER_DEVICE {
            let Some(oldest) = kept.pop_front() else {
                break;
            };
            let reason = format!(
                "the device opened more than {MAX_CONNECTIONS_PER_DEVICE} connections; a newer one replaces this one"
            );
            tracing::info!(peer = %device, "{reason}");
            if oldest
                .tx
                .try_send(link::Command::Revoke(reason.clone()))
                .is_err()
            {
                // Busy: it closes at its next command (try_send never waits here).
                tokio::spawn(async move {
                    let _ = oldest.tx.send(link::Command::Revoke(reason)).await;
                });
            }
        }
    }

    /// Forgets a connection that ended (unless a newer one replaced it).
    fn detach(&self, device: &DeviceId, serial: u64, reason: String) {
        let mut links = lock(&self.links);
        if links.get(device).is_some_and(|l| l.serial == serial) {
            links.remove(device);
        }
        drop(links);
        if let Some(kept) = lock(&self.replaced).get_mut(device) {
            kept.retain(|l| l.serial != serial);
        }
        let _ = self.events.send(NodeEvent::Disconnected {
            device: *device,
            reason,
        });
    }
}
