//! The access file (`--access-file`, TOML), parsed and validated once into an [`AccessList`].
//!
//! ```toml
//! [[client]]
//! name = "backup-agent"
//! access_key_id = "AKIDBACKUPAGENT01"
//! secret_access_key = "…"            # 16 to 256 visible ASCII characters
//! allow = [
//!   { bucket = "backups--usw2-az1--x-s3", access = "read-write" },
//!   { bucket = "*--use1-az4--x-s3", access = "read-only" },
//! ]
//! ```

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use aws_credential_types::Credentials;
use aws_lc_rs::digest;
use aws_smithy_runtime_api::client::identity::Identity;
use globset::{Candidate, Glob, GlobSet, GlobSetBuilder};
use serde::Deserialize;
use toml::Spanned;

use super::error::AccessFileError;
use super::secret::Secret;

/// Every session access key id the proxy mints starts with this, so no access-file key id may.
pub const SESSION_KEY_PREFIX: &str = "S3XS";

/// An access level of an `allow` rule. `ReadWrite` is the higher one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    /// The reads listed in `access::required_access`.
    ReadOnly,
    /// Everything on the bucket.
    ReadWrite,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileToml {
    #[serde(default)]
    client: Vec<ClientToml>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientToml {
    name: Spanned<String>,
    access_key_id: Spanned<String>,
    secret_access_key: Spanned<String>,
    #[serde(default)]
    allow: Vec<RuleToml>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleToml {
    bucket: Spanned<String>,
    access: Access,
}

/// One client of the access file.
pub struct Client {
    name: String,
    access_key_id: String,
    /// SHA-256 of the secret: `Proxy-Authorization` secrets are compared through it, so the
    /// comparison is constant-time and independent of the presented length.
    secret_digest: [u8; 32],
    /// The key pair as aws-sigv4 takes it, built once (its `Debug` redacts the secret).
    identity: Identity,
    rules: Rules,
    /// SHA-256 over everything above: minted sessions are bound to it, so they die when the
    /// file changes this client.
    fingerprint: [u8; 32],
}

struct Rules {
    read_write: GlobSet,
    read_only: GlobSet,
    listed: Vec<(String, Access)>,
}

impl Client {
    /// The client's name, for log lines (`client=NAME`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The client's access key id.
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The highest access any `allow` rule gives this client on `bucket`, if any.
    pub fn access(&self, bucket: &str) -> Option<Access> {
        let bucket = Candidate::new(bucket);
        if self.rules.read_write.is_match_candidate(&bucket) {
            Some(Access::ReadWrite)
        } else if self.rules.read_only.is_match_candidate(&bucket) {
            Some(Access::ReadOnly)
        } else {
            None
        }
    }

    pub(crate) fn secret_digest(&self) -> &[u8; 32] {
        &self.secret_digest
    }

    pub(crate) fn identity(&self) -> &Identity {
        &self.identity
    }

    pub(crate) fn fingerprint(&self) -> &[u8; 32] {
        &self.fingerprint
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("name", &self.name)
            .field("access_key_id", &self.access_key_id)
            .field("secret", &Secret::new(""))
            .field("allow", &self.rules.listed)
            .finish()
    }
}

/// The clients of one version of the access file, looked up by access key id or name.
#[derive(Debug, Default)]
pub struct AccessList {
    clients: Vec<Arc<Client>>,
    by_key: HashMap<Box<str>, usize>,
    by_name: HashMap<Box<str>, usize>,
}

impl AccessList {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Self, AccessFileError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| AccessFileError {
            origin: origin.clone(),
            line: None,
            message: format!("cannot be read: {e}"),
        })?;
        Self::parse(&text, &origin)
    }

    /// Parses and validates access-file text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, AccessFileError> {
        let file: FileToml = toml::from_str(text).map_err(|e| toml_error(&e, text, origin))?;
        let mut list = AccessList::default();
        for entry in file.client {
            let client = build_client(entry).map_err(|(span, message)| AccessFileError {
                origin: origin.to_string(),
                line: Some(line_of(text, span.start)),
                message,
            })?;
            list.insert(client, text, origin)?;
        }
        Ok(list)
    }

    fn insert(
        &mut self,
        (client, spans): (Client, KeySpans),
        text: &str,
        origin: &str,
    ) -> Result<(), AccessFileError> {
        let error = |at: usize, message: String| AccessFileError {
            origin: origin.to_string(),
            line: Some(line_of(text, at)),
            message,
        };
        if self.by_name.contains_key(client.name.as_str()) {
            let message = format!("a second client is named {:?}", client.name);
            return Err(error(spans.name, message));
        }
        if self.by_key.contains_key(client.access_key_id.as_str()) {
            let message = format!(
                "access_key_id {:?} is already another client's",
                client.access_key_id
            );
            return Err(error(spans.key, message));
        }
        let index = self.clients.len();
        self.by_name.insert(client.name.clone().into(), index);
        self.by_key
            .insert(client.access_key_id.clone().into(), index);
        self.clients.push(Arc::new(client));
        Ok(())
    }

    /// The client whose access key id this is.
    pub fn by_access_key_id(&self, access_key_id: &str) -> Option<&Arc<Client>> {
        self.by_key.get(access_key_id).map(|&i| &self.clients[i])
    }

    /// The client of this name.
    pub fn by_name(&self, name: &str) -> Option<&Arc<Client>> {
        self.by_name.get(name).map(|&i| &self.clients[i])
    }

    /// The clients, in file order.
    pub fn clients(&self) -> impl Iterator<Item = &Arc<Client>> {
        self.clients.iter()
    }

    /// How many clients the file names.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// True when the file names no client (then nobody gets in).
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }
}

