//! XML bodies: a small writer for S3 responses and size-limited parsing of request bodies.
//!
//! Response shapes follow the AWS S3 API reference for each operation (e.g. `API_ListObjectsV2.html`);
//! request bodies (e.g. `CreateBucketConfiguration`) are read through a size limit and parsed with
//! quick-xml, never with an unbounded buffer.

use quick_xml::events::Event;

use crate::limits::MAX_XML_DEPTH;

/// Why a request body is not the XML expected; `error.rs` maps both to `MalformedXML`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error("the XML is not well-formed")]
    Malformed,
    #[error("unexpected root element {0}")]
    UnexpectedRoot(String),
}

/// The S3 namespace every response root carries.
pub const S3_NS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// Appends escaped XML text.
pub fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot carry literally are written as references.
            c if (c as u32) < 0x20 && c != '\t' && c != '\n' => {
                out.push_str(&format!("&#x{:X};", c as u32));
            }
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

/// A minimal streaming XML writer: elements in the order they are written.
pub struct XmlWriter {
    out: String,
}

impl Default for XmlWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl XmlWriter {
    pub fn new() -> Self {
        Self {
            out: String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"),
        }
    }

    /// Opens the root element with the S3 namespace.
    pub fn root(&mut self, name: &str) {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push_str(" xmlns=\"");
        self.out.push_str(S3_NS);
        self.out.push_str("\">");
    }

    pub fn open(&mut self, name: &str) {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
    }

    pub fn close(&mut self, name: &str) {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }

    /// Appends markup as is (for elements with attributes); the caller writes valid XML.
    pub fn text_raw(&mut self, markup: &str) {
        self.out.push_str(markup);
    }

    pub fn text(&mut self, text: &str) {
        escape_into(&mut self.out, text);
    }

    pub fn element(&mut self, name: &str, text: &str) {
        self.open(name);
        escape_into(&mut self.out, text);
        self.close(name);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// A parsed XML element: local name, text content and child elements.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |c| c.name == name)
    }

    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }
}

fn resolve_entity(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        n => {
            let code = if let Some(hex) = n.strip_prefix("#x").or_else(|| n.strip_prefix("#X")) {
                u32::from_str_radix(hex, 16).ok()?
            } else {
                n.strip_prefix('#')?.parse().ok()?
            };
            char::from_u32(code)
        }
    }
}

/// Parses a (size-limited) XML request body into a tree; any syntax error is `MalformedXML`.
pub fn parse(body: &[u8]) -> Result<Element, XmlError> {
    let malformed = || XmlError::Malformed;
    let text = std::str::from_utf8(body).map_err(|_| malformed())?;
    let mut reader = quick_xml::Reader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        match reader.read_event().map_err(|_| malformed())? {
            Event::Start(e) => {
                if root.is_some() || stack.len() >= MAX_XML_DEPTH {
                    return Err(malformed());
                }
                stack.push(Element {
                    name: e.local_name().as_ref().to_owned(),
                    ..Element::default()
                });
            }
            Event::Empty(e) => {
                let el = Element {
                    name: e.local_name().as_ref().to_owned(),
                    ..Element::default()
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None if root.is_none() => root = Some(el),
                    None => return Err(malformed()),
                }
            }
            Event::End(_) => {
                let mut el = stack.pop().ok_or_else(malformed)?;
                if !el.children.is_empty() {
                    el.text = el.text.trim().to_owned();
                }
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                if let Some(cur) = stack.last_mut() {
                    cur.text.push_str(&t.into_inner());
                } else if !t.into_inner().trim().is_empty() {
                    return Err(malformed());
                }
            }
            Event::CData(t) => {
                let cur = stack.last_mut().ok_or_else(malformed)?;
                cur.text.push_str(&t.into_inner());
            }
            Event::GeneralRef(r) => {
                let cur = stack.last_mut().ok_or_else(malformed)?;
                let c = resolve_entity(&r.into_inner()).ok_or_else(malformed)?;
                cur.text.push(c);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err(malformed());
    }
    root.ok_or_else(malformed)
}

/// Parses `CreateBucketConfiguration` and returns its `LocationConstraint`, if any.
pub fn parse_location_constraint(body: &[u8]) -> Result<Option<String>, XmlError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let root = parse(body)?;
    if root.name != "CreateBucketConfiguration" {
        return Err(XmlError::UnexpectedRoot(root.name));
    }
    Ok(root
        .child_text("LocationConstraint")
        .map(|t| t.trim().to_owned())
        .filter(|l| !l.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_control_characters() {
        let mut s = String::new();
        escape_into(&mut s, "a<b>&\"'\r\u{1}");
        assert_eq!(s, "a&lt;b&gt;&amp;&quot;&apos;&#xD;&#x1;");
    }

    #[test]
    fn location_constraint_from_the_aws_example() {
        let body = br#"<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
            <LocationConstraint>eu-west-1</LocationConstraint>
        </CreateBucketConfiguration>"#;
        assert_eq!(
            parse_location_constraint(body).ok().flatten().as_deref(),
            Some("eu-west-1")
        );
        assert!(matches!(parse_location_constraint(b""), Ok(None)));
        assert!(matches!(
            parse_location_constraint(b"<CreateBucketConfiguration/>"),
            Ok(None)
        ));
        assert!(parse_location_constraint(b"<Nope>").is_err());
        assert!(parse_location_constraint(b"<CreateBucketConfiguration>").is_err());
    }

    #[test]
    fn tree_parsing_resolves_entities_and_refuses_garbage() {
        let body =
            b"<Delete><Quiet>true</Quiet><Object><Key>a &amp; b&#x20;&lt;c&gt;</Key></Object>\
                     <Object><Key><![CDATA[x<y]]></Key></Object></Delete>";
        let root = parse(body).unwrap();
        assert_eq!(root.name, "Delete");
        assert_eq!(root.child_text("Quiet"), Some("true"));
        let keys: Vec<_> = root
            .children_named("Object")
            .filter_map(|o| o.child_text("Key"))
            .collect();
        assert_eq!(keys, ["a & b <c>", "x<y"]);
        for bad in [
            &b"<a><b></a>"[..],
            b"<a>",
            b"",
            b"<a/><b/>",
            b"text",
            b"<a>&bogus;</a>",
        ] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    proptest::proptest! {
        #[test]
        fn xml_parser_never_panics(s in "\\PC{0,200}") {
            let _ = parse(s.as_bytes());
            let _ = parse_location_constraint(s.as_bytes());
        }
    }
}
