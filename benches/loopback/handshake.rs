//! `connect_tls_handshake_fresh_host` and `connect_tls_handshake_cached_host`: TCP connect,
//! CONNECT, and a full TLS handshake inside the tunnel, for hosts the proxy has not seen (a leaf
//! is minted) and for one it has (the leaf comes from its cache).

use std::time::Duration;

use crate::client::{tunnel, Run};
use crate::{zonal_host, Bench, Table};

/// Handshakes per scenario.
const HANDSHAKES: usize = 200;

async fn handshakes(b: &Bench, hosts: impl Iterator<Item = String>) -> Run {
    let mut latencies = Vec::new();
    let mut total = Duration::ZERO;
    for host in hosts {
        let (tls, took) = tunnel(b.proxy.proxy, &host, &b.proxy_tls_h2).await;
        let version = tls.get_ref().1.protocol_version();
        assert_eq!(version, Some(rustls::ProtocolVersion::TLSv1_3));
        drop(tls);
        latencies.push(took);
        total += took;
    }
    Run {
        latencies,
        elapsed: total,
    }
}

fn summary(run: &mut Run) -> String {
    let mean = run.elapsed.as_secs_f64() * 1000.0 / run.latencies.len() as f64;
    let (p50, p99) = (run.quantile_ms(0.5), run.quantile_ms(0.99));
    format!(
        "mean {mean:.3} ms   p50 {p50:.3} ms   p99 {p99:.3} ms   ({} handshakes)",
        run.latencies.len()
    )
}

pub async fn connect_tls_handshake(b: &Bench, table: &mut Table) {
    let cached = zonal_host("cached--usw2-az1--x-s3");
    handshakes(b, std::iter::repeat_n(cached.clone(), 20)).await;
    let fresh = (0..HANDSHAKES).map(|i| zonal_host(&format!("fresh{i}--usw2-az1--x-s3")));
    let mut run = handshakes(b, fresh).await;
    table.row(
        "connect_tls_handshake_fresh_host",
        "TCP + CONNECT + full TLS 1.3, leaf minted",
        summary(&mut run),
    );
    let mut run = handshakes(b, std::iter::repeat_n(cached, HANDSHAKES)).await;
    table.row(
        "connect_tls_handshake_cached_host",
        "TCP + CONNECT + full TLS 1.3, leaf cached",
        summary(&mut run),
    );
}
