//! An established channel to one trusted device: frames in both directions, keep-alive, and
//! the identity the handshake proved.
//!
//! Two tasks per connection, in the manner of mini-redis: a reader that decodes frames, answers
//! pings and hands payloads to [`FrameReceiver`], and a writer that sends what [`FrameSender`]
//! queues plus pings when the line is quiet. Both queues are bounded, so a slow side slows the
//! other down instead of filling memory. Any fault (malformed, oversized or unexpected frame,
//! idle timeout, I/O error) is logged with the peer id, closes this connection only, and is
//! what the next `recv` returns.

use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_rustls::TlsStream;

use crate::config::ChannelConfig;
use crate::error::{Error, Result};
use crate::frame::{self, Features, Frame, Hello};
use crate::traffic::Counted;
use crate::{DeviceId, DeviceLevel, TrustSet, tls};

/// Payloads at least this long are compressed on the blocking pool, not on the async thread.
const INLINE_COMPRESS_MAX: usize = 64 << 10;

/// How long a closing connection goes on reading (and dropping) what the peer still sends
/// until the peer closes too. A socket closed with unread data in it is reset, and a reset can
/// discard, on the peer's side, what this side sent last before the peer read it: the `Abort`
/// that says why the session ends (a shutdown, say) would never arrive.
const LINGER: Duration = Duration::from_secs(2);

/// Who is at the other end: the id the TLS handshake proved, with the name and security level
/// this device recorded for it when pairing (never what the peer says about itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// The proven device id.
    pub id: DeviceId,
    /// The name in this device's trust store.
    pub name: Option<String>,
    /// The level in this device's trust store.
    pub level: DeviceLevel,
}

#[derive(Debug)]
struct Shared {
    peer: PeerIdentity,
    remote: SocketAddr,
    compress: bool,
    compression_level: i32,
    compress_min: usize,
    /// The largest payload the peer accepts (its HELLO).
    peer_max: u32,
    /// Set once the connection is closing; both tasks stop.
    shutdown: watch::Sender<bool>,
    reason: Mutex<Option<String>>,
}

impl Shared {
    fn close(&self, reason: impl Into<String>) {
        let mut slot = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        slot.get_or_insert_with(|| reason.into());
        self.shutdown.send_replace(true);
    }

    fn closed_error(&self) -> Error {
        let reason = self
            .reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        Error::Closed {
            reason: reason.unwrap_or_else(|| "the connection is closed".into()),
        }
    }
}

/// A connection to one trusted device.
#[derive(Debug)]
pub struct Connection {
    sender: FrameSender,
    receiver: FrameReceiver,
    writer: JoinHandle<()>,
}

/// The sending half (clone it to send from several tasks).
#[derive(Debug, Clone)]
pub struct FrameSender {
    tx: mpsc::Sender<Frame>,
    shared: Arc<Shared>,
}

/// The receiving half. Dropping it stops reading from the peer.
#[derive(Debug)]
pub struct FrameReceiver {
    rx: mpsc::Receiver<Result<Vec<u8>>>,
    shared: Arc<Shared>,
    reader: JoinHandle<()>,
}

impl Connection {
    /// The device at the other end, as the handshake proved it.
    pub fn peer(&self) -> &PeerIdentity {
        &self.sender.shared.peer
    }

    /// The peer's socket address.
    pub fn remote_addr(&self) -> SocketAddr {
        self.sender.shared.remote
    }

    /// Whether payloads are compressed (both sides advertised zstd).
    pub fn compression(&self) -> bool {
        self.sender.shared.compress
    }

    /// Queues one payload; see [`FrameSender::send`].
    ///
    /// # Errors
    /// As [`FrameSender::send`].
    pub async fn send(&self, payload: &[u8]) -> Result<()> {
        self.sender.send(payload).await
    }

    /// The next payload; see [`FrameReceiver::recv`].
    ///
    /// # Errors
    /// As [`FrameReceiver::recv`].
    pub async fn recv(&mut self) -> Result<Vec<u8>> {
        self.receiver.recv().await
    }

    /// A payload already received and not read yet, without waiting (`None`: none queued).
    pub fn try_recv(&mut self) -> Option<Vec<u8>> {
        self.receiver.try_recv()
    }

    /// The two halves, to send and receive from different tasks.
    pub fn split(self) -> (FrameSender, FrameReceiver) {
        (self.sender, self.receiver)
    }

    /// Sends what is queued, tells the peer the connection ends (TLS close_notify) and waits
    /// for that to be written (bounded by the idle timeout).
    pub async fn close(self) {
        let Connection {
            sender,
            receiver,
            writer,
        } = self;
        drop(sender);
        let _ = writer.await;
        // The reader lingers until the peer closes too (see `LINGER`), then the socket goes.
        let mut receiver = receiver;
        let _ = tokio::time::timeout(LINGER, &mut receiver.reader).await;
        drop(receiver);
    }
}

