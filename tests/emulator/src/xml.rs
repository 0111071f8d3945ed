//! A small XML writer and reader for the S3 documents the emulator sends and receives.

/// Escapes text for element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters are not allowed raw in XML 1.0; S3 sends them as references.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {
                out.push_str(&format!("&#x{:X};", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

/// Builds an XML document.
pub struct Writer {
    out: String,
}

impl Writer {
    /// Starts a document whose root element carries the S3 namespace.
    pub fn new(root: &str) -> Writer {
        Writer {
            out: format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{root} xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
            ),
        }
    }

    /// `<name>escaped text</name>`
    pub fn elem(&mut self, name: &str, text: &str) -> &mut Writer {
        self.out
            .push_str(&format!("<{name}>{}</{name}>", escape(text)));
        self
    }

    pub fn open(&mut self, name: &str) -> &mut Writer {
        self.out.push_str(&format!("<{name}>"));
        self
    }

    pub fn close(&mut self, name: &str) -> &mut Writer {
        self.out.push_str(&format!("</{name}>"));
        self
    }

    pub fn finish(mut self, root: &str) -> String {
        self.out.push_str(&format!("</{root}>"));
        self.out
    }
}

/// The S3 error document.
pub fn error_body(
    code: &str,
    message: &str,
    request_id: &str,
    extra: &[(String, String)],
) -> String {
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>");
    s.push_str(&format!(
        "<Code>{}</Code><Message>{}</Message>",
        escape(code),
        escape(message)
    ));
    for (k, v) in extra {
        s.push_str(&format!("<{k}>{}</{k}>", escape(v)));
    }
    s.push_str(&format!(
        "<RequestId>{}</RequestId><HostId>{}</HostId></Error>",
        escape(request_id),
        escape(&format!("s3x-emulator/{request_id}"))
    ));
    s
}

/// One element of a parsed document: its name (without namespace prefix), its own text, and
/// its children.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Element {
    pub name: String,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    /// The first child with this name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// All children with this name.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// Text of the first child with this name.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }
}

fn unescape(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let end = rest[i..].find(';').ok_or("unterminated entity")? + i;
        let entity = &rest[i + 1..end];
        let c = match entity {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            e if e.starts_with("#x") || e.starts_with("#X") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32)
                .ok_or("bad character reference")?,
            e if e.starts_with('#') => e[1..]
                .parse::<u32>()
                .ok()
                .and_then(char::from_u32)
                .ok_or("bad character reference")?,
            e => return Err(format!("unknown entity &{e};")),
        };
        out.push(c);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn local_name(tag: &str) -> String {
    let name = tag.split_whitespace().next().unwrap_or("");
    name.rsplit(':').next().unwrap_or(name).to_string()
}

/// Parses a document into its root element. Handles what SDKs send (DeleteObjects,
/// CompleteMultipartUpload): elements, text, the five named entities and numeric character
/// references, an XML declaration and comments.
pub fn parse(doc: &str) -> Result<Element, String> {
    let mut stack: Vec<Element> = vec![Element::default()];
    let mut rest = doc;
    loop {
        let Some(lt) = rest.find('<') else {
            if !rest.trim().is_empty() {
                return Err("text after the root element".into());
            }
            break;
        };
        let text = &rest[..lt];
        if stack.len() > 1 {
            let top = stack.last_mut().expect("stack is never empty");
            top.text.push_str(&unescape(text)?);
        } else if !text.trim().is_empty() {
            return Err("text outside the root element".into());
        }
        rest = &rest[lt..];
        if let Some(r) = rest.strip_prefix("<?") {
            rest = &r[r.find("?>").ok_or("unterminated declaration")? + 2..];
        } else if let Some(r) = rest.strip_prefix("<!--") {
            rest = &r[r.find("-->").ok_or("unterminated comment")? + 3..];
        } else if let Some(r) = rest.strip_prefix("<![CDATA[") {
            let end = r.find("]]>").ok_or("unterminated CDATA")?;
            if let Some(top) = stack.last_mut() {
                top.text.push_str(&r[..end]);
            }
            rest = &r[end + 3..];
        } else if let Some(r) = rest.strip_prefix("</") {
            let end = r.find('>').ok_or("unterminated end tag")?;
            let name = local_name(&r[..end]);
            let done = stack.pop().ok_or("unbalanced end tag")?;
            if done.name != name || stack.is_empty() {
                return Err(format!("mismatched end tag </{name}>"));
            }
            stack.last_mut().expect("checked above").children.push(done);
            rest = &r[end + 1..];
        } else {
            let end = rest.find('>').ok_or("unterminated start tag")?;
            let inner = &rest[1..end];
            let (inner, empty) = match inner.strip_suffix('/') {
                Some(i) => (i, true),
                None => (inner, false),
            };
            let el = Element {
                name: local_name(inner),
                ..Element::default()
            };
            if el.name.is_empty() {
                return Err("empty tag name".into());
            }
            if empty {
                stack
                    .last_mut()
                    .expect("stack is never empty")
                    .children
                    .push(el);
            } else {
                stack.push(el);
            }
            rest = &rest[end + 1..];
        }
    }
    if stack.len() != 1 {
        return Err("unclosed element".into());
    }
    let mut doc_root = stack.pop().expect("one element left");
    if doc_root.children.len() != 1 {
        return Err("expected exactly one root element".into());
    }
    Ok(doc_root.children.remove(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_delete_document() {
        let doc = r#"<?xml version="1.0" encoding="UTF-8"?>
<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Quiet>true</Quiet>
<Object><Key>a&amp;b &lt;c&gt; &#x263A;</Key></Object><Object><Key>x</Key></Object></Delete>"#;
        let root = parse(doc).unwrap();
        assert_eq!(root.name, "Delete");
        assert_eq!(root.child_text("Quiet"), Some("true"));
        let keys: Vec<_> = root
            .all("Object")
            .filter_map(|o| o.child_text("Key"))
            .collect();
        assert_eq!(keys, ["a&b <c> \u{263A}", "x"]);
        assert!(parse("<a><b></a>").is_err());
        assert!(parse("<a></a><b/>").is_err());
    }

    #[test]
    fn escapes() {
        assert_eq!(escape("a<&>\"'\u{1}"), "a&lt;&amp;&gt;&quot;&apos;&#x1;");
        let body = error_body("NoSuchKey", "gone", "RID", &[("Key".into(), "k".into())]);
        assert!(body.contains(
            "<Code>NoSuchKey</Code><Message>gone</Message><Key>k</Key><RequestId>RID</RequestId>"
        ));
    }
}
