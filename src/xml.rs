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

/// An element of a small document read whole ([`parse_tree`]): its local name, the text
/// directly inside it (entities resolved), and its child elements in document order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Element {
    /// The local name (`Contents`, without any namespace prefix).
    pub name: String,
    /// The text directly inside the element; for an element with children, the whitespace
    /// between them.
    pub text: String,
    /// The child elements, in document order.
    pub children: Vec<Element>,
}

impl Element {
    /// The first child named `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The text of the first child named `name`.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }
}

/// How deep [`parse_tree`] nests before it calls a document malformed (S3's are 3 deep).
const MAX_DEPTH: usize = 16;

/// Reads a whole document (the caller bounds its size) into its root element.
pub fn parse_tree(xml: &str) -> Result<Element, XmlError> {
    let mut reader = Reader::from_str(xml);
    let mut open: Vec<Element> = Vec::new();
    let malformed = |what: &str| XmlError::Malformed(what.to_owned());
    loop {
        let event = reader
            .read_event()
            .map_err(|e| XmlError::Malformed(e.to_string()))?;
        match event {
            Event::Start(start) if open.len() < MAX_DEPTH => open.push(Element {
                name: start.local_name().as_ref().to_owned(),
                ..Element::default()
            }),
            Event::Start(_) => return Err(malformed("nested too deep")),
            Event::Empty(empty) => {
                let element = Element {
                    name: empty.local_name().as_ref().to_owned(),
                    ..Element::default()
                };
                match open.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => return Ok(element),
                }
            }
            Event::Text(text) => push_text(&mut open, &text.xml10_content()),
            Event::CData(data) => push_text(&mut open, &data.xml10_content()),
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(ch)) => ch.to_string(),
                    _ => resolve_predefined_entity(&reference)
                        .ok_or_else(|| malformed("an unknown entity"))?
                        .to_owned(),
                };
                push_text(&mut open, &resolved);
            }
            Event::End(_) => {
                let done = open
                    .pop()
                    .ok_or_else(|| malformed("an unmatched end tag"))?;
                match open.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => return Ok(done),
                }
            }
            Event::Eof => return Err(malformed("the document ended early")),
            _ => {}
        }
    }
}

fn push_text(open: &mut [Element], text: &str) {
    if let Some(current) = open.last_mut() {
        current.text.push_str(text);
    }
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
    error_body_with(code, message, &[], request_id)
}

/// The same, with elements S3 adds after `<Message>` for some errors (`(name, text)`; names
/// are the proxy's own, texts are escaped).
pub fn error_body_with(
    code: &str,
    message: &str,
    details: &[(&str, String)],
    request_id: &str,
) -> String {
    let mut extra = String::new();
    for (name, text) in details {
        extra.push_str(&format!("<{name}>{}</{name}>", escape(text)));
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message>{extra}<RequestId>{}</RequestId></Error>",
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
    fn a_tree_keeps_order_nesting_and_resolved_text() {
        let xml = "<?xml version=\"1.0\"?>\n<R xmlns=\"x\"><A>1 &amp; &#x32;</A><B/><C><D> d </D><D><![CDATA[<e>]]></D></C></R>";
        let root = parse_tree(xml).unwrap();
        assert_eq!(root.name, "R");
        let names: Vec<&str> = root.children.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["A", "B", "C"]);
        assert_eq!(root.child_text("A"), Some("1 & 2"));
        assert_eq!(root.child_text("B"), Some(""));
        let texts: Vec<&str> = root
            .child("C")
            .unwrap()
            .children
            .iter()
            .map(|d| d.text.as_str())
            .collect();
        assert_eq!(texts, [" d ", "<e>"]);
        assert!(parse_tree("<R><A></R>").is_err());
        assert!(parse_tree("<R><A>").is_err());
        assert!(parse_tree("<R>&bogus;</R>").is_err());
        let deep = format!("{}{}", "<a>".repeat(40), "</a>".repeat(40));
        assert!(parse_tree(&deep).is_err());
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
