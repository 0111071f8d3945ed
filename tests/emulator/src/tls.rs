//! Test CA and on-the-fly leaf certificates, one per SNI name, for the emulator's HTTPS server.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::crypto::aws_lc_rs;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// The name used when the client sends no SNI (IP literals send none).
const DEFAULT_NAME: &str = "localhost";

/// A CA that mints leaf certificates, cached per name.
pub struct CertMinter {
    issuer: Issuer<'static, KeyPair>,
    ca_der: CertificateDer<'static>,
    ca_pem: String,
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
    /// Generates a fresh CA.
    pub fn new() -> std::io::Result<CertMinter> {
        let key = KeyPair::generate().map_err(io_err)?;
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
        let cert = params.self_signed(&key).map_err(io_err)?;
        Ok(CertMinter {
            ca_der: cert.der().clone(),
            ca_pem: cert.pem(),
            issuer: Issuer::new(params, key),
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// PEM of the CA certificate.
    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
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
        let m = CertMinter::new().unwrap();
        assert!(m.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        let a = m
            .leaf("b--usw2-az1--x-s3.s3express-usw2-az1.us-west-2.amazonaws.com")
            .unwrap();
        let b = m
            .leaf("B--USW2-AZ1--X-S3.s3express-usw2-az1.us-west-2.amazonaws.com.")
            .unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.cert.len(), 2);
    }
}
