//! The per-request pipeline without I/O: what the proxy's own code costs per request, apart
//! from sockets and TLS. Each scenario runs in a loop, five samples after a warm-up, and the
//! median is printed in ns per operation. `cargo bench --bench pipeline`.
//!
//! - `route_forward_get`: routing a forward-mode GetObject (host parse, query, canonical path).
//! - `sign_session_get`: `set_target` and `sign_parts` of a GetObject with session
//!   credentials (as a session signs: its key for the day already derived).
//! - `sign_session_get_new_session`: the same with credentials new to the signer, as for the
//!   first request of a session: the day's key is derived (four more HMACs).
//! - `pipeline_get_warm_session`: `Proxy::handle` for a GetObject, session cached, against an
//!   upstream that answers 200 with 1 KiB at once (route + policy + session lookup + sign +
//!   record + metrics + respond), body read to the end; no log subscriber.
//! - `pipeline_get_warm_session_access_log`: the same with the access log on at `info`, through
//!   the proxy's own logging (`logging::dispatch`: filter, text format, redaction, lines batched
//!   on the thread as on a worker) to a writer thread that discards them.
//! - `pipeline_get_warm_session_access_log_json`: the same with `--log-format json`.
//!
//! For instruction counts, which do not depend on how busy the machine is:
//! `S3X_BENCH_SCENARIO=NAME S3X_BENCH_ITERATIONS=N` runs only scenario `NAME`, one warm-up
//! round of 100 operations and then exactly `N`, and prints nothing else; run it under
//! `valgrind --tool=callgrind` with two values of `N` and divide the difference in instructions
//! by the difference in `N` (benches/README.md, "Instructions per operation").

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt;
use s3x_proxy::admit::Arrival;
use s3x_proxy::body::{full, ProxyBody};
use s3x_proxy::logging::LogFormat;
use s3x_proxy::route::endpoint::BucketRegions;
use s3x_proxy::route::route;
use s3x_proxy::upstream::{Upstream, UpstreamFuture};

const HOST: &str = "demo--usw2-az1--x-s3.s3express-usw2-az1.us-west-2.amazonaws.com";

/// Answers CreateSession with a far-off expiry and everything else with 1 KiB, at once.
struct Instant200;

impl Upstream for Instant200 {
    fn send(&self, request: Request<ProxyBody>) -> UpstreamFuture {
        let session = request.uri().query() == Some("session");
        Box::pin(async move {
            if session {
                let body = "<CreateSessionResult><Credentials><SessionToken>t</SessionToken><SecretAccessKey>s</SecretAccessKey><AccessKeyId>k</AccessKeyId><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials></CreateSessionResult>";
                return Ok(Response::new(full(body)));
            }
            let mut response = Response::new(full(Bytes::from_static(&[7u8; 1024])));
            response.headers_mut().insert("content-length", 1024.into());
            Ok(response)
        })
    }
}

fn request() -> Request<ProxyBody> {
    Request::builder()
        .uri(format!("http://{HOST}/dir/object-1.bin?x-id=GetObject"))
        .header("host", HOST)
        .header("user-agent", "bench")
        .header("accept", "*/*")
        .body(s3x_proxy::body::empty())
        .unwrap()
}

