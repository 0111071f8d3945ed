//! Tests of `ca.rs`.
use super::*;
use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::RootCertStore;
use rustls_pki_types::{ServerName, UnixTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const HOST: &str = "bucket--usw2-az1--x-s3.s3express-usw2-az1.us-west-2.amazonaws.com";

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn roots(ca: &CertificateAuthority) -> Arc<RootCertStore> {
    let pem = fs::read(ca.cert_path()).unwrap();
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    Arc::new(roots)
}

fn verify(ca: &CertificateAuthority, chain: &[CertificateDer<'_>], host: &str) -> bool {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = WebPkiServerVerifier::builder_with_provider(roots(ca), provider)
        .build()
        .unwrap();
    let name = ServerName::try_from(host.to_owned()).unwrap();
    verifier
        .verify_server_cert(&chain[0], &chain[1..], &name, &[], UnixTime::now())
        .is_ok()
}

fn mint(ca: &CertificateAuthority, host: &str) -> Leaf {
    ca.mint(&[parse_host(host).unwrap()]).unwrap()
}

#[tokio::test]
async fn creates_then_loads_same_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nested/ca");
    let ca = CertificateAuthority::load_or_create(&dir).await.unwrap();
    assert_eq!(ca.cert_path(), dir.join("ca.pem"));
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("ca-key.pem")), 0o600);
    let key_before = fs::read(dir.join("ca-key.pem")).unwrap();
    assert_eq!(fs::read_to_string(ca.cert_path()).unwrap(), ca.cert_pem());
    assert!(ca.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    // No temp files left behind.
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 2);

    let again = CertificateAuthority::load_or_create(&dir).await.unwrap();
    assert_eq!(again.cert_pem(), ca.cert_pem());
    assert_eq!(fs::read(dir.join("ca-key.pem")).unwrap(), key_before);
    // Leaves from either instance chain to the same on-disk root.
    assert!(verify(&ca, &mint(&again, HOST).chain, HOST));
}

#[tokio::test]
async fn loads_from_read_only_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = CertificateAuthority::load_or_create(tmp.path())
        .await
        .unwrap();
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o500)).unwrap();
    let again = CertificateAuthority::load_or_create(tmp.path()).await;
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(again.unwrap().cert_pem(), ca.cert_pem());
}

#[tokio::test]
async fn debug_shows_no_key() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = CertificateAuthority::load_or_create(tmp.path())
        .await
        .unwrap();
    let dbg = format!("{ca:?}");
    assert!(dbg.contains("ca.pem"), "{dbg}");
    assert!(!dbg.contains("BEGIN") && !dbg.contains("key"), "{dbg}");
}

#[tokio::test]
async fn leaves_verify_against_ca_pem() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = CertificateAuthority::load_or_create(tmp.path())
        .await
        .unwrap();
    assert!(verify(&ca, &mint(&ca, HOST).chain, HOST));
    assert!(verify(&ca, &mint(&ca, "127.0.0.1").chain, "127.0.0.1"));
    assert!(verify(&ca, &mint(&ca, "[::1]").chain, "::1"));
    assert!(verify(
        &ca,
        &mint(&ca, "*.example.com").chain,
        "a.example.com"
    ));
    assert!(verify(&ca, &mint(&ca, "Example.COM").chain, "example.com"));
    let other = mint(&ca, "other.example.com");
    assert!(!verify(&ca, &other.chain, HOST));
    assert!(!verify(&ca, &mint(&ca, "127.0.0.1").chain, "127.0.0.2"));
    // A different CA's leaf does not verify against this root.
    let tmp2 = tempfile::tempdir().unwrap();
    let ca2 = CertificateAuthority::load_or_create(tmp2.path())
        .await
        .unwrap();
    assert!(!verify(&ca, &mint(&ca2, HOST).chain, HOST));
}