impl FrameSender {
    /// The device at the other end.
    pub fn peer(&self) -> &PeerIdentity {
        &self.shared.peer
    }

    /// Queues `payload` as one frame (compressed when negotiated and worth it). Waits while the
    /// queue is full: the peer reads slower than we write.
    ///
    /// # Errors
    /// [`Error::FrameTooLarge`] when `payload` exceeds what the peer accepts (the connection
    /// stays open); [`Error::Closed`] once the connection is closed, with the reason.
    pub async fn send(&self, payload: &[u8]) -> Result<()> {
        let shared = &self.shared;
        if payload.len() > shared.peer_max as usize {
            return Err(Error::FrameTooLarge {
                len: payload.len() as u64,
                max: u64::from(shared.peer_max),
            });
        }
        if *shared.shutdown.borrow() {
            return Err(shared.closed_error());
        }
        let frame = if shared.compress && payload.len() >= shared.compress_min {
            compress(payload, shared.compression_level).await?
        } else {
            Frame::Data(payload.to_vec())
        };
        self.tx.send(frame).await.map_err(|_| shared.closed_error())
    }
}

impl FrameReceiver {
    /// The device at the other end.
    pub fn peer(&self) -> &PeerIdentity {
        &self.shared.peer
    }

    /// The next payload from the peer.
    ///
    /// # Errors
    /// The fault that closed the connection ([`Error::Protocol`], [`Error::FrameTooLarge`],
    /// [`Error::IdleTimeout`], …), then [`Error::Closed`] (also when the peer closed it).
    pub async fn recv(&mut self) -> Result<Vec<u8>> {
        match self.rx.recv().await {
            Some(result) => result,
            None => Err(self.shared.closed_error()),
        }
    }

    /// A payload already received and not read yet, without waiting (`None`: none queued,
    /// or what is queued is the error that closed the connection).
    pub fn try_recv(&mut self) -> Option<Vec<u8>> {
        self.rx.try_recv().ok().and_then(Result::ok)
    }
}

impl Drop for FrameReceiver {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Runs the HELLO exchange on a TLS stream whose handshake succeeded and starts the tasks.
pub(crate) async fn establish(
    mut stream: TlsStream<Counted<TcpStream>>,
    remote: SocketAddr,
    trust: &TrustSet,
    config: &ChannelConfig,
) -> Result<Connection> {
    let peer = proven_peer(&stream, trust)?;
    let ours = Hello {
        version: frame::VERSION,
        features: if config.compression {
            Features::ZSTD
        } else {
            Features::NONE
        },
        max_frame: config.max_frame,
    };
    let timeout = config.handshake_timeout;
    let theirs =
        match tokio::time::timeout(timeout, exchange_hello(&mut stream, ours, timeout)).await {
            Ok(result) => result?,
            Err(_) => return Err(Error::HandshakeTimeout { timeout }),
        };
    let (shutdown, _) = watch::channel(false);
    let shared = Arc::new(Shared {
        peer,
        remote,
        compress: ours
            .features
            .common(theirs.features)
            .contains(Features::ZSTD),
        compression_level: config.compression_level,
        compress_min: config.compress_min,
        peer_max: theirs.max_frame,
        shutdown,
        reason: Mutex::new(None),
    });
    let (read, write) = tokio::io::split(stream);
    let (data_tx, data_rx) = mpsc::channel(config.queue_frames);
    let (ctrl_tx, ctrl_rx) = mpsc::channel(4);
    let (app_tx, app_rx) = mpsc::channel(config.queue_frames);
    let writer = tokio::spawn(write_loop(
        write,
        data_rx,
        ctrl_rx,
        shared.clone(),
        config.keepalive_interval,
        config.idle_timeout,
    ));
    let reader = tokio::spawn(read_loop(
        read,
        app_tx,
        ctrl_tx,
        shared.clone(),
        config.max_frame,
        config.idle_timeout,
    ));
    Ok(Connection {
        sender: FrameSender {
            tx: data_tx,
            shared: shared.clone(),
        },
        receiver: FrameReceiver {
            rx: app_rx,
            shared,
            reader,
        },
        writer,
    })
}

/// The id the peer's certificate proves, with what the trust store says about it.
fn proven_peer(stream: &TlsStream<Counted<TcpStream>>, trust: &TrustSet) -> Result<PeerIdentity> {
    let (_, conn) = stream.get_ref();
    let cert = conn
        .peer_certificates()
        .and_then(|certs| certs.first())
        .ok_or_else(|| Error::HandshakeFailed {
            reason: "the peer presented no certificate".into(),
        })?;
    let id = tls::peer_id(cert).map_err(|e| Error::HandshakeFailed {
        reason: e.to_string(),
    })?;
    // Checked again here: the trust store may have changed since the verifier ran.
    let device = trust.get(&id).ok_or(Error::UntrustedPeer { id })?;
    Ok(PeerIdentity {
        id,
        name: device.name,
        level: device.level,
    })
}

async fn exchange_hello(
    stream: &mut TlsStream<Counted<TcpStream>>,
    ours: Hello,
    timeout: Duration,
) -> Result<Hello> {
    // Write, then read even if writing failed: a peer that refused us has sent an alert
    // saying so, which is a better error than a broken pipe.
    let wrote = match frame::write_frame(stream, &Frame::Hello(ours), timeout).await {
        Ok(()) => frame::flush(stream, timeout).await,
        Err(e) => Err(e),
    };
    let theirs = frame::read_frame(stream, 0, timeout).await;
    let hello = match (theirs, wrote) {
        (Ok(Some(Frame::Hello(hello))), Ok(())) => hello,
        (Ok(Some(Frame::Hello(_))), Err(e)) => return Err(e),
        (Ok(Some(other)), _) => {
            return Err(Error::protocol(format!(
                "expected HELLO, got a frame of another kind ({})",
                frame_name(&other)
            )));
        }
        (Ok(None), _) => {
            return Err(Error::HandshakeFailed {
                reason: "the peer closed the connection before its HELLO".into(),
            });
        }
        (Err(Error::Closed { reason }), _) => return Err(Error::HandshakeFailed { reason }),
        // read_frame was given a limit of 0: a DATA frame came before the HELLO.
        (Err(Error::FrameTooLarge { .. }), _) => {
            return Err(Error::protocol("expected HELLO, got a DATA frame"));
        }
        (Err(e), _) => return Err(e),
    };
    if hello.version != frame::VERSION {
        return Err(Error::IncompatiblePeer {
            reason: format!(
                "the peer speaks channel version {}, this device {}",
                hello.version,
                frame::VERSION
            ),
        });
    }
    if hello.max_frame == 0 {
        return Err(Error::protocol("the peer accepts no payload (max_frame 0)"));
    }
    Ok(hello)
}

fn frame_name(frame: &Frame) -> &'static str {
    match frame {
        Frame::Hello(_) => "HELLO",
        Frame::Data(_) => "DATA",
        Frame::Zstd(_) => "ZSTD",
        Frame::Ping(_) => "PING",
        Frame::Pong(_) => "PONG",
    }
}

