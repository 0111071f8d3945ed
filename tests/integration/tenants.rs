//! Tenants cannot stretch what they were allowed (DESIGN §3.2): a tenant that may read `shared`
//! and write its own bucket tries to make the proxy's IAM credentials read `bob` (a second copy
//! source header, a copy source S3 could read another way, a rename from another bucket), and a
//! read-only tenant tries to smuggle a second subresource past the operation table. Each attack
//! is played through the real proxy against the emulator; the emulator's counters and objects
//! show what reached "S3".

use bytes::Bytes;
use http::{Method, StatusCode};

use crate::harness::{send_http1, zonal_host, Harness, Options, Reply, BUCKET, GP_BUCKET};
use crate::harness::{OTHER_BUCKET, RO_BUCKET};

/// The tenant's own bucket (read-write).
pub const OWN: &str = BUCKET;
/// A bucket the tenant may read.
pub const SHARED: &str = RO_BUCKET;
/// A bucket the tenant may not touch.
pub const BOB: &str = OTHER_BUCKET;
/// What `BOB/src` holds: it must never turn up in the tenant's bucket.
pub const BOB_SECRET: &[u8] = b"bob's secret";

const TENANT: (&str, &str) = ("AKIDTENANT0000001", "tenant-secret-0123456789abcdef");
const ADMIN: (&str, &str) = ("AKIDADMIN00000001", "admin-secret-0123456789abcdefg");

fn basic((key, secret): (&str, &str)) -> String {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{key}:{secret}"));
    format!("Basic {encoded}")
}

/// The proxy with an access file (the tenant; an admin that seeds the buckets), with
/// `SHARED/src`, `BOB/src` and `OWN/src` in place and the emulator's counters reset.
pub async fn with_tenant() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("access.toml");
    std::fs::write(
        &file,
        format!(
            r#"
[[client]]
name = "tenant"
access_key_id = "{}"
secret_access_key = "{}"
allow = [
  {{ bucket = "{OWN}", access = "read-write" }},
  {{ bucket = "{SHARED}", access = "read-only" }},
  {{ bucket = "{GP_BUCKET}", access = "read-only" }},
]

[[client]]
name = "admin"
access_key_id = "{}"
secret_access_key = "{}"
allow = [{{ bucket = "*", access = "read-write" }}]
"#,
            TENANT.0, TENANT.1, ADMIN.0, ADMIN.1
        ),
    )
    .unwrap();
    let h = Harness::start(Options {
        extra_args: vec!["--access-file".into(), file.display().to_string()],
        ..Options::default()
    })
    .await;
    std::mem::forget(dir); // The file must outlive the proxy; it is in the system temp dir.
    h.emulator.set_read_only_policy(SHARED, false);
    for (bucket, body) in [
        (SHARED, &b"shared source"[..]),
        (BOB, BOB_SECRET),
        (OWN, b"own source"),
    ] {
        let reply = as_admin(&h, Method::PUT, bucket, "/src", &[], body).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    }
    h.emulator.set_read_only_policy(SHARED, true);
    h.emulator.reset_counters();
    h
}

/// A forward-mode request to `bucket`'s Zonal host, as the tenant.
pub async fn as_tenant(
    h: &Harness,
    method: Method,
    bucket: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Reply {
    send_as(h, TENANT, method, bucket, path, headers, b"").await
}

async fn as_admin(
    h: &Harness,
    method: Method,
    bucket: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    send_as(h, ADMIN, method, bucket, path, headers, body).await
}

async fn send_as(
    h: &Harness,
    who: (&str, &str),
    method: Method,
    bucket: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let auth = basic(who);
    let mut all = vec![("proxy-authorization", auth.as_str())];
    all.extend_from_slice(headers);
    let body = Bytes::copy_from_slice(body);
    h.forward(method, bucket, path, &all, body).await
}

#[track_caller]
fn assert_refused(reply: &Reply, status: StatusCode, code: &str) {
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (status, code),
        "{}",
        reply.text()
    );
}

