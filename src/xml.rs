//! XML bodies: a small writer for S3 responses and size-limited parsing of request bodies.
//!
//! Response shapes follow the AWS S3 API reference for each operation (e.g. `API_ListObjectsV2.html`);
//! request bodies (e.g. `CreateBucketConfiguration`) are read through a size limit and parsed with
//! quick-xml, never with an unbounded buffer.

use quick_xml::events::Event;

use crate::error::{S3Error, S3ErrorCode};

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

/// Parses `CreateBucketConfiguration` and returns its `LocationConstraint`, if any.
pub fn parse_location_constraint(body: &[u8]) -> Result<Option<String>, S3Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let mut reader = quick_xml::Reader::from_reader(body);
    reader.config_mut().trim_text(true);
    let mut path: Vec<String> = Vec::new();
    let mut location = None;
    let mut saw_root = false;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                let name = e.local_name().as_ref().to_owned();
                if path.is_empty() {
                    if name != "CreateBucketConfiguration" {
                        return Err(S3ErrorCode::MalformedXML.into());
                    }
                    saw_root = true;
                }
                path.push(name);
            }
            Ok(Event::Empty(e)) => {
                if path.is_empty() {
                    if e.local_name().as_ref() != "CreateBucketConfiguration" {
                        return Err(S3ErrorCode::MalformedXML.into());
                    }
                    saw_root = true;
                }
            }
            Ok(Event::End(_)) => {
                path.pop();
            }
            Ok(Event::Text(t)) => {
                if path.len() == 2 && path[1] == "LocationConstraint" {
                    location = Some(t.into_inner().trim().to_owned());
                }
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(_) => return Err(S3ErrorCode::MalformedXML.into()),
        }
    }
    if !saw_root || !path.is_empty() {
        return Err(S3ErrorCode::MalformedXML.into());
    }
    Ok(location.filter(|l| !l.is_empty()))
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
}
