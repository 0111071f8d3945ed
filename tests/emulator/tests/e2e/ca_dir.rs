//! A CA kept in a directory: created once, reused, and trusted across restarts on one port.

use std::path::PathBuf;

use s3x_emulator::{CaPem, Config, Emulator, CA_CERT_FILE, CA_KEY_FILE};

use crate::support::{host, Client, BUCKET};

/// A fresh directory under the temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "s3x-emulator-test-{tag}-{}-{nanos}",
            std::process::id()
        ));
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn the_ca_is_created_once_then_reused() {
    let dir = TempDir::new("reuse");
    let ca_dir = dir.0.join("nested/ca");
    let (ca, created) = CaPem::load_or_create(&ca_dir).unwrap();
    assert!(created);
    let (again, created) = CaPem::load_or_create(&ca_dir).unwrap();
    assert!(!created);
    assert_eq!(again, ca);
    assert_eq!(
        std::fs::read_to_string(ca_dir.join(CA_CERT_FILE)).unwrap(),
        ca.cert_pem
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(ca_dir.join(CA_KEY_FILE)), 0o600);
        assert_eq!(mode(ca_dir.clone()), 0o700);
    }
    assert!(
        !format!("{ca:?}").contains("PRIVATE KEY"),
        "Debug hides the key"
    );
}

#[test]
fn a_broken_ca_directory_is_an_error_and_left_alone() {
    let dir = TempDir::new("broken");
    std::fs::create_dir_all(&dir.0).unwrap();
    std::fs::write(dir.0.join(CA_CERT_FILE), "only the certificate").unwrap();
    assert!(CaPem::load_or_create(&dir.0).is_err());
    assert!(!dir.0.join(CA_KEY_FILE).exists(), "nothing was written");
    std::fs::write(dir.0.join(CA_KEY_FILE), "not a key").unwrap();
    assert!(CaPem::load_or_create(&dir.0).is_err());
    assert_eq!(
        std::fs::read_to_string(dir.0.join(CA_CERT_FILE)).unwrap(),
        "only the certificate"
    );
}

#[tokio::test]
async fn clients_trusting_the_kept_ca_survive_a_restart_on_the_same_port() {
    let dir = TempDir::new("restart");
    let (ca, _) = CaPem::load_or_create(&dir.0).unwrap();
    let config = || Config {
        buckets: vec![BUCKET.into()],
        ca: Some(CaPem::load_or_create(&dir.0).unwrap().0),
        ..Config::default()
    };
    let emu = Emulator::start(config()).await.unwrap();
    assert_eq!(emu.ca(), ca);
    // What a proxy loaded at its start, and keeps.
    let trusted = emu.ca_pem();
    let addr = emu.addr();
    let mut c = Client::connect_to(addr, &trusted, &host(BUCKET), false)
        .await
        .unwrap();
    c.create_session(None).await.unwrap();
    emu.shutdown().await;

    let emu = Emulator::start_on(config(), addr).await.unwrap();
    let mut c = Client::connect_to(addr, &trusted, &host(BUCKET), true)
        .await
        .unwrap();
    c.create_session(None).await.unwrap();
    emu.shutdown().await;

    // Without the kept CA, the same client no longer trusts the emulator.
    let emu = Emulator::start_on(Config::default(), addr).await.unwrap();
    assert!(Client::connect_to(addr, &trusted, &host(BUCKET), false)
        .await
        .is_err());
    emu.shutdown().await;
}