#[tokio::test]
async fn names_config_covers_all_names() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = CertificateAuthority::load_or_create(tmp.path())
        .await
        .unwrap();
    let names = ["localhost", "127.0.0.1", "proxy.internal"].map(|n| parse_host(n).unwrap());
    let leaf = ca.mint(&names).unwrap();
    for host in ["localhost", "127.0.0.1", "proxy.internal"] {
        assert!(verify(&ca, &leaf.chain, host), "{host}");
    }
    assert!(!verify(&ca, &leaf.chain, "example.com"));
    let names: Vec<String> = vec!["localhost".into(), "::1".into()];
    let config = ca.server_config_for_names(&names).unwrap();
    assert_eq!(
        config.alpn_protocols,
        [b"h2".to_vec(), b"http/1.1".to_vec()]
    );
    assert!(matches!(
        ca.server_config_for_names(&[]),
        Err(CaError::InvalidHost(_))
    ));
    assert!(matches!(
        ca.server_config_for_names(&["ok".into(), "not ok".into()]),
        Err(CaError::InvalidHost(h)) if h == "not ok"
    ));
}

async fn handshake(
    ca: &CertificateAuthority,
    server: Arc<ServerConfig>,
    sni: &str,
    alpn: &[&[u8]],
) -> Result<Option<Vec<u8>>, io::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots(ca))
        .with_no_client_auth();
    client.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let acceptor = tokio_rustls::TlsAcceptor::from(server);
    let server_task = tokio::spawn(async move {
        let mut tls = acceptor.accept(server_io).await?;
        tls.write_all(b"hello").await?;
        tls.shutdown().await
    });
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let name = ServerName::try_from(sni.to_owned()).unwrap();
    let mut tls = connector.connect(name, client_io).await?;
    let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    let mut got = Vec::new();
    tls.read_to_end(&mut got).await?;
    assert_eq!(got, b"hello");
    server_task.await.unwrap()?;
    Ok(alpn)
}

#[tokio::test]
async fn tls_handshake_negotiates_alpn() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = CertificateAuthority::load_or_create(tmp.path())
        .await
        .unwrap();
    let config = ca.server_config_for(HOST).unwrap();
    let both: &[&[u8]] = &[b"h2", b"http/1.1"];
    let alpn = handshake(&ca, config.clone(), HOST, both).await.unwrap();
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
    let h1: &[&[u8]] = &[b"http/1.1"];
    let alpn = handshake(&ca, config.clone(), HOST, h1).await.unwrap();
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert!(handshake(&ca, config, "example.com", both).await.is_err());
    let ip = ca.server_config_for("127.0.0.1").unwrap();
    assert!(handshake(&ca, ip, "127.0.0.1", both).await.is_ok());
}

#[tokio::test]
async fn concurrent_calls_mint_once() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = Arc::new(
        CertificateAuthority::load_or_create(tmp.path())
            .await
            .unwrap(),
    );
    let barrier = Arc::new(std::sync::Barrier::new(32));
    let handles: Vec<_> = (0..32)
        .map(|_| {
            let (ca, barrier) = (ca.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                ca.server_config_for(HOST).unwrap()
            })
        })
        .collect();
    let configs: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(ca.minted(), 1);
    assert!(configs.iter().all(|c| Arc::ptr_eq(c, &configs[0])));
    // Case and brackets are normalised into the same cache entry.
    ca.server_config_for(&HOST.to_ascii_uppercase()).unwrap();
    ca.server_config_for("[::1]").unwrap();
    ca.server_config_for("::1").unwrap();
    assert_eq!(ca.minted(), 2);
}

