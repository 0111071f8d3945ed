//! The emulator's test CA (fresh, or loaded from PEM or a directory) and its per-SNI leaves.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::crypto::aws_lc_rs;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// The name used when the client sends no SNI (IP literals send none).
const DEFAULT_NAME: &str = "localhost";

/// A CA certificate and its private key, both PEM: what [`crate::Config::ca`] takes to keep the
/// same CA across restarts, and what [`crate::Emulator::ca`] returns.
#[derive(Clone, PartialEq, Eq)]
pub struct CaPem {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for CaPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaPem")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

/// The CA certificate's file name in a CA directory.
pub const CA_CERT_FILE: &str = "ca.pem";
/// The CA key's file name in a CA directory (mode 0600).
pub const CA_KEY_FILE: &str = "ca-key.pem";

impl CaPem {
    /// A new CA.
    pub fn generate() -> std::io::Result<CaPem> {
        let key = KeyPair::generate().map_err(io_err)?;
        let cert = ca_params()?.self_signed(&key).map_err(io_err)?;
        Ok(CaPem {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// The CA kept in `dir` (`ca.pem`, `ca-key.pem`), created there (directory 0700, key 0600)
    /// when neither file exists. Returns the CA and whether it was created. A directory holding
    /// only one of the two files, or files that do not parse, is an error: nothing is overwritten.
    pub fn load_or_create(dir: &Path) -> std::io::Result<(CaPem, bool)> {
        let (cert_path, key_path) = (dir.join(CA_CERT_FILE), dir.join(CA_KEY_FILE));
        match (cert_path.exists(), key_path.exists()) {
            (true, true) => {
                let ca = CaPem {
                    cert_pem: std::fs::read_to_string(&cert_path)?,
                    key_pem: std::fs::read_to_string(&key_path)?,
                };
                CertMinter::from_ca(&ca).map_err(|e| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("the CA in {} is not usable: {e}", dir.display()),
                    )
                })?;
                Ok((ca, false))
            }
            (false, false) => {
                let ca = CaPem::generate()?;
                ca.save(dir)?;
                Ok((ca, true))
            }
            _ => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{} holds only one of {CA_CERT_FILE} and {CA_KEY_FILE}; remove it or restore the other",
                    dir.display()
                ),
            )),
        }
    }

    /// Writes `ca.pem` and `ca-key.pem` (0600) into `dir`, creating it (0700) if needed.
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        create_private_dir(dir)?;
        write_file(&dir.join(CA_KEY_FILE), &self.key_pem, 0o600)?;
        write_file(&dir.join(CA_CERT_FILE), &self.cert_pem, 0o644)
    }

    /// The per-user directory the example keeps its CA in: `$XDG_DATA_HOME/s3x-emulator`, else
    /// `$HOME/.local/share/s3x-emulator`, else `s3x-emulator` in the temporary directory.
    pub fn default_dir() -> PathBuf {
        let non_empty = |name| std::env::var_os(name).filter(|v| !v.is_empty());
        if let Some(d) = non_empty("XDG_DATA_HOME") {
            return PathBuf::from(d).join("s3x-emulator");
        }
        if let Some(h) = non_empty("HOME") {
            return PathBuf::from(h).join(".local/share/s3x-emulator");
        }
        std::env::temp_dir().join("s3x-emulator")
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn write_file(path: &Path, contents: &str, mode: u32) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(mode))?;
    f.write_all(contents.as_bytes())
}

#[cfg(not(unix))]
fn write_file(path: &Path, contents: &str, _mode: u32) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

fn ca_params() -> std::io::Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(io_err)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "s3x-emulator test CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

/// A CA that mints leaf certificates, cached per name.
pub(crate) struct CertMinter {
    issuer: Issuer<'static, KeyPair>,
    ca_der: CertificateDer<'static>,
    cache: Mutex<HashMap<String, Arc<CertifiedKey>>>,
}

impl std::fmt::Debug for CertMinter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertMinter").finish_non_exhaustive()
    }
}

fn io_err(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

impl CertMinter {
    /// A minter for an existing CA.
    pub fn from_ca(ca: &CaPem) -> std::io::Result<CertMinter> {
        use rustls::pki_types::pem::PemObject;
        let key = KeyPair::from_pem(&ca.key_pem).map_err(io_err)?;
        let ca_der = CertificateDer::from_pem_slice(ca.cert_pem.as_bytes()).map_err(io_err)?;
        let issuer = Issuer::from_ca_cert_der(&ca_der, key).map_err(io_err)?;
        // The certificate holds its SubjectPublicKeyInfo verbatim.
        let spki = rcgen::PublicKeyData::subject_public_key_info(issuer.key());
        if !ca_der.windows(spki.len()).any(|w| w == spki.as_slice()) {
            return Err(io_err("the CA key does not belong to the CA certificate"));
        }
        Ok(CertMinter {
            issuer,
            ca_der,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The leaf for `name` (minted once, then cached).
    pub fn leaf(&self, name: &str) -> std::io::Result<Arc<CertifiedKey>> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if let Some(k) = self.cache.lock().expect("cert cache").get(&name) {
            return Ok(k.clone());
        }
        let mut sans = vec![name.clone()];
        if name == DEFAULT_NAME {
            sans.extend(["127.0.0.1".to_string(), "::1".to_string()]);
        }
        let mut params = CertificateParams::new(sans).map_err(io_err)?;
        params
            .distinguished_name
            .push(DnType::CommonName, name.clone());
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().map_err(io_err)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(io_err)?;
        let der_key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let signing = aws_lc_rs::sign::any_supported_type(&der_key).map_err(io_err)?;
        let certified = Arc::new(CertifiedKey::new(
            vec![cert.der().clone(), self.ca_der.clone()],
            signing,
        ));
        self.cache
            .lock()
            .expect("cert cache")
            .insert(name, certified.clone());
        Ok(certified)
    }

    /// A rustls server config (ALPN h2 and http/1.1) that picks the leaf by SNI.
    pub fn server_config(self: &Arc<Self>) -> std::io::Result<rustls::ServerConfig> {
        let mut config =
            rustls::ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(io_err)?
                .with_no_client_auth()
                .with_cert_resolver(Arc::new(Resolver(self.clone())));
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}

#[derive(Debug)]
struct Resolver(Arc<CertMinter>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = match hello.server_name() {
            Some(n) if n.parse::<IpAddr>().is_err() => n.to_string(),
            _ => DEFAULT_NAME.to_string(),
        };
        self.0.leaf(&name).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mints_and_caches_leaves() {
        let ca = CaPem::generate().unwrap();
        assert!(ca.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        let m = CertMinter::from_ca(&ca).unwrap();
        let a = m
            .leaf("b--usw2-az1--x-s3.s3express-usw2-az1.us-west-2.amazonaws.com")
            .unwrap();
        let b = m
            .leaf("B--USW2-AZ1--X-S3.s3express-usw2-az1.us-west-2.amazonaws.com.")
            .unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.cert.len(), 2);
    }

    #[test]
    fn a_key_of_another_ca_is_refused() {
        let (a, b) = (CaPem::generate().unwrap(), CaPem::generate().unwrap());
        let mixed = CaPem {
            cert_pem: a.cert_pem.clone(),
            key_pem: b.key_pem.clone(),
        };
        assert!(CertMinter::from_ca(&mixed).is_err());
        assert!(CertMinter::from_ca(&a).is_ok());
        let garbage = CaPem {
            cert_pem: "not a certificate".into(),
            key_pem: a.key_pem,
        };
        assert!(CertMinter::from_ca(&garbage).is_err());
    }
}
