//! The proxy's own connections to S3 through an egress proxy (`--upstream-proxy`, `HTTPS_PROXY`,
//! `NO_PROXY`). A small CONNECT proxy on port 0 records what it is asked and splices every
//! `*.amazonaws.com:443` tunnel to the emulator; s3x-proxy runs without `--resolve`, so the
//! emulator is reachable only through it. Hosts meant to go direct are in a region that does not
//! exist, so they fail at DNS and never reach a real endpoint.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::{Method, StatusCode};
use s3x_emulator::{Config as EmulatorConfig, Emulator};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::harness::{data, send_http1, zonal_host, Harness, Options, Reply, BUCKET};
use crate::process::ProxyProcess;

const USER: &str = "egress-user";
/// The password as the proxy checks it, and as it is written in a URL.
const PASSWORD: &str = "p@ss:w0rd-SECRET";
const PASSWORD_IN_URL: &str = "p%40ss%3Aw0rd-SECRET";
/// A host in a region that does not exist: the direct path fails at DNS.
const NOWHERE: &str = "egress-test.s3.zz-nowhere-9.amazonaws.com";

/// What the CONNECT proxy was asked.
#[derive(Clone, Debug)]
struct Seen {
    line: String,
    authorization: Option<String>,
}

/// A CONNECT proxy: optionally requires Basic credentials, optionally speaks TLS, and sends
/// `*.amazonaws.com:443` tunnels to the emulator it is pointed at.
struct ConnectProxy {
    addr: SocketAddr,
    target: Arc<OnceLock<SocketAddr>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl ConnectProxy {
    async fn start(required: Option<(&str, &str)>, tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let target = Arc::new(OnceLock::new());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let required = required.map(|(user, pass)| {
            let plain = format!("{user}:{pass}");
            let encoded = base64::engine::general_purpose::STANDARD.encode(plain);
            format!("Basic {encoded}")
        });
        let (t, s) = (target.clone(), seen.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (t, s, required) = (t.clone(), s.clone(), required.clone());
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        Some(tls) => {
                            if let Ok(stream) = tls.accept(stream).await {
                                serve(stream, required, t, s).await;
                            }
                        }
                        None => serve(stream, required, t, s).await,
                    }
                });
            }
        });
        Self { addr, target, seen }
    }

    fn point_at(&self, emulator: SocketAddr) {
        self.target.set(emulator).unwrap();
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn url(&self, scheme: &str, userinfo: &str) -> String {
        format!("{scheme}://{userinfo}{}", self.addr)
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut client: S,
    required: Option<String>,
    target: Arc<OnceLock<SocketAddr>>,
    seen: Arc<Mutex<Vec<Seen>>>,
) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match client.read(&mut byte).await {
            Ok(1) if head.len() < 16 * 1024 => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let line = head.lines().next().unwrap_or_default().to_owned();
    let authorization = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("proxy-authorization")
            .then(|| value.trim().to_owned())
    });
    seen.lock().unwrap().push(Seen {
        line: line.clone(),
        authorization: authorization.clone(),
    });
    let answer = |status: &str| format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
    if required.is_some() && authorization != required {
        let refusal = "HTTP/1.1 407 Proxy Authentication Required\r\n\
            Proxy-Authenticate: Basic realm=\"egress\"\r\nContent-Length: 0\r\n\r\n";
        let _ = client.write_all(refusal.as_bytes()).await;
        return;
    }
    let authority = line.split(' ').nth(1).unwrap_or_default();
    let (Some(emulator), true) = (target.get(), authority.ends_with(".amazonaws.com:443")) else {
        let _ = client.write_all(answer("403 Forbidden").as_bytes()).await;
        return;
    };
    let Ok(mut upstream) = TcpStream::connect(emulator).await else {
        let _ = client.write_all(answer("502 Bad Gateway").as_bytes()).await;
        return;
    };
    let established = "HTTP/1.1 200 Connection established\r\n\r\n";
    if client.write_all(established.as_bytes()).await.is_ok() {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    }
}

fn basic(user: &str, pass: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    format!("Basic {encoded}")
}