async fn write_loop(
    mut write: WriteHalf<TlsStream<Counted<TcpStream>>>,
    mut data: mpsc::Receiver<Frame>,
    mut ctrl: mpsc::Receiver<Frame>,
    shared: Arc<Shared>,
    keepalive: Duration,
    idle: Duration,
) {
    let mut shutdown = shared.shutdown.subscribe();
    let start = tokio::time::Instant::now() + keepalive;
    let mut tick = tokio::time::interval_at(start, keepalive);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sent_since_tick = false;
    let mut nonce = 0u64;
    loop {
        let frame = tokio::select! {
            biased;
            _ = closing(&mut shutdown) => {
                // The peer hung up or a fault closed the connection: still say goodbye
                // properly (TLS close_notify), without waiting long for a peer that is gone.
                let bound = idle.min(std::time::Duration::from_secs(1));
                let _ = tokio::time::timeout(bound, tokio::io::AsyncWriteExt::shutdown(&mut write)).await;
                return;
            }
            Some(frame) = ctrl.recv() => frame,
            frame = data.recv() => match frame {
                Some(frame) => frame,
                None => {
                    // Every sender is gone: end the TLS session properly.
                    let _ = tokio::time::timeout(idle, tokio::io::AsyncWriteExt::shutdown(&mut write)).await;
                    shared.close("closed by this device");
                    return;
                }
            },
            _ = tick.tick() => {
                if std::mem::take(&mut sent_since_tick) {
                    continue;
                }
                nonce = nonce.wrapping_add(1);
                Frame::Ping(nonce)
            }
        };
        let written = match frame::write_frame(&mut write, &frame, idle).await {
            Ok(()) => frame::flush(&mut write, idle).await,
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            fault(&shared, &e);
            return;
        }
        sent_since_tick = true;
    }
}

