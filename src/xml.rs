//! S3 XML, all of it that the proxy reads or writes: CreateSession results, error bodies, the
//! replies of a multipart upload and listings read; error, CreateSession, location, listing and
//! CompleteMultipartUpload bodies written. Everything goes through quick-xml (its reader, its
//! writer and its escaping); no other module searches or builds XML text.

use std::collections::HashMap;

use quick_xml::escape::{escape, resolve_predefined_entity};
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::{Reader, Writer};

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
            Event::End(_) => {
                if let Some((name, text)) = current.take() {
                    out.entry(name).or_insert(text);
                }
            }
            Event::Eof => break,
            other => {
                if let Some((_, buf)) = current.as_mut() {
                    push_content(buf, &other);
                }
            }
        }
    }
    Ok(out)
}

/// Adds the text an event holds (text, CDATA, a character or predefined entity) to `buf`;
/// other events and unknown entities add nothing.
fn push_content(buf: &mut String, event: &Event<'_>) {
    match event {
        Event::Text(text) => buf.push_str(&text.xml10_content()),
        Event::CData(data) => buf.push_str(&data.xml10_content()),
        Event::GeneralRef(reference) => {
            if let Ok(Some(ch)) = reference.resolve_char_ref() {
                buf.push(ch);
            } else if let Some(s) = resolve_predefined_entity(reference) {
                buf.push_str(s);
            }
        }
        _ => {}
    }
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

/// What a small reply holds, read leniently ([`scan`]).
struct Scanned {
    /// An `<Error>` element was opened.
    error: bool,
    /// The text of the first element of the name asked for.
    text: Option<String>,
}

/// Reads a small reply for the text of its first `name` element and whether it holds an
/// `<Error>`. S3's multipart replies are flat and small; reading is lenient, as their string
/// search was before: it stops at the end or at the first fault, keeping what it read.
fn scan(xml: &str, name: &str) -> Scanned {
    let mut reader = Reader::from_str(xml);
    let mut scanned = Scanned {
        error: false,
        text: None,
    };
    // The text of the `name` element being read.
    let mut open: Option<String> = None;
    while let Ok(event) = reader.read_event() {
        match &event {
            Event::Start(start) => {
                let local = start.local_name();
                scanned.error |= local.as_ref() == "Error";
                if local.as_ref() == name && scanned.text.is_none() && open.is_none() {
                    open = Some(String::new());
                }
            }
            Event::End(end) if end.local_name().as_ref() == name => {
                if let Some(text) = open.take() {
                    scanned.text = Some(text);
                }
            }
            Event::Eof => break,
            other => {
                if let Some(text) = open.as_mut() {
                    push_content(text, other);
                }
            }
        }
    }
    scanned
}

/// The `UploadId` of a CreateMultipartUpload answer.
pub fn parse_upload_id(xml: &str) -> Option<String> {
    scan(xml, "UploadId").text
}

/// What a CompleteMultipartUpload answer says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompleteReply {
    /// An `<Error>`: CompleteMultipartUpload can fail with status 200.
    Failed,
    /// The object was made; its ETag, when the answer gave one.
    Completed {
        /// The object's ETag, as S3 wrote it (quoted).
        etag: Option<String>,
    },
}

/// Reads a CompleteMultipartUpload answer.
pub fn parse_complete_multipart(xml: &str) -> CompleteReply {
    let scanned = scan(xml, "ETag");
    match scanned.error {
        true => CompleteReply::Failed,
        false => CompleteReply::Completed { etag: scanned.text },
    }
}

/// Writes a CompleteMultipartUpload request body: for each part, in order and numbered from 1,
/// its ETag and, when the upload has a checksum `algorithm` (`CRC32`, ...), its checksum.
pub fn complete_multipart_body<'a>(
    algorithm: &str,
    parts: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> Vec<u8> {
    let checksum = format!("Checksum{algorithm}");
    let mut w = XmlWriter::bare();
    w.element("CompleteMultipartUpload", |w| {
        for (i, (etag, sum)) in parts.into_iter().enumerate() {
            w.element("Part", |w| {
                w.text("PartNumber", &(i + 1).to_string());
                w.text("ETag", etag);
                if let Some(sum) = sum {
                    w.text(&checksum, sum);
                }
            });
        }
    });
    w.finish()
}

/// S3's namespace, on the root of the results it sends.
const S3_NAMESPACE: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// A body being written (quick-xml, no indentation, text escaped as [`escape`] does).
pub struct XmlWriter(Writer<Vec<u8>>);

impl XmlWriter {
    /// A document that opens as S3's do: `<?xml version="1.0" encoding="UTF-8"?>` and a line
    /// end. `capacity`: the bytes to make room for.
    pub fn document(capacity: usize) -> Self {
        let mut w = XmlWriter(Writer::new(Vec::with_capacity(capacity)));
        w.event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
        w.0.get_mut().push(b'\n');
        w
    }

    /// A body without a declaration (as the SDKs send request bodies).
    pub fn bare() -> Self {
        XmlWriter(Writer::new(Vec::new()))
    }

    fn event(&mut self, event: Event<'_>) {
        self.0
            .write_event(event)
            .expect("writing into memory cannot fail");
    }

    /// The root element `name`, in S3's namespace, around what `inner` writes.
    pub fn s3_root(&mut self, name: &str, inner: impl FnOnce(&mut Self)) {
        let start = BytesStart::new(name).with_attributes([("xmlns", S3_NAMESPACE)]);
        self.event(Event::Start(start));
        inner(self);
        self.event(Event::End(BytesEnd::new(name)));
    }

    /// The element `name` around what `inner` writes.
    pub fn element(&mut self, name: &str, inner: impl FnOnce(&mut Self)) {
        self.event(Event::Start(BytesStart::new(name)));
        inner(self);
        self.event(Event::End(BytesEnd::new(name)));
    }

    /// The element `name` holding `text`.
    pub fn text(&mut self, name: &str, text: &str) {
        self.element(name, |w| w.event(Event::Text(BytesText::new(text))));
    }

    /// An element read by [`parse_tree`], written back: its text, or its children.
    pub fn tree(&mut self, element: &Element) {
        if element.children.is_empty() {
            return self.text(&element.name, &element.text);
        }
        self.element(&element.name, |w| {
            element.children.iter().for_each(|c| w.tree(c));
        });
    }

    /// The bytes written.
    pub fn finish(self) -> Vec<u8> {
        self.0.into_inner()
    }
}

#[cfg(test)]
#[path = "xml_tests.rs"]
mod tests;
