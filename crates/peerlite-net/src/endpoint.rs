//! Dialling and accepting: TCP, the TLS handshake against the trust store, the channel HELLO.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::{TlsAcceptor, TlsConnector, TlsStream};

use crate::config::ChannelConfig;
use crate::connection::{Connection, establish};
use crate::error::{Error, Result};
use crate::traffic::{Counted, Counters, Traffic};
use crate::{DeviceId, Home, TrustSet, tls};

/// One device on the network: its identity, whom it trusts and the channel settings. Cheap to
/// clone; dials with [`Endpoint::connect`] and serves with [`Endpoint::bind`].
///
/// ```
/// use peerlite_net::{ChannelConfig, DeviceLevel, Endpoint, Home, TrustSet};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let dir = tempfile::tempdir().unwrap();
/// let home = Home::init(dir.path(), None, DeviceLevel::Sl1).unwrap();
/// let endpoint = Endpoint::new(&home, TrustSet::default(), ChannelConfig::default()).unwrap();
/// let listener = endpoint.bind("127.0.0.1:0").await.unwrap();
/// assert_ne!(listener.local_addr().port(), 0);
/// # }
/// ```
#[derive(Clone)]
pub struct Endpoint {
    inner: Arc<Inner>,
}

struct Inner {
    home: Home,
    trust: TrustSet,
    config: ChannelConfig,
    server: Arc<rustls::ServerConfig>,
    /// Bytes every connection of this endpoint moved over TCP.
    traffic: Arc<Counters>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("id", &self.inner.home.id())
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// An endpoint for `home` that talks only to the devices in `trust` (which may change
    /// while it runs: each handshake reads it).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for inconsistent settings (keep-alive not below the idle
    /// timeout, a zero limit).
    pub fn new(home: &Home, trust: TrustSet, config: ChannelConfig) -> Result<Endpoint> {
        config.validate()?;
        let server = tls::server_config(home, &trust)?;
        Ok(Endpoint {
            inner: Arc::new(Inner {
                home: home.clone(),
                trust,
                config,
                server,
                traffic: Arc::default(),
            }),
        })
    }

    /// This device's own level (`peerlite device init --level`).
    pub fn level(&self) -> crate::DeviceLevel {
        self.inner.home.level()
    }

    /// This device's id.
    pub fn id(&self) -> DeviceId {
        self.inner.home.id()
    }

    /// The trusted devices this endpoint checks peers against.
    pub fn trust(&self) -> &TrustSet {
        &self.inner.trust
    }

    /// The channel settings.
    pub fn config(&self) -> &ChannelConfig {
        &self.inner.config
    }

    /// Bytes this endpoint's connections (dialled and accepted, handshakes included) have
    /// sent and received over TCP so far.
    pub fn traffic(&self) -> Traffic {
        self.inner.traffic.read()
    }

    /// Dials `addr` (`HOST:PORT`) and accepts only the device `expected` (which must be
    /// trusted) at the other end.
    ///
    /// # Errors
    /// [`Error::Unreachable`]; [`Error::UntrustedPeer`] or [`Error::WrongPeer`] when another key
    /// answers; [`Error::RefusedByPeer`] when the peer does not trust this device;
    /// [`Error::HandshakeTimeout`], [`Error::HandshakeFailed`], [`Error::IncompatiblePeer`].
    pub async fn connect(&self, addr: &str, expected: &DeviceId) -> Result<Connection> {
        // A handshake the server cut off (it drops pending handshakes when a flood fills its
        // slots) is tried again a few times, backing off; any other outcome is final.
        let mut wait = CUT_OFF_RETRY;
        let mut result = self.dial(addr, *expected).await;
        for _ in 0..CUT_OFF_RETRIES {
            match &result {
                Err(e) if cut_off(e) => {
                    tracing::debug!(%addr, "{e}: trying again");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                    result = self.dial(addr, *expected).await;
                }
                _ => break,
            }
        }
        if let Err(e) = &result {
            log_refusal(self.id(), Direction::Outgoing, addr, e);
        }
        result
    }

