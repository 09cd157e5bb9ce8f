//! Who may connect: exactly the devices whose key maps to a trusted id, in both directions,
//! whatever names their certificates carry; refusals happen during the handshake and are
//! logged with the peer's id.

use std::sync::Arc;

use peerlite_net::{DeviceId, DeviceLevel, Error, PeerIdentity, TrustedDevice};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::net::{TcpListener, TcpStream};

use crate::common::*;

#[tokio::test]
async fn trusted_devices_connect_and_each_sees_the_id_the_other_proved() {
    let (a, b) = paired();
    let (mut listener, addr) = listen(&b, config()).await;
    let client = a.endpoint(config());
    let (mut at_a, mut at_b) = connect(&client, &mut listener, &addr, b.id()).await;
    // Each side's view of the other: the proven id, with name and level from ITS trust store.
    assert_eq!(
        at_a.peer(),
        &PeerIdentity {
            id: b.id(),
            name: Some("b".into()),
            level: DeviceLevel::Sl2
        }
    );
    assert_eq!(
        at_b.peer(),
        &PeerIdentity {
            id: a.id(),
            name: Some("a".into()),
            level: DeviceLevel::Sl4
        }
    );
    assert_works(&mut at_a, &mut at_b).await;

    // Dialling by id uses the addresses in the trust store, skipping dead ones.
    let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_addr = dead.local_addr().unwrap().to_string();
    drop(dead);
    a.trust.insert(
        TrustedDevice::new(b.id())
            .level(DeviceLevel::Sl2)
            .addr(dead_addr)
            .addr(addr.clone()),
    );
    let b_id = b.id();
    let (dialled, accepted) =
        bounded(async { tokio::join!(client.connect_trusted(&b_id), listener.accept()) }).await;
    let (mut at_a, mut at_b) = (dialled.unwrap(), accepted.unwrap());
    assert_eq!(at_a.peer().id, b.id());
    assert_works(&mut at_a, &mut at_b).await;
}

#[tokio::test]
async fn dialling_by_id_needs_a_trusted_device_with_an_address() {
    let (a, b) = paired();
    let client = a.endpoint(config());
    assert_eq!(
        client.connect_trusted(&b.id()).await.unwrap_err().code(),
        17060021
    );
    let stranger = DeviceId::from_public_key(b"nobody");
    assert_eq!(
        client.connect_trusted(&stranger).await.unwrap_err().code(),
        17060015
    );
}

#[tokio::test]
async fn an_untrusted_client_is_refused_during_the_handshake_and_logged() {
    let logs = Logs::capture();
    let (a, b) = paired();
    let stranger = Device::new("stranger");
    stranger.trusts(&b, DeviceLevel::Sl1); // it trusts b, b does not trust it
    let (mut listener, addr) = listen(&b, config()).await;

    let err = bounded(stranger.endpoint(config()).connect(&addr, &b.id()))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::RefusedByPeer { .. }), "{err:?}");
    assert_eq!(err.code(), 17060002);
    // b logged the refusal with the stranger's id.
    let stranger_id = stranger.id().to_string();
    bounded(async {
        while !logs.any(&[&stranger_id, "untrusted"]) {
            tokio::task::yield_now().await;
        }
    })
    .await;

    // The listener never handed the stranger over and keeps serving: the next connection it
    // yields is a's.
    let (mut at_a, mut at_b) = connect(&a.endpoint(config()), &mut listener, &addr, b.id()).await;
    assert_eq!(at_b.peer().id, a.id());
    assert_works(&mut at_a, &mut at_b).await;
}

#[tokio::test]
async fn an_untrusted_server_is_refused_during_the_handshake_and_logged() {
    let logs = Logs::capture();
    let (a, b) = paired();
    let stranger = Device::new("stranger");
    stranger.trusts(&a, DeviceLevel::Sl1); // it would accept a; a does not trust it
    let (mut stranger_listener, addr) = listen(&stranger, config()).await;
    let client = a.endpoint(config());

    // Dialling it by its own id, and dialling b at an address where it answers instead.
    for expected in [stranger.id(), b.id()] {
        let err = bounded(client.connect(&addr, &expected)).await.unwrap_err();
        assert!(
            matches!(&err, Error::UntrustedPeer { id } if *id == stranger.id()),
            "{err:?}"
        );
        assert_eq!(err.code(), 17060001);
    }
    assert!(logs.any(&[&stranger.id().to_string(), "untrusted"]));
    // Refused inside TLS: the stranger's side of each handshake ended with a's alert (it
    // never got as far as the channel HELLO, where it would fail for another reason).
    bounded(async {
        let stranger = format!("device={}", stranger.id());
        while logs
            .lines()
            .iter()
            .filter(|l| l.contains(&stranger) && l.contains("code=17060002"))
            .count()
            < 2
        {
            tokio::task::yield_now().await;
        }
    })
    .await;
    // The stranger's listener got no connection out of it: the first it yields is a device
    // that both trust each other with.
    let friend = Device::new("friend");
    friend.trusts(&stranger, DeviceLevel::Sl1);
    stranger.trusts(&friend, DeviceLevel::Sl1);
    let friend_ep = friend.endpoint(config());
    let (_, at_stranger) = connect(&friend_ep, &mut stranger_listener, &addr, stranger.id()).await;
    assert_eq!(at_stranger.peer().id, friend.id());
}

