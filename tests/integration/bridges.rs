//! The bridges routing and the pipeline make for tools that predate directory buckets (DESIGN
//! §3.2): GetBucketLocation answered from the zone, path-style on a bare Zonal host, a
//! directory bucket on a general-purpose host, `x-amz-storage-class: STANDARD`, and S3's header
//! case kept for HTTP/1.1 clients. The emulator refuses each of these as S3 Express does, so
//! every test here fails without its bridge.

use bytes::Bytes;
use http::{Method, StatusCode};
use s3x_emulator::{AuthKind, EndpointKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{assert_metric, data, zonal_host, Harness, Options, BUCKET, OTHER_BUCKET};

/// The bare Zonal host of `BUCKET`'s zone (path-style, which S3 Express does not serve).
const BARE_ZONAL: &str = "s3express-usw2-az1.us-west-2.amazonaws.com";

/// The `<LocationConstraint>` of a GetBucketLocation answer.
fn location(text: &str) -> &str {
    let start = text
        .find("<LocationConstraint")
        .expect("a LocationConstraint");
    let value = &text[start..];
    let open = value.find('>').unwrap() + 1;
    let close = value.find("</LocationConstraint>").unwrap();
    &value[open..close]
}

#[tokio::test]
async fn get_bucket_location_is_answered_from_the_zone_in_every_form_and_never_sent() {
    let h = Harness::start(Options::default()).await;
    h.emulator.clear_requests_log();
    let zonal = h.forward(Method::GET, BUCKET, "/?location", &[], "").await;
    let other = h
        .forward(Method::GET, OTHER_BUCKET, "/?location=", &[], "")
        .await;
    let endpoint = h.endpoint(Method::GET, BUCKET, "?location", &[], "").await;
    // botocore asks the control plane, path-style.
    let control = "s3express-control.us-west-2.amazonaws.com";
    let uri = format!("http://{control}/{OTHER_BUCKET}?location");
    let via_control = h.send(Method::GET, &uri, control, &[], Bytes::new()).await;
    for (reply, region) in [
        (&zonal, "us-west-2"),
        (&other, "us-east-1"),
        (&endpoint, "us-west-2"),
        (&via_control, "us-east-1"),
    ] {
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        assert_eq!(location(&reply.text()), region, "{}", reply.text());
        assert!(reply.header("x-amz-request-id").is_some());
    }
    assert!(
        h.emulator.requests_log().is_empty(),
        "nothing reaches S3: {:?}",
        h.emulator.requests_log()
    );
    let metrics = h.metrics().await;
    assert_metric(
        &metrics,
        "s3x_proxy_compat_total",
        &[("kind", "location")],
        4.0,
    );
    assert_metric(
        &metrics,
        "s3x_proxy_requests_total",
        &[("operation", "GetBucketLocation"), ("status", "200")],
        4.0,
    );
    h.stop().await;
}

#[tokio::test]
async fn path_style_on_a_bare_zonal_host_goes_to_the_buckets_virtual_host() {
    let h = Harness::start(Options::default()).await;
    let body = data(70_000, 7);
    let put_uri = format!("http://{BARE_ZONAL}/{BUCKET}/dir/a%20b.bin");
    let put = h
        .send(Method::PUT, &put_uri, BARE_ZONAL, &[], body.clone())
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text());
    let get = h
        .send(Method::GET, &put_uri, BARE_ZONAL, &[], Bytes::new())
        .await;
    assert_eq!(get.status, StatusCode::OK);
    assert_eq!(get.body, body);
    assert_eq!(h.emulator.object(BUCKET, "dir/a b.bin"), Some(body));
    let list_uri = format!("http://{BARE_ZONAL}/{BUCKET}?list-type=2&prefix=dir%2F");
    let list = h
        .send(Method::GET, &list_uri, BARE_ZONAL, &[], Bytes::new())
        .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text());
    assert!(
        list.text().contains("<Key>dir/a b.bin</Key>"),
        "{}",
        list.text()
    );

    let log = h.emulator.requests_log();
    assert!(!log.is_empty());
    for seen in &log {
        assert_eq!(seen.host, zonal_host(BUCKET), "{seen:?}");
        assert!(seen.signature_verified, "{seen:?}");
        assert!(seen.status < 300, "{seen:?}");
    }
    assert!(log
        .iter()
        .any(|s| s.operation == "PutObject" && s.path == "/dir/a%20b.bin"));
    let metrics = h.metrics().await;
    assert_metric(
        &metrics,
        "s3x_proxy_compat_total",
        &[("kind", "path_style")],
        3.0,
    );
    h.stop().await;
}

#[tokio::test]
async fn path_style_on_a_zonal_host_of_another_zone_or_without_a_bucket_is_refused() {
    let h = Harness::start(Options::default()).await;
    h.emulator.clear_requests_log();
    let wrong_zone = format!("http://{BARE_ZONAL}/{OTHER_BUCKET}/k");
    let reply = h
        .send(Method::GET, &wrong_zone, BARE_ZONAL, &[], Bytes::new())
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.code(), "InvalidBucketName");
    let no_bucket = format!("http://{BARE_ZONAL}/");
    let reply = h
        .send(Method::GET, &no_bucket, BARE_ZONAL, &[], Bytes::new())
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.code(), "InvalidRequest");
    let general = format!("http://{BARE_ZONAL}/plain-bucket/k");
    let reply = h
        .send(Method::GET, &general, BARE_ZONAL, &[], Bytes::new())
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(h.emulator.requests_log().is_empty());
    h.stop().await;
}