    /// Dials a trusted device at each address recorded for it, in order, until one answers.
    ///
    /// # Errors
    /// [`Error::NotTrusted`], [`Error::NoAddress`], or the error of the last address tried.
    pub async fn connect_trusted(&self, id: &DeviceId) -> Result<Connection> {
        let device = self
            .inner
            .trust
            .get(id)
            .ok_or(Error::NotTrusted { id: *id })?;
        let mut last = Error::NoAddress { id: *id };
        for addr in &device.addrs {
            match self.connect(addr, id).await {
                Ok(conn) => return Ok(conn),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    async fn dial(&self, addr: &str, expected: DeviceId) -> Result<Connection> {
        let config = &self.inner.config;
        let timeout = config.handshake_timeout;
        let tcp = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(source)) => {
                return Err(Error::Unreachable {
                    addr: addr.to_string(),
                    source,
                });
            }
            Err(_) => {
                return Err(Error::Unreachable {
                    addr: addr.to_string(),
                    source: std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"),
                });
            }
        };
        let _ = tcp.set_nodelay(true);
        let remote = tcp.peer_addr().map_err(|source| Error::Unreachable {
            addr: addr.to_string(),
            source,
        })?;
        let connector = TlsConnector::from(self.client_tls_config(&expected)?);
        let name = ServerName::try_from(tls::SERVER_NAME).map_err(|e| Error::HandshakeFailed {
            reason: e.to_string(),
        })?;
        let tls =
            match tokio::time::timeout(timeout, connector.connect(name, self.counted(tcp))).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => return Err(tls::handshake_error(e)),
                Err(_) => return Err(Error::HandshakeTimeout { timeout }),
            };
        let conn = establish(TlsStream::Client(tls), remote, &self.inner.trust, config).await?;
        tracing::info!(
            device = %self.id(),
            peer = %conn.peer().id,
            %remote,
            compression = conn.compression(),
            "connected"
        );
        Ok(conn)
    }

    /// Runs the server side of the handshake on a socket accepted elsewhere.
    ///
    /// # Errors
    /// [`Error::UntrustedPeer`] for a client whose key is not trusted; [`Error::RefusedByPeer`],
    /// [`Error::HandshakeTimeout`], [`Error::HandshakeFailed`], [`Error::Protocol`],
    /// [`Error::IncompatiblePeer`].
    pub async fn accept_stream(&self, tcp: TcpStream) -> Result<Connection> {
        let remote = tcp.peer_addr().map_err(|e| Error::HandshakeFailed {
            reason: e.to_string(),
        })?;
        let result = self.handshake_server(tcp, remote).await;
        match &result {
            Ok(conn) => tracing::info!(
                device = %self.id(),
                peer = %conn.peer().id,
                %remote,
                compression = conn.compression(),
                "accepted"
            ),
            Err(e) => log_refusal(self.id(), Direction::Incoming, &remote.to_string(), e),
        }
        result
    }

    async fn handshake_server(&self, tcp: TcpStream, remote: SocketAddr) -> Result<Connection> {
        let config = &self.inner.config;
        let timeout = config.handshake_timeout;
        let _ = tcp.set_nodelay(true);
        let acceptor = TlsAcceptor::from(self.inner.server.clone());
        let tls = match tokio::time::timeout(timeout, acceptor.accept(self.counted(tcp))).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => return Err(tls::handshake_error(e)),
            Err(_) => return Err(Error::HandshakeTimeout { timeout }),
        };
        establish(TlsStream::Server(tls), remote, &self.inner.trust, config).await
    }

    fn counted(&self, tcp: TcpStream) -> Counted<TcpStream> {
        Counted::new(tcp, Arc::clone(&self.inner.traffic))
    }

    /// Listens on `addr` (`HOST:PORT`; port 0 picks a free one). Handshakes run concurrently
    /// (at most `max_pending_handshakes` at once); a failed one is logged and never reaches
    /// [`Listener::accept`] nor delays the others.
    ///
    /// # Errors
    /// [`Error::Bind`] when the address cannot be bound.
    pub async fn bind(&self, addr: &str) -> Result<Listener> {
        let bind_error = |source| Error::Bind {
            addr: addr.to_string(),
            source,
        };
        let tcp = TcpListener::bind(addr).await.map_err(bind_error)?;
        let local = tcp.local_addr().map_err(bind_error)?;
        let (tx, rx) = mpsc::channel(self.inner.config.max_pending_handshakes);
        let task = tokio::spawn(accept_loop(tcp, self.clone(), tx));
        Ok(Listener { local, rx, task })
    }

    /// The TLS client configuration pinned to `expected`, for tools that speak the frame
    /// layer themselves (tests feeding the server raw frames, for one).
    ///
    /// # Errors
    /// [`Error::HandshakeFailed`] if rustls refuses the device's certificate.
    pub fn client_tls_config(&self, expected: &DeviceId) -> Result<Arc<ClientConfig>> {
        tls::client_config(&self.inner.home, &self.inner.trust, *expected)
    }
}

