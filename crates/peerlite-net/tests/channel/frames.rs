//! Frames: payloads of every size round-trip with and without compression, compression only
//! when both sides advertise it, and every malformed, oversized or unexpected frame closes its
//! own connection while the listener and the other connections carry on.

use peerlite_net::frame::{Features, Frame};
use peerlite_net::{ChannelConfig, Error};

use crate::common::*;

fn payloads() -> Vec<Vec<u8>> {
    let mut noise = Vec::with_capacity(100_000);
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..100_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        noise.push(x as u8);
    }
    let text: Vec<u8> = b"row 123, name Lisa, city Hangzhou; "
        .iter()
        .copied()
        .cycle()
        .take(3 << 20)
        .collect();
    vec![
        Vec::new(),
        vec![1],
        vec![7; 255],
        vec![7; 256],
        text[..10_000].to_vec(),
        noise,
        text, // large: compressed on the blocking pool
    ]
}

#[tokio::test]
async fn payloads_round_trip_and_zstd_is_negotiated_only_when_both_advertise_it() {
    for (a_zstd, b_zstd) in [(true, true), (true, false), (false, true), (false, false)] {
        let (a, b) = paired();
        let (mut listener, addr) = listen(&b, config().compression(b_zstd)).await;
        let client = a.endpoint(config().compression(a_zstd));
        let (mut at_a, mut at_b) = connect(&client, &mut listener, &addr, b.id()).await;
        let both = a_zstd && b_zstd;
        assert_eq!((at_a.compression(), at_b.compression()), (both, both));
        for payload in payloads() {
            at_a.send(&payload).await.unwrap();
            assert_eq!(bounded(at_b.recv()).await.unwrap(), payload);
            at_b.send(&payload).await.unwrap();
            assert_eq!(bounded(at_a.recv()).await.unwrap(), payload);
        }
    }
}

