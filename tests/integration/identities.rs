//! Client identities (`--access-file`): who may use the proxy and which buckets each may
//! touch, with real clients: curl and the aws CLI with `user:pass@` proxy URLs (Basic), boto3
//! in endpoint mode with the client's own keys (SigV4, its own CreateSession answered with
//! minted session credentials), refusals that reach nothing upstream, and SIGHUP reloads.

use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::Bytes;
use http::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::clients::{clean, venv};
use crate::harness::{
    data, eventually, zonal_host, Harness, Options, BUCKET, GP_BUCKET, OTHER_BUCKET, WAIT,
};

pub const WRITER: (&str, &str) = ("AKIDWRITER0000001", "writer-secret-0123456789abcdef");
pub const READER: (&str, &str) = ("AKIDREADER0000001", "reader-secret-0123456789abcdef");

/// The writer may write BUCKET and the general-purpose bucket; the reader may read every
/// bucket of zone usw2-az1, and nothing else.
pub fn access_file(dir: &Path) -> PathBuf {
    let path = dir.join("access.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[[client]]
name = "writer"
access_key_id = "{}"
secret_access_key = "{}"
allow = [
  {{ bucket = "{BUCKET}", access = "read-write" }},
  {{ bucket = "gp-*", access = "read-write" }},
]

[[client]]
name = "reader"
access_key_id = "{}"
secret_access_key = "{}"
allow = [{{ bucket = "*--usw2-az1--x-s3", access = "read-only" }}]
"#,
            WRITER.0, WRITER.1, READER.0, READER.1
        ),
    )
    .unwrap();
    path
}

async fn with_access_file() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let file = access_file(dir.path());
    let h = Harness::start(Options {
        extra_args: vec!["--access-file".into(), file.display().to_string()],
        ..Options::default()
    })
    .await;
    std::mem::forget(dir); // The file must outlive the proxy; it is in the system temp dir.
    h
}