/// Logs a failed handshake: one line, naming this device (several may run in one process) and
/// the peer when the failure names one.
fn log_refusal(device: DeviceId, direction: Direction, remote: &str, e: &Error) {
    let code = e.code();
    let line = refusal_line(direction, e);
    match e {
        Error::UntrustedPeer { id } => tracing::warn!(%device, peer = %id, %remote, code, "{line}"),
        Error::WrongPeer { actual, .. } => {
            tracing::warn!(%device, peer = %actual, %remote, code, "{line}")
        }
        _ => tracing::warn!(%device, %remote, code, "{line}"),
    }
}

/// How many times a handshake the server cut off is dialled again, and the first wait
/// (doubling): about 1.5 s in all, well within a sync's time.
const CUT_OFF_RETRIES: usize = 4;
const CUT_OFF_RETRY: std::time::Duration = std::time::Duration::from_millis(100);

/// True for a handshake that ended because the other side dropped the socket (end of file,
/// reset) — what a busy server does to pending handshakes — not because anyone refused.
fn cut_off(e: &Error) -> bool {
    let Error::HandshakeFailed { reason } = e else {
        return false;
    };
    let reason = reason.to_ascii_lowercase();
    ["eof", "reset", "broken pipe", "closed"]
        .iter()
        .any(|w| reason.contains(w))
}

/// Which side of a connection this device is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// It accepted the connection.
    Incoming,
    /// It dialled.
    Outgoing,
}

/// The log line of a connection whose handshake did not complete: which side, and the error
/// once (a refused connection is never called "accepted", and an error that already says
/// "handshake failed" is not prefixed with it again).
fn refusal_line(direction: Direction, e: &Error) -> String {
    let side = match direction {
        Direction::Incoming => "incoming connection",
        Direction::Outgoing => "outgoing connection",
    };
    match e {
        Error::UntrustedPeer { .. } => {
            format!("{side}: refused untrusted device during the handshake")
        }
        Error::WrongPeer { .. } => format!("{side}: refused: {e}"),
        Error::HandshakeFailed { .. } | Error::HandshakeTimeout { .. } => format!("{side}: {e}"),
        _ => format!("{side}: handshake failed: {e}"),
    }
}

/// A client sends its TLS ClientHello as soon as it connects: a socket that has said nothing
/// this long is dropped (well before the handshake timeout), so silent sockets cannot hold the
/// handshake slots.
const FIRST_BYTE: std::time::Duration = std::time::Duration::from_secs(2);

/// One accepted socket whose handshake has not finished.
struct Slot {
    id: u64,
    /// Where it comes from (a host floods from its one address).
    source: std::net::IpAddr,
    /// It has sent something (a real client's TLS ClientHello comes at once): it holds one
    /// of the handshake slots.
    spoke: bool,
    task: tokio::task::AbortHandle,
}

/// The sockets accepted and not yet through their handshake, oldest first.
#[derive(Default)]
struct Pending {
    next: u64,
    tasks: std::collections::VecDeque<Slot>,
}

impl Pending {
    fn lock(pending: &std::sync::Mutex<Pending>) -> std::sync::MutexGuard<'_, Pending> {
        pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn done(pending: &std::sync::Mutex<Pending>, id: u64) {
        Pending::lock(pending).tasks.retain(|s| s.id != id);
    }

    fn count(&self, spoke: bool) -> usize {
        self.tasks.iter().filter(|s| s.spoke == spoke).count()
    }

    /// Room for a newcomer among the (at most `max`) silent sockets: the oldest silent one
    /// goes. Silent sockets take no handshake slot, so a flood of idle sockets, however fast it
    /// reconnects, only ever pushes out its own: a trusted device speaks at once, long before
    /// `max` newer sockets arrive.
    fn make_silent_room(&mut self, max: usize) {
        while self.count(false) >= max {
            let Some(i) = self.tasks.iter().position(|s| !s.spoke) else {
                return;
            };
            if let Some(slot) = self.tasks.remove(i) {
                slot.task.abort();
            }
        }
    }

    /// Socket `id` spoke: it takes a handshake slot, and when all `max` are taken the oldest
    /// handshake of the source holding the most goes (a flood comes from one host; a trusted
    /// device holds few).
    fn spoke(&mut self, id: u64, max: usize) {
        if let Some(slot) = self.tasks.iter_mut().find(|s| s.id == id) {
            slot.spoke = true;
        }
        while self.count(true) > max {
            let mut counts: std::collections::HashMap<std::net::IpAddr, usize> =
                std::collections::HashMap::new();
            for s in self.tasks.iter().filter(|s| s.spoke) {
                *counts.entry(s.source).or_default() += 1;
            }
            let Some(busiest) = counts.into_iter().max_by_key(|(_, n)| *n).map(|(ip, _)| ip) else {
                return;
            };
            let Some(i) = self
                .tasks
                .iter()
                .position(|s| s.spoke && s.source == busiest)
            else {
                return;
            };
            if let Some(slot) = self.tasks.remove(i) {
                tracing::debug!(source = %slot.source, "every handshake slot is taken: dropped the oldest handshake of the busiest source");
                slot.task.abort();
            }
        }
    }
}

