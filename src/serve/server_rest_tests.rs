//! When an HTTP/1.1 connection rests and what it keeps across the rest, timed exactly: the
//! real serve loop (`serve_http`, the real pipeline) over an in-memory pipe, on tokio's paused
//! clock. Answers come from the proxy itself (a host that is not S3 is refused), so nothing goes
//! upstream.

use std::net::SocketAddr;

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use prometheus::{IntGauge, Registry};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::*;
use crate::upstream::{Upstream, UpstreamFuture};

/// An S3 the tests never reach.
struct Unreachable;

impl Upstream for Unreachable {
    fn send(&self, _request: Request<ProxyBody>) -> UpstreamFuture {
        panic!("nothing goes upstream in these tests")
    }
}

/// One client connection served by the proxy with `args`: the client's end of the pipe, and
/// the gauge of resting connections.
struct Served {
    client: DuplexStream,
    idle: IntGauge,
    _ca_dir: tempfile::TempDir,
}

async fn serve(args: &[&str]) -> Served {
    let ca_dir = tempfile::tempdir().unwrap();
    let mut argv = vec!["s3x-proxy", "--ca-dir", ca_dir.path().to_str().unwrap()];
    argv.extend(["--region", "us-west-2", "--general-purpose", "false"]);
    argv.extend(args);
    let cli = <crate::config::Cli as clap::Parser>::try_parse_from(argv).unwrap();
    let keys = Credentials::new("AKID", "SECRET", None, None, "test");
    let config = crate::Config::from_args(&cli.args, SharedCredentialsProvider::new(keys)).unwrap();
    let proxy = crate::pipeline(&config, Arc::new(Unreachable), &Registry::new()).unwrap();
    let shared = Arc::new(Shared {
        proxy,
        ca: Arc::new(
            CertificateAuthority::load_or_create(&config.ca_dir)
                .await
                .unwrap(),
        ),
        connect: ConnectPolicy {
            general_purpose: false,
            allow: Vec::new(),
            connect_timeout: config.upstream.connect_timeout,
        },
        drain: crate::serve::conn::Drain::default(),
        connections: Arc::new(Semaphore::new(1)),
        client_idle: config.client_idle_timeout,
        workers: Arc::new(Workers::start(0).unwrap()),
        http: Http::new(config.client_idle_timeout, config.client_rest_after),
        memory: crate::serve::memory::Trimmer::new(),
    });
    let metrics = shared.proxy.metrics();
    let idle = metrics.connections_idle.clone();
    let permit = shared.connections.clone().try_acquire_owned().unwrap();
    let slot = Slot::open(permit, &metrics.connections_active, shared.client_idle);
    let (client, server) = tokio::io::duplex(64 * 1024);
    let arrival = Arrival {
        client: SocketAddr::from(([127, 0, 0, 1], 40000)),
        tunnel: None,
        identity: None,
    };
    tokio::spawn(serve_http(slot.track(server), arrival, shared, slot));
    Served {
        client,
        idle,
        _ca_dir: ca_dir,
    }
}

/// A request the proxy answers itself (403: not an S3 host).
const REQUEST: &str = "GET http://example.com/k HTTP/1.1\r\nHost: example.com\r\n\r\n";

/// Reads one answer with a `Content-Length` and returns its status line.
async fn answer(client: &mut DuplexStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(client.read_u8().await.expect("an answer"));
    }
    let head = String::from_utf8(head).unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .expect("a length")
        .parse()
        .unwrap();
    client.read_exact(&mut vec![0; length]).await.unwrap();
    head.lines().next().unwrap().to_owned()
}

async fn request(client: &mut DuplexStream) {
    client.write_all(REQUEST.as_bytes()).await.unwrap();
    assert_eq!(answer(client).await, "HTTP/1.1 403 Forbidden");
}

#[tokio::test(start_paused = true)]
async fn a_head_half_read_when_the_connection_rests_is_read_again_after_it() {
    let mut served = serve(&["--client-rest-after", "10ms"]).await;
    request(&mut served.client).await;
    // Half a head, read by the hyper connection that served the request; it then rests (after
    // 10 to 30 ms of quiet) and hands what it had read to the next one.
    let (first, second) = REQUEST.split_at(REQUEST.len() / 2);
    served.client.write_all(first.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(served.idle.get(), 0, "the half head woke it at once");
    served.client.write_all(second.as_bytes()).await.unwrap();
    assert_eq!(answer(&mut served.client).await, "HTTP/1.1 403 Forbidden");
}

#[tokio::test(start_paused = true)]
async fn by_default_a_connection_rests_after_a_quiet_second() {
    let mut served = serve(&[]).await;
    request(&mut served.client).await;
    tokio::time::sleep(Duration::from_millis(999)).await;
    assert_eq!(
        served.idle.get(),
        0,
        "rested before --client-rest-after (1s)"
    );
    // It looks once a period: it rests within two.
    tokio::time::sleep(Duration::from_millis(1002)).await;
    assert_eq!(served.idle.get(), 1, "rested after a quiet second");
    request(&mut served.client).await;
    assert_eq!(served.idle.get(), 0, "woken by its next request");
}

#[tokio::test(start_paused = true)]
async fn with_0s_a_connection_never_rests() {
    let args = ["--client-rest-after", "0s", "--client-idle-timeout", "2h"];
    let mut served = serve(&args).await;
    request(&mut served.client).await;
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(served.idle.get(), 0, "rested with --client-rest-after 0s");
    request(&mut served.client).await;
}