/// A PUT and a GET of the same object through the proxy at `proxy`, in forward mode.
async fn put_and_get(proxy: SocketAddr, key: &str) {
    let host = zonal_host(BUCKET);
    let body = data(100_000, 7);
    let url = format!("http://{host}/{key}");
    let put = send_http1(proxy, Method::PUT, &url, &host, &[], body.clone()).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text());
    let get = send_http1(proxy, Method::GET, &url, &host, &[], Bytes::new()).await;
    assert_eq!(get.status, StatusCode::OK, "{}", get.text());
    assert_eq!(get.body, body);
}

/// Every CONNECT names the bucket's genuine Zonal host on 443, with `authorization`.
#[track_caller]
fn assert_tunnels_to_the_zonal_host(seen: &[Seen], authorization: Option<&str>) {
    assert!(!seen.is_empty(), "the egress proxy was used");
    let expected = format!("CONNECT {}:443 HTTP/1.1", zonal_host(BUCKET));
    for s in seen {
        assert_eq!(s.line, expected);
        assert_eq!(s.authorization.as_deref(), authorization);
    }
}

async fn emulator(dir: &Path) -> (Emulator, std::path::PathBuf) {
    crate::harness::init();
    let emulator = Emulator::start(EmulatorConfig {
        buckets: vec![BUCKET.into()],
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let ca = dir.join("emulator-ca.pem");
    std::fs::write(&ca, emulator.ca_pem()).unwrap();
    (emulator, ca)
}

/// A forward-mode GET of a general-purpose object on [`NOWHERE`].
async fn get_nowhere(proxy: SocketAddr) -> Reply {
    let url = format!("http://{NOWHERE}/key");
    send_http1(proxy, Method::GET, &url, NOWHERE, &[], Bytes::new()).await
}

/// Stops the process and returns its whole log.
async fn final_log(proxy: ProxyProcess) -> String {
    proxy.terminate_and_wait().await.1
}

/// True when `text` has `addr` not followed by another digit (port 80 is not port 8080).
fn mentions(text: &str, addr: SocketAddr) -> bool {
    let addr = addr.to_string();
    text.match_indices(&addr).any(|(at, _)| {
        !text[at + addr.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    })
}

#[tokio::test]
async fn requests_reach_s3_only_through_the_egress_proxy_with_its_basic_credentials() {
    let egress = ConnectProxy::start(Some((USER, PASSWORD)), None).await;
    let url = egress.url("http", &format!("{USER}:{PASSWORD_IN_URL}@"));
    let h = Harness::start(Options {
        resolve: false,
        extra_args: vec!["--upstream-proxy".into(), url],
        ..Options::default()
    })
    .await;
    egress.point_at(h.emulator.addr());
    put_and_get(h.proxy, "through-the-egress-proxy").await;
    assert_tunnels_to_the_zonal_host(&egress.seen(), Some(&basic(USER, PASSWORD)));
    h.stop().await;
}

#[tokio::test]
async fn an_https_egress_proxy_carries_the_tunnel_inside_tls() {
    let dir = tempfile::tempdir().unwrap();
    let ca = s3x_proxy::serve::ca::CertificateAuthority::load_or_create(dir.path())
        .await
        .unwrap();
    let names = ["127.0.0.1".to_string()];
    let tls = tokio_rustls::TlsAcceptor::from(ca.server_config_for_names(&names).unwrap());
    let egress = ConnectProxy::start(Some((USER, PASSWORD)), Some(tls)).await;
    let url = egress.url("https", &format!("{USER}:{PASSWORD_IN_URL}@"));
    let ca_path = ca.cert_path().display().to_string();
    let h = Harness::start(Options {
        resolve: false,
        extra_args: vec![
            "--upstream-proxy".into(),
            url,
            "--upstream-ca".into(),
            ca_path,
        ],
        ..Options::default()
    })
    .await;
    egress.point_at(h.emulator.addr());
    put_and_get(h.proxy, "through-an-https-egress-proxy").await;
    assert_tunnels_to_the_zonal_host(&egress.seen(), Some(&basic(USER, PASSWORD)));
    h.stop().await;
}

#[tokio::test]
async fn a_407_from_the_egress_proxy_is_a_502_that_names_it_without_its_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let (emulator, emulator_ca) = emulator(dir.path()).await;
    let egress = ConnectProxy::start(Some((USER, "the-right-one")), None).await;
    egress.point_at(emulator.addr());
    let url = egress.url("http", &format!("{USER}:{PASSWORD_IN_URL}@"));
    let proxy = ProxyProcess::start_unresolved(
        &emulator_ca,
        &dir.path().join("ca"),
        &["--upstream-proxy", &url],
        "trace",
        &[("NO_PROXY", None), ("no_proxy", None)],
    );
    let reply = crate::harness::send_http1(
        proxy.proxy,
        Method::GET,
        &format!("http://{}/key", zonal_host(BUCKET)),
        &zonal_host(BUCKET),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.text());
    assert_eq!(reply.code(), "BadGateway");
    let text = reply.text();
    assert!(
        text.contains("the egress proxy refused the tunnel: 407 Proxy Authentication Required"),
        "{text}"
    );
    assert!(
        !text.contains("SECRET") && !mentions(&text, egress.addr),
        "{text}"
    );
    assert_tunnels_to_the_zonal_host(&egress.seen(), Some(&basic(USER, PASSWORD)));
    let log = final_log(proxy).await;
    assert!(log.contains("407 Proxy Authentication Required"), "{log}");
    for secret in [
        PASSWORD,
        PASSWORD_IN_URL,
        "SECRET",
        &basic(USER, PASSWORD)[6..],
    ] {
        assert!(!log.contains(secret), "the log has {secret:?}:\n{log}");
    }
    assert!(
        !mentions(&log, egress.addr),
        "the log names the egress proxy:\n{log}"
    );
}

#[tokio::test]
async fn https_proxy_is_honoured_and_no_proxy_hosts_go_direct() {
    let dir = tempfile::tempdir().unwrap();
    let (emulator, emulator_ca) = emulator(dir.path()).await;
    let egress = ConnectProxy::start(None, None).await;
    egress.point_at(emulator.addr());
    let url = egress.url("http", "");
    let proxy = ProxyProcess::start_unresolved(
        &emulator_ca,
        &dir.path().join("ca"),
        &["--connect-timeout", "3s"],
        "info",
        &[
            ("HTTPS_PROXY", Some(&url)),
            ("NO_PROXY", Some("localhost, .zz-nowhere-9.amazonaws.com")),
            ("no_proxy", None),
        ],
    );
    put_and_get(proxy.proxy, "via-https-proxy").await;
    assert_tunnels_to_the_zonal_host(&egress.seen(), None);
    let tunnels = egress.seen().len();
    let reply = get_nowhere(proxy.proxy).await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.text());
    assert!(reply.text().contains(NOWHERE), "{}", reply.text());
    assert!(!reply.text().contains("egress proxy"), "{}", reply.text());
    assert_eq!(egress.seen().len(), tunnels, "{NOWHERE} went direct");
}

#[tokio::test]
async fn lowercase_https_proxy_is_honoured_and_the_flag_none_turns_it_off() {
    let dir = tempfile::tempdir().unwrap();
    let (emulator, emulator_ca) = emulator(dir.path()).await;
    let egress = ConnectProxy::start(None, None).await;
    egress.point_at(emulator.addr());
    let url = egress.url("http", "");
    let no_no_proxy = [("NO_PROXY", None), ("no_proxy", None)];
    let mut env = vec![("https_proxy", Some(url.as_str()))];
    env.extend(no_no_proxy);
    let proxy =
        ProxyProcess::start_unresolved(&emulator_ca, &dir.path().join("ca"), &[], "info", &env);
    put_and_get(proxy.proxy, "via-lowercase-https-proxy").await;
    assert_tunnels_to_the_zonal_host(&egress.seen(), None);
    drop(proxy);

    let tunnels = egress.seen().len();
    let mut env = vec![("HTTPS_PROXY", Some(url.as_str()))];
    env.extend(no_no_proxy);
    let proxy = ProxyProcess::start_unresolved(
        &emulator_ca,
        &dir.path().join("ca"),
        &["--upstream-proxy", "none", "--connect-timeout", "3s"],
        "info",
        &env,
    );
    let reply = get_nowhere(proxy.proxy).await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.text());
    assert!(!reply.text().contains("egress proxy"), "{}", reply.text());
    assert_eq!(
        egress.seen().len(),
        tunnels,
        "--upstream-proxy none went direct"
    );
}

