//! Server-side encryption as S3 documents it for directory buckets: bucket default, session, object.

use base64::Engine;

use crate::auth::Head;
use crate::error::{Result, S3Error};

const ALGORITHM: &str = "x-amz-server-side-encryption";
const KEY_ID: &str = "x-amz-server-side-encryption-aws-kms-key-id";
const CONTEXT: &str = "x-amz-server-side-encryption-context";
const BUCKET_KEY: &str = "x-amz-server-side-encryption-bucket-key-enabled";

/// The key id a general-purpose aws:kms object gets when the request names none.
const AWS_MANAGED_KEY: &str = "alias/aws/s3";

/// A bucket's default encryption (see [`crate::Emulator::set_bucket_encryption`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Sse {
    /// SSE-S3, the default.
    #[default]
    Aes256,
    /// SSE-KMS with this key (a directory bucket takes one customer managed key).
    Kms {
        key_id: String,
        bucket_key_enabled: bool,
    },
}

/// The encryption of a session or an object: the algorithm and key, and the KMS encryption
/// context when one was given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Settings {
    pub sse: Sse,
    /// Base64 of a JSON object; only with aws:kms.
    pub context: Option<String>,
}

impl Settings {
    /// The response headers naming these settings (the context only where S3 returns it: on
    /// CreateSession, PutObject, CopyObject and CreateMultipartUpload).
    pub fn headers(&self, with_context: bool) -> Vec<(String, String)> {
        let mut h = Vec::new();
        match &self.sse {
            Sse::Aes256 => h.push((ALGORITHM.to_string(), "AES256".to_string())),
            Sse::Kms {
                key_id,
                bucket_key_enabled,
            } => {
                h.push((ALGORITHM.to_string(), "aws:kms".to_string()));
                h.push((KEY_ID.to_string(), key_id.clone()));
                if *bucket_key_enabled {
                    h.push((BUCKET_KEY.to_string(), "true".to_string()));
                }
            }
        }
        if let (true, Some(c)) = (with_context, &self.context) {
            h.push((CONTEXT.to_string(), c.clone()));
        }
        h
    }
}

/// The SSE headers a request carries, checked for form.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Requested {
    /// `AES256` or `aws:kms`.
    pub algorithm: Option<String>,
    pub key_id: Option<String>,
    pub context: Option<String>,
    pub bucket_key: Option<bool>,
}

