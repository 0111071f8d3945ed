//! The local certificate authority and the leaf certificates it mints for intercepted hosts.
//!
//! The CA lives in a directory as `ca.pem` (certificate) and `ca-key.pem` (private key, mode
//! 0600). Leaves are ECDSA P-256, valid for 30 days, and cached as ready-made rustls server
//! configs for up to 7 days. Key material is never logged.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv6Addr};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber, PKCS_ECDSA_P256_SHA256,
};
use rustls::crypto::CryptoProvider;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

const CERT_FILE: &str = "ca.pem";
const KEY_FILE: &str = "ca-key.pem";
const DAY: Duration = Duration::from_secs(24 * 60 * 60);
/// Maximum number of cached leaf configs.
const CACHE_CAPACITY: u64 = 1024;
/// Leaves are re-minted after this long (they are valid for 30 days).
const LEAF_TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// How long to wait for a concurrently created CA's certificate to appear next to its key.
const PEER_CREATE_WAIT: Duration = Duration::from_secs(1);
/// How often to look for it meanwhile.
const PEER_CREATE_POLL: Duration = Duration::from_millis(25);

/// Errors from loading, creating or using the CA.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// Reading or writing a file or directory failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A PEM file holds no usable certificate or key, or the key does not fit the certificate.
    #[error("{}: {reason}", path.display())]
    BadPem {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Exactly one of `ca.pem` and `ca-key.pem` exists; nothing was overwritten.
    #[error(
        "{}: found {present} but not {missing}; refusing to create a new CA over it \
         (restore {missing}, or remove {present} to create a fresh CA)",
        dir.display()
    )]
    Incomplete {
        /// The CA directory.
        dir: PathBuf,
        /// The file that exists.
        present: &'static str,
        /// The file that is missing.
        missing: &'static str,
    },
    /// Generating a key or signing a certificate failed.
    #[error("minting a certificate for {host}: {source}")]
    Mint {
        /// The name(s) the certificate was for.
        host: String,
        /// The underlying error.
        source: rcgen::Error,
    },
    /// rustls rejected the certificate chain or key.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// The host is neither a valid DNS name nor an IP literal.
    #[error("invalid host name {0:?}")]
    InvalidHost(String),
}

/// The local CA: its certificate on disk and in memory, and a bounded cache of leaf TLS configs.
pub struct CertificateAuthority {
    cert_path: PathBuf,
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
    provider: Arc<CryptoProvider>,
    leaves: moka::sync::Cache<String, Arc<ServerConfig>>,
    minted: AtomicU64,
}

impl fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("cert_path", &self.cert_path)
            .finish_non_exhaustive()
    }
}

/// A freshly minted leaf: chain `[leaf, ca]` and the leaf's private key.
struct Leaf {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

/// A validated host: a lower-cased DNS name (possibly `*.`-prefixed) or an IP address.
enum HostName {
    Dns(String),
    Ip(IpAddr),
}

impl fmt::Display for HostName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostName::Dns(name) => f.write_str(name),
            HostName::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

impl CertificateAuthority {
    /// Loads `ca.pem` and `ca-key.pem` from `dir`, or creates them there on first run
    /// (creating `dir` with mode 0700 if needed; the key file written with mode 0600, atomically
    /// via a temp file linked into place without replacing anything, so a concurrent second
    /// process never sees a half-written key and the first process to publish a key wins).
    /// If both files exist, load them (the dir may be read-only, e.g. a Kubernetes Secret mount).
    /// If exactly one exists, that's an error explaining what's wrong (don't overwrite), unless
    /// it is the key and the certificate appears within a second (another process is between
    /// publishing the two): that wait is on tokio's clock, and blocks no thread.
    pub async fn load_or_create(dir: &Path) -> Result<Self, CaError> {
        let cert_path = dir.join(CERT_FILE);
        let key_path = dir.join(KEY_FILE);
        let incomplete = |present, missing| CaError::Incomplete {
            dir: dir.to_path_buf(),
            present,
            missing,
        };
        match (exists(&cert_path)?, exists(&key_path)?) {
            (true, true) => {}
            (true, false) => return Err(incomplete(CERT_FILE, KEY_FILE)),
            // Another process may be between publishing the key and the certificate.
            (false, true) => {
                if !wait_for(&cert_path).await? {
                    return Err(incomplete(KEY_FILE, CERT_FILE));
                }
            }
            (false, false) => {
                if create(dir, &cert_path, &key_path)? {
                    tracing::info!(path = %cert_path.display(), "created local CA");
                } else if !wait_for(&cert_path).await? {
                    return Err(incomplete(KEY_FILE, CERT_FILE));
                }
            }
        }
        // Always load from disk, so leaves chain to exactly the bytes in ca.pem.
        Self::load(cert_path, &key_path)
    }

