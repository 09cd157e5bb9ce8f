//! The frame layer: what travels inside the TLS stream.
//!
//! ```text
//! frame = len: u32 (big endian) | kind: u8 | payload: len bytes
//! kind  1 HELLO  magic "PLNF" | version u16 | features u32 | max_frame u32 | (more, ignored)
//!       2 DATA   an opaque payload
//!       3 ZSTD   an opaque payload compressed with zstd (only when both sides advertised it)
//!       4 PING   u64 nonce      5 PONG   the nonce of the ping it answers
//! ```
//!
//! Each side sends one HELLO first and reads the other's; after that only DATA, ZSTD, PING and
//! PONG are valid. The length prefix is checked against the receiver's limit (and PING, PONG
//! and HELLO against their fixed sizes) before a byte of the payload is read or allocated, and
//! the payload buffer grows as bytes arrive, so a peer cannot make this side reserve memory it
//! never sends.
//!
//! ```
//! use std::time::Duration;
//! use peerlite_net::frame::{Frame, read_frame};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let bytes = [Frame::Data(b"abc".to_vec()).encode(), Frame::Ping(7).encode()].concat();
//! let mut input = &bytes[..];
//! let idle = Duration::from_secs(1);
//! assert_eq!(read_frame(&mut input, 1024, idle).await.unwrap(), Some(Frame::Data(b"abc".to_vec())));
//! assert_eq!(read_frame(&mut input, 1024, idle).await.unwrap(), Some(Frame::Ping(7)));
//! assert_eq!(read_frame(&mut input, 1024, idle).await.unwrap(), None); // clean end
//!
//! // A length prefix over the limit is refused before the payload is read.
//! let huge = [0xFF, 0xFF, 0xFF, 0xFF, 2];
//! let err = read_frame(&mut &huge[..], 1024, idle).await.unwrap_err();
//! assert_eq!(err.code(), 17060005);
//! # }
//! ```

use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::{Error, Result};

/// Bytes before the payload: length (4) and kind (1).
pub const HEADER_LEN: usize = 5;
/// First bytes of a HELLO payload.
pub const MAGIC: [u8; 4] = *b"PLNF";
/// The frame protocol version this side speaks.
pub const VERSION: u16 = 1;
/// The largest HELLO payload read (room for later fields).
pub const MAX_HELLO: u32 = 256;
const HELLO_LEN: usize = 14;
/// The payload buffer grows by at most this much per read.
const READ_CHUNK: usize = 64 << 10;

const KIND_HELLO: u8 = 1;
const KIND_DATA: u8 = 2;
const KIND_ZSTD: u8 = 3;
const KIND_PING: u8 = 4;
const KIND_PONG: u8 = 5;

/// Optional features a side advertises in its HELLO (a bit set; unknown bits are ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Features(pub u32);

impl Features {
    /// None.
    pub const NONE: Features = Features(0);
    /// zstd-compressed DATA frames.
    pub const ZSTD: Features = Features(1);

    /// Whether every feature of `other` is in `self`.
    pub fn contains(self, other: Features) -> bool {
        self.0 & other.0 == other.0
    }

    /// The features both sides have.
    pub fn common(self, other: Features) -> Features {
        Features(self.0 & other.0)
    }
}

/// The first frame each side sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    /// Frame protocol version ([`VERSION`]).
    pub version: u16,
    /// What this side can do.
    pub features: Features,
    /// The largest payload this side accepts.
    pub max_frame: u32,
}

/// One frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Opens the channel.
    Hello(Hello),
    /// An opaque payload.
    Data(Vec<u8>),
    /// An opaque payload, zstd-compressed.
    Zstd(Vec<u8>),
    /// Keep-alive request.
    Ping(u64),
    /// Keep-alive answer.
    Pong(u64),
}

impl Frame {
    /// The frame as bytes on the wire (header and payload).
    pub fn encode(&self) -> Vec<u8> {
        let (kind, payload) = self.parts();
        let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
        out.extend_from_slice(&header(kind, payload.len()));
        out.extend_from_slice(&payload);
        out
    }

    fn parts(&self) -> (u8, std::borrow::Cow<'_, [u8]>) {
        use std::borrow::Cow;
        match self {
            Frame::Hello(h) => {
                let mut p = Vec::with_capacity(HELLO_LEN);
                p.extend_from_slice(&MAGIC);
                p.extend_from_slice(&h.version.to_be_bytes());
                p.extend_from_slice(&h.features.0.to_be_bytes());
                p.extend_from_slice(&h.max_frame.to_be_bytes());
                (KIND_HELLO, Cow::Owned(p))
            }
            Frame::Data(p) => (KIND_DATA, Cow::Borrowed(p)),
            Frame::Zstd(p) => (KIND_ZSTD, Cow::Borrowed(p)),
            Frame::Ping(n) => (KIND_PING, Cow::Owned(n.to_be_bytes().to_vec())),
            Frame::Pong(n) => (KIND_PONG, Cow::Owned(n.to_be_bytes().to_vec())),
        }
    }

    fn parse(kind: u8, payload: Vec<u8>) -> Result<Frame> {
        Ok(match kind {
            KIND_HELLO => {
                if payload.len() < HELLO_LEN || payload[..4] != MAGIC {
                    return Err(Error::protocol("HELLO without the peerlite magic"));
                }
                let u16_at = |i: usize| u16::from_be_bytes([payload[i], payload[i + 1]]);
                let u32_at = |i: usize| {
                    u32::from_be_bytes([payload[i], payload[i + 1], payload[i + 2], payload[i + 3]])
                };
                Frame::Hello(Hello {
                    version: u16_at(4),
                    features: Features(u32_at(6)),
                    max_frame: u32_at(10),
                })
            }
            KIND_DATA => Frame::Data(payload),
            KIND_ZSTD => Frame::Zstd(payload),
            KIND_PING | KIND_PONG => {
                let nonce: [u8; 8] = payload
                    .as_slice()
                    .try_into()
                    .map_err(|_| Error::protocol("PING/PONG payload is not 8 bytes"))?;
                let nonce = u64::from_be_bytes(nonce);
                if kind == KIND_PING {
                    Frame::Ping(nonce)
                } else {
                    Frame::Pong(nonce)
                }
            }
            other => return Err(Error::protocol(format!("unknown frame kind {other}"))),
        })
    }
}