/// Which scenario to run alone, and how many times, from `S3X_BENCH_SCENARIO` and
/// `S3X_BENCH_ITERATIONS` (for callgrind); `None` runs every scenario with timings.
fn only() -> Option<(String, u32)> {
    let name = std::env::var("S3X_BENCH_SCENARIO").ok()?;
    let n = std::env::var("S3X_BENCH_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    Some((name, n))
}

/// Runs `op` `n` times per sample; prints the median of five samples in ns per op. In the
/// fixed mode (see [`only`]) runs 100 warm-up operations and then exactly the number asked for,
/// and only for the scenario named.
fn measure(name: &str, n: u32, mut op: impl FnMut()) {
    if let Some((only, iterations)) = only() {
        if only == name {
            for _ in 0..100 + iterations {
                op();
            }
        }
        return;
    }
    for _ in 0..n / 10 {
        op();
    }
    let mut samples: Vec<f64> = (0..5)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..n {
                op();
            }
            started.elapsed().as_nanos() as f64 / f64::from(n)
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    println!(
        "{name:<40} {:>9.0} ns/op   (samples {:.0}–{:.0})",
        samples[2], samples[0], samples[4]
    );
}

fn config() -> s3x_proxy::Config {
    let dir = std::env::temp_dir().join("s3x-bench-ca");
    let cli = <s3x_proxy::config::Cli as clap::Parser>::try_parse_from([
        "s3x-proxy",
        "--ca-dir",
        dir.to_str().unwrap(),
        "--region",
        "us-west-2",
    ])
    .unwrap();
    let creds = aws_credential_types::Credentials::new("AKID", "SECRET", None, None, "bench");
    s3x_proxy::Config::from_args(
        &cli.args,
        aws_credential_types::provider::SharedCredentialsProvider::new(creds),
    )
    .unwrap()
}

fn bench_pipeline(name: &str, runtime: &tokio::runtime::Runtime) {
    let registry = prometheus::Registry::new();
    let proxy = s3x_proxy::pipeline(&config(), Arc::new(Instant200), &registry).unwrap();
    let arrival = Arrival {
        client: "127.0.0.1:40000".parse().unwrap(),
        tunnel: None,
        identity: None,
    };
    measure(name, 20_000, || {
        runtime.block_on(async {
            let response = proxy.handle(black_box(request()), &arrival).await;
            let _ = black_box(response.into_body().collect().await);
        })
    });
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();

    let settings = config().route;
    let learned = BucketRegions::default();
    let (parts, _) = request().into_parts();
    measure("route_forward_get", 200_000, || {
        let _ = black_box(route(black_box(&parts), None, &settings, &learned));
    });

    let credentials =
        s3x_proxy::sign::SigningCredentials::new(aws_credential_types::Credentials::new(
            "ASIASESSION",
            "secret",
            Some("token".into()),
            None,
            "b",
        ));
    let scope = s3x_proxy::sign::Scope {
        region: "us-west-2",
        service: "s3express",
    };
    measure("sign_session_get", 50_000, || {
        let (mut parts, _) = request().into_parts();
        s3x_proxy::sign::set_target(&mut parts, HOST, "/dir/object-1.bin?x-id=GetObject").unwrap();
        s3x_proxy::sign::sign_parts(
            &mut parts,
            &credentials,
            s3x_proxy::sign::TokenHeader::S3Session,
            scope,
            s3x_proxy::sign::Payload::Unsigned,
        )
        .unwrap();
        black_box(parts);
    });
    measure("sign_session_get_new_session", 20_000, || {
        let (mut parts, _) = request().into_parts();
        s3x_proxy::sign::set_target(&mut parts, HOST, "/dir/object-1.bin?x-id=GetObject").unwrap();
        let fresh = s3x_proxy::sign::SigningCredentials::new(credentials.credentials().clone());
        s3x_proxy::sign::sign_parts(
            &mut parts,
            &fresh,
            s3x_proxy::sign::TokenHeader::S3Session,
            scope,
            s3x_proxy::sign::Payload::Unsigned,
        )
        .unwrap();
        black_box(parts);
    });

    bench_pipeline("pipeline_get_warm_session", &runtime);

    // The access line as the proxy writes it at `info`: its own subscriber (filter, format,
    // redaction), lines batched on this thread as on a worker and handed to a writer thread
    // that discards them.
    for (name, format) in [
        ("pipeline_get_warm_session_access_log", LogFormat::Text),
        ("pipeline_get_warm_session_access_log_json", LogFormat::Json),
    ] {
        let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
            .lossy(false)
            .finish(std::io::sink());
        let filter = s3x_proxy::logging::filter(Some("info"));
        let dispatch = s3x_proxy::logging::dispatch(format, filter, writer, false);
        tracing::dispatcher::with_default(&dispatch, || {
            s3x_proxy::logging::batch_this_thread();
            bench_pipeline(name, &runtime);
            s3x_proxy::logging::flush_thread();
        });
        drop(guard);
    }
}