#[track_caller]
fn assert_nothing_upstream(h: &Harness) {
    assert_eq!(
        h.emulator.counters().requests,
        0,
        "the emulator saw nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_copy_source_header_is_refused_before_anything_reads_it() {
    let h = with_tenant().await;
    let shared = format!("/{SHARED}/src");
    let bob = format!("/{BOB}/src");
    let two_sources = [
        ("x-amz-copy-source", shared.as_str()),
        ("x-amz-copy-source", bob.as_str()),
    ];
    let copy = as_tenant(&h, Method::PUT, OWN, "/stolen", &two_sources).await;
    assert_refused(&copy, StatusCode::BAD_REQUEST, "DuplicateHeaderName");
    assert!(copy.text().contains("x-amz-copy-source"), "{}", copy.text());
    // UploadPartCopy reads the same header.
    let part = as_tenant(
        &h,
        Method::PUT,
        OWN,
        "/stolen?partNumber=1&uploadId=u",
        &two_sources,
    )
    .await;
    assert_refused(&part, StatusCode::BAD_REQUEST, "DuplicateHeaderName");
    // A repeated range, rename source or session mode is no better.
    for (name, first, second) in [
        ("x-amz-copy-source-range", "bytes=0-1", "bytes=0-100"),
        ("x-amz-rename-source", "/x/a", "/y/b"),
        ("x-amz-create-session-mode", "ReadOnly", "ReadWrite"),
    ] {
        let headers = [
            ("x-amz-copy-source", shared.as_str()),
            (name, first),
            (name, second),
        ];
        let reply = as_tenant(&h, Method::PUT, OWN, "/stolen", &headers).await;
        assert_refused(&reply, StatusCode::BAD_REQUEST, "DuplicateHeaderName");
    }
    assert_nothing_upstream(&h);
    assert_eq!(h.emulator.object(OWN, "stolen"), None);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_headers_the_proxy_decides_on_are_refused_without_an_access_file_too() {
    let h = Harness::start(Options::default()).await;
    let host = zonal_host(BUCKET);
    let url = format!("http://{host}/k");
    let elsewhere = zonal_host(OTHER_BUCKET);
    for (name, first, second) in [
        ("host", host.as_str(), elsewhere.as_str()),
        (
            "x-amz-copy-source",
            "/a--usw2-az1--x-s3/k",
            "/b--usw2-az1--x-s3/k",
        ),
        (
            "x-amz-content-sha256",
            "UNSIGNED-PAYLOAD",
            "UNSIGNED-PAYLOAD",
        ),
        ("authorization", "AWS4-HMAC-SHA256 a", "AWS4-HMAC-SHA256 b"),
        ("x-amz-server-side-encryption", "AES256", "aws:kms"),
        ("x-amz-storage-class", "STANDARD", "GLACIER"),
    ] {
        // The harness sends its own Host; a second one comes from the list.
        let mut headers = vec![(name, second)];
        if name != "host" {
            headers.insert(0, (name, first));
        }
        let reply = send_http1(h.proxy, Method::PUT, &url, &host, &headers, Bytes::new()).await;
        assert_refused(&reply, StatusCode::BAD_REQUEST, "DuplicateHeaderName");
        assert!(reply.text().contains(name), "{name}: {}", reply.text());
    }
    assert_nothing_upstream(&h);
    // Headers the proxy does not decide on may repeat, as HTTP allows.
    let repeats = [("accept", "text/plain"), ("accept", "*/*")];
    let reply = send_http1(
        h.proxy,
        Method::PUT,
        &url,
        &host,
        &repeats,
        Bytes::from_static(b"v"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    h.stop().await;
}

/// A GET on the general-purpose bucket the tenant may read, in forward mode.
async fn gp_get(h: &Harness, path_and_query: &str) -> Reply {
    gp_request(h, Method::GET, path_and_query).await
}

async fn gp_request(h: &Harness, method: Method, path_and_query: &str) -> Reply {
    let host = format!("{GP_BUCKET}.s3.us-west-2.amazonaws.com");
    let auth = basic(TENANT);
    let headers = [("proxy-authorization", auth.as_str())];
    let url = format!("http://{host}{path_and_query}");
    send_http1(h.proxy, method, &url, &host, &headers, Bytes::new()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_tenant_cannot_smuggle_a_second_subresource() {
    let h = with_tenant().await;
    for query in [
        "/?list-type=2&policy",
        "/?location&acl",
        "/?uploads&policy",
        "/k?uploadId=1&acl",
        "/?list-type=2&%70olicy",
        "/?list-type=2&Policy",
    ] {
        let reply = gp_get(&h, query).await;
        assert_refused(&reply, StatusCode::BAD_REQUEST, "InvalidRequest");
    }
    // A subresource the operation table does not know is not a read.
    let torrent = gp_get(&h, "/k?torrent").await;
    assert_refused(&torrent, StatusCode::FORBIDDEN, "AccessDenied");
    let policy = gp_get(&h, "/?policy").await;
    assert_refused(&policy, StatusCode::FORBIDDEN, "AccessDenied");
    // A HEAD of a bucket's subresource is no HeadBucket (a HEAD answer has no body to check).
    for query in ["/?policy", "/?acl", "/k?acl"] {
        let head = gp_request(&h, Method::HEAD, query).await;
        assert_eq!(head.status, StatusCode::FORBIDDEN, "HEAD {query}");
    }
    // The same on the tenant's read-only directory bucket.
    let dir = as_tenant(&h, Method::GET, SHARED, "/?list-type=2&policy", &[]).await;
    assert_refused(&dir, StatusCode::BAD_REQUEST, "InvalidRequest");
    assert_nothing_upstream(&h);
    // What real clients send still works: modifiers beside one subresource.
    let list = gp_get(&h, "/?list-type=2&prefix=a%2F&max-keys=5&fetch-owner=true").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text());
    let get = "/src?response-content-type=text%2Fplain&x-id=GetObject";
    let get = as_tenant(&h, Method::GET, SHARED, get, &[]).await;
    assert_eq!(get.status, StatusCode::OK, "{}", get.text());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_source_is_authorised_as_the_bucket_s3_reads() {
    let h = with_tenant().await;
    // `..` is no way out of `shared`: S3 would read key `../BOB/src` of SHARED, and the proxy
    // does not bet that no server on the way normalises it.
    for source in [
        format!("/{SHARED}/../{BOB}/src"),
        format!("/{SHARED}/%2E%2E/{BOB}/src"),
        format!("{SHARED}%2F..%2F{BOB}%2Fsrc"),
        format!("//{BOB}/src"),
        format!("%2F{BOB}/src"),
    ] {
        for path in ["/stolen", "/stolen?partNumber=1&uploadId=u"] {
            let headers = [("x-amz-copy-source", source.as_str())];
            let reply = as_tenant(&h, Method::PUT, OWN, path, &headers).await;
            assert_refused(&reply, StatusCode::BAD_REQUEST, "InvalidArgument");
        }
    }
    let arn = "arn%3Aaws%3As3%3Aus-west-2%3A123456789012%3Aaccesspoint%2Fap%2Fobject%2Fsrc";
    let reply = as_tenant(
        &h,
        Method::PUT,
        OWN,
        "/stolen",
        &[("x-amz-copy-source", arn)],
    )
    .await;
    assert_refused(&reply, StatusCode::FORBIDDEN, "AccessDenied");
    // Whatever the proxy takes the request for, S3 may act on a copy source: it must be
    // readable.
    let bob = format!("{BOB}%2Fsrc");
    for path in ["/stolen", "/stolen?renameObject", "/stolen?uploadId=u"] {
        let headers = [("x-amz-copy-source", bob.as_str())];
        let reply = as_tenant(&h, Method::PUT, OWN, path, &headers).await;
        assert_refused(&reply, StatusCode::FORBIDDEN, "AccessDenied");
    }
    assert_nothing_upstream(&h);
    // The separator encoded too (JetS3t): S3 decodes, then splits; so do the proxy and the
    // emulator, and the copy reads SHARED.
    let jets3t = format!("{SHARED}%2Fsrc");
    let reply = as_tenant(
        &h,
        Method::PUT,
        OWN,
        "/copied",
        &[("x-amz-copy-source", &jets3t)],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(
        h.emulator.object(OWN, "copied").as_deref(),
        Some(&b"shared source"[..])
    );
    assert_eq!(h.emulator.object(OWN, "stolen"), None);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rename_source_must_be_in_the_renamed_objects_bucket() {
    let h = with_tenant().await;
    for source in [format!("/{BOB}/src"), format!("{BOB}%2Fsrc")] {
        let headers = [("x-amz-rename-source", source.as_str())];
        let reply = as_tenant(&h, Method::PUT, OWN, "/renamed?renameObject", &headers).await;
        assert_refused(&reply, StatusCode::FORBIDDEN, "AccessDenied");
    }
    assert_nothing_upstream(&h);
    let own = format!("/{OWN}/src");
    let headers = [("x-amz-rename-source", own.as_str())];
    let reply = as_tenant(&h, Method::PUT, OWN, "/renamed?renameObject", &headers).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(
        h.emulator.object(OWN, "renamed").as_deref(),
        Some(&b"own source"[..])
    );
    assert_eq!(h.emulator.object(BOB, "src").as_deref(), Some(BOB_SECRET));
    h.stop().await;
}

/// A copy source written every way a tenant might try to reach `BOB/src` from SHARED: a
/// bucket, then dot segments and bucket names with separators (plain, encoded, doubled), then
/// `src`, maybe a version.
fn tricky_copy_source() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let bucket = prop::sample::select(vec![SHARED, BOB, BOB, OWN, "other%2D%2Duse1-az4--x-s3", ""]);
    let part = prop::sample::select(vec![
        "..",
        "%2E%2E",
        ".",
        "",
        BOB,
        "readonly--usw2-az1--x-s3",
    ]);
    let separator = prop::sample::select(vec!["/", "/", "%2F", "//"]);
    (
        prop::sample::select(vec!["", "/", "/", "//", "%2F"]),
        bucket,
        prop::collection::vec((separator.clone(), part), 0..3),
        separator,
        prop::sample::select(vec!["", "", "?versionId=null", "?x=/../"]),
    )
        .prop_map(|(lead, bucket, parts, last, tail)| {
            let mut out = format!("{lead}{bucket}");
            for (sep, part) in parts {
                out.push_str(sep);
                out.push_str(part);
            }
            format!("{out}{last}src{tail}")
        })
}

/// Whatever copy source the tenant writes, the proxy answers (never a 5xx) and the copy never
/// holds what only BOB holds.
#[test]
fn no_copy_source_copies_from_a_bucket_the_tenant_may_not_read() {
    use proptest::test_runner::{Config, TestRunner};
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let h = runtime.block_on(with_tenant());
    let mut runner = TestRunner::new(Config {
        cases: 128,
        ..Config::default()
    });
    let attempt = std::sync::atomic::AtomicUsize::new(0);
    let result = runner.run(&tricky_copy_source(), |source| {
        let n = attempt.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dest = format!("dest-{n}");
        let reply = runtime.block_on(as_tenant(
            &h,
            Method::PUT,
            OWN,
            &format!("/{dest}"),
            &[("x-amz-copy-source", source.as_str())],
        ));
        proptest::prop_assert!(
            !reply.status.is_server_error(),
            "{source}: {}",
            reply.text()
        );
        let copied = h.emulator.object(OWN, &dest);
        proptest::prop_assert!(
            copied.as_deref() != Some(BOB_SECRET),
            "{source} copied BOB's object"
        );
        Ok(())
    });
    runtime.block_on(h.stop());
    result.unwrap();
}