#[tokio::test]
async fn another_trusted_device_answering_for_the_one_dialled_is_refused() {
    let (a, b) = paired();
    let c = Device::new("c");
    a.trusts(&c, DeviceLevel::Sl1);
    c.trusts(&a, DeviceLevel::Sl1);
    let (_listener, c_addr) = listen(&c, config()).await;
    let err = bounded(a.endpoint(config()).connect(&c_addr, &b.id()))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::WrongPeer { expected, actual } if *expected == b.id() && *actual == c.id()),
        "{err:?}"
    );
    assert_eq!(err.code(), 17060019);
}

/// A certificate for another key whose name claims the trusted id.
fn forged(claimed: DeviceId) -> (CertificateDer<'static>, PrivateKeyDer<'static>, DeviceId) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let real = DeviceId::from_public_key(&rcgen::PublicKeyData::subject_public_key_info(&key));
    let mut params = rcgen::CertificateParams::new(vec!["peerlite.invalid".to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, claimed.to_string());
    let cert = params.self_signed(&key).unwrap().der().clone();
    (cert, PrivateKeyDer::Pkcs8(key.serialize_der().into()), real)
}

#[tokio::test]
async fn a_server_certificate_of_another_key_is_refused_whatever_name_it_carries() {
    let (a, b) = paired();
    let (cert, key, real) = forged(b.id());
    assert_ne!(real, b.id());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    server.alpn_protocols = vec![b"peerlite/1".to_vec()];
    let impostor = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = impostor.local_addr().unwrap().to_string();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let impostor_side = tokio::spawn(async move {
        let (tcp, _) = impostor.accept().await.unwrap();
        acceptor.accept(tcp).await.map(|_| ())
    });

    let err = bounded(a.endpoint(config()).connect(&addr, &b.id()))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::UntrustedPeer { id } if *id == real),
        "{err:?}"
    );
    // Refused inside TLS: the impostor's handshake ends with a's alert.
    let impostor_err = bounded(impostor_side).await.unwrap().unwrap_err();
    let alert = impostor_err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>());
    assert!(
        matches!(alert, Some(rustls::Error::AlertReceived(_))),
        "{impostor_err:?}"
    );
}

/// Accepts any server: the forging client only needs to get its certificate to the server.
#[derive(Debug)]
struct AcceptAnyServer;

impl ServerCertVerifier for AcceptAnyServer {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

#[tokio::test]
async fn a_client_certificate_of_another_key_is_refused_whatever_name_it_carries() {
    let logs = Logs::capture();
    let (a, b) = paired();
    let (mut listener, addr) = listen(&b, config()).await;
    let (cert, key, real) = forged(a.id());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut client = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyServer))
        .with_client_auth_cert(vec![cert], key)
        .unwrap();
    client.alpn_protocols = vec![b"peerlite/1".to_vec()];
    let tcp = TcpStream::connect(&addr).await.unwrap();
    let name = ServerName::try_from("peerlite.invalid").unwrap();
    // TLS 1.3: the client finishes first; the server's refusal arrives as an alert (not
    // merely a closed socket: the refusal happens inside the TLS handshake).
    let outcome = bounded(async {
        let mut tls = tokio_rustls::TlsConnector::from(Arc::new(client))
            .connect(name, tcp)
            .await?;
        let mut buf = [0u8; 64];
        loop {
            if tokio::io::AsyncReadExt::read(&mut tls, &mut buf).await? == 0 {
                return Ok(());
            }
        }
    })
    .await;
    let err: std::io::Error = outcome.unwrap_err();
    let alert = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>());
    assert!(
        matches!(alert, Some(rustls::Error::AlertReceived(_))),
        "{err:?}"
    );
    let real_id = real.to_string();
    bounded(async {
        while !logs.any(&[&real_id, "untrusted"]) {
            tokio::task::yield_now().await;
        }
    })
    .await;
    // The refusal names the key's id, never the id the certificate claims.
    assert!(!logs.any(&[&a.id().to_string(), "untrusted"]));
    let (mut at_a, mut at_b) = connect(&a.endpoint(config()), &mut listener, &addr, b.id()).await;
    assert_eq!(at_b.peer().id, a.id());
    assert_works(&mut at_a, &mut at_b).await;
}

#[tokio::test]
async fn removing_trust_refuses_the_next_handshake_and_keeps_open_connections() {
    let (a, b) = paired();
    let (mut listener, addr) = listen(&b, config()).await;
    let client = a.endpoint(config());
    let (mut at_a, mut at_b) = connect(&client, &mut listener, &addr, b.id()).await;
    b.trust.remove(&a.id());
    let err = bounded(client.connect(&addr, &b.id())).await.unwrap_err();
    assert_eq!(err.code(), 17060002);
    assert_works(&mut at_a, &mut at_b).await;
    // Trusted again: welcome again.
    b.trusts(&a, DeviceLevel::Sl1);
    let (_, at_b2) = connect(&client, &mut listener, &addr, b.id()).await;
    assert_eq!(at_b2.peer().level, DeviceLevel::Sl1);
}