    fn load(cert_path: PathBuf, key_path: &Path) -> Result<Self, CaError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let cert_pem = fs::read_to_string(&cert_path).map_err(io_err(&cert_path))?;
        let key_pem = fs::read_to_string(key_path).map_err(io_err(key_path))?;
        let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| bad_pem(&cert_path, e))?;
        let key_der =
            PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| bad_pem(key_path, e))?;
        // Checks the key parses and belongs to the certificate (SPKI comparison).
        rustls::sign::CertifiedKey::from_der(vec![cert_der.clone()], key_der, &provider).map_err(
            |e| CaError::BadPem {
                path: key_path.to_path_buf(),
                reason: format!("not usable as the key of {}: {e}", cert_path.display()),
            },
        )?;
        let key = KeyPair::from_pem(&key_pem).map_err(|e| bad_pem(key_path, e))?;
        let issuer =
            Issuer::from_ca_cert_der(&cert_der, key).map_err(|e| bad_pem(&cert_path, e))?;
        let leaves = moka::sync::Cache::builder()
            .max_capacity(CACHE_CAPACITY)
            .time_to_live(LEAF_TTL)
            .build();
        Ok(Self {
            cert_path,
            cert_pem,
            cert_der,
            issuer,
            provider,
            leaves,
            minted: AtomicU64::new(0),
        })
    }

    /// Path of the CA certificate (ca.pem).
    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A rustls server config presenting a leaf certificate for `host` (a DNS name or IP literal),
    /// signed by this CA, with ALPN `h2` and `http/1.1`. Cached (bounded, e.g. 1024 hosts); under
    /// concurrent calls for the same host the leaf is minted only once (moka sync `Cache::try_get_with`).
    pub fn server_config_for(&self, host: &str) -> Result<Arc<ServerConfig>, CaError> {
        let name = parse_host(host)?;
        let key = name.to_string();
        self.leaves
            .try_get_with_by_ref(key.as_str(), || {
                let leaf = self.mint(std::slice::from_ref(&name))?;
                tls_config(&self.provider, leaf.chain, leaf.key)
            })
            .map_err(unshare)
    }

    /// Like `server_config_for` but for a fixed set of names (used by the proxy's own --tls-listen when
    /// no --tls-cert is given): one leaf with all the names as SANs.
    pub fn server_config_for_names(&self, names: &[String]) -> Result<Arc<ServerConfig>, CaError> {
        if names.is_empty() {
            return Err(CaError::InvalidHost(String::new()));
        }
        let names = names
            .iter()
            .map(|n| parse_host(n))
            .collect::<Result<Vec<_>, _>>()?;
        let leaf = self.mint(&names)?;
        tls_config(&self.provider, leaf.chain, leaf.key)
    }

    /// How many leaves have been minted since start (for tests and metrics).
    pub fn minted(&self) -> u64 {
        self.minted.load(Ordering::Relaxed)
    }

    /// Mints a leaf for `names` (non-empty), signed by this CA.
    fn mint(&self, names: &[HostName]) -> Result<Leaf, CaError> {
        let label = names
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let fail = |source| CaError::Mint {
            host: label.clone(),
            source,
        };
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(fail)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        // X.509 caps the CN at 64 characters; with an empty subject rcgen marks the SAN critical.
        let cn = names[0].to_string();
        if cn.len() <= 64 {
            params.distinguished_name.push(DnType::CommonName, cn);
        }
        params.subject_alt_names = names
            .iter()
            .map(|n| match n {
                HostName::Dns(d) => d.clone().try_into().map(SanType::DnsName),
                HostName::Ip(ip) => Ok(SanType::IpAddress(*ip)),
            })
            .collect::<Result<_, _>>()
            .map_err(fail)?;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params, Duration::from_secs(60 * 60), 30 * DAY);
        params.serial_number = Some(random_serial(&self.provider)?);
        let cert = params.signed_by(&key, &self.issuer).map_err(fail)?;
        self.minted.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(host = %label, "minted leaf certificate");
        Ok(Leaf {
            chain: vec![cert.der().clone(), self.cert_der.clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        })
    }
}

/// Builds a rustls server config from a PEM cert chain file and a PEM key file (for --tls-cert/--tls-key), ALPN h2 + http/1.1.
pub fn server_config_from_files(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, CaError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let cert_pem = fs::read(cert).map_err(io_err(cert))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad_pem(cert, e))?;
    if chain.is_empty() {
        return Err(bad_pem(cert, "no CERTIFICATE block found"));
    }
    let key_pem = fs::read(key).map_err(io_err(key))?;
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| bad_pem(key, e))?;
    tls_config(&provider, chain, key_der).map_err(|e| CaError::BadPem {
        path: key.to_path_buf(),
        reason: format!("cannot be used with {}: {e}", cert.display()),
    })
}

