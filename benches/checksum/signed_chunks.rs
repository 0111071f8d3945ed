//! A client's signed chunks (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD`, 64 KiB chunks) decoded by
//! the proxy, with and without their signatures checked: 64 MiB of signed framing built once
//! (aws-sigv4 signs each chunk, as a client would), then decoded 16 times per run, each time
//! as a new request whose SigV4 the proxy verified (`AccessControl::verify_sigv4`).

use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http::request::Parts;
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use s3x_proxy::admit::identity::{AccessControl, AccessList, BodyCheck, SessionKey};
use s3x_proxy::body::{BoxError, ProxyBody};
use s3x_proxy::sign::digest::Expected;

const CHUNK: usize = 64 << 10;
const FRAME: usize = 64 << 10;
const SECRET: &str = "bench-secret-0123456789";
const FILE: &str = r#"
[[client]]
name = "bench"
access_key_id = "AKIDBENCH"
secret_access_key = "bench-secret-0123456789"
allow = [{ bucket = "b--usw2-az1--x-s3", access = "read-write" }]
"#;

/// A signed PUT head for `data` and its signed aws-chunked body.
fn signed(data: &[u8], time: SystemTime) -> (Parts, Bytes) {
    let identity: Identity = Credentials::new("AKIDBENCH", SECRET, None, None, "bench").into();
    let url = "http://127.0.0.1:8080/b--usw2-az1--x-s3/key";
    let length = data.len().to_string();
    let headers = [
        ("content-encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", length.as_str()),
    ];
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-west-2")
        .name("s3")
        .time(time)
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let marker = SignableBody::Precomputed("STREAMING-AWS4-HMAC-SHA256-PAYLOAD".into());
    let signable = SignableRequest::new("PUT", url, headers.into_iter(), marker).unwrap();
    let (instructions, seed) = sign(signable, &params).unwrap().into_parts();
    let mut builder = http::Request::builder().method("PUT").uri(url);
    for (name, value) in headers {
        builder = builder.header(name, value);
    }
    let mut request = builder.body(()).unwrap();
    instructions.apply_to_request_http1x(&mut request);
    let (mut parts, ()) = request.into_parts();
    parts
        .headers
        .insert("host", "127.0.0.1:8080".parse().unwrap());
    parts.uri = "/b--usw2-az1--x-s3/key".parse().unwrap();

    let chunk_params = v4::SigningParams::<()>::builder()
        .identity(&identity)
        .region("us-west-2")
        .name("s3")
        .time(time)
        .settings(())
        .build()
        .unwrap();
    let mut body = Vec::with_capacity(data.len() + data.len() / CHUNK * 100 + 200);
    let mut previous = seed;
    for chunk in data.chunks(CHUNK).chain([&[][..]]) {
        let bytes = Bytes::copy_from_slice(chunk);
        previous = v4::sign_chunk(&bytes, &previous, &chunk_params)
            .unwrap()
            .into_parts()
            .1;
        body.extend_from_slice(
            format!("{:x};chunk-signature={previous}\r\n", chunk.len()).as_bytes(),
        );
        if !chunk.is_empty() {
            body.extend_from_slice(chunk);
            body.extend_from_slice(b"\r\n");
        }
    }
    body.extend_from_slice(b"\r\n");
    (parts, Bytes::from(body))
}

/// The signed body as 64 KiB frames (zero-copy slices).
fn frames(body: &Bytes) -> ProxyBody {
    let body = body.clone();
    let frames = (0..body.len().div_ceil(FRAME)).map(move |i| {
        let end = ((i + 1) * FRAME).min(body.len());
        Ok::<_, BoxError>(Frame::data(body.slice(i * FRAME..end)))
    });
    StreamBody::new(futures_util::stream::iter(frames)).boxed_unsync()
}

/// Decodes the body `times` times, each as a request the proxy admitted (its signature
/// verified, its chunk signatures checked when `check`); the CPU time it took.
async fn decode(
    access: &AccessControl,
    head: &Parts,
    body: &Bytes,
    times: usize,
    check: bool,
    time: SystemTime,
) -> Duration {
    let before = super::cpu();
    for _ in 0..times {
        let admission = access
            .verify_sigv4(head, time)
            .expect("the bench's request verifies");
        let chunks = match admission.body {
            BodyCheck::Chunks(chunks) if check => Some(chunks),
            _ => None,
        };
        let mut parts = head.clone();
        let (_, mut decoded) = s3x_proxy::admit::aws_chunked::decode_signed_chunks(
            &mut parts,
            frames(body),
            None,
            Expected::default(),
            chunks,
        )
        .unwrap();
        while let Some(frame) = decoded.frame().await {
            frame.expect("the chunks verify");
        }
    }
    super::cpu() - before
}

/// Prints the two rows: decoding signed chunks, and decoding them with their signatures
/// checked, in CPU time per GiB; `baseline` is the pass-through figure.
pub fn report(runtime: &tokio::runtime::Runtime, block: &Bytes, runs: usize, baseline: f64) {
    let time = SystemTime::now();
    let data = block.slice(..(64 << 20).min(block.len()));
    let per_gib = (1usize << 30) / data.len();
    let (head, body) = signed(&data, time);
    let access = AccessControl::new(
        AccessList::parse(FILE, "bench").unwrap(),
        SessionKey::random(),
    );
    let mut unchecked = 0.0;
    for (variant, check) in [("chunks", false), ("chunks+sigs", true)] {
        let started = Instant::now();
        let cpu: Vec<f64> = (0..runs)
            .map(|_| {
                let spent = runtime.block_on(decode(&access, &head, &body, per_gib, check, time));
                spent.as_secs_f64() * 1e3
            })
            .collect();
        let (cpu, low, high) = super::median(cpu);
        let wall = started.elapsed().as_secs_f64() * 1e3 / runs as f64;
        let over = if check {
            cpu - unchecked
        } else {
            cpu - baseline
        };
        let what = if check { "decoding" } else { "pass-through" };
        println!(
            "  {variant:12} CPU {cpu:6.1} ms/GiB ({low:.1}–{high:.1}), {over:6.1} ms/GiB over {what}; wall {wall:6.1} ms"
        );
        unchecked = cpu;
    }
}
