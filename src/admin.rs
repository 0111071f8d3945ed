//! Admin: `/metrics`, `/healthz` and `/readyz` on their own listener.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use http::{header, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use prometheus::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::body::{full, ProxyBody};
use crate::metrics::render;

/// Readiness: true once listeners are up and credentials resolve; false again once shutdown starts.
#[derive(Clone, Default)]
pub struct Health {
    credentials_ok: Arc<AtomicBool>,
    draining: Arc<AtomicBool>,
    /// Why credentials are not loaded yet (shown by `/readyz`).
    credentials_error: Arc<std::sync::Mutex<Option<String>>>,
}

impl Health {
    /// Records that IAM credentials were loaded.
    pub fn set_credentials_ok(&self) {
        self.credentials_ok.store(true, Ordering::Release);
    }

    /// Records why IAM credentials could not be loaded.
    pub fn set_credentials_error(&self, reason: &str) {
        if let Ok(mut slot) = self.credentials_error.lock() {
            *slot = Some(reason.to_owned());
        }
    }

    /// Why the proxy is not ready, or `None` when it is.
    pub fn not_ready_because(&self) -> Option<String> {
        if self.draining.load(Ordering::Acquire) {
            return Some("shutting down".into());
        }
        if self.credentials_ok.load(Ordering::Acquire) {
            return None;
        }
        let reason = self.credentials_error.lock().ok().and_then(|r| r.clone());
        Some(match reason {
            Some(reason) => format!("no AWS credentials yet: {reason}"),
            None => "loading AWS credentials".into(),
        })
    }

    /// Records that shutdown has started.
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }
}

/// Serves the admin endpoints until `stop` flips.
pub async fn serve(
    listener: TcpListener,
    registry: Registry,
    health: Health,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let stream = tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::debug!(%error, "admin accept failed");
                    continue;
                }
            },
        };
        let registry = registry.clone();
        let health = health.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let response = answer(&request, &registry, &health);
                async move { Ok::<_, Infallible>(response) }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn answer(
    request: &Request<Incoming>,
    registry: &Registry,
    health: &Health,
) -> Response<ProxyBody> {
    let (status, content_type, body) = match request.uri().path() {
        "/metrics" => (
            StatusCode::OK,
            "text/plain; version=0.0.4",
            render(registry),
        ),
        "/healthz" => (StatusCode::OK, "text/plain", "ok\n".to_owned()),
        "/readyz" => match health.not_ready_because() {
            None => (StatusCode::OK, "text/plain", "ready\n".to_owned()),
            Some(why) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("not ready: {why}\n"),
            ),
        },
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found\n".to_owned(),
        ),
    };
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}