fn header(kind: u8, len: usize) -> [u8; HEADER_LEN] {
    // Payloads are checked against a u32 limit before they get here.
    let len = u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes();
    [len[0], len[1], len[2], len[3], kind]
}

/// Checks a header against the limit `max` (and the fixed sizes of HELLO, PING and PONG);
/// returns the kind and the payload length.
///
/// # Errors
/// [`Error::FrameTooLarge`] for a length over `max`; [`Error::Protocol`] for an unknown kind or
/// a wrong fixed size.
pub fn parse_header(header: [u8; HEADER_LEN], max: u32) -> Result<(u8, u32)> {
    let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    let kind = header[4];
    match kind {
        KIND_HELLO if !(HELLO_LEN as u32..=MAX_HELLO).contains(&len) => {
            Err(Error::protocol(format!("HELLO of {len} bytes")))
        }
        KIND_PING | KIND_PONG if len != 8 => {
            Err(Error::protocol(format!("PING/PONG of {len} bytes")))
        }
        KIND_DATA | KIND_ZSTD if len > max => Err(Error::FrameTooLarge {
            len: u64::from(len),
            max: u64::from(max),
        }),
        KIND_HELLO | KIND_DATA | KIND_ZSTD | KIND_PING | KIND_PONG => Ok((kind, len)),
        other => Err(Error::protocol(format!("unknown frame kind {other}"))),
    }
}

/// Reads one frame whose payload is at most `max` bytes; `Ok(None)` when the stream ends
/// cleanly before a frame starts. Every read must make progress within `idle`.
///
/// # Errors
/// [`Error::FrameTooLarge`], [`Error::Protocol`] (malformed or cut short),
/// [`Error::IdleTimeout`], [`Error::Closed`].
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: u32,
    idle: Duration,
) -> Result<Option<Frame>> {
    let mut head = [0u8; HEADER_LEN];
    let got = read_full(reader, &mut head, idle).await?;
    if got == 0 {
        return Ok(None);
    }
    if got < HEADER_LEN {
        return Err(Error::protocol("stream ended inside a frame header"));
    }
    let (kind, len) = parse_header(head, max)?;
    let len = len as usize;
    let mut payload = Vec::with_capacity(len.min(READ_CHUNK));
    while payload.len() < len {
        let start = payload.len();
        let step = (len - start).min(READ_CHUNK);
        payload.resize(start + step, 0);
        let got = read_full(reader, &mut payload[start..], idle).await?;
        if got < step {
            return Err(Error::protocol("stream ended inside a frame"));
        }
    }
    Frame::parse(kind, payload).map(Some)
}

/// Writes one frame; every write must make progress within `idle`.
///
/// # Errors
/// [`Error::IdleTimeout`] when the peer takes nothing; [`Error::Closed`].
pub async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    frame: &Frame,
    idle: Duration,
) -> Result<()> {
    let (kind, payload) = frame.parts();
    write_all(writer, &header(kind, payload.len()), idle).await?;
    write_all(writer, &payload, idle).await
}

/// Flushes `writer` within `idle`.
pub(crate) async fn flush<W: AsyncWrite + Unpin>(writer: &mut W, idle: Duration) -> Result<()> {
    match tokio::time::timeout(idle, writer.flush()).await {
        Ok(result) => result.map_err(io_error),
        Err(_) => Err(Error::IdleTimeout { timeout: idle }),
    }
}

/// Fills `buf` unless the stream ends; returns how much was read.
async fn read_full<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut [u8],
    idle: Duration,
) -> Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = match tokio::time::timeout(idle, reader.read(&mut buf[filled..])).await {
            Ok(result) => result.map_err(io_error)?,
            Err(_) => return Err(Error::IdleTimeout { timeout: idle }),
        };
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

async fn write_all<W: AsyncWrite + Unpin>(
    writer: &mut W,
    mut buf: &[u8],
    idle: Duration,
) -> Result<()> {
    while !buf.is_empty() {
        let n = match tokio::time::timeout(idle, writer.write(buf)).await {
            Ok(result) => result.map_err(io_error)?,
            Err(_) => return Err(Error::IdleTimeout { timeout: idle }),
        };
        if n == 0 {
            return Err(Error::Closed {
                reason: "the peer stopped taking data".into(),
            });
        }
        buf = &buf[n..];
    }
    Ok(())
}

/// Maps an I/O error of an established channel: an alert about our certificate means the peer
/// refused us, other TLS errors are protocol errors (the peer sent something that is not valid
/// TLS), the rest means the connection is gone.
pub(crate) fn io_error(e: io::Error) -> Error {
    if e.get_ref().is_some_and(|i| i.is::<rustls::Error>()) {
        return match crate::tls::handshake_error(e) {
            Error::HandshakeFailed { reason } => Error::protocol(format!("TLS: {reason}")),
            other => other,
        };
    }
    let reason = match e.kind() {
        io::ErrorKind::UnexpectedEof => "the peer closed the connection without notice".to_string(),
        _ => e.to_string(),
    };
    Error::Closed { reason }
}
