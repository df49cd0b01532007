//! The loopback HTTP/1 server under each test server: a free port (or the
//! one asked for), a thread and runtime of its own so that tests without an
//! async runtime can use it, and a stop when the handle is dropped.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// A running server.
#[derive(Debug)]
pub(crate) struct Serving {
    pub address: SocketAddr,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

/// Serves `handle(state, request)` on 127.0.0.1:`port` (0 = any free port).
/// An `Err` from `handle` closes the connection without an answer.
pub(crate) fn serve<S, B, Fut>(
    port: u16,
    state: Arc<S>,
    handle: fn(Arc<S>, Request<Incoming>) -> Fut,
) -> std::io::Result<Serving>
where
    S: Send + Sync + 'static,
    Fut: Future<Output = Result<Response<B>, std::io::Error>> + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let std_listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
    std_listener.set_nonblocking(true)?;
    let address = std_listener.local_addr()?;
    let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    std::thread::spawn(move || {
        runtime.block_on(async move {
            let listener =
                tokio::net::TcpListener::from_std(std_listener).expect("a bound listener");
            let accept_loop = async {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let state = Arc::clone(&state);
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |request| {
                            handle(Arc::clone(&state), request)
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            };
            tokio::select! {
                _ = stopped => {}
                () = accept_loop => {}
            }
        });
    });
    Ok(Serving {
        address,
        _shutdown: shutdown,
    })
}