/// What actually travels: ZSTD frames when both advertised zstd, plain DATA otherwise.
#[tokio::test]
async fn compressed_frames_travel_only_when_the_peer_advertised_zstd() {
    let (a, b) = paired();
    let (mut listener, addr) = listen(&b, config()).await;
    let payload = vec![0u8; 200_000];
    for (features, compressed) in [(Features::ZSTD, true), (Features::NONE, false)] {
        let mut raw = raw_tls(&a, &addr, b.id()).await;
        let hello = raw_hello(&mut raw, features).await;
        assert!(hello.features.contains(Features::ZSTD));
        let at_b = bounded(listener.accept()).await.unwrap();
        assert_eq!(at_b.compression(), compressed);
        at_b.send(&payload).await.unwrap();
        let frame = loop {
            match bounded(next_frame(&mut raw)).await.unwrap() {
                Some(Frame::Ping(_) | Frame::Pong(_)) => continue,
                other => break other,
            }
        };
        match frame {
            Some(Frame::Zstd(packed)) if compressed => {
                assert!(packed.len() < payload.len() / 100);
                assert_eq!(
                    zstd::bulk::decompress(&packed, payload.len()).unwrap(),
                    payload
                );
            }
            Some(Frame::Data(plain)) if !compressed => assert_eq!(plain, payload),
            other => panic!("compressed={compressed}: unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_payload_over_the_peers_limit_is_refused_on_send_and_the_connection_stays_open() {
    let (a, b) = paired();
    let (mut listener, addr) = listen(&b, config().max_frame(1000)).await;
    let client = a.endpoint(config());
    let (mut at_a, mut at_b) = connect(&client, &mut listener, &addr, b.id()).await;
    let err = at_a.send(&[1; 1001]).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::FrameTooLarge {
                len: 1001,
                max: 1000
            }
        ),
        "{err:?}"
    );
    at_a.send(&[1; 1000]).await.unwrap();
    assert_eq!(bounded(at_b.recv()).await.unwrap(), vec![1; 1000]);
    assert_works(&mut at_a, &mut at_b).await;
}

/// A peer announcing a 4 GiB frame and then sending nothing more: refused at once (the refusal
/// cannot have waited for, or made room for, a payload that never comes), only that connection
/// closes, and the listener's other connections carry on.
#[tokio::test]
async fn an_oversized_length_prefix_closes_only_its_connection_without_waiting_for_the_payload() {
    let (a, b) = paired();
    let (mut listener, addr) = listen(&b, config()).await;
    let client = a.endpoint(config());
    let (mut good_a, mut good_b) = connect(&client, &mut listener, &addr, b.id()).await;

    for len in [u32::MAX, (16 << 20) + 1] {
        let mut raw = raw_tls(&a, &addr, b.id()).await;
        raw_hello(&mut raw, Features::NONE).await;
        let mut bad_b = bounded(listener.accept()).await.unwrap();
        let mut header = len.to_be_bytes().to_vec();
        header.push(2); // DATA
        send_raw(&mut raw, &header).await;
        let err = bounded(bad_b.recv()).await.unwrap_err();
        assert!(
            matches!(err, Error::FrameTooLarge { len: l, .. } if l == u64::from(len)),
            "{err:?}"
        );
        assert_closed_by_peer(&mut raw).await;
        assert_eq!(bounded(bad_b.recv()).await.unwrap_err().code(), 17060008);
        assert_works(&mut good_a, &mut good_b).await;
    }
    // And new connections are still accepted.
    let (mut x, mut y) = connect(&client, &mut listener, &addr, b.id()).await;
    assert_works(&mut x, &mut y).await;
}

#[tokio::test]
async fn malformed_and_unexpected_frames_close_only_their_connection() {
    let (a, b) = paired();
    let (mut listener, addr) = listen(&b, config()).await;
    let client = a.endpoint(config());
    let (mut good_a, mut good_b) = connect(&client, &mut listener, &addr, b.id()).await;
    let hello = Frame::Hello(peerlite_net::frame::Hello {
        version: 1,
        features: Features::NONE,
        max_frame: 100,
    })
    .encode();
    let cases: Vec<(&str, Features, Vec<u8>, u32)> = vec![
        (
            "unknown kind",
            Features::NONE,
            vec![0, 0, 0, 1, 9, 0],
            17060006,
        ),
        ("kind zero", Features::NONE, vec![0, 0, 0, 0, 0], 17060006),
        (
            "ping of 3 bytes",
            Features::NONE,
            vec![0, 0, 0, 3, 4, 1, 2, 3],
            17060006,
        ),
        ("a second hello", Features::NONE, hello, 17060006),
        (
            "zstd not negotiated",
            Features::NONE,
            Frame::Zstd(zstd::bulk::compress(b"x", 3).unwrap()).encode(),
            17060006,
        ),
        (
            "zstd garbage",
            Features::ZSTD,
            Frame::Zstd(b"not zstd".to_vec()).encode(),
            17060006,
        ),
        (
            "zstd bomb over the limit",
            Features::ZSTD,
            Frame::Zstd(zstd::bulk::compress(&vec![0; (16 << 20) + 1], 3).unwrap()).encode(),
            17060005,
        ),
    ];
    for (what, features, bytes, code) in cases {
        let mut raw = raw_tls(&a, &addr, b.id()).await;
        raw_hello(&mut raw, features).await;
        let mut bad_b = bounded(listener.accept()).await.unwrap();
        send_raw(&mut raw, &bytes).await;
        let err = bounded(bad_b.recv()).await.unwrap_err();
        assert_eq!(err.code(), code, "{what}: {err}");
        assert_closed_by_peer(&mut raw).await;
        assert_works(&mut good_a, &mut good_b).await;
    }
}

#[tokio::test]
async fn a_frame_cut_short_by_the_peer_is_a_protocol_error() {
    let (a, b) = paired();
    let (mut listener, addr) = listen(&b, config()).await;
    let mut raw = raw_tls(&a, &addr, b.id()).await;
    raw_hello(&mut raw, Features::NONE).await;
    let mut at_b = bounded(listener.accept()).await.unwrap();
    let frame = Frame::Data(vec![5; 100]).encode();
    send_raw(&mut raw, &frame[..50]).await;
    tokio::io::AsyncWriteExt::shutdown(&mut raw).await.unwrap();
    assert_eq!(bounded(at_b.recv()).await.unwrap_err().code(), 17060006);
}

#[tokio::test]
async fn a_quiet_side_sends_pings_and_answers_them() {
    let (a, b) = paired();
    let quick = ChannelConfig::default()
        .keepalive_interval(std::time::Duration::from_millis(20))
        .idle_timeout(std::time::Duration::from_secs(60));
    let (mut listener, addr) = listen(&b, quick).await;
    let mut raw = raw_tls(&a, &addr, b.id()).await;
    raw_hello(&mut raw, Features::NONE).await;
    let _at_b = bounded(listener.accept()).await.unwrap();
    // Nothing to send: b pings.
    assert!(matches!(
        bounded(next_frame(&mut raw)).await.unwrap(),
        Some(Frame::Ping(_))
    ));
    // And answers a ping with the same nonce.
    send_raw(&mut raw, &Frame::Ping(0xDEAD_BEEF).encode()).await;
    bounded(async {
        loop {
            match next_frame(&mut raw).await.unwrap() {
                Some(Frame::Pong(0xDEAD_BEEF)) => return,
                Some(Frame::Ping(_)) => continue,
                other => panic!("expected PONG, got {other:?}"),
            }
        }
    })
    .await;
}

#[tokio::test]
async fn closing_delivers_everything_queued_then_the_peer_sees_closed() {
    let (a, b) = paired();
    let (mut listener, addr) = listen(&b, config()).await;
    let client = a.endpoint(config());
    let (at_a, mut at_b) = connect(&client, &mut listener, &addr, b.id()).await;
    for i in 0..50u32 {
        at_a.send(&i.to_be_bytes()).await.unwrap();
    }
    bounded(at_a.close()).await;
    for i in 0..50u32 {
        assert_eq!(bounded(at_b.recv()).await.unwrap(), i.to_be_bytes());
    }
    let err = bounded(at_b.recv()).await.unwrap_err();
    assert_eq!(err.code(), 17060008, "{err}");
    assert_eq!(at_b.send(b"late").await.unwrap_err().code(), 17060008);

    // Dropping a connection closes it too.
    let (at_a, mut at_b) = connect(&client, &mut listener, &addr, b.id()).await;
    drop(at_a);
    assert_eq!(bounded(at_b.recv()).await.unwrap_err().code(), 17060008);
}

#[tokio::test]
async fn split_halves_send_and_receive_from_different_tasks() {
    let (a, b) = paired();
    let (mut listener, addr) = listen(&b, config()).await;
    let (at_a, at_b) = connect(&a.endpoint(config()), &mut listener, &addr, b.id()).await;
    let (a_tx, mut a_rx) = at_a.split();
    let (b_tx, mut b_rx) = at_b.split();
    assert_eq!(a_tx.peer().id, b.id());
    assert_eq!(b_rx.peer().id, a.id());
    // b echoes; a sends from one task and reads in another.
    let echo = tokio::spawn(async move {
        for _ in 0..100 {
            let payload = b_rx.recv().await.unwrap();
            b_tx.send(&payload).await.unwrap();
        }
    });
    let sender = tokio::spawn(async move {
        for i in 0..100u32 {
            a_tx.send(&i.to_le_bytes()).await.unwrap();
        }
        a_tx
    });
    for i in 0..100u32 {
        assert_eq!(bounded(a_rx.recv()).await.unwrap(), i.to_le_bytes());
    }
    bounded(echo).await.unwrap();
    let _ = bounded(sender).await.unwrap();
}