/// Accepts connections and runs their handshakes concurrently. The loop never stops
/// accepting. A socket waits for its first byte outside the handshake slots (at most
/// `max_silent_sockets` wait; past that the oldest waiting one is dropped, and each is dropped
/// after a short first-byte deadline); once it speaks it takes one of `max_pending_handshakes`
/// slots, and when all are taken the oldest handshake of the source holding the most is
/// dropped. So a flood of idle sockets from an untrusted host, however fast it reconnects,
/// never pushes a trusted device's handshake out, and one that speaks and stalls pushes out
/// its own handshakes first.
async fn accept_loop(tcp: TcpListener, endpoint: Endpoint, tx: mpsc::Sender<Connection>) {
    let max = endpoint.inner.config.max_pending_handshakes.max(1);
    let max_silent = endpoint.inner.config.max_silent_sockets.max(1);
    let first_byte = FIRST_BYTE.min(endpoint.inner.config.handshake_timeout);
    let pending = Arc::new(std::sync::Mutex::new(Pending::default()));
    loop {
        let (stream, remote) = match tcp.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let endpoint = endpoint.clone();
        let tx = tx.clone();
        let mut p = Pending::lock(&pending);
        p.make_silent_room(max_silent);
        p.next += 1;
        let id = p.next;
        let mine = Arc::clone(&pending);
        // Registered under the lock the task takes to leave, so it never leaves first.
        let task = tokio::spawn(async move {
            let mut byte = [0u8; 1];
            let first = tokio::time::timeout(first_byte, stream.peek(&mut byte)).await;
            if !matches!(first, Ok(Ok(n)) if n > 0) {
                tracing::debug!(%remote, "dropped a connection that sent nothing");
                Pending::done(&mine, id);
                return;
            }
            Pending::lock(&mine).spoke(id, max);
            let accepted = endpoint.accept_stream(stream).await;
            Pending::done(&mine, id);
            if let Ok(conn) = accepted {
                // A listener dropped meanwhile: the connection closes with it.
                let _ = tx.send(conn).await;
            }
        });
        p.tasks.push_back(Slot {
            id,
            source: remote.ip(),
            spoke: false,
            task: task.abort_handle(),
        });
    }
}

/// Incoming connections, already authenticated. Dropping it stops listening.
#[derive(Debug)]
pub struct Listener {
    local: SocketAddr,
    rx: mpsc::Receiver<Connection>,
    task: JoinHandle<()>,
}

impl Listener {
    /// The address bound (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The next connection from a trusted device whose handshake succeeded.
    ///
    /// # Errors
    /// [`Error::Closed`] if the listening task ended.
    pub async fn accept(&mut self) -> Result<Connection> {
        self.rx.recv().await.ok_or_else(|| Error::Closed {
            reason: "the listener stopped".into(),
        })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Adversary F16 i: a connection whose TLS handshake failed was logged as `WARN accepted:
    /// handshake failed: handshake failed: tls handshake eof` — called "accepted" though it was
    /// refused, and "handshake failed" twice. Each refusal now names the side once and says
    /// what failed once, whatever the error.
    #[test]
    fn refusal_lines_name_the_side_and_say_it_once() {
        let id = DeviceId::from_bytes([7; 32]);
        let errors = [
            Error::HandshakeFailed {
                reason: "tls handshake eof".into(),
            },
            Error::HandshakeTimeout {
                timeout: std::time::Duration::from_secs(10),
            },
            Error::UntrustedPeer { id },
            Error::WrongPeer {
                expected: id,
                actual: id,
            },
            Error::protocol("a second HELLO"),
            Error::RefusedByPeer {
                reason: "alert AccessDenied".into(),
            },
        ];
        for direction in [Direction::Incoming, Direction::Outgoing] {
            for e in &errors {
                let line = refusal_line(direction, e);
                assert!(
                    line.starts_with("incoming connection: ")
                        || line.starts_with("outgoing connection: "),
                    "{line}"
                );
                assert!(!line.contains("accepted"), "{line}");
                assert!(line.matches("handshake failed").count() <= 1, "{line}");
            }
        }
        assert_eq!(
            refusal_line(Direction::Incoming, &errors[0]),
            "incoming connection: handshake failed: tls handshake eof"
        );
    }
}
