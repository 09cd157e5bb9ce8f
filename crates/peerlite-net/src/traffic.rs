//! Bytes on the wire: what an endpoint's TCP sockets carried, counted under TLS (so records,
//! their headers and tags, and handshakes are included), for benchmarks and diagnostics.

use std::io::IoSlice;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes sent and received over TCP by every connection of one endpoint
/// ([`Endpoint::traffic`](crate::Endpoint::traffic)); subtract two readings for one exchange.
///
/// ```
/// use peerlite_net::Traffic;
///
/// let before = Traffic { sent: 10, received: 4 };
/// let after = Traffic { sent: 25, received: 9 };
/// assert_eq!(after.since(before), Traffic { sent: 15, received: 5 });
/// assert_eq!(after.since(before).total(), 20);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Bytes written to the sockets.
    pub sent: u64,
    /// Bytes read from the sockets.
    pub received: u64,
}

impl Traffic {
    /// What moved after `earlier` (a reading of the same counter).
    #[must_use]
    pub fn since(self, earlier: Traffic) -> Traffic {
        Traffic {
            sent: self.sent.saturating_sub(earlier.sent),
            received: self.received.saturating_sub(earlier.received),
        }
    }

    /// Both directions.
    pub fn total(self) -> u64 {
        self.sent.saturating_add(self.received)
    }
}

/// The running totals an endpoint shares with its sockets.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    sent: AtomicU64,
    received: AtomicU64,
}

impl Counters {
    pub(crate) fn read(&self) -> Traffic {
        Traffic {
            sent: self.sent.load(Ordering::Relaxed),
            received: self.received.load(Ordering::Relaxed),
        }
    }
}

/// A stream that adds what passes through it to [`Counters`].
#[derive(Debug)]
pub(crate) struct Counted<S> {
    inner: S,
    counters: Arc<Counters>,
}

impl<S> Counted<S> {
    pub(crate) fn new(inner: S, counters: Arc<Counters>) -> Counted<S> {
        Counted { inner, counters }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let got = buf.filled().len().saturating_sub(before);
            this.counters
                .received
                .fetch_add(got as u64, Ordering::Relaxed);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            this.counters.sent.fetch_add(n as u64, Ordering::Relaxed);
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = polled {
            this.counters.sent.fetch_add(n as u64, Ordering::Relaxed);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Every byte written and read through the wrapper is counted once, whichever write
    /// call carried it (plain, vectored) and however the reads split it.
    #[tokio::test]
    async fn counts_every_byte_both_ways() {
        let counters = Arc::new(Counters::default());
        let (a, mut b) = tokio::io::duplex(64);
        let mut a = Counted::new(a, counters.clone());
        let writer = tokio::spawn(async move {
            let mut echoed = vec![0u8; 1000];
            b.read_exact(&mut echoed).await.unwrap();
            b.write_all(&echoed[..300]).await.unwrap();
            b.shutdown().await.unwrap();
        });
        a.write_all(&[7u8; 600]).await.unwrap();
        let halves = [IoSlice::new(&[1u8; 250]), IoSlice::new(&[2u8; 150])];
        // A vectored write may take part of the slices; the rest goes plainly.
        let n = a.write_vectored(&halves).await.unwrap();
        a.write_all(&vec![3u8; 400 - n]).await.unwrap();
        a.flush().await.unwrap();
        let mut back = Vec::new();
        a.read_to_end(&mut back).await.unwrap();
        writer.await.unwrap();
        assert_eq!(back.len(), 300);
        assert_eq!(
            counters.read(),
            Traffic {
                sent: 1000,
                received: 300
            }
        );
    }
}
