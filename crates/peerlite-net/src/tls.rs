//! TLS 1.3 configurations that accept exactly the trusted devices.
//!
//! No CA and no names: each side presents a self-signed certificate of its device key, and the
//! other side's verifier accepts it only when the SHA-256 of its public key is a device id in
//! the trust store (and, when dialling, the id dialled). The signature over the handshake that
//! TLS checks with that same key proves the peer holds it. There is deliberately no switch to
//! accept anything. Sessions are never resumed, so every connection is checked against the trust
//! store as it is then.
//!
//! The ring provider is passed to each config explicitly (`builder_with_provider`) rather than
//! installed process-wide, so another crate installing a default cannot change what we use.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, OtherError,
    ServerConfig, SignatureScheme,
};

use crate::error::{Error, Result};
use crate::{DeviceId, Home, TrustSet};

/// Application protocol name both sides require.
pub(crate) const ALPN: &[u8] = b"peerlite/1";
/// The server name a client sends nothing of (SNI is off) but rustls needs; verifiers ignore it.
pub(crate) const SERVER_NAME: &str = "peerlite.invalid";

/// Why a verifier refused a certificate; travels inside the rustls error to name the peer.
#[derive(Debug)]
pub(crate) enum Refusal {
    Untrusted(DeviceId),
    Wrong {
        expected: DeviceId,
        actual: DeviceId,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Untrusted(id) => write!(f, "device {id} is not trusted"),
            Refusal::Wrong { expected, actual } => {
                write!(f, "expected device {expected}, the peer is {actual}")
            }
        }
    }
}

impl std::error::Error for Refusal {}

pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The device id a certificate's public key maps to.
pub(crate) fn peer_id(cert: &CertificateDer<'_>) -> std::result::Result<DeviceId, rustls::Error> {
    let parsed = ParsedCertificate::try_from(cert)?;
    Ok(DeviceId::from_public_key(
        parsed.subject_public_key_info().as_ref(),
    ))
}

/// The verifier of both directions.
#[derive(Debug)]
struct PinnedPeers {
    trust: TrustSet,
    /// When dialling: the one device that may answer.
    expected: Option<DeviceId>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinnedPeers {
    fn new(trust: &TrustSet, expected: Option<DeviceId>, provider: &CryptoProvider) -> Arc<Self> {
        Arc::new(PinnedPeers {
            trust: trust.clone(),
            expected,
            algorithms: provider.signature_verification_algorithms,
        })
    }

    fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
    ) -> std::result::Result<(), rustls::Error> {
        if !intermediates.is_empty() {
            return Err(rustls::Error::General(
                "a peerlite device presents exactly one certificate".into(),
            ));
        }
        let actual = peer_id(end_entity)?;
        let refusal = match (self.trust.get(&actual), self.expected) {
            (None, _) => Refusal::Untrusted(actual),
            (Some(_), Some(expected)) if expected != actual => Refusal::Wrong { expected, actual },
            (Some(_), _) => return Ok(()),
        };
        Err(rustls::Error::InvalidCertificate(CertificateError::Other(
            OtherError(Arc::new(refusal)),
        )))
    }
}

/// The handshake-signature methods, which `ServerCertVerifier` and `ClientCertVerifier` both
/// declare and which check the same way in either direction: TLS 1.3 only, with the
/// provider's algorithms.
macro_rules! signature_checks {
    () => {
        fn verify_tls12_signature(
            &self,
            _message: &[u8],
            _cert: &CertificateDer<'_>,
            _dss: &DigitallySignedStruct,
        ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
            Err(rustls::Error::General("only TLS 1.3 is offered".into()))
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.algorithms.supported_schemes()
        }
    };
}

impl ServerCertVerifier for PinnedPeers {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity, intermediates)
            .map(|()| ServerCertVerified::assertion())
    }

    signature_checks!();
}

impl ClientCertVerifier for PinnedPeers {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> std::result::Result<ClientCertVerified, rustls::Error> {
        self.check(end_entity, intermediates)
            .map(|()| ClientCertVerified::assertion())
    }

    signature_checks!();
}

fn tls_error(e: rustls::Error) -> Error {
    Error::HandshakeFailed {
        reason: format!("TLS configuration: {e}"),
    }
}

/// The server side: requires a client certificate of a trusted device.
pub(crate) fn server_config(home: &Home, trust: &TrustSet) -> Result<Arc<ServerConfig>> {
    let provider = provider();
    let verifier = PinnedPeers::new(trust, None, &provider);
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_error)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![home.certificate().clone()], home.private_key())
        .map_err(tls_error)?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

/// The client side, pinned to the device `expected`.
pub(crate) fn client_config(
    home: &Home,
    trust: &TrustSet,
    expected: DeviceId,
) -> Result<Arc<ClientConfig>> {
    let provider = provider();
    let verifier = PinnedPeers::new(trust, Some(expected), &provider);
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_error)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(vec![home.certificate().clone()], home.private_key())
        .map_err(tls_error)?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    config.resumption = rustls::client::Resumption::disabled();
    config.enable_sni = false;
    Ok(Arc::new(config))
}

/// The error of a failed TLS handshake: which device a verifier refused, whether the peer
/// refused us (an alert), or what else failed.
pub(crate) fn handshake_error(e: std::io::Error) -> Error {
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        return Error::HandshakeFailed {
            reason: e.to_string(),
        };
    };
    match tls {
        rustls::Error::InvalidCertificate(CertificateError::Other(other)) => {
            match other.0.downcast_ref::<Refusal>() {
                Some(Refusal::Untrusted(id)) => Error::UntrustedPeer { id: *id },
                Some(Refusal::Wrong { expected, actual }) => Error::WrongPeer {
                    expected: *expected,
                    actual: *actual,
                },
                None => Error::HandshakeFailed {
                    reason: tls.to_string(),
                },
            }
        }
        rustls::Error::AlertReceived(alert) => {
            use rustls::AlertDescription as A;
            match alert {
                A::BadCertificate
                | A::CertificateUnknown
                | A::UnknownCA
                | A::AccessDenied
                | A::UnsupportedCertificate
                | A::CertificateRequired => Error::RefusedByPeer {
                    reason: format!("alert {alert:?}"),
                },
                _ => Error::HandshakeFailed {
                    reason: tls.to_string(),
                },
            }
        }
        _ => Error::HandshakeFailed {
            reason: tls.to_string(),
        },
    }
}
