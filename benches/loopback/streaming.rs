//! `put_get_1gib_streaming`: 1 GiB up and down, through the proxy and straight to the emulator,
//! and the proxy's peak memory meanwhile.

use bytes::Bytes;
use http::Method;
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use tokio::time::Instant;

use crate::client::{direct, full, tcp, Body, Sender};
use crate::direct::Signer;
use crate::requests::forward;
use crate::{Bench, Table};

const SIZE: u64 = 1 << 30;
const BLOCK: usize = 1 << 20;
const MIB: f64 = (1 << 20) as f64;
const KEY: &str = "/bench/1gib";

/// 1 MiB of xorshift bytes; the object is this block 1024 times, so the client spends nothing
/// making or checking it beyond a memcmp.
fn block() -> Bytes {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(BLOCK);
    while out.len() < BLOCK {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    Bytes::from(out)
}

fn body(block: &Bytes) -> Body {
    let frames = std::iter::repeat_n(block.clone(), (SIZE / BLOCK as u64) as usize)
        .map(|b| Ok(Frame::data(b)));
    StreamBody::new(futures_util::stream::iter(frames)).boxed()
}

/// PUTs the object; returns MiB/s.
async fn put(sender: &mut Sender, request: http::Request<Body>) -> f64 {
    let started = Instant::now();
    sender.call(request).await;
    SIZE as f64 / MIB / started.elapsed().as_secs_f64()
}

/// GETs the object, checking every frame against the block; returns MiB/s.
async fn get(sender: &mut Sender, request: http::Request<Body>, block: &Bytes) -> f64 {
    let started = Instant::now();
    let response = sender.send(request).await;
    assert!(response.status().is_success(), "GET {}", response.status());
    let mut body = response.into_body();
    let mut offset = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.expect("body frame").into_data() else {
            continue;
        };
        let mut rest = &data[..];
        while !rest.is_empty() {
            let at = offset % BLOCK;
            let n = rest.len().min(BLOCK - at);
            assert!(
                rest[..n] == block[at..at + n],
                "bytes differ near offset {offset}"
            );
            rest = &rest[n..];
            offset += n;
        }
    }
    assert_eq!(offset as u64, SIZE, "the whole object comes back");
    SIZE as f64 / MIB / started.elapsed().as_secs_f64()
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / MIB
}

/// Up and down MiB/s and the proxy's CPU seconds for each, through the proxy.
async fn via_proxy(b: &Bench, block: &Bytes) -> [(f64, f64); 2] {
    let mut plain = Sender::h1(tcp(b.proxy.proxy).await).await;
    let mut request = forward(Method::PUT, &b.host, KEY, body(block));
    request.headers_mut().insert("content-length", SIZE.into());
    let cpu = || crate::cpu_seconds(b.proxy.child.id());
    let start = cpu();
    let up = put(&mut plain, request).await;
    let middle = cpu();
    let request = forward(Method::GET, &b.host, KEY, full(""));
    let down = get(&mut plain, request, block).await;
    [(up, middle - start), (down, cpu() - middle)]
}

/// Up and down MiB/s straight to the emulator; deletes the object afterwards.
async fn direct_to_emulator(b: &Bench, block: &Bytes) -> (f64, f64) {
    let mut sender = direct(b.emulator.addr(), &b.host, &b.emulator_tls).await;
    let signer = Signer::session(&mut sender, &b.host).await;
    let mut request = signer.request(Method::PUT, KEY, body(block), true);
    request.headers_mut().insert("content-length", SIZE.into());
    let up = put(&mut sender, request).await;
    let request = signer.request(Method::GET, KEY, full(""), false);
    let down = get(&mut sender, request, block).await;
    // Free the emulator's gigabyte (it lives in this process).
    let delete = signer.request(Method::DELETE, KEY, full(""), false);
    sender.call(delete).await;
    (up, down)
}

pub async fn put_get_1gib_streaming(b: &Bench, table: &mut Table) {
    let scenario = "put_get_1gib_streaming";
    let block = block();
    let baseline = b.proxy.peak_rss();
    let [(up, up_cpu), (down, down_cpu)] = via_proxy(b, &block).await;
    let peak = b.proxy.peak_rss();
    let figures = format!("up {up:>5.0} MiB/s   down {down:>5.0} MiB/s");
    table.row(scenario, "via proxy, h1, Content-Length", figures);
    let figures = format!("up {up_cpu:.2} s   down {down_cpu:.2} s   (CPU seconds per GiB)");
    table.row(scenario, "via proxy, proxy CPU", figures);
    let (before, after, growth) = (mib(baseline), mib(peak), mib(peak - baseline));
    let figures = format!("{before:.1} MiB before, {after:.1} MiB after (+{growth:.1} MiB)");
    table.row(scenario, "via proxy, proxy peak RSS (VmHWM)", figures);
    let (up, down) = direct_to_emulator(b, &block).await;
    let figures = format!("up {up:>5.0} MiB/s   down {down:>5.0} MiB/s");
    table.row(scenario, "direct to emulator (client signs)", figures);
}
