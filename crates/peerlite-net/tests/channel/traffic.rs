//! Bytes on the wire: each endpoint counts what its sockets carried, so the bytes one side
//! sent are exactly the bytes the other received, and a payload costs its own size plus a
//! little framing (the benchmark's wire figures rest on this).

use crate::common::*;

#[tokio::test]
async fn each_side_counts_what_the_other_side_counted_and_a_payload_costs_its_size() {
    let (a, b) = paired();
    // No compression: the payload must cross at its own size.
    let server = b.endpoint(config().compression(false));
    let mut listener = server.bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().to_string();
    let client = a.endpoint(config().compression(false));
    assert_eq!(client.traffic().total(), 0);
    let (mut at_a, mut at_b) = connect(&client, &mut listener, &addr, b.id()).await;
    let handshake = client.traffic();
    assert!(
        handshake.sent > 0 && handshake.received > 0,
        "{handshake:?}"
    );

    let payload: Vec<u8> = (0..200_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    at_a.send(&payload).await.unwrap();
    assert_eq!(bounded(at_b.recv()).await.unwrap(), payload);
    at_b.send(b"thanks").await.unwrap();
    assert_eq!(bounded(at_a.recv()).await.unwrap(), b"thanks");
    let moved = client.traffic().since(handshake);
    let framing = moved.sent - payload.len() as u64;
    // A frame header and TLS records of 16 KiB with ~22 bytes each: far below 1%.
    assert!(framing < 2_000, "{moved:?}");
    assert!(moved.received >= 6 && moved.received < 200, "{moved:?}");

    // Each side has read what the other sent (the last payloads arrived): every byte one
    // side counted as sent, the other counted as received (a keep-alive in flight may make
    // the two differ for a moment, hence the wait).
    bounded(async {
        loop {
            let (ca, sb) = (client.traffic(), server.traffic());
            if ca.sent == sb.received && sb.sent == ca.received {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await;
    at_a.close().await;
    at_b.close().await;
}
