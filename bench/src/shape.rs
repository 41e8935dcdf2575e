//! `alcove-bench shape`: a TCP proxy that behaves like a slow network link between its clients
//! and one upstream server — a fixed one-way delay and a bandwidth shared by all connections, in
//! each direction separately.
//!
//! The model, per direction: bytes read from one side wait for their turn on the link (one
//! shared FIFO for all connections of that direction, served at `rate` bytes per second: a token
//! bucket that holds no more than the chunk being sent), then travel for `delay` before they are
//! written to the other side. A new connection first pays one round trip (TCP's handshake)
//! before its first byte leaves. Each connection holds at most `window` bytes in flight per
//! direction (read but not yet delivered), so a fast sender is slowed by TCP backpressure, as by
//! a peer's receive window; with the default 4 MiB a single connection can fill a 100 MB/s
//! link with 20 ms round trips (its bandwidth-delay product is 2 MB).
//!
//! Not modelled: loss, reordering, jitter, TCP's slow start and congestion control (the two
//! loopback legs of the proxy have no delay of their own, so windows open at once).
//!
//! The proxy stops on SIGINT or SIGTERM and prints one JSON line with its totals. With
//! `--stats-addr` it also answers any HTTP request there with the same JSON, at any time.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;

/// Largest read from either side (one chunk on the link).
const CHUNK: usize = 256 * 1024;

/// What the link looks like.
#[derive(Clone, Copy, Debug)]
pub struct LinkSpec {
    /// One-way delay (half the round trip).
    pub delay: Duration,
    /// Bytes per second in each direction.
    pub rate: f64,
    /// Bytes in flight per connection and direction.
    pub window: usize,
}

/// One direction of the link, shared by all connections.
struct Link {
    delay: Duration,
    /// Seconds one byte occupies the link.
    secs_per_byte: f64,
    /// When the link is done sending what it was given so far.
    free_at: Mutex<Instant>,
    /// Bytes delivered at the far end.
    delivered: AtomicU64,
}

impl Link {
    fn new(spec: &LinkSpec) -> Link {
        Link {
            delay: spec.delay,
            secs_per_byte: 1.0 / spec.rate,
            free_at: Mutex::new(Instant::now()),
            delivered: AtomicU64::new(0),
        }
    }

    /// Puts `n` bytes that are ready now on the link: returns when they arrive at the far end.
    fn schedule(&self, n: usize) -> Instant {
        let now = Instant::now();
        let mut free_at = self.free_at.lock().expect("link clock");
        let start = (*free_at).max(now);
        let sent = start + Duration::from_secs_f64(n as f64 * self.secs_per_byte);
        *free_at = sent;
        sent + self.delay
    }
}

/// Totals of a proxy, reported as JSON.
pub struct Shaper {
    spec: LinkSpec,
    upstream: SocketAddr,
    up: Link,
    down: Link,
    connections: AtomicU64,
    failed_connects: AtomicU64,
}

impl Shaper {
    pub fn new(spec: LinkSpec, upstream: SocketAddr) -> Arc<Shaper> {
        Arc::new(Shaper {
            up: Link::new(&spec),
            down: Link::new(&spec),
            spec,
            upstream,
            connections: AtomicU64::new(0),
            failed_connects: AtomicU64::new(0),
        })
    }

    /// The totals so far.
    pub fn stats(&self) -> serde_json::Value {
        json!({
            "workload": "shape",
            "upstream": self.upstream.to_string(),
            "delay_ms": self.spec.delay.as_secs_f64() * 1000.0,
            "rate_bytes_per_s": self.spec.rate,
            "window": self.spec.window,
            "connections": self.connections.load(Ordering::Relaxed),
            "failed_connects": self.failed_connects.load(Ordering::Relaxed),
            "up_bytes": self.up.delivered.load(Ordering::Relaxed),
            "down_bytes": self.down.delivered.load(Ordering::Relaxed),
        })
    }

    /// Accepts connections on `listener` forever, each proxied to the upstream.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        loop {
            match listener.accept().await {
                Ok((client, _)) => {
                    self.connections.fetch_add(1, Ordering::Relaxed);
                    tokio::spawn(Arc::clone(&self).connection(client));
                }
                Err(e) => {
                    eprintln!("alcove-bench shape: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    async fn connection(self: Arc<Self>, client: TcpStream) {
        // TCP's handshake: SYN there, SYN-ACK back, before the first request byte can leave.
        tokio::time::sleep(self.spec.delay * 2).await;
        let upstream = match TcpStream::connect(self.upstream).await {
            Ok(s) => s,
            Err(e) => {
                self.failed_connects.fetch_add(1, Ordering::Relaxed);
                eprintln!("alcove-bench shape: connect {}: {e}", self.upstream);
                return;
            }
        };
        let _ = client.set_nodelay(true);
        let _ = upstream.set_nodelay(true);
        let (cr, cw) = client.into_split();
        let (ur, uw) = upstream.into_split();
        let window = self.spec.window;
        tokio::join!(pipe(cr, uw, &self.up, window), pipe(ur, cw, &self.down, window));
    }
}

/// One direction of one connection: reads `from`, puts each chunk on the link, writes it to `to`
/// when it arrives; passes the end of the stream (FIN) on the same way.
async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, link: &Link, window: usize) {
    let window = window.max(CHUNK);
    let credit = Semaphore::new(window);
    // (arrival, chunk); an empty chunk is the end of the stream.
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Bytes)>();
    let reader = async {
        loop {
            let Ok(permit) = credit.acquire_many(CHUNK as u32).await else { break };
            permit.forget();
            let mut buf = BytesMut::with_capacity(CHUNK);
            // A read error ends the stream like EOF.
            let n = from.read_buf(&mut buf).await.unwrap_or_default();
            credit.add_permits(CHUNK - n);
            // The end of the stream queues behind the data, like a FIN.
            let arrival = link.schedule(n);
            if tx.send((arrival, buf.freeze())).is_err() || n == 0 {
                break;
            }
        }
    };
    let writer = async {
        while let Some((arrival, chunk)) = rx.recv().await {
            tokio::time::sleep_until(arrival).await;
            if chunk.is_empty() {
                let _ = to.shutdown().await;
                break;
            }
            if to.write_all(&chunk).await.is_err() {
                break;
            }
            link.delivered.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            credit.add_permits(chunk.len());
        }
        // The far side is gone (or the stream ended): stop reading too.
        credit.close();
        rx.close();
    };
    tokio::join!(reader, writer);
}

