//! Devices on loopback, raw clients that speak TLS and frames by hand, captured logs, and a
//! bound on every wait (an outcome that never comes fails the test instead of hanging it).

use std::fmt::Write as _;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use peerlite_net::frame::{self, Features, Frame, Hello};
use peerlite_net::{
    ChannelConfig, Connection, DeviceId, DeviceLevel, Endpoint, Home, Listener, TrustSet,
    TrustedDevice,
};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// The longest any awaited outcome may take before the test fails. Never a threshold the
/// code is measured against: only a guard against hanging.
pub const BOUND: Duration = Duration::from_secs(30);

/// Awaits `f`, failing the test if it takes longer than [`BOUND`].
pub async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(BOUND, f)
        .await
        .expect("the expected outcome never came")
}

/// A device with a home in a temporary directory and a trust set of its own.
pub struct Device {
    pub home: Home,
    pub trust: TrustSet,
    _dir: tempfile::TempDir,
}

impl Device {
    pub fn new(name: &str) -> Device {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::init(dir.path(), Some(name), DeviceLevel::Sl3).unwrap();
        Device {
            home,
            trust: TrustSet::default(),
            _dir: dir,
        }
    }

    pub fn id(&self) -> DeviceId {
        self.home.id()
    }

    /// This device trusts `other` at `level`, under `other`'s name.
    pub fn trusts(&self, other: &Device, level: DeviceLevel) {
        self.trust.insert(
            TrustedDevice::new(other.id())
                .name(other.home.name())
                .level(level),
        );
    }

    pub fn endpoint(&self, config: ChannelConfig) -> Endpoint {
        Endpoint::new(&self.home, self.trust.clone(), config).unwrap()
    }
}

/// Two devices that trust each other.
pub fn paired() -> (Device, Device) {
    let a = Device::new("a");
    let b = Device::new("b");
    a.trusts(&b, DeviceLevel::Sl2);
    b.trusts(&a, DeviceLevel::Sl4);
    (a, b)
}

/// Generous timeouts: tests that want a timeout to fire set their own, small ones.
pub fn config() -> ChannelConfig {
    ChannelConfig::default()
        .handshake_timeout(Duration::from_secs(20))
        .idle_timeout(Duration::from_secs(60))
        .keepalive_interval(Duration::from_secs(10))
}

pub async fn listen(device: &Device, config: ChannelConfig) -> (Listener, String) {
    let listener = device.endpoint(config).bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().to_string();
    (listener, addr)
}

/// `client` dials `addr` expecting `server`; returns (client side, server side).
pub async fn connect(
    client: &Endpoint,
    listener: &mut Listener,
    addr: &str,
    server: DeviceId,
) -> (Connection, Connection) {
    let (dialled, accepted) =
        bounded(async { tokio::join!(client.connect(addr, &server), listener.accept()) }).await;
    (dialled.unwrap(), accepted.unwrap())
}

/// Sends one payload each way and checks it arrives.
pub async fn assert_works(x: &mut Connection, y: &mut Connection) {
    x.send(b"ping from x").await.unwrap();
    assert_eq!(bounded(y.recv()).await.unwrap(), b"ping from x");
    y.send(b"ping from y").await.unwrap();
    assert_eq!(bounded(x.recv()).await.unwrap(), b"ping from y");
}

/// A TLS client speaking for `device` (with its real certificate), pinned to `server`, that
/// sends whatever the test wants.
pub async fn raw_tls(device: &Device, addr: &str, server: DeviceId) -> TlsStream<TcpStream> {
    let config = device
        .endpoint(self::config())
        .client_tls_config(&server)
        .unwrap();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("peerlite.invalid").unwrap();
    bounded(tokio_rustls::TlsConnector::from(config).connect(name, tcp))
        .await
        .unwrap()
}

/// Sends our HELLO with `features` and returns the server's.
pub async fn raw_hello(stream: &mut TlsStream<TcpStream>, features: Features) -> Hello {
    let ours = Frame::Hello(Hello {
        version: frame::VERSION,
        features,
        max_frame: 16 << 20,
    });
    send_raw(stream, &ours.encode()).await;
    match bounded(next_frame(stream)).await.unwrap() {
        Some(Frame::Hello(hello)) => hello,
        other => panic!("expected HELLO, got {other:?}"),
    }
}

pub async fn send_raw(stream: &mut TlsStream<TcpStream>, bytes: &[u8]) {
    use tokio::io::AsyncWriteExt;
    stream.write_all(bytes).await.unwrap();
    stream.flush().await.unwrap();
}

pub async fn next_frame(stream: &mut TlsStream<TcpStream>) -> peerlite_net::Result<Option<Frame>> {
    frame::read_frame(stream, 32 << 20, BOUND).await
}

/// Reads until the peer closes: Ok(0) or an error. Anything else that keeps coming (pings)
/// is skipped; a peer that never closes fails the test through [`bounded`].
pub async fn assert_closed_by_peer<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 4096];
    bounded(async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await;
}

/// Events logged anywhere in this test binary, as `field=value` text, one string per event.
/// One global subscriber rather than one per test: scoped (thread-local) subscribers in
/// parallel tests lose events to tracing's per-callsite interest cache. Tests find their own
/// events by the device ids, which are unique to each test.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<String>>>);

impl Logs {
    /// The binary's log capture (installed on first use).
    pub fn capture() -> Logs {
        static LOGS: std::sync::OnceLock<Logs> = std::sync::OnceLock::new();
        LOGS.get_or_init(|| {
            let logs = Logs::default();
            tracing::subscriber::set_global_default(logs.clone()).unwrap();
            logs
        })
        .clone()
    }

    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// Whether one event mentions every one of `words`.
    pub fn any(&self, words: &[&str]) -> bool {
        self.lines()
            .iter()
            .any(|line| words.iter().all(|w| line.contains(w)))
    }
}

struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, "{}={:?} ", field.name(), value);
    }
}

impl tracing::Subscriber for Logs {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        self.0.lock().unwrap().push(fields.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

static PANICS: AtomicUsize = AtomicUsize::new(0);

/// Counts panics anywhere in this test binary from now on (tokio catches a panicking task's
/// panic, so without this a reader task dying would look like a closed connection).
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
