//! The HTTP server loop (in place of `axum::serve`, which has neither limit): at most
//! `server.max_connections` connections are served at once — past that the loop stops
//! accepting and new connections wait in the kernel's queue until one closes — and a
//! client must send each request's headers within `server.header_read_timeout_ms` of
//! the connection opening or of the previous response (hyper's header timer runs
//! whenever it waits for a request, so this is also the keep-alive idle timeout). A
//! slow or idle client is closed instead of holding a slot (and a file descriptor) for
//! ever. On shutdown it stops accepting, lets each connection finish its request, then
//! returns.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::service::Service as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_util::sync::CancellationToken;

/// A source of connections, each with the slot it holds until it closes.
pub trait Accept: Send + 'static {
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// The next connection, once a slot is free.
    fn accept(&mut self) -> impl Future<Output = (Self::Io, SocketAddr, OwnedSemaphorePermit)> + Send;
}

impl Accept for crate::tls::TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;

    async fn accept(&mut self) -> (Self::Io, SocketAddr, OwnedSemaphorePermit) {
        self.next().await
    }
}

/// Plain TCP connections, each taking a slot before it is accepted.
pub struct Plain {
    pub listener: TcpListener,
    pub slots: Arc<Semaphore>,
}

impl Accept for Plain {
    type Io = tokio::net::TcpStream;

    async fn accept(&mut self) -> (Self::Io, SocketAddr, OwnedSemaphorePermit) {
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .expect("the connection slots are never closed");
        loop {
            match self.listener.accept().await {
                Ok((tcp, peer)) => return (tcp, peer, slot),
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

/// Serves `router` on the connections of `incoming` until `stop` resolves, then waits
/// for the open connections to finish their requests.
pub async fn serve<A: Accept>(
    mut incoming: A,
    router: Router,
    header_read_timeout: Duration,
    stop: impl Future<Output = ()> + Send,
) {
    let stopping = CancellationToken::new();
    // Every connection task holds a receiver; `closed` resolves when the last one ends.
    let (open_tx, open_rx) = watch::channel(());
    let service = TowerToHyperService::new(router);
    tokio::pin!(stop);
    loop {
        let (io, peer, slot) = tokio::select! {
            c = incoming.accept() => c,
            _ = &mut stop => break,
        };
        let service = service.clone();
        let handler = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let mut req = req.map(Body::new);
            req.extensions_mut().insert(ConnectInfo(peer));
            service.call(req)
        });
        let (stopping, open) = (stopping.clone(), open_rx.clone());
        tokio::spawn(async move {
            {
                let mut builder = hyper::server::conn::http1::Builder::new();
                builder
                    .timer(TokioTimer::new())
                    .header_read_timeout(header_read_timeout)
                    .keep_alive(true);
                let conn = builder.serve_connection(TokioIo::new(io), handler);
                tokio::pin!(conn);
                let mut asked = false;
                loop {
                    tokio::select! {
                        done = conn.as_mut() => {
                            if let Err(e) = done {
                                tracing::debug!(%peer, error = %e, "connection ended");
                            }
                            break;
                        }
                        _ = stopping.cancelled(), if !asked => {
                            asked = true;
                            conn.as_mut().graceful_shutdown();
                        }
                    }
                }
            }
            // The socket is closed (the connection dropped above) before its slot frees.
            drop(slot);
            drop(open);
        });
    }
    drop(open_rx);
    stopping.cancel();
    open_tx.closed().await;
}
