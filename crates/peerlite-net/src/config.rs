//! Limits and timers of the channel.

use std::time::Duration;

use crate::error::{Error, Result};

/// Settings of an [`Endpoint`](crate::Endpoint) and the connections it makes.
///
/// ```
/// use std::time::Duration;
/// use peerlite_net::ChannelConfig;
///
/// let config = ChannelConfig::default()
///     .max_frame(1 << 20)
///     .idle_timeout(Duration::from_secs(30))
///     .keepalive_interval(Duration::from_secs(10));
/// assert_eq!(config.get_max_frame(), 1 << 20);
/// ```
#[derive(Debug, Clone)]
pub struct ChannelConfig {
    pub(crate) max_frame: u32,
    pub(crate) handshake_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) keepalive_interval: Duration,
    pub(crate) compression: bool,
    pub(crate) compression_level: i32,
    pub(crate) compress_min: usize,
    pub(crate) max_pending_handshakes: usize,
    pub(crate) max_silent_sockets: usize,
    pub(crate) queue_frames: usize,
}

/// Default largest payload: 16 MiB.
pub const DEFAULT_MAX_FRAME: u32 = 16 << 20;

impl Default for ChannelConfig {
    fn default() -> Self {
        ChannelConfig {
            max_frame: DEFAULT_MAX_FRAME,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            keepalive_interval: Duration::from_secs(15),
            compression: true,
            compression_level: 3,
            compress_min: 256,
            max_pending_handshakes: 64,
            max_silent_sockets: 256,
            queue_frames: 16,
        }
    }
}

impl ChannelConfig {
    /// The largest payload this side accepts (and the peer is told), checked against each
    /// length prefix before anything is allocated; also the limit after decompression.
    pub fn max_frame(mut self, bytes: u32) -> Self {
        self.max_frame = bytes;
        self
    }

    /// How long TCP connect, TLS handshake and the channel hello may take, each.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// A connection whose peer sends nothing (not even keep-alives) or takes nothing for this
    /// long is closed.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// After this long without sending, a ping goes out; must be shorter than the idle timeout.
    pub fn keepalive_interval(mut self, interval: Duration) -> Self {
        self.keepalive_interval = interval;
        self
    }

    /// Whether to advertise zstd (used only when the peer advertises it too).
    pub fn compression(mut self, on: bool) -> Self {
        self.compression = on;
        self
    }

    /// The zstd level (1–22; default 3).
    pub fn compression_level(mut self, level: i32) -> Self {
        self.compression_level = level;
        self
    }

    /// Payloads shorter than this go uncompressed (default 256 bytes).
    pub fn compress_min(mut self, bytes: usize) -> Self {
        self.compress_min = bytes;
        self
    }

    /// How many incoming handshakes may run at once (counted from the client's first byte);
    /// a newcomer past it takes the place of the oldest handshake of the source holding the
    /// most (the listener never stops accepting).
    pub fn max_pending_handshakes(mut self, n: usize) -> Self {
        self.max_pending_handshakes = n;
        self
    }

    /// How many accepted sockets may wait for their first byte at once (default 256); past
    /// it the oldest waiting one is dropped. They take no handshake slot, so idle sockets
    /// only ever push out each other.
    pub fn max_silent_sockets(mut self, n: usize) -> Self {
        self.max_silent_sockets = n;
        self
    }

    /// Frames queued per direction before `send` waits (backpressure).
    pub fn queue_frames(mut self, n: usize) -> Self {
        self.queue_frames = n;
        self
    }

    /// The largest payload accepted.
    pub fn get_max_frame(&self) -> u32 {
        self.max_frame
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let invalid = |reason: String| Error::InvalidArgument {
            what: "channel setting",
            reason,
        };
        if self.max_frame == 0 {
            return Err(invalid("max_frame must be at least 1 byte".into()));
        }
        let zero = Duration::ZERO;
        if self.handshake_timeout == zero || self.idle_timeout == zero {
            return Err(invalid("timeouts must be above zero".into()));
        }
        if self.keepalive_interval == zero || self.keepalive_interval >= self.idle_timeout {
            return Err(invalid(format!(
                "keepalive_interval ({:?}) must be above zero and below idle_timeout ({:?})",
                self.keepalive_interval, self.idle_timeout
            )));
        }
        if !(1..=22).contains(&self.compression_level) {
            return Err(invalid("compression_level must be 1-22".into()));
        }
        if self.max_pending_handshakes == 0
            || self.max_silent_sockets == 0
            || self.queue_frames == 0
        {
            return Err(invalid(
                "max_pending_handshakes, max_silent_sockets and queue_frames must be at least 1"
                    .into(),
            ));
        }
        Ok(())
    }
}