fn basic((key, secret): (&str, &str)) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{key}:{secret}"))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_or_with_wrong_proxy_authorization_the_answer_is_407() {
    let h = with_access_file().await;
    for auth in [
        None,
        Some(basic((WRITER.0, "wrong-secret-0123456789"))),
        Some("Basic !!!".to_owned()),
    ] {
        let headers: Vec<(&str, &str)> = auth
            .iter()
            .map(|a| ("proxy-authorization", a.as_str()))
            .collect();
        let reply = h
            .forward(Method::GET, BUCKET, "/k", &headers, Bytes::new())
            .await;
        assert_eq!(
            reply.status,
            StatusCode::PROXY_AUTHENTICATION_REQUIRED,
            "{auth:?}"
        );
        assert_eq!(
            reply.header("proxy-authenticate"),
            Some("Basic realm=\"s3x-proxy\"")
        );
    }
    // CONNECT, the way the aws CLI sends it (HTTP/1.0, no Host header).
    let target = format!("{}:443", zonal_host(BUCKET));
    let mut stream = TcpStream::connect(h.proxy).await.unwrap();
    stream
        .write_all(format!("CONNECT {target} HTTP/1.0\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut head = vec![0u8; 512];
    let n = stream.read(&mut head).await.unwrap();
    let head = String::from_utf8_lossy(&head[..n]);
    assert!(
        head.starts_with("HTTP/1.0 407") || head.starts_with("HTTP/1.1 407"),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase()
            .contains("proxy-authenticate: basic realm=\"s3x-proxy\""),
        "{head}"
    );
    assert_eq!(h.emulator.counters().requests, 0);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_by_access_level_and_bucket_glob_reach_nothing_upstream() {
    let h = with_access_file().await;
    let reader = basic(READER);
    let writer = basic(WRITER);
    let as_reader = [("proxy-authorization", reader.as_str())];
    let as_writer = [("proxy-authorization", writer.as_str())];
    let put = h
        .forward(
            Method::PUT,
            BUCKET,
            "/ro",
            &as_reader,
            Bytes::from_static(b"x"),
        )
        .await;
    assert_eq!(
        (put.status, put.code().as_str()),
        (StatusCode::FORBIDDEN, "AccessDenied")
    );
    let outside = h
        .forward(Method::GET, OTHER_BUCKET, "/k", &as_reader, Bytes::new())
        .await;
    assert_eq!(
        (outside.status, outside.code().as_str()),
        (StatusCode::FORBIDDEN, "AccessDenied")
    );
    let gp = h
        .endpoint(Method::GET, GP_BUCKET, "/k", &as_reader, Bytes::new())
        .await;
    assert_eq!(
        gp.status,
        StatusCode::FORBIDDEN,
        "endpoint mode with Basic is no identity"
    );
    // A copy needs read access to its source too.
    let copy = [
        ("proxy-authorization", writer.as_str()),
        ("x-amz-copy-source", "/other--use1-az4--x-s3/secret"),
    ];
    let stolen = h
        .forward(Method::PUT, BUCKET, "/stolen", &copy, Bytes::new())
        .await;
    assert_eq!(
        (stolen.status, stolen.code().as_str()),
        (StatusCode::FORBIDDEN, "AccessDenied")
    );
    assert_eq!(
        h.emulator.counters().requests,
        0,
        "the emulator saw nothing"
    );
    // Allowed requests go through, and the access line names the client.
    let ok = h
        .forward(
            Method::PUT,
            BUCKET,
            "/w",
            &as_writer,
            Bytes::from_static(b"w"),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    let read = h
        .forward(Method::GET, BUCKET, "/w", &as_reader, Bytes::new())
        .await;
    assert_eq!(read.body, Bytes::from_static(b"w"));
    h.stop().await;
}

/// Runs a command (blocking) and returns stdout, asserting success.
async fn run(mut command: Command, what: &str) -> String {
    let what = what.to_owned();
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_and_the_aws_cli_with_user_and_password_in_the_proxy_url_work() {
    let h = with_access_file().await;
    let proxy = format!("http://{}:{}@{}", WRITER.0, WRITER.1, h.proxy);
    let ca = h.proxy_ca().await;
    let file = h.dir.path().join("in.bin");
    let body = data(50_000, 3);
    std::fs::write(&file, &body).unwrap();
    let mut curl = clean(Path::new("/usr/bin/curl"), h.dir.path());
    curl.args(["-sS", "--fail-with-body", "--proxy", &proxy, "--cacert"])
        .arg(&ca)
        .arg("-T")
        .arg(&file)
        .arg(format!("https://{}/curl.bin", zonal_host(BUCKET)));
    run(curl, "curl PUT through https_proxy with user:pass").await;
    assert_eq!(
        h.emulator.object(BUCKET, "curl.bin").as_deref(),
        Some(&body[..])
    );
    let mut aws = clean(&venv().join("bin/aws"), h.dir.path());
    aws.env("HTTPS_PROXY", &proxy)
        .env("AWS_CA_BUNDLE", &ca)
        .args([
            "s3",
            "cp",
            &format!("s3://{BUCKET}/curl.bin"),
            h.dir.path().join("out.bin").to_str().unwrap(),
            "--no-sign-request",
        ]);
    run(aws, "aws s3 cp with HTTPS_PROXY=http://key:secret@…").await;
    assert!(std::fs::read(h.dir.path().join("out.bin")).unwrap() == body);
    h.stop().await;
}

const BOTO_CLIENT: &str = r#"
import os, boto3, botocore.config, botocore.exceptions
def client(key, secret):
    return boto3.client("s3", endpoint_url=os.environ["ENDPOINT"], region_name="us-west-2",
                        aws_access_key_id=key, aws_secret_access_key=secret,
                        config=botocore.config.Config(retries={"max_attempts": 1}))
def code(call):
    try:
        call()
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"]
    return "ok"
bucket = os.environ["BUCKET"]
writer = client(os.environ["WRITER_KEY"], os.environ["WRITER_SECRET"])
# Directory bucket: boto3 sends its own CreateSession, signed with the client's keys; the proxy
# answers with session credentials minted for the client, which later requests sign with.
writer.put_object(Bucket=bucket, Key="boto/k", Body=b"v" * 1000)
assert writer.get_object(Bucket=bucket, Key="boto/k")["Body"].read() == b"v" * 1000
assert writer.list_objects_v2(Bucket=bucket, Prefix="boto/")["KeyCount"] == 1
gp = os.environ["GP_BUCKET"]
writer.put_object(Bucket=gp, Key="boto/k", Body=b"g")
assert writer.get_object(Bucket=gp, Key="boto/k")["Body"].read() == b"g"
wrong = client(os.environ["WRITER_KEY"], "not-the-right-secret-at-all")
print(code(lambda: wrong.get_object(Bucket=gp, Key="boto/k")))
unknown = client("AKIDNOBODY0000001", "whatever-secret-0123456789")
print(code(lambda: unknown.get_object(Bucket=gp, Key="boto/k")))
reader = client(os.environ["READER_KEY"], os.environ["READER_SECRET"])
assert reader.get_object(Bucket=bucket, Key="boto/k")["Body"].read() == b"v" * 1000
print(code(lambda: reader.put_object(Bucket=bucket, Key="boto/r", Body=b"r")))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_in_endpoint_mode_authenticates_with_the_clients_own_keys() {
    let h = with_access_file().await;
    let script = h.dir.path().join("identities.py");
    std::fs::write(&script, BOTO_CLIENT).unwrap();
    let mut python = clean(&venv().join("bin/python"), h.dir.path());
    python
        .env("ENDPOINT", format!("http://{}", h.proxy))
        .env("BUCKET", BUCKET)
        .env("GP_BUCKET", GP_BUCKET)
        .env("WRITER_KEY", WRITER.0)
        .env("WRITER_SECRET", WRITER.1)
        .env("READER_KEY", READER.0)
        .env("READER_SECRET", READER.1)
        .arg(&script);
    let out = run(python, "boto3 with client keys").await;
    let codes: Vec<&str> = out.lines().collect();
    assert_eq!(
        codes,
        [
            "SignatureDoesNotMatch",
            "InvalidAccessKeyId",
            "AccessDenied"
        ],
        "{out}"
    );
    assert_eq!(h.emulator.object(BUCKET, "boto/r"), None);
    assert_eq!(h.emulator.counters().signature_failures, 0);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_file_without_dropping_requests_in_flight_and_no_secret_is_logged() {
    use crate::process::ProxyProcess;
    use s3x_emulator::{Config as EmulatorConfig, Emulator, Fault};
    crate::harness::init();
    let dir = tempfile::tempdir().unwrap();
    let emulator = Emulator::start(EmulatorConfig {
        buckets: vec![BUCKET.into()],
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let emulator_ca = dir.path().join("emulator-ca.pem");
    std::fs::write(&emulator_ca, emulator.ca_pem()).unwrap();
    let file = access_file(dir.path());
    let proxy = ProxyProcess::start(
        emulator.addr(),
        &emulator_ca,
        &dir.path().join("ca"),
        &["--access-file", file.to_str().unwrap()],
        "trace",
    );
    let host = zonal_host(BUCKET);
    let url = format!("http://{host}/slow");
    let writer = basic(WRITER);
    let as_writer = [("proxy-authorization", writer.as_str())];
    let send = |auth: &'static [(&'static str, &'static str)]| {
        let (url, host) = (url.clone(), host.clone());
        async move {
            crate::harness::send_http1(proxy.proxy, Method::GET, &url, &host, auth, Bytes::new())
                .await
        }
    };
    let body = data(400_000, 9);
    let put = crate::harness::send_http1(
        proxy.proxy,
        Method::PUT,
        &url,
        &host,
        &as_writer,
        body.clone(),
    )
    .await;
    assert_eq!(put.status, StatusCode::OK);
    // A download that takes about two seconds is in flight when the file changes.
    emulator.inject(Fault::SlowBody {
        bytes_per_sec: 200_000,
    });
    let writer_static: &'static str = Box::leak(writer.clone().into_boxed_str());
    let as_writer_static: &'static [(&str, &str)] =
        Box::leak(Box::new([("proxy-authorization", writer_static)]));
    let gets = || {
        let counters = emulator.counters();
        counters.by_operation.get("GetObject").copied().unwrap_or(0)
    };
    let before = gets();
    let in_flight = tokio::spawn(send(as_writer_static));
    // In flight: the writer was admitted under the old file and S3 is sending the body.
    let started = eventually(WAIT, || async { gets() > before }).await;
    assert!(started, "the download reaches S3");
    // The writer is gone from the new file.
    let text = std::fs::read_to_string(&file).unwrap();
    let without_writer = text
        .split("[[client]]")
        .filter(|c| !c.contains("writer"))
        .collect::<Vec<_>>()
        .join("[[client]]");
    std::fs::write(&file, without_writer).unwrap();
    proxy.signal("HUP");
    let logged = |text: &'static str| {
        let proxy = &proxy;
        async move { proxy.log_text().contains(text) }
    };
    eventually(WAIT, || logged("reloaded the access file")).await;
    assert!(proxy.log_text().contains("reloaded the access file"));
    let refused = send(as_writer_static).await;
    assert_eq!(
        refused.status,
        StatusCode::PROXY_AUTHENTICATION_REQUIRED,
        "the new file is in force"
    );
    let finished = in_flight.await.unwrap();
    assert_eq!(
        (finished.status, finished.body.len()),
        (StatusCode::OK, body.len()),
        "the request in flight finished"
    );
    emulator.inject(Fault::SlowBody { bytes_per_sec: 0 });
    // A file that does not parse is logged and the old one kept.
    std::fs::write(&file, "[[client]]\nname = ").unwrap();
    proxy.signal("HUP");
    eventually(WAIT, || logged("keeping the old one")).await;
    assert!(
        proxy.log_text().contains("keeping the old one"),
        "{}",
        proxy.log_text()
    );
    let reader = basic(READER);
    let reader_static: &'static str = Box::leak(reader.clone().into_boxed_str());
    let as_reader: &'static [(&str, &str)] =
        Box::leak(Box::new([("proxy-authorization", reader_static)]));
    assert_eq!(
        send(as_reader).await.status,
        StatusCode::OK,
        "the reader still works"
    );
    // The access line is written when the body is done, on the proxy's side: it may reach the
    // log a moment after the client has read the answer.
    let names_reader =
        |log: &str| log.contains("client=reader") || log.contains("client=\"reader\"");
    eventually(WAIT, || async { names_reader(&proxy.log_text()) }).await;
    let log = proxy.log_text();
    assert!(names_reader(&log), "access lines name the client: {log}");
    for secret in [
        WRITER.1,
        READER.1,
        writer.trim_start_matches("Basic "),
        reader.trim_start_matches("Basic "),
    ] {
        assert!(
            !log.contains(secret),
            "a secret from the access file reached the log"
        );
    }
}
