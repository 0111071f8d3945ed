//! What `--checksum` costs: the CPU time to frame 1 GiB as aws-chunked with a CRC-32C or
//! CRC-64/NVME trailer computed on the way, against passing the same frames through untouched;
//! what a bridged `Content-MD5` costs: the MD5 checked on the way, with the CRC-32 trailer
//! that replaces it; and what `--access-file` costs on a body: the SHA-256 a client signed as
//! `x-amz-content-sha256`, checked on the way, and a client's signed chunks decoded with and
//! without their signatures checked (64 KiB chunks, as the SDKs send them).
//! One thread, no I/O: the body is 64 KiB slices of a 64 MiB block in memory, as a client's
//! upload arrives in frames. Prints one row per variant, in CPU time of the thread (from
//! `/proc/thread-self/schedstat`, so a busy machine slows it less than it slows the wall clock);
//! asserts nothing about speed.
//!
//! Run with `cargo bench --bench checksum`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::HeaderMap;
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use s3x_proxy::body::{BoxError, ProxyBody};
use s3x_proxy::sign::checksum::Computed;
use s3x_proxy::sign::content_md5::ContentMd5;
use s3x_proxy::sign::digest::{Expected, Sha256};

#[path = "checksum/signed_chunks.rs"]
mod signed_chunks;

const GIB: u64 = 1 << 30;
const FRAME: usize = 64 << 10;
const BLOCK: usize = 64 << 20;
const RUNS: usize = 5;

/// 1 GiB as 64 KiB frames (zero-copy slices of one block).
fn body(block: &Bytes) -> ProxyBody {
    let block = block.clone();
    let frames = (0..GIB as usize / FRAME).map(move |i| {
        let at = (i * FRAME) % BLOCK;
        Ok::<_, BoxError>(Frame::data(block.slice(at..at + FRAME)))
    });
    StreamBody::new(futures_util::stream::iter(frames)).boxed_unsync()
}

/// Reads `body` to its end; the bytes it produced.
async fn drain(mut body: ProxyBody) -> u64 {
    let mut total = 0;
    while let Some(frame) = body.frame().await {
        total += frame.unwrap().into_data().unwrap().len() as u64;
    }
    total
}

/// CPU time this thread has run.
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns = stat.split_whitespace().next().and_then(|n| n.parse().ok());
    Duration::from_nanos(ns.unwrap_or(0))
}

/// The CPU time and wall time to frame (or pass through) 1 GiB, checking its digests on the
/// way when `expected` has any.
async fn time(
    block: &Bytes,
    computed: Option<Computed>,
    expected: Expected,
) -> (Duration, Duration) {
    let (started, cpu_before) = (Instant::now(), cpu());
    let body = expected.verify(body(block), Some(GIB));
    let body = match computed {
        None => body,
        Some(c) => {
            let mut headers = HeaderMap::new();
            s3x_proxy::admit::aws_chunked::encode_with_checksum(&mut headers, body, GIB, c).unwrap()
        }
    };
    let total = drain(body).await;
    assert!(total >= GIB);
    (cpu() - cpu_before, started.elapsed())
}

/// The `Content-MD5` and the SHA-256 of the 1 GiB body.
async fn digests(block: &Bytes) -> (ContentMd5, Sha256) {
    use base64::Engine;
    use md5::Digest;
    let mut hasher = md5::Md5::new();
    let mut sha256 = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut body = body(block);
    while let Some(frame) = body.frame().await {
        let data = frame.unwrap().into_data().unwrap();
        hasher.update(&data);
        sha256.update(&data);
    }
    let value = base64::engine::general_purpose::STANDARD.encode(hasher.finalize());
    let hex: String = sha256
        .finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    (
        ContentMd5::parse(value.as_bytes()).unwrap(),
        Sha256::from_hex(&hex).unwrap(),
    )
}

/// The median and range of `runs` (ms), sorted in place.
fn median(mut ms: Vec<f64>) -> (f64, f64, f64) {
    ms.sort_by(f64::total_cmp);
    (ms[ms.len() / 2], ms[0], ms[ms.len() - 1])
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let block: Bytes = (0..BLOCK)
        .map(|i| (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes()[7])
        .collect::<Vec<u8>>()
        .into();
    println!("1 GiB in 64 KiB frames, median of {RUNS} runs (min–max), one thread:");
    let mut baseline = 0.0;
    let (md5, sha256) = runtime.block_on(digests(&block));
    let with = |md5: Option<ContentMd5>, sha256: Option<Sha256>| Expected { md5, sha256 };
    for (variant, computed, expected) in [
        ("pass-through", None, Expected::default()),
        ("crc32c", Some(Computed::Crc32c), Expected::default()),
        ("crc64nvme", Some(Computed::Crc64Nvme), Expected::default()),
        ("crc32", Some(Computed::Crc32), Expected::default()),
        ("md5", None, with(Some(md5), None)),
        ("md5+crc32", Some(Computed::Crc32), with(Some(md5), None)),
        ("sha256", None, with(None, Some(sha256))),
    ] {
        let runs: Vec<(Duration, Duration)> = (0..RUNS)
            .map(|_| runtime.block_on(time(&block, computed, expected)))
            .collect();
        let (cpu, low, high) = median(runs.iter().map(|r| r.0.as_secs_f64() * 1e3).collect());
        let (wall, _, _) = median(runs.iter().map(|r| r.1.as_secs_f64() * 1e3).collect());
        if computed.is_none() && expected.is_empty() {
            baseline = cpu;
            println!(
                "  {variant:12} CPU {cpu:6.1} ms/GiB ({low:.1}–{high:.1}); wall {wall:6.1} ms"
            );
            continue;
        }
        println!(
            "  {variant:12} CPU {cpu:6.1} ms/GiB ({low:.1}–{high:.1}), {:6.1} ms/GiB over pass-through ({:4.1} GiB/s); wall {wall:6.1} ms",
            cpu - baseline,
            1e3 / cpu,
        );
    }
    signed_chunks::report(&runtime, &block, RUNS, baseline);
}