async fn read_loop(
    mut read: ReadHalf<TlsStream<Counted<TcpStream>>>,
    app: mpsc::Sender<Result<Vec<u8>>>,
    ctrl: mpsc::Sender<Frame>,
    shared: Arc<Shared>,
    max: u32,
    idle: Duration,
) {
    let mut shutdown = shared.shutdown.subscribe();
    let error = loop {
        let frame = tokio::select! {
            biased;
            _ = closing(&mut shutdown) => return linger(read, max).await,
            frame = frame::read_frame(&mut read, max, idle) => frame,
        };
        let payload = match frame {
            Ok(Some(Frame::Data(payload))) => payload,
            Ok(Some(Frame::Zstd(compressed))) if shared.compress => {
                match decompress(compressed, max).await {
                    Ok(payload) => payload,
                    Err(e) => break e,
                }
            }
            Ok(Some(Frame::Zstd(_))) => {
                break Error::protocol("compressed frame, but zstd was not negotiated");
            }
            Ok(Some(Frame::Ping(nonce))) => {
                // Full means pongs are already queued: the peer knows we are alive.
                let _ = ctrl.try_send(Frame::Pong(nonce));
                continue;
            }
            Ok(Some(Frame::Pong(_))) => continue,
            Ok(Some(Frame::Hello(_))) => break Error::protocol("a second HELLO"),
            Ok(None) => {
                shared.close("the peer closed the connection");
                return;
            }
            Err(e) => break e,
        };
        tokio::select! {
            biased;
            _ = closing(&mut shutdown) => return linger(read, max).await,
            sent = app.send(Ok(payload)) => if sent.is_err() { return },
        }
    };
    fault(&shared, &error);
    // Let go of the socket before waiting for the application to take the error.
    drop(read);
    let _ = app.send(Err(error)).await;
}

/// This side closes: read and drop what the peer still sends until it closes too, for at
/// most [`LINGER`] (see there).
async fn linger(mut read: ReadHalf<TlsStream<Counted<TcpStream>>>, max: u32) {
    let _ = tokio::time::timeout(LINGER, async {
        while let Ok(Some(_)) = frame::read_frame(&mut read, max, LINGER).await {}
    })
    .await;
}

/// Resolves once the connection is closing.
async fn closing(shutdown: &mut watch::Receiver<bool>) {
    // An error means the sender is gone, which only happens once everything is dropped.
    let _ = shutdown.wait_for(|closing| *closing).await;
}

/// Logs why the connection closes and closes it. Once this side has closed it, what the peer
/// does next (hanging up without its close_notify) is no news.
fn fault(shared: &Shared, error: &Error) {
    if *shared.shutdown.borrow() {
        tracing::debug!(peer = %shared.peer.id, remote = %shared.remote, "after closing: {error}");
        return;
    }
    tracing::warn!(
        peer = %shared.peer.id,
        remote = %shared.remote,
        code = error.code(),
        "closing connection: {error}"
    );
    shared.close(error.to_string());
}

async fn compress(payload: &[u8], level: i32) -> Result<Frame> {
    let run = move |raw: Vec<u8>| match zstd::bulk::compress(&raw, level) {
        Ok(packed) if packed.len() < raw.len() => Frame::Zstd(packed),
        _ => Frame::Data(raw),
    };
    if payload.len() < INLINE_COMPRESS_MAX {
        return Ok(run(payload.to_vec()));
    }
    let raw = payload.to_vec();
    tokio::task::spawn_blocking(move || run(raw))
        .await
        .map_err(|e| Error::Closed {
            reason: format!("compression task failed: {e}"),
        })
}

/// Decompresses at most `max` bytes, on the blocking pool (a small frame can expand a lot).
async fn decompress(compressed: Vec<u8>, max: u32) -> Result<Vec<u8>> {
    tokio::task::spawn_blocking(move || decompress_bounded(&compressed, max))
        .await
        .map_err(|e| Error::protocol(format!("decompression task failed: {e}")))?
}

fn decompress_bounded(compressed: &[u8], max: u32) -> Result<Vec<u8>> {
    let bad = |e: std::io::Error| Error::protocol(format!("invalid zstd frame: {e}"));
    let mut decoder = zstd::stream::read::Decoder::with_buffer(compressed).map_err(bad)?;
    // No window larger than a frame may be: bounds the decoder's own memory too.
    let window_log = (u32::BITS - max.leading_zeros()).clamp(10, 27);
    decoder.window_log_max(window_log).map_err(bad)?;
    let mut out = Vec::new();
    decoder
        .take(u64::from(max) + 1)
        .read_to_end(&mut out)
        .map_err(bad)?;
    if out.len() > max as usize {
        return Err(Error::FrameTooLarge {
            len: out.len() as u64,
            max: u64::from(max),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decompression_stops_at_the_limit() {
        let big = vec![7u8; 100_000];
        let packed = zstd::bulk::compress(&big, 3).unwrap();
        assert!(packed.len() < 1000);
        assert_eq!(decompress_bounded(&packed, 100_000).unwrap(), big);
        let err = decompress_bounded(&packed, 99_999).unwrap_err();
        assert_eq!(err.code(), 17060005);
    }

    #[test]
    fn garbage_is_a_protocol_error() {
        let err = decompress_bounded(b"not zstd at all", 1 << 20).unwrap_err();
        assert_eq!(err.code(), 17060006);
    }
}
