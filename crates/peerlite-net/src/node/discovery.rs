//! LAN discovery with mDNS: a serving node announces itself as a `_peerlite._tcp.local.`
//! service whose TXT record `id` holds its device id, browses for the others, and dials the
//! ones its trust store lists.
//!
//! Nothing an mDNS record says is believed beyond "this id says it is at this address":
//! the address is only where to dial, and the TLS handshake, pinned to the key of the
//! trusted id, is what proves who answers. A record for an untrusted id (or this device's,
//! or one without a readable id or address) is ignored and logged at debug; an impostor
//! announcing a trusted id at its own address fails the handshake like any wrong peer.
//! Discovery is optional everywhere: where multicast does not work, [`Discovery::start`]
//! fails and the node goes on with static addresses ([`Node::keep_dialling`]).

use std::net::{IpAddr, SocketAddr};

use mdns_sd::{ServiceDaemon, ServiceEvent, ServiceInfo};

use super::Node;
use crate::error::{Error, Result};
use crate::{DeviceId, TrustSet};

/// The mDNS service type peerlite devices announce.
pub const SERVICE_TYPE: &str = "_peerlite._tcp.local.";

/// The TXT key holding the device id.
pub const TXT_ID: &str = "id";

/// What to do with a record seen on the LAN ([`decide`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A trusted device says it is at these addresses (`HOST:PORT`): dial them.
    Dial {
        /// The device the record names (proven only by the handshake).
        device: DeviceId,
        /// Where to dial.
        addrs: Vec<String>,
    },
    /// Not for this device, and why (logged at debug).
    Ignore(String),
}

/// The decision on one mDNS record: `id` from its TXT record, the addresses and port it
/// gives. Only an id in `trust` (and not `own`) with at least one address is dialled.
///
/// ```
/// use std::net::{IpAddr, Ipv4Addr};
/// use peerlite_net::discovery::{decide, Decision};
/// use peerlite_net::{DeviceId, TrustSet, TrustedDevice};
///
/// let own = DeviceId::from_public_key(&[1; 32]);
/// let friend = DeviceId::from_public_key(&[2; 32]);
/// let stranger = DeviceId::from_public_key(&[3; 32]);
/// let trust = TrustSet::default();
/// trust.insert(TrustedDevice::new(friend));
/// let ip = [IpAddr::V4(Ipv4Addr::new(192, 168, 1, 5))];
/// assert!(matches!(decide(&own, &trust, Some(&friend.to_string()), &ip, 7000), Decision::Dial { .. }));
/// assert!(matches!(decide(&own, &trust, Some(&stranger.to_string()), &ip, 7000), Decision::Ignore(_)));
/// ```
pub fn decide(
    own: &DeviceId,
    trust: &TrustSet,
    id: Option<&str>,
    ips: &[IpAddr],
    port: u16,
) -> Decision {
    let Some(text) = id else {
        return Decision::Ignore("the record has no device id".into());
    };
    let device = match DeviceId::parse(text) {
        Ok(d) => d,
        Err(e) => return Decision::Ignore(format!("{text:?} is not a device id: {e}")),
    };
    if device == *own {
        return Decision::Ignore("this device's own record".into());
    }
    if trust.get(&device).is_none() {
        return Decision::Ignore(format!("{device} is not trusted"));
    }
    if port == 0 {
        return Decision::Ignore(format!("{device} gives no port"));
    }
    let mut ips: Vec<IpAddr> = ips
        .iter()
        .copied()
        // A link-local IPv6 address comes without its interface (scope) and cannot be dialled.
        .filter(|ip| {
            !ip.is_unspecified()
                && !ip.is_multicast()
                && !matches!(ip, IpAddr::V6(v6) if v6.is_unicast_link_local())
        })
        .collect();
    // IPv4 first (it works on more LANs), then in a stable order.
    ips.sort_by_key(|ip| (ip.is_ipv6(), *ip));
    ips.dedup();
    if ips.is_empty() {
        return Decision::Ignore(format!("{device} gives no usable address"));
    }
    let addrs = ips
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port).to_string())
        .collect();
    Decision::Dial { device, addrs }
}

/// A running announcement and browse; both stop with [`Discovery::stop`] or the node's
/// shutdown.
pub struct Discovery {
    daemon: ServiceDaemon,
    fullname: String,
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery")
            .field("service", &self.fullname)
            .finish_non_exhaustive()
    }
}

fn failed(e: mdns_sd::Error) -> Error {
    Error::Discovery {
        reason: e.to_string(),
    }
}

