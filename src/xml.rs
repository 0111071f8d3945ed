//! S3 XML: parsing CreateSession results and error bodies, and writing the bodies the proxy sends.

use std::collections::HashMap;

use quick_xml::escape::{escape, resolve_predefined_entity};
use quick_xml::events::Event;
use quick_xml::Reader;

/// The XML could not be read, or lacked a required element.
#[derive(Debug, thiserror::Error)]
pub enum XmlError {
    /// The document is not well-formed.
    #[error("malformed XML: {0}")]
    Malformed(String),
    /// A required element is missing.
    #[error("missing element <{0}>")]
    Missing(&'static str),
}

/// Collects the text of every leaf element, by local name (first occurrence wins).
fn leaf_texts(xml: &str) -> Result<HashMap<String, String>, XmlError> {
    let mut reader = Reader::from_str(xml);
    let mut out = HashMap::new();
    let mut current: Option<(String, String)> = None;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| XmlError::Malformed(e.to_string()))?;
        match event {
            Event::Start(start) => {
                current = Some((start.local_name().as_ref().to_owned(), String::new()));
            }
            Event::Text(text) => {
                if let Some((_, buf)) = current.as_mut() {
                    buf.push_str(&text.xml10_content());
                }
            }
            Event::CData(data) => {
                if let Some((_, buf)) = current.as_mut() {
                    buf.push_str(&data.xml10_content());
                }
            }
            Event::GeneralRef(reference) => {
                if let Some((_, buf)) = current.as_mut() {
                    if let Ok(Some(ch)) = reference.resolve_char_ref() {
                        buf.push(ch);
                    } else if let Some(s) = resolve_predefined_entity(&reference) {
                        buf.push_str(s);
                    }
                }
            }
            Event::End(_) => {
                if let Some((name, text)) = current.take() {
                    out.entry(name).or_insert(text);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(out)
}

/// The `<Credentials>` of a `CreateSessionResult`.
pub struct SessionCredentialsXml {
    /// The session access key id.
    pub access_key_id: String,
    /// The session secret key.
    pub secret_access_key: String,
    /// The session token, sent as `x-amz-s3session-token`.
    pub session_token: String,
    /// When the session expires, as S3 wrote it (ISO 8601).
    pub expiration: String,
}

impl std::fmt::Debug for SessionCredentialsXml {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCredentialsXml")
            .field("access_key_id", &self.access_key_id)
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}

/// Parses a `CreateSessionResult` body.
pub fn parse_create_session(xml: &str) -> Result<SessionCredentialsXml, XmlError> {
    let mut texts = leaf_texts(xml)?;
    let mut take = |name: &'static str| texts.remove(name).ok_or(XmlError::Missing(name));
    Ok(SessionCredentialsXml {
        access_key_id: take("AccessKeyId")?,
        secret_access_key: take("SecretAccessKey")?,
        session_token: take("SessionToken")?,
        expiration: take("Expiration")?,
    })
}

/// The code and message of an S3 `<Error>` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3ErrorXml {
    /// The error code, such as `ExpiredToken`.
    pub code: String,
    /// The human-readable message.
    pub message: String,
}

/// Parses an S3 `<Error>` body.
pub fn parse_error(xml: &str) -> Result<S3ErrorXml, XmlError> {
    let mut texts = leaf_texts(xml)?;
    Ok(S3ErrorXml {
        code: texts.remove("Code").ok_or(XmlError::Missing("Code"))?,
        message: texts.remove("Message").unwrap_or_default(),
    })
}

/// Writes an S3-style error body.
pub fn error_body(code: &str, message: &str, request_id: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message><RequestId>{}</RequestId></Error>",
        escape(code),
        escape(message),
        escape(request_id)
    )
}

/// Writes a `CreateSessionResult` body.
pub fn create_session_body(
    access_key_id: &str,
    secret_access_key: &str,
    session_token: &str,
    expiration: &str,
) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CreateSessionResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Credentials><SessionToken>{}</SessionToken><SecretAccessKey>{}</SecretAccessKey><AccessKeyId>{}</AccessKeyId><Expiration>{}</Expiration></Credentials></CreateSessionResult>",
        escape(session_token),
        escape(secret_access_key),
        escape(access_key_id),
        escape(expiration)
    )
}

/// Writes a GetBucketLocation body: `<LocationConstraint>` holding `region`, written out even
/// for us-east-1 (general-purpose buckets there answer an empty one; clients read both alike).
pub fn location_body(region: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">{}</LocationConstraint>",
        escape(region)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // Verbatim from the S3 API reference for CreateSession.
    const CREATE_SESSION: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<CreateSessionResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
   <Credentials>
      <SessionToken>TYPE-SESSION-TOKEN</SessionToken>
      <SecretAccessKey>TYPE-SECRET-ACCESS-KEY</SecretAccessKey>
      <AccessKeyId>TYPE-ACCESS-KEY-ID</AccessKeyId>
      <Expiration>2024-01-29T18:53:01Z</Expiration>
   </Credentials>
</CreateSessionResult>"#;

    // Shaped as S3 sends them (the request and host ids are S3's own format).
    const EXPIRED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>ExpiredToken</Code><Message>The provided token has expired.</Message><RequestId>01c6cb7b2e00018c5d18e3b70509a7a1e5d5a6f4</RequestId><HostId>dAz9yTQ2Wr1HN9lJvnhTy0RVc3HPgZQz3WZFcnL1yrI=</HostId></Error>"#;

    const ACCESS_DENIED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>AccessDenied</Code><Message>Access Denied &amp; more</Message><RequestId>XYZ</RequestId></Error>"#;

    #[test]
    fn parses_a_create_session_result() {
        let c = parse_create_session(CREATE_SESSION).unwrap();
        assert_eq!(c.session_token, "TYPE-SESSION-TOKEN");
        assert_eq!(c.secret_access_key, "TYPE-SECRET-ACCESS-KEY");
        assert_eq!(c.access_key_id, "TYPE-ACCESS-KEY-ID");
        assert_eq!(c.expiration, "2024-01-29T18:53:01Z");
        assert!(!format!("{c:?}").contains("TYPE-SECRET"));
        assert!(!format!("{c:?}").contains("TYPE-SESSION-TOKEN"));
    }

    #[test]
    fn parses_error_bodies_with_entities() {
        assert_eq!(parse_error(EXPIRED).unwrap().code, "ExpiredToken");
        let e = parse_error(ACCESS_DENIED).unwrap();
        assert_eq!(
            (e.code.as_str(), e.message.as_str()),
            ("AccessDenied", "Access Denied & more")
        );
    }

    #[test]
    fn rejects_truncated_and_incomplete_bodies() {
        assert!(parse_create_session("<CreateSessionResult><Credentials><SessionToken>x").is_err());
        assert!(parse_create_session("<CreateSessionResult/>").is_err());
        assert!(parse_error("<Error><Message>no code</Message></Error>").is_err());
        assert!(parse_error("not xml at all <<<").is_err());
    }

    #[test]
    fn written_bodies_escape_and_round_trip() {
        let body = error_body("InvalidArgument", "bad <header> & value", "REQ1");
        assert_eq!(parse_error(&body).unwrap().message, "bad <header> & value");
        let body = create_session_body("AK", "S<", "T&", "2030-01-01T00:00:00Z");
        let c = parse_create_session(&body).unwrap();
        assert_eq!(
            (c.secret_access_key.as_str(), c.session_token.as_str()),
            ("S<", "T&")
        );
    }
}
