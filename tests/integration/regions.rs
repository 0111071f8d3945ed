//! Regions learned from S3's answers (DESIGN §3.2): a 301 or 400 naming the bucket's region in
//! `x-amz-bucket-region` moves the bucket only to a region that looks like one, in the
//! partition of the host the request went to. A recording S3 behind the `Upstream` seam
//! answers every request with such a redirect and notes where each request went.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use prometheus::Registry;
use s3x_proxy::admit::Arrival;
use s3x_proxy::body::{full, ProxyBody};
use s3x_proxy::config::Cli;
use s3x_proxy::proxy::Proxy;
use s3x_proxy::upstream::{Upstream, UpstreamFuture};

use crate::harness::GP_BUCKET;

/// An S3 that redirects every request to `region` and records the hosts it was sent to.
struct Redirecting {
    region: String,
    hosts: Mutex<Vec<String>>,
}

struct Seam(Arc<Redirecting>);

impl Upstream for Seam {
    fn send(&self, request: Request<ProxyBody>) -> UpstreamFuture {
        let s3 = self.0.clone();
        Box::pin(async move {
            let host = request.uri().host().unwrap_or_default().to_owned();
            s3.hosts.lock().unwrap().push(host);
            let body = "<Error><Code>PermanentRedirect</Code><Message>Use the bucket's endpoint.</Message></Error>";
            let mut response = Response::new(full(Bytes::from_static(body.as_bytes())));
            *response.status_mut() = StatusCode::MOVED_PERMANENTLY;
            response
                .headers_mut()
                .insert("x-amz-bucket-region", s3.region.parse().unwrap());
            Ok(response)
        })
    }
}

fn pipeline(region: &str) -> (Proxy, Arc<Redirecting>) {
    crate::harness::init();
    let dir = tempfile::tempdir().unwrap();
    let cli = <Cli as clap::Parser>::try_parse_from([
        "s3x-proxy",
        "--ca-dir",
        dir.path().to_str().unwrap(),
        "--region",
        "us-west-2",
    ])
    .unwrap();
    let creds = aws_credential_types::Credentials::new("AKID", "SECRET", None, None, "test");
    let provider = aws_credential_types::provider::SharedCredentialsProvider::new(creds);
    let config = s3x_proxy::Config::from_args(&cli.args, provider).unwrap();
    let s3 = Arc::new(Redirecting {
        region: region.to_owned(),
        hosts: Mutex::default(),
    });
    let proxy = s3x_proxy::pipeline(&config, Arc::new(Seam(s3.clone())), &Registry::new()).unwrap();
    (proxy, s3)
}

/// A forward-mode GET of a general-purpose object on the bucket's us-west-2 host.
async fn get(proxy: &Proxy) -> (StatusCode, String) {
    let host = format!("{GP_BUCKET}.s3.us-west-2.amazonaws.com");
    let request = Request::builder()
        .method(Method::GET)
        .uri(format!("http://{host}/key"))
        .header("host", &host)
        .body(s3x_proxy::body::empty())
        .unwrap();
    let arrival = Arrival::direct("127.0.0.1:50000".parse().unwrap());
    let response = proxy.handle(request, &arrival).await;
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn a_region_that_is_no_region_or_in_another_partition_moves_nothing() {
    let west = format!("{GP_BUCKET}.s3.us-west-2.amazonaws.com");
    for named in [
        "evil-region",
        "us-west-2.evil.example",
        "cn-north-1",
        "us-gov-west-1",
        "us-iso-east-1",
    ] {
        let (proxy, s3) = pipeline(named);
        for _ in 0..2 {
            let (status, body) = get(&proxy).await;
            assert_eq!(status, StatusCode::MOVED_PERMANENTLY, "{named}: {body}");
            assert!(body.contains("PermanentRedirect"), "{named}: {body}");
        }
        // Neither retried elsewhere nor remembered: both requests went to the bucket's host.
        let hosts = s3.hosts.lock().unwrap().clone();
        assert_eq!(hosts, vec![west.clone(), west.clone()], "{named}");
    }
}

#[tokio::test]
async fn a_region_in_the_same_partition_moves_the_bucket() {
    let (proxy, s3) = pipeline("eu-west-1");
    let (status, _) = get(&proxy).await;
    assert_eq!(status, StatusCode::MOVED_PERMANENTLY);
    let hosts = s3.hosts.lock().unwrap().clone();
    assert_eq!(
        hosts,
        vec![
            format!("{GP_BUCKET}.s3.us-west-2.amazonaws.com"),
            format!("{GP_BUCKET}.s3.eu-west-1.amazonaws.com"),
        ]
    );
}