impl Discovery {
    /// Announces `node` listening on `listen` (an unspecified address announces every
    /// interface's) and dials the trusted devices it finds, until the node shuts down.
    /// With `loopback`, loopback interfaces take part too (tests on one machine).
    ///
    /// # Errors
    /// [`Error::Discovery`] when mDNS cannot start (no multicast interface, a sandbox): the
    /// node works on without it.
    pub fn start(node: &Node, listen: SocketAddr, loopback: bool) -> Result<Discovery> {
        let daemon = ServiceDaemon::new().map_err(failed)?;
        if loopback {
            daemon
                .enable_interface(vec![
                    mdns_sd::IfKind::LoopbackV4,
                    mdns_sd::IfKind::LoopbackV6,
                ])
                .map_err(failed)?;
        }
        let id = node.id();
        let short = id.short();
        let host = format!("peerlite-{short}.local.");
        let properties = [(TXT_ID, id.to_string())];
        let info = if listen.ip().is_unspecified() {
            ServiceInfo::new(
                SERVICE_TYPE,
                &short,
                &host,
                "",
                listen.port(),
                &properties[..],
            )
            .map(ServiceInfo::enable_addr_auto)
        } else {
            ServiceInfo::new(
                SERVICE_TYPE,
                &short,
                &host,
                listen.ip(),
                listen.port(),
                &properties[..],
            )
        }
        .map_err(failed)?;
        let fullname = info.get_fullname().to_owned();
        daemon.register(info).map_err(failed)?;
        let events = daemon.browse(SERVICE_TYPE).map_err(failed)?;
        let owner = node;
        let node = node.clone();
        let mut stop = node.inner.stop.subscribe();
        let at_stop = Discovery {
            daemon: daemon.clone(),
            fullname: fullname.clone(),
        };
        let task = tokio::spawn(async move {
            loop {
                let event = tokio::select! {
                    _ = stop.wait_for(|s| *s) => None,
                    event = events.recv_async() => event.ok(),
                };
                let Some(event) = event else {
                    tokio::task::spawn_blocking(move || at_stop.stop());
                    return;
                };
                if let ServiceEvent::ServiceResolved(info) = event {
                    node.sighted(&info);
                }
            }
        });
        owner.inner.track(task);
        tracing::info!(device = %id, service = %fullname, "mDNS discovery on");
        Ok(Discovery { daemon, fullname })
    }

    /// Withdraws the announcement and stops the mDNS daemon.
    pub fn stop(self) {
        if let Ok(done) = self.daemon.unregister(&self.fullname) {
            let _ = done.recv_timeout(std::time::Duration::from_secs(1));
        }
        if let Ok(done) = self.daemon.shutdown() {
            let _ = done.recv_timeout(std::time::Duration::from_secs(1));
        }
    }
}

impl Node {
    /// A record seen on the LAN: dialled when [`decide`] says so (its addresses learned
    /// first), ignored with a debug line otherwise.
    fn sighted(&self, info: &ServiceInfo) {
        let ips: Vec<IpAddr> = info.get_addresses().iter().copied().collect();
        let decision = decide(
            &self.id(),
            self.endpoint().trust(),
            info.get_property_val_str(TXT_ID),
            &ips,
            info.get_port(),
        );
        match decision {
            Decision::Ignore(why) => {
                tracing::debug!(record = info.get_fullname(), "mDNS record ignored: {why}");
            }
            Decision::Dial { device, addrs } => {
                tracing::debug!(peer = %device, ?addrs, "found on the LAN");
                self.learn_addresses(device, addrs);
                let node = self.clone();
                let task = tokio::spawn(async move {
                    if let Err(e) = node.reach(device).await {
                        tracing::debug!(peer = %device, %e, "found on the LAN but not reached");
                    }
                });
                self.inner.track(task);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! The one place an mDNS record turns into a dial: only trusted ids, never this device,
    //! never without an address.
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;
    use crate::TrustedDevice;

    fn id(n: u8) -> DeviceId {
        DeviceId::from_public_key(&[n; 32])
    }

    #[test]
    fn only_trusted_ids_with_an_address_are_dialled() {
        let own = id(1);
        let trust = TrustSet::default();
        trust.insert(TrustedDevice::new(id(2)));
        let v4 = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 5));
        let v6 = IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2));
        let link_local = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1));
        let friend = id(2).to_string();
        assert_eq!(
            decide(&own, &trust, Some(&friend), &[link_local, v6, v4], 7000),
            Decision::Dial {
                device: id(2),
                addrs: vec!["192.168.1.5:7000".into(), "[fd00::2]:7000".into()],
            }
        );
        let ignored = |d: Decision| matches!(d, Decision::Ignore(_));
        // An untrusted id, however well-formed its record.
        assert!(ignored(decide(
            &own,
            &trust,
            Some(&id(3).to_string()),
            &[v4],
            7000
        )));
        // This device's own announcement.
        assert!(ignored(decide(
            &own,
            &trust,
            Some(&own.to_string()),
            &[v4],
            7000
        )));
        // No id, a garbled id, no address, only unusable addresses, no port.
        assert!(ignored(decide(&own, &trust, None, &[v4], 7000)));
        assert!(ignored(decide(
            &own,
            &trust,
            Some("not-an-id"),
            &[v4],
            7000
        )));
        assert!(ignored(decide(&own, &trust, Some(&friend), &[], 7000)));
        let unspecified = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        assert!(ignored(decide(
            &own,
            &trust,
            Some(&friend),
            &[unspecified, link_local],
            7000
        )));
        assert!(ignored(decide(&own, &trust, Some(&friend), &[v4], 0)));
        // Trust removed: the same record is ignored from then on.
        trust.remove(&id(2));
        assert!(ignored(decide(&own, &trust, Some(&friend), &[v4], 7000)));
    }
}
