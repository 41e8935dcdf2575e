//! The accept loop shared by the S3 and admin ports: HTTP/1.1 with keep-alive per config,
//! TCP_NODELAY (small responses must not wait for delayed ACKs), a time limit on request
//! headers, hyper's own header limits as a backstop, an optional connection limit, and graceful
//! shutdown that lets in-flight requests finish. With a [`crate::tls::Acceptor`] each
//! connection is a TLS one (the handshake runs in the connection's own task).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::limits::{Admission, ConnectionLimit, LiveDuration, REFUSAL_HEADER_TIMEOUT};
use crate::tls::Acceptor;

/// Connection settings of one port.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub keep_alive: bool,
    /// Closes a connection whose next request's headers have not all arrived this long after it
    /// opened or after its previous response: it cuts clients that trickle their headers, and
    /// idle kept-alive connections (hyper measures both with one timer).
    pub idle_timeout: Option<LiveDuration>,
    /// How long in-flight requests get after shutdown is asked for.
    pub grace: Duration,
    /// hyper's limits on a request head (bytes, header lines), beyond which it answers
    /// `431` and closes; the S3 front end answers smaller excesses with an S3 error itself.
    pub head_limits: Option<(usize, usize)>,
    /// At most this many connections at once (see [`ConnectionLimit`]).
    pub connections: Option<Arc<ConnectionLimit>>,
}

/// The HTTP/1.1 connection builder of a port.
fn http1_builder(settings: &HttpSettings) -> hyper::server::conn::http1::Builder {
    let mut builder = hyper::server::conn::http1::Builder::new();
    let header_timeout = settings.idle_timeout.as_ref().map(LiveDuration::get);
    builder.keep_alive(settings.keep_alive).timer(TokioTimer::new()).header_read_timeout(header_timeout);
    if let Some((bytes, lines)) = settings.head_limits {
        builder.max_header_size(bytes).max_headers(lines);
    }
    builder
}

/// Answers every request of a connection over the limit with `503 SlowDown`, then closes it.
async fn refuse(stream: tokio::net::TcpStream, limit: Arc<ConnectionLimit>) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.keep_alive(false).timer(TokioTimer::new()).header_read_timeout(REFUSAL_HEADER_TIMEOUT);
    let service = service_fn(move |_req: Request<Incoming>| {
        let answer = limit.refusal();
        async move { Ok::<_, Infallible>(answer) }
    });
    let refusal = builder.serve_connection(TokioIo::new(stream), service);
    let _ = tokio::time::timeout(REFUSAL_HEADER_TIMEOUT * 2, refusal).await;
}

/// Serves `listener` (over TLS with `tls`) until `shutdown` turns true, then drains connections
/// for `settings.grace`.
pub async fn serve<H, Fut, B>(
    listener: TcpListener,
    tls: Option<Acceptor>,
    settings: HttpSettings,
    mut shutdown: watch::Receiver<bool>,
    handler: H,
) where
    H: Fn(Request<Incoming>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, remote) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let slot = match settings.connections.as_ref().map(|limit| (limit, limit.admit())) {
                    None => None,
                    Some((_, Admission::Serve(slot))) => Some(slot),
                    Some((limit, Admission::Refuse(refusing))) => {
                        let limit = Arc::clone(limit);
                        tokio::spawn(async move {
                            refuse(stream, limit).await;
                            drop(refusing);
                        });
                        continue;
                    }
                    Some((_, Admission::Close)) => continue,
                };
                let _ = stream.set_nodelay(true);
                let handler = handler.clone();
                let service = service_fn(move |req| {
                    let handler = handler.clone();
                    async move { Ok::<_, Infallible>(handler(req, remote).await) }
                });
                // Built per connection, so a header timeout changed by SIGHUP applies to the next one.
                let (builder, watcher, tls) = (http1_builder(&settings), graceful.watcher(), tls.clone());
                tokio::spawn(async move {
                    let served = match tls {
                        None => watcher.watch(builder.serve_connection(TokioIo::new(stream), service)).await,
                        Some(tls) => match tls.accept(stream, remote).await {
                            Some(stream) => watcher.watch(builder.serve_connection(TokioIo::new(stream), service)).await,
                            None => return,
                        },
                    };
                    if let Err(e) = served {
                        tracing::debug!(error = %e, %remote, "connection ended with an error");
                    }
                    drop(slot);
                });
            }
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(settings.grace) => tracing::warn!("in-flight requests did not finish within the grace period"),
    }
}
