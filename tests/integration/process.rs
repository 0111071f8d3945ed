//! Runs the real `s3x-proxy` binary as a child process (for memory, signal and log tests),
//! against an emulator in this process, and reads the addresses it logs.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a proxy told to stop may take to exit: its drain (`--shutdown-grace`, at most 20 s
/// in these tests) and then some.
pub const EXIT: Duration = Duration::from_secs(60);

/// A running proxy process; killed on drop.
pub struct ProxyProcess {
    pub child: Child,
    pub proxy: SocketAddr,
    pub admin: SocketAddr,
    /// Every line the process has written to stderr so far.
    pub log: Arc<Mutex<Vec<String>>>,
    /// The thread that copies stderr into `log`: it ends once the process has exited and its
    /// last line is in.
    reader: Option<std::thread::JoinHandle<()>>,
}

impl ProxyProcess {
    /// Starts the binary with listeners on port 0, pointed at the emulator.
    pub fn start(
        emulator: SocketAddr,
        emulator_ca: &Path,
        ca_dir: &Path,
        extra: &[&str],
        rust_log: &str,
    ) -> ProxyProcess {
        Self::start_with_env(emulator, emulator_ca, ca_dir, extra, rust_log, &[])
    }

    /// [`ProxyProcess::start`], then `env` applied on top (`None` removes a variable).
    pub fn start_with_env(
        emulator: SocketAddr,
        emulator_ca: &Path,
        ca_dir: &Path,
        extra: &[&str],
        rust_log: &str,
        env: &[(&str, Option<&str>)],
    ) -> ProxyProcess {
        let resolve = format!("*.amazonaws.com={emulator}");
        let mut args = vec!["--resolve", resolve.as_str()];
        args.extend_from_slice(extra);
        Self::start_unresolved(emulator_ca, ca_dir, &args, rust_log, env)
    }

    /// [`ProxyProcess::start_with_env`] without `--resolve`: upstream names resolve as in
    /// production (the egress tests route them through a CONNECT proxy instead).
    pub fn start_unresolved(
        emulator_ca: &Path,
        ca_dir: &Path,
        extra: &[&str],
        rust_log: &str,
        env: &[(&str, Option<&str>)],
    ) -> ProxyProcess {
        let mut command = Command::new(env!("CARGO_BIN_EXE_s3x-proxy"));
        // The machine exports these globally; the proxy under test must not inherit them.
        for name in [
            "AWS_CA_BUNDLE",
            "SSL_CERT_FILE",
            "SSL_CERT_DIR",
            "AWS_PROFILE",
            "HTTPS_PROXY",
            "HTTP_PROXY",
            "https_proxy",
            "http_proxy",
        ] {
            command.env_remove(name);
        }
        command
            .env("AWS_ACCESS_KEY_ID", "AKIDEMULATOREXAMPLE")
            .env("AWS_SECRET_ACCESS_KEY", "emulator/secret/EXAMPLEKEY")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", ca_dir.join("no-config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", ca_dir.join("no-credentials"))
            .env("RUST_LOG", rust_log)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
                "--region",
                "us-west-2",
            ])
            .arg("--ca-dir")
            .arg(ca_dir)
            .arg("--upstream-ca")
            .arg(emulator_ca)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (name, value) in env {
            match value {
                Some(value) => command.env(name, value),
                None => command.env_remove(name),
            };
        }
        let mut child = command.spawn().expect("the proxy binary starts");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("listening") {
                    let _ = tx.send(line.clone());
                }
                sink.lock().unwrap().push(line);
            }
        });
        // Owned from here on, so a panic below still kills the child.
        let unset: SocketAddr = ([0, 0, 0, 0], 0).into();
        let mut process = ProxyProcess {
            child,
            proxy: unset,
            admin: unset,
            log,
            reader: Some(reader),
        };
        while process.proxy == unset || process.admin == unset {
            let line = rx
                .recv_timeout(Duration::from_secs(30))
                .expect("the proxy logs its listeners");
            // `addr=127.0.0.1:1234` in text logs, `"addr":"127.0.0.1:1234"` in JSON logs.
            let addr = line
                .split("addr=")
                .nth(1)
                .or_else(|| line.split("\"addr\":").nth(1))
                .and_then(|rest| rest.split([' ', '"', ',']).find(|s| !s.is_empty()))
                .and_then(|a| a.parse().ok());
            if line.contains("admin listening") {
                process.admin = addr.expect("admin address");
            } else if line.contains("proxy listening") && !line.contains("TLS") {
                process.proxy = addr.expect("proxy address");
            }
        }
        process
    }

    /// Peak resident memory (VmHWM) of the process, in bytes.
    pub fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        line.split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap()
            * 1024
    }

    /// Current resident memory (VmRSS), in bytes.
    pub fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap()
            * 1024
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        self.signal("TERM");
    }

    /// Sends SIGTERM, then [`ProxyProcess::wait_for_exit`].
    pub async fn terminate_and_wait(self) -> (ExitStatus, String) {
        self.terminate();
        self.wait_for_exit().await
    }

    /// Waits until the process has exited (within [`EXIT`], else it is killed) and its stderr
    /// has ended, and returns how it exited and its whole log.
    pub async fn wait_for_exit(mut self) -> (ExitStatus, String) {
        let (pid, log) = (self.child.id(), self.log.clone());
        let reader = self.reader.take();
        let exited = tokio::task::spawn_blocking(move || {
            let status = self.child.wait().unwrap();
            if let Some(reader) = reader {
                reader.join().unwrap();
            }
            status
        });
        let whole = || log.lock().unwrap().join("\n");
        match tokio::time::timeout(EXIT, exited).await {
            Ok(status) => (status.unwrap(), whole()),
            Err(_) => {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
                panic!("the proxy did not exit within {EXIT:?}:\n{}", whole());
            }
        }
    }

    /// Sends a signal by name (`HUP`, `TERM`).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