#[tokio::test]
async fn an_https_egress_proxy_with_an_untrusted_certificate_is_a_502_that_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let ca = s3x_proxy::serve::ca::CertificateAuthority::load_or_create(dir.path())
        .await
        .unwrap();
    let names = ["127.0.0.1".to_string()];
    let tls = tokio_rustls::TlsAcceptor::from(ca.server_config_for_names(&names).unwrap());
    let egress = ConnectProxy::start(None, Some(tls)).await;
    let h = Harness::start(Options {
        resolve: false,
        extra_args: vec!["--upstream-proxy".into(), egress.url("https", "")],
        ..Options::default()
    })
    .await;
    egress.point_at(h.emulator.addr());
    let reply = h
        .forward(Method::GET, BUCKET, "/key", &[], Bytes::new())
        .await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.text());
    let text = reply.text();
    assert!(
        text.contains(
            "TLS with the egress proxy failed: its certificate&apos;s issuer is not trusted"
        ),
        "{text}"
    );
    assert!(!mentions(&text, egress.addr), "{text}");
    assert!(egress.seen().is_empty(), "no CONNECT outside TLS");
    h.stop().await;
}

/// The container credentials token the proxy's environment holds: it must reach only the
/// credentials endpoint.
const CONTAINER_TOKEN: &str = "container-authorization-SECRET-token";
const CONTAINER_KEY: (&str, &str, &str) = (
    "ASIACONTAINERKEY0001",
    "container/secret/KEY0001",
    "container-session-token",
);