#[tokio::test]
async fn invalid_hosts_are_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = CertificateAuthority::load_or_create(tmp.path())
        .await
        .unwrap();
    let long = "a".repeat(300);
    let label64 = format!("{}.com", "a".repeat(64));
    for host in [
        "",
        "a b",
        "x/y",
        &long,
        "...",
        "*.",
        "a..b",
        "-a.com",
        "a-.com",
        "a_b.com",
        "[1.2.3.4]",
        "[::1",
        "fe80::1%eth0",
        "*.*.a.com",
        "a.*.com",
        &label64,
        "é.com",
        "a.com.",
        "host:443",
        "\0",
    ] {
        assert!(
            matches!(ca.server_config_for(host), Err(CaError::InvalidHost(_))),
            "{host:?}"
        );
    }
    assert_eq!(ca.minted(), 0);
    // Longest legal name: 253 chars, no CN (over 64), still verifies via the SAN.
    let max = [
        "a".repeat(63),
        "b".repeat(63),
        "c".repeat(63),
        "d".repeat(61),
    ]
    .join(".");
    assert_eq!(max.len(), 253);
    ca.server_config_for(&max).unwrap();
    assert!(verify(&ca, &mint(&ca, &max).chain, &max));
}

/// (The clock is paused: a key alone is waited on for a second before it is an error.)
#[tokio::test(start_paused = true)]
async fn only_one_file_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good");
    CertificateAuthority::load_or_create(&good).await.unwrap();
    for (present, missing) in [("ca.pem", "ca-key.pem"), ("ca-key.pem", "ca.pem")] {
        let dir = tmp.path().join(present);
        fs::create_dir(&dir).unwrap();
        let original = fs::read(good.join(present)).unwrap();
        fs::write(dir.join(present), &original).unwrap();
        let err = CertificateAuthority::load_or_create(&dir)
            .await
            .unwrap_err();
        assert!(matches!(err, CaError::Incomplete { .. }), "{err}");
        assert!(err.to_string().contains(missing), "{err}");
        assert_eq!(fs::read(dir.join(present)).unwrap(), original);
        assert!(!dir.join(missing).exists());
    }
}

#[tokio::test]
async fn mismatched_or_garbage_files_are_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("c"),
    );
    CertificateAuthority::load_or_create(&a).await.unwrap();
    CertificateAuthority::load_or_create(&b).await.unwrap();
    fs::copy(a.join("ca-key.pem"), b.join("ca-key.pem")).unwrap();
    let err = CertificateAuthority::load_or_create(&b).await.unwrap_err();
    assert!(matches!(&err, CaError::BadPem { path, .. } if path.ends_with("ca-key.pem")));
    fs::create_dir(&c).unwrap();
    fs::write(c.join("ca.pem"), "not a pem").unwrap();
    fs::write(c.join("ca-key.pem"), "not a pem").unwrap();
    let err = CertificateAuthority::load_or_create(&c).await.unwrap_err();
    assert!(matches!(&err, CaError::BadPem { path, .. } if path.ends_with("ca.pem")));
}

/// Eight processes starting at once on an empty directory end up with one CA: each thread
/// stands for a process, with a runtime of its own.
#[test]
fn concurrent_creators_agree() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ca");
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let dir = dir.clone();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                    .unwrap();
                let ca = runtime.block_on(CertificateAuthority::load_or_create(&dir));
                ca.map(|ca| ca.cert_pem().to_owned())
            })
        })
        .collect();
    let pems: Vec<_> = handles
        .into_iter()
        .map(|h| h.join().unwrap().unwrap())
        .collect();
    assert!(pems.iter().all(|p| p == &pems[0]));
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 2);
}

/// Another process has published the key and not yet the certificate: the second waits for it
/// (on tokio's clock, paused here) and loads the same CA.
#[tokio::test(start_paused = true)]
async fn a_key_without_its_certificate_yet_is_waited_for() {
    let tmp = tempfile::tempdir().unwrap();
    let (peer, dir) = (tmp.path().join("peer"), tmp.path().join("ca"));
    let first = CertificateAuthority::load_or_create(&peer).await.unwrap();
    fs::create_dir(&dir).unwrap();
    fs::copy(peer.join(KEY_FILE), dir.join(KEY_FILE)).unwrap();
    let load = tokio::spawn({
        let dir = dir.clone();
        async move { CertificateAuthority::load_or_create(&dir).await }
    });
    tokio::time::sleep(PEER_CREATE_WAIT / 2).await;
    assert!(!load.is_finished(), "it did not wait for the certificate");
    fs::copy(peer.join(CERT_FILE), dir.join(CERT_FILE)).unwrap();
    let second = load.await.unwrap().unwrap();
    assert_eq!(second.cert_pem(), first.cert_pem());
}

