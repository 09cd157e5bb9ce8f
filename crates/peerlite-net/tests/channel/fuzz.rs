//! Fuzzing with proptest: random and mutated bytes fed to the frame decoder, to the server
//! side of the TLS handshake, and to the frame layer of an authenticated connection. Nothing
//! panics, every bad input ends in an error and a closed connection, decoding work is bounded
//! by the input, and the listener keeps serving trusted devices throughout.

use std::time::Duration;

use peerlite_net::frame::{Features, Frame, Hello, read_frame};
use peerlite_net::{DeviceId, Endpoint, Listener};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::common::*;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn any_frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        (any::<u16>(), any::<u32>(), any::<u32>()).prop_map(|(version, f, max_frame)| {
            Frame::Hello(Hello {
                version,
                features: Features(f),
                max_frame,
            })
        }),
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(Frame::Data),
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(Frame::Zstd),
        any::<u64>().prop_map(Frame::Ping),
        any::<u64>().prop_map(Frame::Pong),
    ]
}

/// Bytes a fuzzer would try: noise, or valid frames with bytes overwritten, cut or inserted.
fn hostile_bytes() -> impl Strategy<Value = Vec<u8>> {
    let mutated = (
        proptest::collection::vec(any_frame(), 0..6),
        proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        any::<usize>(),
        proptest::collection::vec(any::<u8>(), 0..8),
    )
        .prop_map(|(frames, flips, cut, insert)| {
            let mut bytes: Vec<u8> = frames.iter().flat_map(Frame::encode).collect();
            for (at, byte) in flips {
                if !bytes.is_empty() {
                    let i = at % bytes.len();
                    bytes[i] = byte;
                }
            }
            let at = cut % (bytes.len() + 1);
            bytes.splice(at..at, insert);
            bytes
        });
    prop_oneof![proptest::collection::vec(any::<u8>(), 0..2000), mutated]
}

/// Decodes until the end or the first error; returns the frames and the error.
async fn decode_all(bytes: &[u8], max: u32) -> (Vec<Frame>, Option<peerlite_net::Error>) {
    let mut input = bytes;
    let mut frames = Vec::new();
    loop {
        match read_frame(&mut input, max, Duration::from_secs(5)).await {
            Ok(Some(frame)) => frames.push(frame),
            Ok(None) => return (frames, None),
            Err(e) => return (frames, Some(e)),
        }
        // Every frame consumes at least its 5-byte header: progress is guaranteed.
        assert!(frames.len() <= bytes.len() / 5);
    }
}

proptest! {
    #[test]
    fn valid_frames_decode_to_themselves(frames in proptest::collection::vec(any_frame(), 0..10)) {
        let bytes: Vec<u8> = frames.iter().flat_map(Frame::encode).collect();
        let (decoded, error) = runtime().block_on(decode_all(&bytes, 1 << 20));
        prop_assert!(error.is_none(), "{error:?}");
        prop_assert_eq!(decoded, frames);
    }

    #[test]
    fn hostile_bytes_never_panic_the_decoder(bytes in hostile_bytes(), max in 0u32..400) {
        count_panics();
        let (frames, error) = runtime().block_on(decode_all(&bytes, max));
        prop_assert!(frames.len() <= bytes.len() / 5);
        if let Some(e) = error {
            // Only the documented decode errors.
            prop_assert!([17060005, 17060006].contains(&e.code()), "{e}");
        }
        prop_assert_eq!(panics(), 0);
    }
}

/// A real ClientHello of a device, as the first bytes a server sees.
fn client_hello(device: &Device, server: DeviceId) -> Vec<u8> {
    let config = device
        .endpoint(config())
        .client_tls_config(&server)
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("peerlite.invalid").unwrap();
    let mut conn = rustls::ClientConnection::new(config, name).unwrap();
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).unwrap();
    }
    out
}

async fn still_serving(client: &Endpoint, listener: &mut Listener, addr: &str, id: DeviceId) {
    let (mut x, mut y) = connect(client, listener, addr, id).await;
    assert_works(&mut x, &mut y).await;
}

#[test]
fn hostile_bytes_to_the_server_handshake_close_that_connection_only() {
    count_panics();
    let rt = runtime();
    let (a, b) = paired();
    let hello = client_hello(&a, b.id());
    assert!(hello.len() > 100);
    let (listener, addr) = rt.block_on(listen(
        &b,
        config().handshake_timeout(Duration::from_secs(10)),
    ));
    // Shared by every case (the closure proptest calls is `Fn`).
    let listener = tokio::sync::Mutex::new(listener);
    let client = a.endpoint(config());
    let inputs = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..600),
        (
            proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
            any::<usize>(),
        )
            .prop_map(move |(flips, cut)| {
                let mut bytes = hello.clone();
                for (at, byte) in flips {
                    let i = at % bytes.len();
                    bytes[i] = byte;
                }
                bytes.truncate(cut % (bytes.len() + 1));
                bytes
            }),
    ];
    let mut runner = TestRunner::new(Config {
        cases: 40,
        ..Config::default()
    });
    runner
        .run(&inputs, |bytes| {
            rt.block_on(async {
                let mut tcp = TcpStream::connect(&addr).await.unwrap();
                // The server may hang up before taking it all: that is fine.
                let _ = tcp.write_all(&bytes).await;
                let _ = tcp.shutdown().await;
                assert_closed_by_peer(&mut tcp).await;
                still_serving(&client, &mut *listener.lock().await, &addr, b.id()).await;
            });
            Ok(())
        })
        .unwrap();
    assert_eq!(panics(), 0);
}

#[test]
fn hostile_frames_from_a_trusted_peer_close_that_connection_only() {
    count_panics();
    let rt = runtime();
    let (a, b) = paired();
    let (listener, addr) = rt.block_on(listen(&b, config().max_frame(300)));
    let listener = tokio::sync::Mutex::new(listener);
    let client = a.endpoint(config());
    let mut runner = TestRunner::new(Config {
        cases: 40,
        ..Config::default()
    });
    runner
        .run(&(hostile_bytes(), any::<bool>()), |(bytes, zstd)| {
            rt.block_on(async {
                let mut raw = raw_tls(&a, &addr, b.id()).await;
                let features = if zstd { Features::ZSTD } else { Features::NONE };
                raw_hello(&mut raw, features).await;
                let mut at_b = bounded(async { listener.lock().await.accept().await })
                    .await
                    .unwrap();
                let _ = raw.write_all(&bytes).await;
                let _ = raw.shutdown().await;
                // Whatever decodes is delivered; then the connection ends in an error.
                let mut delivered = 0;
                let err = bounded(async {
                    loop {
                        match at_b.recv().await {
                            Ok(_) => delivered += 1,
                            Err(e) => return e,
                        }
                    }
                })
                .await;
                assert!(delivered <= bytes.len() / 5);
                assert!(
                    [17060005, 17060006, 17060008].contains(&err.code()),
                    "{err}"
                );
                still_serving(&client, &mut *listener.lock().await, &addr, b.id()).await;
            });
            Ok(())
        })
        .unwrap();
    assert_eq!(panics(), 0);
}
