//! The release proxy binary as a child process with a clean environment, its log in a file,
//! and what the soak reads about it: VmRSS, VmHWM, open file descriptors and `/metrics`.

use std::collections::BTreeMap;
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A running proxy; killed on drop.
pub struct Proxy {
    pub child: Child,
    pub proxy: SocketAddr,
    pub admin: SocketAddr,
    pub log_path: PathBuf,
    /// `ca.pem` in its `--ca-dir`, which tunnel clients trust.
    pub ca_pem: Vec<u8>,
}

impl Proxy {
    /// Starts the binary on free loopback ports against the emulator at `emulator`, whose CA
    /// is in `dir/emulator-ca.pem`. Everything it writes goes to `dir` and `log_path`.
    pub fn start(emulator: SocketAddr, dir: &Path, log_path: &Path, rust_log: &str) -> Proxy {
        Proxy::start_with(emulator, dir, log_path, rust_log, &[])
    }

    /// [`Proxy::start`] with `extra` flags.
    pub fn start_with(
        emulator: SocketAddr,
        dir: &Path,
        log_path: &Path,
        rust_log: &str,
        extra: &[String],
    ) -> Proxy {
        let emulator_ca = dir.join("emulator-ca.pem");
        let ca_dir = dir.join("ca");
        let home = dir.join("home");
        std::fs::create_dir_all(&home).expect("temp HOME");
        if let Some(parent) = log_path.parent() {
            std::fs::create_dir_all(parent).expect("log directory");
        }
        let log = File::create(log_path).expect("proxy log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_s3x-proxy"));
        // Nothing inherited: this machine exports AWS_CA_BUNDLE, SSL_CERT_*, proxy variables
        // and perhaps an AWS profile; the proxy gets only what is set here.
        command
            .env_clear()
            .env("HOME", &home)
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("AWS_ACCESS_KEY_ID", "AKIDEMULATOREXAMPLE")
            .env("AWS_SECRET_ACCESS_KEY", "emulator/secret/EXAMPLEKEY")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", home.join("aws-config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", home.join("aws-credentials"))
            .env("RUST_LOG", rust_log)
            // The proxy's own settings and glibc's malloc tunables pass through, so a run can
            // compare them (`S3X_PROXY_WORKERS=0 cargo bench --bench idle_conns`).
            .envs(
                std::env::vars().filter(|(name, _)| {
                    name.starts_with("S3X_PROXY_") || name.starts_with("MALLOC_")
                }),
            )
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .args(["--region", "us-west-2"])
            .arg("--ca-dir")
            .arg(&ca_dir)
            .arg("--resolve")
            .arg(format!("*.amazonaws.com={emulator}"))
            .arg("--upstream-ca")
            .arg(&emulator_ca)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        let child = command.spawn().expect("the proxy binary starts");
        let mut proxy = Proxy {
            child,
            proxy: ([0, 0, 0, 0], 0).into(),
            admin: ([0, 0, 0, 0], 0).into(),
            log_path: log_path.to_owned(),
            ca_pem: Vec::new(),
        };
        proxy.wait_for_listeners();
        proxy.ca_pem = std::fs::read(ca_dir.join("ca.pem")).expect("the proxy wrote its CA");
        proxy
    }

    /// Reads the log until both listeners are announced.
    fn wait_for_listeners(&mut self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
            for line in text.lines() {
                let addr = line
                    .split("addr=")
                    .nth(1)
                    .and_then(|rest| rest.split([' ', '"', ',']).find(|s| !s.is_empty()))
                    .and_then(|a| a.parse().ok());
                if line.contains("admin listening") {
                    self.admin = addr.expect("admin address");
                } else if line.contains("proxy listening") && !line.contains("TLS") {
                    self.proxy = addr.expect("proxy address");
                }
            }
            if self.proxy.port() != 0 && self.admin.port() != 0 {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the proxy exited ({status}); log: {text}");
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the proxy did not log its listeners within 30 s: {text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Still running?
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Memory and descriptors now.
    pub fn sample(&self, label: &str, at: Duration) -> Sample {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let kib = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let fds = std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0);
        Sample {
            label: label.to_owned(),
            at,
            rss_kib: kib("VmRSS:"),
            hwm_kib: kib("VmHWM:"),
            fds,
            threads: kib("Threads:"),
        }
    }

    /// `/metrics`, parsed into series → value.
    pub async fn metrics(&self) -> Metrics {
        let text = http_get(self.admin, "/metrics").await.unwrap_or_default();
        let mut series = BTreeMap::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            if let Some((name, value)) = line.rsplit_once(' ') {
                if let Ok(v) = value.parse::<f64>() {
                    series.insert(name.to_owned(), v);
                }
            }
        }
        Metrics { series }
    }

    /// Lines at WARN or ERROR level, counted by message (the text after the level and spans).
    pub fn warnings(&self) -> BTreeMap<String, (usize, String)> {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let mut out: BTreeMap<String, (usize, String)> = BTreeMap::new();
        for line in text
            .lines()
            .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        {
            // "2026-… WARN request{…}: s3x_proxy::proxy: request failed error=…": keep the
            // target and the message, drop the time and the span fields.
            let tail = line.split(": ").skip(1).collect::<Vec<_>>().join(": ");
            let key: String = tail
                .split(['=', '{'])
                .next()
                .unwrap_or("")
                .chars()
                .take(100)
                .collect();
            let entry = out.entry(key).or_insert((0, line.to_owned()));
            entry.0 += 1;
        }
        out
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What `/proc` says about the proxy at one moment.
#[derive(Clone, Debug)]
pub struct Sample {
    pub label: String,
    pub at: Duration,
    pub rss_kib: u64,
    pub hwm_kib: u64,
    pub fds: usize,
    pub threads: u64,
}

/// Parsed `/metrics`.
#[derive(Default)]
pub struct Metrics {
    series: BTreeMap<String, f64>,
}

impl Metrics {
    /// The sum of every series of `name` whose labels contain all of `labels` (`k="v"`).
    pub fn sum(&self, name: &str, labels: &[&str]) -> f64 {
        self.series
            .iter()
            .filter(|(s, _)| {
                (s.as_str() == name || s.starts_with(&format!("{name}{{")))
                    && labels.iter().all(|l| s.contains(l))
            })
            .map(|(_, v)| v)
            .sum()
    }

    /// Values of `label` across the series of `name`, summed per value.
    pub fn by_label(&self, name: &str, label: &str) -> BTreeMap<String, f64> {
        self.by_label_except(name, label, None)
    }

    /// [`Metrics::by_label`] leaving out the series that carry the label `except` (`k="v"`).
    pub fn by_label_except(
        &self,
        name: &str,
        label: &str,
        except: Option<&str>,
    ) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        let prefix = format!("{name}{{");
        let key = format!("{label}=\"");
        for (series, value) in &self.series {
            let Some(labels) = series.strip_prefix(&prefix) else {
                continue;
            };
            if except.is_some_and(|e| labels.contains(e)) {
                continue;
            }
            if let Some(rest) = labels.split(&key).nth(1) {
                let v = rest.split('"').next().unwrap_or("").to_owned();
                *out.entry(v).or_insert(0.0) += value;
            }
        }
        out
    }
}

/// A plain HTTP/1.1 GET on a fresh connection (admin endpoints); the body as text.
async fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .map_err(|_| std::io::Error::other("timed out reading /metrics"))??;
    let text = String::from_utf8_lossy(&raw).into_owned();
    Ok(text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default())
}