#[tokio::test]
async fn server_config_from_files_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = CertificateAuthority::load_or_create(&tmp.path().join("ca"))
        .await
        .unwrap();
    let leaf = mint(&ca, "localhost");
    let cert_pem: String = leaf
        .chain
        .iter()
        .map(|c| pem_encode("CERTIFICATE", c))
        .collect();
    let key_pem = pem_encode("PRIVATE KEY", leaf.key.secret_der());
    let (cert, key) = (tmp.path().join("tls.crt"), tmp.path().join("tls.key"));
    fs::write(&cert, &cert_pem).unwrap();
    fs::write(&key, &key_pem).unwrap();
    let config = server_config_from_files(&cert, &key).unwrap();
    assert_eq!(
        config.alpn_protocols,
        [b"h2".to_vec(), b"http/1.1".to_vec()]
    );

    let other = mint(&ca, "localhost");
    let other_key = tmp.path().join("other.key");
    fs::write(
        &other_key,
        pem_encode("PRIVATE KEY", other.key.secret_der()),
    )
    .unwrap();
    assert!(matches!(
        server_config_from_files(&cert, &other_key),
        Err(CaError::BadPem { .. })
    ));
    assert!(matches!(
        server_config_from_files(&key, &key),
        Err(CaError::BadPem { .. })
    ));
    assert!(matches!(
        server_config_from_files(&tmp.path().join("missing"), &key),
        Err(CaError::Io { .. })
    ));
}

fn pem_encode(tag: &str, der: &[u8]) -> String {
    // Minimal base64 so the test needs no extra crate.
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in der.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (*b as u32) << (16 - 8 * i));
        for i in 0..4 {
            let c = if i <= chunk.len() {
                B64[(n >> (18 - 6 * i) & 63) as usize]
            } else {
                b'='
            };
            out.push(c as char);
        }
    }
    let body: Vec<&str> = out
        .as_bytes()
        .chunks(64)
        .map(|l| std::str::from_utf8(l).unwrap())
        .collect();
    format!(
        "-----BEGIN {tag}-----\n{}\n-----END {tag}-----\n",
        body.join("\n")
    )
}

#[test]
fn is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<CertificateAuthority>();
    check::<CaError>();
    // `run` loads the CA on its way to serving; its future must stay `Send` (never polled here).
    fn send<F: Send>(_: F) {}
    send(CertificateAuthority::load_or_create(Path::new("unused")));
}

/// `cargo test --release -- --ignored --nocapture timings`
#[tokio::test]
#[ignore]
async fn timings() {
    use std::time::Instant;
    let tmp = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let ca = CertificateAuthority::load_or_create(tmp.path())
        .await
        .unwrap();
    println!("create CA: {:?}", start.elapsed());
    let start = Instant::now();
    CertificateAuthority::load_or_create(tmp.path())
        .await
        .unwrap();
    println!("load CA: {:?}", start.elapsed());
    let n = 100;
    let start = Instant::now();
    for i in 0..n {
        ca.server_config_for(&format!("b{i}.s3express-usw2-az1.us-west-2.amazonaws.com"))
            .unwrap();
    }
    println!(
        "mint leaf + config: {:?} mean over {n}",
        start.elapsed() / n
    );
    let n = 100_000;
    let start = Instant::now();
    for _ in 0..n {
        ca.server_config_for("b7.s3express-usw2-az1.us-west-2.amazonaws.com")
            .unwrap();
    }
    println!("cached lookup: {:?} mean over {n}", start.elapsed() / n);
}