fn tls_config(
    provider: &Arc<CryptoProvider>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, CaError> {
    let mut config = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Generates a new CA in `dir`. Returns `false` if another process published a key first.
fn create(dir: &Path, cert_path: &Path, key_path: &Path) -> Result<bool, CaError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_err(dir))?;
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let cn = format!("s3x-proxy local CA ({})", owner_label());
    let fail = |source| CaError::Mint {
        host: cn.clone(),
        source,
    };
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(fail)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, cn.clone());
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut params, DAY, 3652 * DAY);
    params.serial_number = Some(random_serial(&provider)?);
    let cert = params.self_signed(&key).map_err(fail)?;
    // Key first: whoever publishes the key owns the CA; the certificate follows it.
    if !publish(dir, key_path, key.serialize_pem().as_bytes(), 0o600)? {
        return Ok(false);
    }
    // If a certificate appeared meanwhile (not from us), loading reports the key mismatch.
    publish(dir, cert_path, cert.pem().as_bytes(), 0o644)?;
    Ok(true)
}

/// Writes `bytes` to a temp file in `dir` and links it to `dst` without ever replacing an
/// existing `dst`. Returns `false` if `dst` already existed.
fn publish(dir: &Path, dst: &Path, bytes: &[u8], mode: u32) -> Result<bool, CaError> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let name = dst.file_name().and_then(|n| n.to_str()).unwrap_or("ca");
    let tmp = dir.join(format!(".{name}.{}.{seq}.tmp", std::process::id()));
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(io_err(&tmp))?;
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(io_err(&tmp))?;
        file.write_all(bytes).map_err(io_err(&tmp))?;
        file.sync_all().map_err(io_err(&tmp))?;
        match fs::hard_link(&tmp, dst) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            // Filesystems without hard links: best-effort check, then rename.
            Err(_) if !exists(dst)? => fs::rename(&tmp, dst).map(|()| true).map_err(io_err(dst)),
            Err(_) => Ok(false),
        }
    })();
    let _ = fs::remove_file(&tmp);
    result
}

fn exists(path: &Path) -> Result<bool, CaError> {
    path.try_exists().map_err(io_err(path))
}

/// Polls for `path` to appear (a concurrent creator publishing its certificate), for up to
/// [`PEER_CREATE_WAIT`].
async fn wait_for(path: &Path) -> Result<bool, CaError> {
    let deadline = tokio::time::Instant::now() + PEER_CREATE_WAIT;
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(PEER_CREATE_POLL).await;
        if exists(path)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Validates and normalises a host: DNS name (optionally `*.`-prefixed) or IP literal.
fn parse_host(host: &str) -> Result<HostName, CaError> {
    let invalid = || CaError::InvalidHost(host.to_owned());
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        let ip = inner.parse::<Ipv6Addr>().map_err(|_| invalid())?;
        return Ok(HostName::Ip(IpAddr::V6(ip)));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(HostName::Ip(ip));
    }
    if host.is_empty() || host.len() > 253 {
        return Err(invalid());
    }
    let base = host.strip_prefix("*.").unwrap_or(host);
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if base.split('.').all(label_ok) {
        Ok(HostName::Dns(host.to_ascii_lowercase()))
    } else {
        Err(invalid())
    }
}

/// Turns the shared error moka hands to every waiter back into an owned one.
fn unshare(err: Arc<CaError>) -> CaError {
    Arc::try_unwrap(err).unwrap_or_else(|err| match &*err {
        CaError::Mint { host, source } => CaError::Mint {
            host: host.clone(),
            source: source.clone(),
        },
        CaError::Tls(e) => CaError::Tls(e.clone()),
        CaError::InvalidHost(h) => CaError::InvalidHost(h.clone()),
        other => CaError::Tls(rustls::Error::General(other.to_string())),
    })
}

/// Sets `not_before = now - back` and `not_after = now + ahead`.
fn set_validity(params: &mut CertificateParams, back: Duration, ahead: Duration) {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let now = rcgen::date_time_ymd(1970, 1, 1) + since_epoch;
    params.not_before = now - back;
    params.not_after = now + ahead;
}

fn random_serial(provider: &CryptoProvider) -> Result<SerialNumber, CaError> {
    let mut bytes = [0u8; 16];
    provider
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| CaError::Tls(rustls::Error::FailedToGetRandomBytes))?;
    bytes[0] = (bytes[0] & 0x7f).max(1); // positive, minimal DER encoding
    Ok(SerialNumber::from_slice(&bytes))
}

/// Host name (or user name) for the CA's common name, so users can tell CAs apart.
fn owner_label() -> String {
    let name = ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| fs::read_to_string(p).ok())
        .chain(std::env::var("HOSTNAME"))
        .chain(std::env::var("USER"))
        .map(|s| s.trim().to_owned())
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_owned());
    name.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(32)
        .collect()
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CaError + '_ {
    move |source| CaError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn bad_pem(path: &Path, reason: impl fmt::Display) -> CaError {
    CaError::BadPem {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
#[path = "ca_tests.rs"]
mod tests;