/// Answers every HTTP request on `listener` with the shaper's totals (one JSON object).
pub async fn serve_stats(shaper: Arc<Shaper>, listener: TcpListener) {
    loop {
        let Ok((mut s, _)) = listener.accept().await else { continue };
        let shaper = Arc::clone(&shaper);
        tokio::spawn(async move {
            // The whole request head first: closing a socket with unread bytes resets the
            // connection, and the client may then lose the answer.
            let mut head = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
            })
            .await;
            let body = shaper.stats().to_string();
            let resp = format!(
                "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}\n",
                body.len() + 1
            );
            let _ = s.write_all(resp.as_bytes()).await;
            let _ = s.shutdown().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant as StdInstant;

    /// An upstream that sends `size` bytes for every request line it reads (a tiny
    /// request-response protocol: "GET\n" -> size bytes).
    async fn upstream(size: usize) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = l.accept().await else { return };
                tokio::spawn(async move {
                    let body: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
                    let mut req = [0u8; 4];
                    while s.read_exact(&mut req).await.is_ok() {
                        if s.write_all(&body).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn proxy(spec: LinkSpec, up: SocketAddr) -> (SocketAddr, Arc<Shaper>) {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        let shaper = Shaper::new(spec, up);
        tokio::spawn(Arc::clone(&shaper).serve(l));
        (addr, shaper)
    }

    async fn request(s: &mut TcpStream, size: usize) -> Vec<u8> {
        s.write_all(b"GET\n").await.expect("write");
        let mut got = vec![0u8; size];
        s.read_exact(&mut got).await.expect("read");
        got
    }

    #[tokio::test]
    async fn delay_is_paid_per_round_trip_and_data_is_intact() {
        let up = upstream(1000).await;
        let spec = LinkSpec { delay: Duration::from_millis(15), rate: 1e9, window: 1 << 20 };
        let (addr, shaper) = proxy(spec, up).await;
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let t = StdInstant::now();
        let got = request(&mut s, 1000).await;
        // Handshake (one round trip), then the request and the answer (another).
        assert!(t.elapsed() >= Duration::from_millis(60), "{:?}", t.elapsed());
        assert!(got.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
        let t = StdInstant::now();
        request(&mut s, 1000).await;
        assert!(t.elapsed() >= Duration::from_millis(30), "{:?}", t.elapsed());
        let st = shaper.stats();
        assert_eq!(st["up_bytes"], 8);
        assert_eq!(st["down_bytes"], 2000);
        assert_eq!(st["connections"], 1);
    }

    #[tokio::test]
    async fn rate_is_shared_by_connections() {
        // 4 connections x 2 MB through a 20 MB/s link: at least 0.4 s, whatever the windows.
        let size = 2_000_000;
        let up = upstream(size).await;
        let spec = LinkSpec { delay: Duration::from_millis(1), rate: 20e6, window: 4 << 20 };
        let (addr, shaper) = proxy(spec, up).await;
        let t = StdInstant::now();
        let mut tasks = Vec::new();
        for _ in 0..4 {
            tasks.push(tokio::spawn(async move {
                let mut s = TcpStream::connect(addr).await.expect("connect");
                request(&mut s, size).await.len()
            }));
        }
        for t in tasks {
            assert_eq!(t.await.expect("task"), size);
        }
        assert!(t.elapsed() >= Duration::from_millis(400), "{:?}", t.elapsed());
        assert_eq!(shaper.stats()["down_bytes"], 4 * size as u64);
    }

    #[tokio::test]
    async fn end_of_stream_is_passed_on() {
        // An upstream that answers and closes: the client sees the data, then EOF.
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let up = l.local_addr().expect("addr");
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.expect("accept");
            s.write_all(b"bye").await.expect("write");
        });
        let spec = LinkSpec { delay: Duration::from_millis(2), rate: 1e8, window: 1 << 20 };
        let (addr, _) = proxy(spec, up).await;
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let mut all = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut all)).await.expect("EOF").expect("read");
        assert_eq!(all, b"bye");
    }
}