/// Reads and checks the SSE headers of a request.
pub(crate) fn requested(head: &Head) -> Result<Requested> {
    if head
        .headers
        .iter()
        .any(|(n, _)| n.starts_with("x-amz-server-side-encryption-customer-"))
    {
        return Err(S3Error::invalid_argument(
            "Server-side encryption with customer-provided keys (SSE-C) is not supported.",
        ));
    }
    let r = Requested {
        algorithm: head.get(ALGORITHM).map(str::to_string),
        key_id: head.get(KEY_ID).map(str::to_string),
        context: head.get(CONTEXT).map(str::to_string),
        bucket_key: match head.get(BUCKET_KEY) {
            None => None,
            Some(v) if v.eq_ignore_ascii_case("true") => Some(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Some(false),
            Some(v) => {
                return Err(S3Error::invalid_argument(format!(
                    "{BUCKET_KEY} must be true or false, not {v:?}."
                )))
            }
        },
    };
    match r.algorithm.as_deref() {
        None | Some("AES256") | Some("aws:kms") => {}
        Some(other) => {
            return Err(S3Error::invalid_argument(format!(
                "The server-side encryption {other:?} is not supported: use AES256 or aws:kms."
            ))
            .with("ArgumentName", ALGORITHM)
            .with("ArgumentValue", other))
        }
    }
    let kms_only = r.key_id.is_some() || r.context.is_some() || r.bucket_key.is_some();
    if kms_only && r.algorithm.as_deref() != Some("aws:kms") {
        return Err(S3Error::invalid_argument(format!(
            "Server Side Encryption with AWS KMS managed key requires HTTP header {ALGORITHM} : aws:kms"
        )));
    }
    if let Some(c) = &r.context {
        let json = base64::engine::general_purpose::STANDARD
            .decode(c)
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        if !json.is_some_and(|j| j.trim_start().starts_with('{') && j.trim_end().ends_with('}')) {
            return Err(S3Error::invalid_argument(format!(
                "{CONTEXT} must be base64-encoded UTF-8 JSON."
            )));
        }
    }
    Ok(r)
}

impl Requested {
    pub fn is_empty(&self) -> bool {
        self.algorithm.is_none()
    }
}

fn mismatch(what: &str) -> S3Error {
    S3Error::invalid_argument(format!(
        "The {what} does not match the directory bucket's default encryption; CreateSession and copies may only name the bucket's settings."
    ))
}

/// The settings `req` asks for, where a directory bucket with default `default` allows them:
/// AES256 only when that is the default, aws:kms only with the bucket's own key (absent means
/// the bucket's key); or, with no SSE headers, the default.
fn within_default(req: &Requested, default: &Sse, allow_aes256: bool) -> Result<Settings> {
    let sse = match (req.algorithm.as_deref(), default) {
        (None, d) => d.clone(),
        (Some("AES256"), Sse::Aes256) => Sse::Aes256,
        (Some("AES256"), _) if allow_aes256 => Sse::Aes256,
        (Some("AES256"), _) => return Err(mismatch("encryption AES256")),
        (
            Some(_),
            Sse::Kms {
                key_id,
                bucket_key_enabled,
            },
        ) => {
            if req.key_id.as_ref().is_some_and(|k| k != key_id) {
                return Err(mismatch("KMS key"));
            }
            if req.bucket_key.is_some_and(|b| b != *bucket_key_enabled) {
                return Err(mismatch("bucket key setting"));
            }
            default.clone()
        }
        (Some(_), Sse::Aes256) => return Err(mismatch("encryption aws:kms")),
    };
    Ok(Settings {
        sse,
        context: req.context.clone(),
    })
}

/// The settings of a new session: the bucket default, or headers that match it (an aws:kms
/// CreateSession must name the bucket's key).
pub(crate) fn for_session(req: &Requested, default: &Sse) -> Result<Settings> {
    if req.algorithm.as_deref() == Some("aws:kms") && req.key_id.is_none() {
        return Err(S3Error::invalid_argument(format!(
            "An aws:kms CreateSession must name the bucket's KMS key in {KEY_ID}."
        )));
    }
    within_default(req, default, false)
}

/// A session-signed write: the session's settings; headers that differ from them are refused
/// (a Zonal request cannot override what its CreateSession set).
pub(crate) fn for_session_write(req: &Requested, session: &Settings) -> Result<Settings> {
    if req.is_empty() {
        return Ok(session.clone());
    }
    let wanted = match req.algorithm.as_deref() {
        Some("AES256") => Sse::Aes256,
        _ => Sse::Kms {
            key_id: req.key_id.clone().unwrap_or_else(|| match &session.sse {
                Sse::Kms { key_id, .. } => key_id.clone(),
                Sse::Aes256 => String::new(),
            }),
            bucket_key_enabled: req.bucket_key.unwrap_or(match &session.sse {
                Sse::Kms {
                    bucket_key_enabled, ..
                } => *bucket_key_enabled,
                Sse::Aes256 => false,
            }),
        },
    };
    let context_differs = req.context.is_some() && req.context != session.context;
    if wanted != session.sse || context_differs {
        return Err(S3Error::invalid_argument(
            "The request's server-side encryption headers differ from its session's: a Zonal request cannot override the encryption settings of its CreateSession.",
        ));
    }
    Ok(session.clone())
}

/// An IAM-signed copy into a directory bucket: AES256, aws:kms with the bucket's key, or with
/// no SSE headers the bucket default.
pub(crate) fn for_copy(req: &Requested, default: &Sse) -> Result<Settings> {
    within_default(req, default, true)
}

/// A write to a general-purpose bucket: what the headers say, AES256 when they say nothing.
pub(crate) fn for_general_purpose(req: &Requested) -> Settings {
    let sse = match req.algorithm.as_deref() {
        Some("aws:kms") => Sse::Kms {
            key_id: req
                .key_id
                .clone()
                .unwrap_or_else(|| AWS_MANAGED_KEY.to_string()),
            bucket_key_enabled: req.bucket_key.unwrap_or(false),
        },
        _ => Sse::Aes256,
    };
    Settings {
        sse,
        context: req.context.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(h: &[(&str, &str)]) -> Head {
        Head {
            method: "PUT".into(),
            raw_path: "/".into(),
            raw_query: String::new(),
            headers: h
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn kms(key: &str) -> Sse {
        Sse::Kms {
            key_id: key.into(),
            bucket_key_enabled: true,
        }
    }

    #[test]
    fn header_forms() {
        assert!(requested(&head(&[(ALGORITHM, "aws:kms:dsse")])).is_err());
        assert!(
            requested(&head(&[(KEY_ID, "k")])).is_err(),
            "key without aws:kms"
        );
        assert!(requested(&head(&[(ALGORITHM, "aws:kms"), (BUCKET_KEY, "yes")])).is_err());
        assert!(requested(&head(&[(ALGORITHM, "aws:kms"), (CONTEXT, "not json")])).is_err());
        let ctx = base64::engine::general_purpose::STANDARD.encode(r#"{"a":"b"}"#);
        let r = requested(&head(&[(ALGORITHM, "aws:kms"), (CONTEXT, &ctx)])).unwrap();
        assert_eq!(r.context, Some(ctx));
        assert!(requested(&head(&[("x-amz-server-side-encryption-customer-key", "k")])).is_err());
    }

    #[test]
    fn sessions_take_the_bucket_default_or_exactly_it() {
        let none = Requested::default();
        assert_eq!(for_session(&none, &kms("k1")).unwrap().sse, kms("k1"));
        let ask = |alg: &str, key: Option<&str>| Requested {
            algorithm: Some(alg.into()),
            key_id: key.map(str::to_string),
            ..Requested::default()
        };
        assert!(for_session(&ask("aws:kms", Some("k1")), &kms("k1")).is_ok());
        assert!(for_session(&ask("aws:kms", Some("k2")), &kms("k1")).is_err());
        assert!(for_session(&ask("aws:kms", None), &kms("k1")).is_err());
        assert!(for_session(&ask("AES256", None), &kms("k1")).is_err());
        assert!(for_session(&ask("aws:kms", Some("k1")), &Sse::Aes256).is_err());
        assert!(for_session(&ask("AES256", None), &Sse::Aes256).is_ok());
        // Copies may also ask for AES256, and aws:kms only with the bucket's key.
        assert_eq!(
            for_copy(&ask("AES256", None), &kms("k1")).unwrap().sse,
            Sse::Aes256
        );
        assert!(for_copy(&ask("aws:kms", Some("k2")), &kms("k1")).is_err());
        assert_eq!(
            for_copy(&ask("aws:kms", None), &kms("k1")).unwrap().sse,
            kms("k1")
        );
    }

    #[test]
    fn zonal_writes_cannot_override_the_session() {
        let session = Settings {
            sse: kms("k1"),
            context: Some("e30=".into()),
        };
        let req = |alg: Option<&str>, key: Option<&str>, ctx: Option<&str>| Requested {
            algorithm: alg.map(str::to_string),
            key_id: key.map(str::to_string),
            context: ctx.map(str::to_string),
            bucket_key: None,
        };
        assert_eq!(
            for_session_write(&req(None, None, None), &session).unwrap(),
            session
        );
        assert!(for_session_write(&req(Some("aws:kms"), None, None), &session).is_ok());
        assert!(
            for_session_write(&req(Some("aws:kms"), Some("k1"), Some("e30=")), &session).is_ok()
        );
        assert!(for_session_write(&req(Some("AES256"), None, None), &session).is_err());
        assert!(for_session_write(&req(Some("aws:kms"), Some("k2"), None), &session).is_err());
        assert!(for_session_write(&req(Some("aws:kms"), None, Some("eyJ9")), &session).is_err());
        let headers = session.headers(true);
        assert!(headers.contains(&(BUCKET_KEY.to_string(), "true".to_string())));
        assert!(headers.contains(&(CONTEXT.to_string(), "e30=".to_string())));
        assert!(!session.headers(false).iter().any(|(n, _)| n == CONTEXT));
    }
}
