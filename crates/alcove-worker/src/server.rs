//! The accept loop shared by the S3 and admin ports: HTTP/1.1 with keep-alive per config,
//! TCP_NODELAY (small responses must not wait for delayed ACKs), an idle limit, and graceful
//! shutdown that lets in-flight requests finish. With a [`crate::tls::Acceptor`] each
//! connection is a TLS one (the handshake runs in the connection's own task).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::tls::Acceptor;

/// Connection settings of one port.
#[derive(Debug, Clone, Copy)]
pub struct HttpSettings {
    pub keep_alive: bool,
    /// Closes a connection that waits longer than this for the next request's headers.
    pub idle_timeout: Option<Duration>,
    /// How long in-flight requests get after shutdown is asked for.
    pub grace: Duration,
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
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.keep_alive(settings.keep_alive).timer(TokioTimer::new()).header_read_timeout(settings.idle_timeout);
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
                let _ = stream.set_nodelay(true);
                let handler = handler.clone();
                let service = service_fn(move |req| {
                    let handler = handler.clone();
                    async move { Ok::<_, Infallible>(handler(req, remote).await) }
                });
                let (builder, watcher, tls) = (builder.clone(), graceful.watcher(), tls.clone());
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
