//! peerlite on the network: who a device is, whom it trusts, and a channel that proves both.
//!
//! - [`Home`]: a device's identity (an Ed25519 key pair, a [`DeviceId`] derived from it, a
//!   name and a [`DeviceLevel`]), created once per home directory.
//! - [`TrustStore`]: the devices this one pairs with, persisted in the home.
//! - [`Endpoint`], [`Listener`], [`Connection`]: TLS 1.3 with mutual authentication, where each
//!   side accepts exactly the certificates whose key maps to a trusted id, carrying
//!   length-prefixed frames of opaque payloads (with keep-alive, timeouts and zstd when both
//!   sides advertise it). [`Connection::peer`] is the identity the handshake proved.
//!
//! - [`Node`]: a device's stores on the network — it accepts trusted peers, runs sync
//!   sessions with them (the library's protocol core, over this channel) and answers remote
//!   queries.
//!
//! This crate moves bytes and enforces who may talk; the sync protocol runs on top of it.
//!
//! ```
//! use peerlite_net::{ChannelConfig, DeviceLevel, Endpoint, Home, TrustSet, TrustedDevice};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> peerlite_net::Result<()> {
//! let dir = tempfile::tempdir().unwrap();
//! let a = Home::init(dir.path().join("a"), Some("a"), DeviceLevel::Sl3)?;
//! let b = Home::init(dir.path().join("b"), Some("b"), DeviceLevel::Sl2)?;
//! // Pairing: each records the other's id (and the level it grants it).
//! let a_trusts = TrustSet::default();
//! a_trusts.replace([TrustedDevice::new(b.id()).level(DeviceLevel::Sl2)]);
//! let b_trusts = TrustSet::default();
//! b_trusts.replace([TrustedDevice::new(a.id()).level(DeviceLevel::Sl3)]);
//!
//! let server = Endpoint::new(&b, b_trusts, ChannelConfig::default())?;
//! let mut listener = server.bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr().to_string();
//! let client = Endpoint::new(&a, a_trusts, ChannelConfig::default())?;
//!
//! let b_id = b.id();
//! let (dialled, accepted) = tokio::join!(client.connect(&addr, &b_id), listener.accept());
//! let (mut at_a, mut at_b) = (dialled?, accepted?);
//! assert_eq!(at_a.peer().id, b.id());
//! assert_eq!(at_b.peer().id, a.id());
//! assert_eq!(at_b.peer().level, DeviceLevel::Sl3); // from b's trust store, not from a
//!
//! at_a.send(b"hello").await?;
//! assert_eq!(at_b.recv().await?, b"hello");
//! # Ok(())
//! # }
//! ```

mod config;
mod connection;
mod device_id;
mod endpoint;
mod error;
pub mod frame;
mod fsutil;
mod home;
mod level;
mod node;
mod tls;
mod traffic;
mod trust;

pub use config::{ChannelConfig, DEFAULT_MAX_FRAME};
pub use connection::{Connection, FrameReceiver, FrameSender, PeerIdentity};
pub use device_id::{DeviceId, DeviceIdError};
pub use endpoint::{Endpoint, Listener};
pub use error::{Error, Result};
pub use home::Home;
pub use level::{DeviceLevel, LevelError};
pub use node::{
    AutoSync, Backoff, MAX_CONNECTIONS_PER_DEVICE, Node, NodeConfig, NodeEvent, discovery,
    status_of,
};
pub use traffic::Traffic;
pub use trust::{TrustSet, TrustStore, TrustedDevice, validate_addr};
