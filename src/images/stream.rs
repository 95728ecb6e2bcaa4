//! One image stream fanned out to several nodes at once, with bounded memory.
//!
//! The source (the engine's `docker save` stream, or an archive file) is read once; each chunk
//! is handed to every node's command input through a small bounded channel, so the slowest
//! node paces the reading and at most `CHANNEL_CHUNKS` chunks per node are in memory. A node
//! whose command stops reading (it failed) is dropped from the fan-out, the others go on.

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::mpsc;

/// Chunks buffered per node: with [`CHUNK`] that is at most 16 MiB per node in memory, enough
/// for nodes to run at their own pace for a while (a node busy writing to disk does not stall
/// the others at once).
const CHANNEL_CHUNKS: usize = 16;
/// Source data is regrouped into chunks of this size before it is handed to the nodes (engine
/// streams arrive in pieces of a few KiB).
pub const CHUNK: usize = 1024 * 1024;
/// Size of the chunks read from a file source.
pub const FILE_CHUNK: usize = 256 * 1024;

/// The reading end of one node's share of the stream, as a command's stdin.
pub struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl AsyncRead for ChannelReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if !self.current.is_empty() {
                let n = self.current.len().min(buf.remaining());
                let chunk = self.current.split_to(n);
                buf.put_slice(&chunk);
                return Poll::Ready(Ok(()));
            }
            match self.rx.poll_recv(cx) {
                Poll::Ready(Some(Ok(chunk))) => self.current = chunk,
                // The source failed: end this input here. The node's command then sees a
                // truncated stream and fails by itself (an error instead of EOF could leave a
                // remote command waiting for input that never comes); the pump reports why.
                Poll::Ready(Some(Err(_))) => return Poll::Ready(Ok(())),
                // The pump finished (EOF) or gave up.
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// Makes `n` readers and the senders that feed them.
pub fn channels(n: usize) -> (Vec<mpsc::Sender<io::Result<Bytes>>>, Vec<ChannelReader>) {
    (0..n)
        .map(|_| {
            let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
            (
                tx,
                ChannelReader {
                    rx,
                    current: Bytes::new(),
                },
            )
        })
        .unzip()
}

/// Copies `source` into every sender until it ends; returns the bytes copied. A source error
/// ends every reader's input early (their commands see a truncated stream) and is returned. A
/// sender whose reader is gone is dropped; when all are gone the copy stops early.
pub async fn pump<S>(
    mut source: S,
    mut sinks: Vec<mpsc::Sender<io::Result<Bytes>>>,
) -> io::Result<u64>
where
    S: Stream<Item = io::Result<Bytes>> + Unpin,
{
    let mut total = 0u64;
    let mut pending = bytes::BytesMut::with_capacity(CHUNK);
    let mut ended = false;
    while !ended {
        match source.next().await {
            Some(Ok(piece)) => {
                total += piece.len() as u64;
                pending.extend_from_slice(&piece);
                if pending.len() < CHUNK {
                    continue;
                }
            }
            Some(Err(e)) => {
                for tx in &sinks {
                    let _ = tx.send(Err(io::Error::new(e.kind(), e.to_string()))).await;
                }
                return Err(e);
            }
            None => ended = true,
        }
        if pending.is_empty() {
            continue;
        }
        let chunk = pending.split().freeze();
        let mut alive = Vec::with_capacity(sinks.len());
        for tx in sinks.drain(..) {
            if tx.send(Ok(chunk.clone())).await.is_ok() {
                alive.push(tx);
            }
        }
        sinks = alive;
        if sinks.is_empty() {
            break;
        }
    }
    Ok(total)
}

/// A file as a stream of chunks.
pub fn file_stream(file: tokio::fs::File) -> impl Stream<Item = io::Result<Bytes>> + Unpin {
    use tokio::io::AsyncReadExt;
    Box::pin(futures_util::stream::unfold(
        Some(file),
        |state| async move {
            let mut file = state?;
            let mut buf = vec![0u8; FILE_CHUNK];
            match file.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(Bytes::from(buf)), Some(file)))
                }
                Err(e) => Some((Err(e), None)),
            }
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn every_reader_gets_every_byte_in_order() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let chunks: Vec<io::Result<Bytes>> = data
            .chunks(7919)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let (txs, readers) = channels(3);
        let pump = tokio::spawn(pump(futures_util::stream::iter(chunks), txs));
        let mut outs = Vec::new();
        for mut r in readers {
            outs.push(tokio::spawn(async move {
                let mut v = Vec::new();
                r.read_to_end(&mut v).await.unwrap();
                v
            }));
        }
        for o in outs {
            assert_eq!(o.await.unwrap(), data);
        }
        assert_eq!(pump.await.unwrap().unwrap(), data.len() as u64);
    }

    #[tokio::test]
    async fn a_reader_that_stops_does_not_block_the_others() {
        let chunks: Vec<io::Result<Bytes>> =
            (0..200).map(|_| Ok(Bytes::from(vec![1u8; 4096]))).collect();
        let (txs, mut readers) = channels(2);
        drop(readers.pop());
        let pump = tokio::spawn(pump(futures_util::stream::iter(chunks), txs));
        let mut v = Vec::new();
        readers[0].read_to_end(&mut v).await.unwrap();
        assert_eq!(v.len(), 200 * 4096);
        pump.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_source_error_ends_the_inputs_and_is_reported() {
        let chunks: Vec<io::Result<Bytes>> = vec![
            Ok(Bytes::from_static(b"abc")),
            Err(io::Error::other("engine went away")),
        ];
        let (txs, mut readers) = channels(1);
        let pump = tokio::spawn(pump(futures_util::stream::iter(chunks), txs));
        let mut v = Vec::new();
        readers[0].read_to_end(&mut v).await.unwrap();
        assert!(v.len() <= 3, "the input ends at (or before) the failure");
        let err = pump.await.unwrap().unwrap_err();
        assert!(err.to_string().contains("engine went away"));
    }
}