/// Where a client's name and key id are, for duplicate errors.
struct KeySpans {
    name: usize,
    key: usize,
}

type SpannedError = (std::ops::Range<usize>, String);

fn build_client(entry: ClientToml) -> Result<(Client, KeySpans), SpannedError> {
    let spans = KeySpans {
        name: entry.name.span().start,
        key: entry.access_key_id.span().start,
    };
    check(&entry.name, valid_name)?;
    check(&entry.access_key_id, valid_key_id)?;
    check(&entry.secret_access_key, valid_secret)?;
    let mut read_write = GlobSetBuilder::new();
    let mut read_only = GlobSetBuilder::new();
    let mut listed = Vec::with_capacity(entry.allow.len());
    for rule in &entry.allow {
        let glob = check(&rule.bucket, valid_pattern)?;
        match rule.access {
            Access::ReadWrite => read_write.add(glob),
            Access::ReadOnly => read_only.add(glob),
        };
        listed.push((rule.bucket.get_ref().clone(), rule.access));
    }
    let build = |set: GlobSetBuilder| {
        set.build()
            .map_err(|e| (entry.name.span(), format!("bucket patterns: {e}")))
    };
    let rules = Rules {
        read_write: build(read_write)?,
        read_only: build(read_only)?,
        listed,
    };
    let name = entry.name.into_inner();
    let access_key_id = entry.access_key_id.into_inner();
    let secret = entry.secret_access_key.into_inner();
    let fingerprint = fingerprint(&name, &access_key_id, &secret, &rules.listed);
    let secret_digest = sha256(secret.as_bytes());
    let identity = Credentials::new(
        access_key_id.clone(),
        secret.clone(),
        None,
        None,
        "s3x-proxy-access-file",
    )
    .into();
    let client = Client {
        name,
        access_key_id,
        secret_digest,
        identity,
        rules,
        fingerprint,
    };
    Ok((client, spans))
}

/// Runs a validator on a spanned value, turning its complaint into a spanned error.
fn check<T>(
    value: &Spanned<String>,
    validate: impl Fn(&str) -> Result<T, String>,
) -> Result<T, SpannedError> {
    validate(value.get_ref()).map_err(|message| (value.span(), message))
}

fn valid_name(name: &str) -> Result<(), String> {
    let ok = |b: u8| b.is_ascii_alphanumeric() || b"._@-".contains(&b);
    if name.is_empty() || name.len() > 64 || !name.bytes().all(ok) {
        return Err("name must be 1 to 64 letters, digits or '._@-'".into());
    }
    Ok(())
}

fn valid_key_id(id: &str) -> Result<(), String> {
    let ok = |b: u8| b.is_ascii_alphanumeric() || b"._-".contains(&b);
    if id.is_empty() || id.len() > 128 || !id.bytes().all(ok) {
        return Err("access_key_id must be 1 to 128 letters, digits or '._-'".into());
    }
    if id.starts_with(SESSION_KEY_PREFIX) {
        return Err(format!(
            "access_key_id must not start with {SESSION_KEY_PREFIX}: the proxy's session keys do"
        ));
    }
    Ok(())
}

fn valid_secret(secret: &str) -> Result<(), String> {
    // The message never quotes the value.
    if !(16..=256).contains(&secret.len()) {
        return Err("secret_access_key must be 16 to 256 characters long".into());
    }
    if !secret.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("secret_access_key must be visible ASCII, without spaces".into());
    }
    Ok(())
}

fn valid_pattern(pattern: &str) -> Result<Glob, String> {
    if pattern.is_empty() || pattern.len() > 255 {
        return Err("bucket must be a non-empty glob of at most 255 characters".into());
    }
    if pattern
        .bytes()
        .any(|b| b.is_ascii_uppercase() || b == b'/' || !b.is_ascii_graphic())
    {
        return Err(format!(
            "bucket {pattern:?}: bucket names are lowercase, with no '/' or spaces"
        ));
    }
    Glob::new(pattern).map_err(|e| format!("bucket {pattern:?} is not a valid glob: {}", e.kind()))
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, data).as_ref());
    out
}

fn fingerprint(name: &str, key: &str, secret: &str, rules: &[(String, Access)]) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    let mut field = |bytes: &[u8]| {
        ctx.update(&(bytes.len() as u64).to_be_bytes());
        ctx.update(bytes);
    };
    field(name.as_bytes());
    field(key.as_bytes());
    field(secret.as_bytes());
    for (pattern, access) in rules {
        field(pattern.as_bytes());
        field(&[*access as u8]);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// The 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// A TOML error with its line, and without the text of a line that holds a secret (serde's
/// messages may quote the value they could not read).
fn toml_error(error: &toml::de::Error, text: &str, origin: &str) -> AccessFileError {
    let line = error.span().map(|span| line_of(text, span.start));
    let line_text = line
        .and_then(|l| text.lines().nth(l - 1))
        .unwrap_or_default();
    let message = if line_text.to_ascii_lowercase().contains("secret") {
        "this line does not parse (its text is not shown: it holds a secret)".to_string()
    } else {
        error.message().trim_end().to_string()
    };
    AccessFileError {
        origin: origin.to_string(),
        line,
        message,
    }
}

#[cfg(test)]
#[path = "file_tests.rs"]
mod tests;
