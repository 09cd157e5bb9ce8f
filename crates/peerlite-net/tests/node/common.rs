//! Devices with a home, a trust set, a `notes` store (table `note`, device collaboration) and
//! a node; a bound on every wait.

use std::future::Future;
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use peerlite::changes::{DistributedConfig, DistributedType};
use peerlite::{RdbStore, SecurityLevel, StoreConfig};
use peerlite_net::{
    ChannelConfig, DeviceId, DeviceLevel, Endpoint, Home, Node, NodeConfig, TrustSet, TrustedDevice,
};

/// The longest any awaited outcome may take: a guard against hanging, not a measure.
pub const BOUND: Duration = Duration::from_secs(60);

/// Awaits `f`, failing the test if it takes longer than [`BOUND`].
pub async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(BOUND, f)
        .await
        .expect("the expected outcome never came")
}

pub struct Dev {
    pub home: Home,
    pub trust: TrustSet,
    pub store: RdbStore,
    pub node: Node,
    pub dir: tempfile::TempDir,
}

impl Dev {
    /// A device whose `notes` store is labelled `label`, with a node configured by `config`.
    pub fn new(name: &str, label: SecurityLevel, config: NodeConfig) -> Dev {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::init(dir.path().join("home"), Some(name), DeviceLevel::Sl4).unwrap();
        let store = RdbStore::open(
            StoreConfig::new(dir.path().join("notes.db"))
                .device_id(home.id().to_string())
                .security_level(label),
        )
        .unwrap();
        store
            .execute("CREATE TABLE note(id INTEGER PRIMARY KEY, text TEXT)", &[])
            .unwrap();
        store
            .set_distributed_tables(
                &["note"],
                DistributedType::Device,
                &DistributedConfig::default(),
            )
            .unwrap();
        let trust = TrustSet::default();
        let node = Node::new(self::endpoint(&home, &trust), config);
        node.serve_store(&store).unwrap();
        Dev {
            home,
            trust,
            store,
            node,
            dir,
        }
    }

    pub fn plain(name: &str) -> Dev {
        Dev::new(name, SecurityLevel::S1, NodeConfig::default())
    }

    pub fn id(&self) -> DeviceId {
        self.home.id()
    }

    /// This device trusts `other` at `level`, at `addr` when given.
    pub fn trusts(&self, other: DeviceId, level: DeviceLevel, addr: Option<String>) {
        let mut device = TrustedDevice::new(other).level(level);
        device.addrs = addr.into_iter().collect();
        self.trust.insert(device);
    }

    pub fn endpoint(&self) -> Endpoint {
        endpoint(&self.home, &self.trust)
    }

    pub fn add_notes(&self, texts: &[&str]) {
        for t in texts {
            self.store
                .insert("note", &peerlite::bucket! { "text" => *t })
                .unwrap();
        }
    }

    /// The texts of `other`'s notes held here.
    pub fn notes_from(&self, other: DeviceId) -> Vec<String> {
        let table = self
            .store
            .obtain_distributed_table_name(&other.to_string(), "note")
            .unwrap();
        let exists = table_exists(&self.store, &table);
        if !exists {
            return Vec::new();
        }
        let mut rs = self
            .store
            .query_sql(&format!("SELECT text FROM \"{table}\" ORDER BY id"), &[])
            .unwrap();
        let mut out = Vec::new();
        while rs.go_to_next_row().unwrap() {
            out.push(rs.get_string(0).unwrap());
        }
        out
    }
}

fn table_exists(store: &RdbStore, table: &str) -> bool {
    let mut rs = store
        .query_sql(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
            &[table.into()],
        )
        .unwrap();
    rs.go_to_first_row().unwrap();
    rs.get_long(0).unwrap() == 1
}

pub fn endpoint(home: &Home, trust: &TrustSet) -> Endpoint {
    Endpoint::new(
        home,
        trust.clone(),
        ChannelConfig::default()
            .handshake_timeout(Duration::from_secs(20))
            .compression(false),
    )
    .unwrap()
}

/// `b` listens, trusting `a`; `a` trusts `b` at its address. Returns the address.
pub async fn pair(a: &Dev, b: &Dev) -> String {
    b.trusts(a.id(), DeviceLevel::Sl4, None);
    let addr = b.node.listen("127.0.0.1:0").await.unwrap().to_string();
    a.trusts(b.id(), DeviceLevel::Sl4, Some(addr.clone()));
    addr
}

static PANICS: AtomicUsize = AtomicUsize::new(0);

/// Counts panics anywhere in this test binary from now on (tokio catches a task's panic).
pub fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            previous(info);
        }));
    });
}

pub fn panics() -> usize {
    PANICS.load(Ordering::SeqCst)
}