/// A directory bucket on general-purpose hosts, as the aws CLI 2.9 (virtual host) and minio-go
/// (dual-stack virtual host) address it, and path-style on the global host.
async fn directory_bucket_on_general_purpose_hosts(extra_args: &[&str]) {
    let h = Harness::start(Options {
        extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
        ..Options::default()
    })
    .await;
    let body = data(3_000, 11);
    let hosts = [
        format!("{BUCKET}.s3.us-west-2.amazonaws.com"),
        format!("{BUCKET}.s3.dualstack.us-west-2.amazonaws.com"),
        format!("{BUCKET}.s3.amazonaws.com"),
    ];
    for (i, host) in hosts.iter().enumerate() {
        let uri = format!("http://{host}/gp-host/{i}");
        let put = h.send(Method::PUT, &uri, host, &[], body.clone()).await;
        assert_eq!(put.status, StatusCode::OK, "{host}: {}", put.text());
        let get = h.send(Method::GET, &uri, host, &[], Bytes::new()).await;
        assert_eq!(get.body, body, "{host}");
    }
    let global = "s3.amazonaws.com";
    let uri = format!("http://{global}/{BUCKET}/gp-host/path-style");
    let put = h.send(Method::PUT, &uri, global, &[], body.clone()).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text());
    assert_eq!(h.emulator.object(BUCKET, "gp-host/path-style"), Some(body));

    let log = h.emulator.requests_log();
    let data_requests: Vec<_> = log
        .iter()
        .filter(|s| s.operation != "CreateSession")
        .collect();
    assert_eq!(data_requests.len(), 7, "{log:?}");
    for seen in data_requests {
        assert_eq!(seen.endpoint, EndpointKind::Zonal, "{seen:?}");
        assert!(seen.host.starts_with(BUCKET), "{seen:?}");
        assert!(
            matches!(
                seen.auth,
                AuthKind::SessionReadOnly | AuthKind::SessionReadWrite
            ),
            "{seen:?}"
        );
        assert!(seen.signature_verified && seen.status == 200, "{seen:?}");
    }
    let metrics = h.metrics().await;
    assert_metric(
        &metrics,
        "s3x_proxy_compat_total",
        &[("kind", "gp_host")],
        7.0,
    );
    h.stop().await;
}

#[tokio::test]
async fn a_directory_bucket_on_a_general_purpose_host_goes_to_its_zonal_endpoint() {
    directory_bucket_on_general_purpose_hosts(&[]).await;
}

#[tokio::test]
async fn a_directory_bucket_on_a_general_purpose_host_is_served_with_general_purpose_off() {
    directory_bucket_on_general_purpose_hosts(&["--general-purpose", "false"]).await;
}

#[tokio::test]
async fn storage_class_standard_becomes_express_onezone_and_others_are_refused_locally() {
    let h = Harness::start(Options::default()).await;
    let body = data(2_000, 3);
    let standard = [("x-amz-storage-class", "STANDARD")];
    let put = h
        .forward(Method::PUT, BUCKET, "/classy", &standard, body.clone())
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text());
    let stored = h.emulator.object_headers(BUCKET, "classy").unwrap();
    assert!(
        !stored.iter().any(|(_, v)| v == "STANDARD"),
        "the stored object carries no STANDARD class: {stored:?}"
    );
    let mpu = h
        .forward(Method::POST, BUCKET, "/classy-mpu?uploads", &standard, "")
        .await;
    assert_eq!(mpu.status, StatusCode::OK, "{}", mpu.text());

    h.emulator.clear_requests_log();
    for class in ["GLACIER", "REDUCED_REDUNDANCY"] {
        let refused = h
            .forward(
                Method::PUT,
                BUCKET,
                "/cold",
                &[("x-amz-storage-class", class)],
                body.clone(),
            )
            .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        assert_eq!(refused.code(), "InvalidStorageClass");
    }
    assert!(h.emulator.requests_log().is_empty());
    assert!(h.emulator.object(BUCKET, "cold").is_none());
    let metrics = h.metrics().await;
    assert_metric(
        &metrics,
        "s3x_proxy_compat_total",
        &[("kind", "storage_class")],
        2.0,
    );
    h.stop().await;
}

/// Reads one HTTP/1.1 response head off `stream`, as bytes.
async fn read_head(stream: &mut tokio::net::TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).await.unwrap();
        assert_eq!(n, 1, "the connection closed inside the head: {head:?}");
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

#[tokio::test]
async fn http1_clients_get_s3s_header_case() {
    let h = Harness::start(Options::default()).await;
    let put = h.forward(Method::PUT, BUCKET, "/cased", &[], "hello").await;
    assert_eq!(put.status, StatusCode::OK);
    let host = zonal_host(BUCKET);
    let mut stream = tokio::net::TcpStream::connect(h.proxy).await.unwrap();
    let request = format!("HEAD http://{host}/cased HTTP/1.1\r\nHost: {host}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let head = read_head(&mut stream).await;
    // libs3 2.0 matches these names exactly (strncmp), x-amz-* in lowercase.
    for name in [
        "\r\nETag: ",
        "\r\nContent-Length: 5\r\n",
        "\r\nx-amz-request-id: ",
    ] {
        assert!(head.contains(name), "{name:?} in {head}");
    }
    h.stop().await;
}