/// A container credentials endpoint (`AWS_CONTAINER_CREDENTIALS_FULL_URI`) on loopback: answers
/// every request with [`CONTAINER_KEY`] and records the `Authorization` it was sent.
struct ContainerCredentials {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Option<String>>>>,
}

impl ContainerCredentials {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let record = record.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        match stream.read(&mut byte).await {
                            Ok(1) if head.len() < 16 * 1024 => head.push(byte[0]),
                            _ => return,
                        }
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let authorization = head.lines().find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("authorization")
                            .then(|| value.trim().to_owned())
                    });
                    record.lock().unwrap().push(authorization);
                    let expires = std::time::SystemTime::now() + Duration::from_secs(3600);
                    let expires = aws_smithy_types::DateTime::from(expires)
                        .fmt(aws_smithy_types::date_time::Format::DateTime)
                        .unwrap();
                    let (key, secret, token) = CONTAINER_KEY;
                    let body = format!(
                        r#"{{"AccessKeyId":"{key}","SecretAccessKey":"{secret}","Token":"{token}","Expiration":"{expires}"}}"#
                    );
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(answer.as_bytes()).await;
                });
            }
        });
        Self { addr, seen }
    }
}

#[tokio::test]
async fn container_credentials_are_fetched_directly_whatever_http_proxy_says() {
    let dir = tempfile::tempdir().unwrap();
    let (emulator, emulator_ca) = emulator(dir.path()).await;
    let (key, secret, token) = CONTAINER_KEY;
    emulator.set_iam_credentials(key, secret, Some(token));
    // A proxy that records every request line it is sent (and forwards none of them).
    let recording = ConnectProxy::start(None, None).await;
    let url = recording.url("http", "");
    let credentials = ContainerCredentials::start().await;
    let full_uri = format!("http://{}/v2/credentials", credentials.addr);
    let proxy = ProxyProcess::start_with_env(
        emulator.addr(),
        &emulator_ca,
        &dir.path().join("ca"),
        &[],
        "info",
        &[
            ("AWS_ACCESS_KEY_ID", None),
            ("AWS_SECRET_ACCESS_KEY", None),
            ("HTTP_PROXY", Some(&url)),
            ("http_proxy", Some(&url)),
            ("ALL_PROXY", Some(&url)),
            ("NO_PROXY", None),
            ("no_proxy", None),
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", Some(&full_uri)),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", Some(CONTAINER_TOKEN)),
        ],
    );
    put_and_get(proxy.proxy, "with-container-credentials").await;
    assert!(
        recording.seen().is_empty(),
        "the credential request went through the proxy: {:?}",
        recording.seen()
    );
    let seen = credentials.seen.lock().unwrap().clone();
    assert!(!seen.is_empty(), "the credentials endpoint was asked");
    assert!(
        seen.iter().all(|a| a.as_deref() == Some(CONTAINER_TOKEN)),
        "{seen:?}"
    );
    let log = final_log(proxy).await;
    for secret in [CONTAINER_TOKEN, secret, token] {
        assert!(!log.contains(secret), "the log has {secret:?}:\n{log}");
    }
}
