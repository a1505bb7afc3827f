//! Bucket CORS: the `CORSConfiguration` of PutBucketCors and GetBucketCors, and the rule matching
//! S3 applies to a preflight `OPTIONS` and to an actual cross-origin request.
//!
//! Implements the AWS S3 API reference (`API_PutBucketCors.html`, `API_CORSRule.html`) and the
//! user guide's "How does Amazon S3 evaluate the CORS configuration on a bucket?" (`cors.html`):
//! the first rule whose origin, method and (on a preflight) every requested header match wins.
//! Pure logic; the handlers read the body, store the configuration and answer. The answer headers
//! are those recorded against S3 in LocalStack's AWS-validated tests: an origin matched by `*` is
//! answered `*` without credentials, any other is echoed with credentials; the methods are the
//! rule's; `Max-Age` and `Expose-Headers` go on actual requests too.

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, HeaderName,
    VARY,
};
use http::{HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};

use crate::auth::policy::wildcard_match;
use crate::error::{S3Error, S3ErrorCode};
use crate::xml::{Element, XmlWriter};

/// "You can add up to 100 rules to the configuration" (`ManageCorsUsing.html`).
pub const MAX_RULES: usize = 100;
/// "The document is limited to 64 KB in size" (`API_PutBucketCors.html`): PutBucketCors's limit.
pub const MAX_BODY: usize = 64 * 1024;
/// What an `AllowedMethod` or an `Access-Control-Request-Method` may be, exactly as written.
pub const ALLOWED_METHODS: [&str; 5] = ["GET", "PUT", "POST", "DELETE", "HEAD"];
const VARY_VALUE: &str = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method";

/// One `<CORSRule>`, values as sent: GetBucketCors gives them back unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorsRule {
    pub id: Option<String>,
    pub allowed_origins: Vec<String>,
    pub allowed_methods: Vec<String>,
    pub allowed_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age_seconds: Option<u64>,
}

/// A bucket's `<CORSConfiguration>`: its rules, in the order evaluated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorsConfig {
    pub rules: Vec<CorsRule>,
}

/// The rule that allowed a request, reduced to what it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsMatch {
    /// The request's `Origin`, or `*` when the rule's matching origin is exactly `*`.
    pub allow_origin: String,
    pub allow_credentials: bool,
    pub allowed_methods: Vec<String>,
    /// The requested headers, lower-cased, in the order asked (preflight only).
    pub allowed_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age_seconds: Option<u64>,
}

/// S3's messages for a refused preflight (LocalStack's AWS-validated recordings). It checks, in
/// order: `Origin` (absent or empty: 400 `BadRequest`), the bucket and its configuration (403
/// `AccessForbidden`), `Access-Control-Request-Method` (400 `BadRequest`, "Invalid
/// Access-Control-Request-Method: X", `null` when absent), then the rules (403
/// `AccessForbidden` with the table's default wording, S3's typo "evalution" included).
pub const NO_ORIGIN: &str = "Insufficient information. Origin request header needed.";
pub const NO_SUCH_BUCKET: &str = "CORSResponse: Bucket not found";
pub const NOT_ENABLED: &str = "CORSResponse: CORS is not enabled for this bucket.";

fn malformed() -> S3Error {
    S3ErrorCode::MalformedXML.into()
}

fn invalid(message: String) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidRequest, message)
}

fn parse_rule(el: &Element) -> Result<CorsRule, S3Error> {
    if !el.text.trim().is_empty() {
        return Err(malformed());
    }
    let mut rule = CorsRule {
        id: None,
        allowed_origins: Vec::new(),
        allowed_methods: Vec::new(),
        allowed_headers: Vec::new(),
        expose_headers: Vec::new(),
        max_age_seconds: None,
    };
    for child in &el.children {
        if !child.children.is_empty() {
            return Err(malformed());
        }
        let text = child.text.clone();
        match child.name.as_str() {
            "ID" if rule.id.is_none() => rule.id = Some(text),
            "AllowedOrigin" => rule.allowed_origins.push(text),
            "AllowedMethod" => rule.allowed_methods.push(text),
            "AllowedHeader" => rule.allowed_headers.push(text),
            "ExposeHeader" => rule.expose_headers.push(text),
            // "A CORSRule can have at most one MaxAgeSeconds element", an integer.
            "MaxAgeSeconds" if rule.max_age_seconds.is_none() => {
                rule.max_age_seconds = Some(text.trim().parse().map_err(|_| malformed())?);
            }
            _ => return Err(malformed()),
        }
    }
    // "Each CORSRule must identify at least one origin and one method": the schema's, so
    // MalformedXML (versitygw #1863, from S3's answer).
    if rule.allowed_origins.is_empty() || rule.allowed_methods.is_empty() {
        return Err(malformed());
    }
    Ok(rule)
}

/// The checks past the schema, in S3's `InvalidRequest` wording.
fn validate(rule: &CorsRule) -> Result<(), S3Error> {
    let unsupported = |m: &&String| !ALLOWED_METHODS.contains(&m.as_str());
    if let Some(m) = rule.allowed_methods.iter().find(unsupported) {
        return Err(invalid(format!(
            "Found unsupported HTTP method in CORS config. Unsupported method is {m}"
        )));
    }
    let wildcards = |v: &&String| v.matches('*').count() > 1;
    for (name, values) in [
        ("AllowedOrigin", &rule.allowed_origins),
        ("AllowedHeader", &rule.allowed_headers),
    ] {
        if let Some(v) = values.iter().find(wildcards) {
            return Err(invalid(format!(
                "{name} \"{v}\" can not have more than one wildcard."
            )));
        }
    }
    Ok(())
}

impl CorsConfig {
    /// Parses and validates a PutBucketCors body (namespace optional). Schema errors (not XML,
    /// another root or element, no rule, a rule without origin or method) are `MalformedXML`,
    /// the rest `InvalidRequest`.
    pub fn parse_xml(body: &[u8]) -> Result<CorsConfig, S3Error> {
        let root = crate::xml::parse(body)?;
        if root.name != "CORSConfiguration" || !root.text.trim().is_empty() {
            return Err(malformed());
        }
        let rules = root
            .children
            .iter()
            .map(|el| match el.name.as_str() {
                "CORSRule" => parse_rule(el),
                _ => Err(malformed()),
            })
            .collect::<Result<Vec<_>, _>>()?;
        if rules.is_empty() {
            return Err(malformed());
        }
        // Ceph RGW's wording: S3's own for this case is recorded nowhere public.
        if rules.len() > MAX_RULES {
            return Err(invalid(format!(
                "The number of CORS rules should not exceed allowed limit of {MAX_RULES} rules."
            )));
        }
        rules.iter().try_for_each(validate)?;
        Ok(CorsConfig { rules })
    }

    /// The GetBucketCors body, members in the S3 API model's order.
    pub fn to_xml(&self) -> String {
        let mut w = XmlWriter::new();
        w.root("CORSConfiguration");
        for rule in &self.rules {
            w.open("CORSRule");
            if let Some(id) = &rule.id {
                w.element("ID", id);
            }
            for (name, values) in [
                ("AllowedHeader", &rule.allowed_headers),
                ("AllowedMethod", &rule.allowed_methods),
                ("AllowedOrigin", &rule.allowed_origins),
                ("ExposeHeader", &rule.expose_headers),
            ] {
                values.iter().for_each(|v| w.element(name, v));
            }
            if let Some(age) = rule.max_age_seconds {
                w.element("MaxAgeSeconds", &age.to_string());
            }
            w.close("CORSRule");
        }
        w.close("CORSConfiguration");
        w.finish()
    }

    /// What Lifeboat applies to a bucket without a configuration of its own: one rule for
    /// `origins` (`*` allowed), every method and header. No origins, no rules.
    pub fn server_default(origins: &[String]) -> CorsConfig {
        if origins.is_empty() {
            return CorsConfig { rules: Vec::new() };
        }
        let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let expose = [
            "ETag",
            "x-amz-request-id",
            "x-amz-version-id",
            "x-lifeboat-sync",
            "Content-Length",
            "Content-Type",
        ];
        CorsConfig {
            rules: vec![CorsRule {
                id: None,
                allowed_origins: origins.to_vec(),
                allowed_methods: strings(&ALLOWED_METHODS),
                allowed_headers: strings(&["*"]),
                expose_headers: strings(&expose),
                max_age_seconds: Some(3600),
            }],
        }
    }

    /// No rules: a preflight is answered as for a bucket without CORS.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The first rule allowing a preflight from `origin` for `method` whose allowed headers
    /// (case-insensitively, one `*` each) cover every one of `request_headers`.
    pub fn preflight(
        &self,
        origin: &str,
        method: &str,
        request_headers: &[String],
    ) -> Option<CorsMatch> {
        let asked: Vec<String> = request_headers
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect();
        self.rules.iter().find_map(|rule| {
            let allowed = |h: &String| {
                let mut patterns = rule.allowed_headers.iter();
                patterns.any(|p| wildcard_match(&p.to_ascii_lowercase(), h))
            };
            if !asked.iter().all(allowed) {
                return None;
            }
            CorsMatch::new(rule, origin, method, asked.clone())
        })
    }

    /// The first rule allowing an actual request from `origin` with `method`; S3 does not look
    /// at an actual request's headers.
    pub fn actual(&self, origin: &str, method: &str) -> Option<CorsMatch> {
        let mut rules = self.rules.iter();
        rules.find_map(|rule| CorsMatch::new(rule, origin, method, Vec::new()))
    }
}

impl CorsMatch {
    /// One rule's match: a method equal to one of its own, an origin matching one of its
    /// patterns (case-sensitive; one `*` matches any run, none too; anchored at both ends).
    fn new(rule: &CorsRule, origin: &str, method: &str, asked: Vec<String>) -> Option<Self> {
        if !rule.allowed_methods.iter().any(|m| m == method) {
            return None;
        }
        let pattern = rule
            .allowed_origins
            .iter()
            .find(|p| wildcard_match(p, origin))?;
        let any = pattern == "*";
        let allow_origin = if any { "*" } else { origin };
        let expose = rule.expose_headers.iter().filter(|h| !h.is_empty());
        Some(CorsMatch {
            allow_origin: allow_origin.to_owned(),
            allow_credentials: !any,
            allowed_methods: rule.allowed_methods.clone(),
            allowed_headers: asked,
            expose_headers: expose.cloned().collect(),
            max_age_seconds: rule.max_age_seconds,
        })
    }

    /// Sets the answer's CORS headers (`Access-Control-Allow-Headers` on a preflight only) and
    /// appends S3's `Vary` beside any already there.
    pub fn apply(&self, headers: &mut HeaderMap, preflight: bool) {
        let mut set = |name: HeaderName, values: &[String]| {
            if let Ok(v) = HeaderValue::from_str(&values.join(", ")) {
                headers.insert(name, v);
            }
        };
        set(
            ACCESS_CONTROL_ALLOW_ORIGIN,
            std::slice::from_ref(&self.allow_origin),
        );
        set(ACCESS_CONTROL_ALLOW_METHODS, &self.allowed_methods);
        if preflight && !self.allowed_headers.is_empty() {
            set(ACCESS_CONTROL_ALLOW_HEADERS, &self.allowed_headers);
        }
        if !self.expose_headers.is_empty() {
            set(ACCESS_CONTROL_EXPOSE_HEADERS, &self.expose_headers);
        }
        if let Some(age) = self.max_age_seconds {
            headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from(age));
        }
        if self.allow_credentials {
            headers.insert(
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        let vary = VARY_VALUE.as_bytes();
        if !headers.get_all(VARY).iter().any(|v| v.as_bytes() == vary) {
            headers.append(VARY, HeaderValue::from_static(VARY_VALUE));
        }
    }
}

/// The names in `Access-Control-Request-Headers`: split on commas, trimmed, lower-cased,
/// empties dropped (browsers send `a,b`, other clients `a, b`).
pub fn requested_headers(value: &str) -> Vec<String> {
    let names = value.split(',').map(|h| h.trim().to_ascii_lowercase());
    names.filter(|h| !h.is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `<CORSConfiguration>` of rules `(origin, methods, more elements)`.
    fn config(rules: &[(&str, &str, &str)]) -> Result<CorsConfig, S3Error> {
        let mut body = String::from("<CORSConfiguration>");
        for (origin, methods, more) in rules {
            body += &format!("<CORSRule><AllowedOrigin>{origin}</AllowedOrigin>");
            for m in methods.split(' ') {
                body += &format!("<AllowedMethod>{m}</AllowedMethod>");
            }
            body += &format!("{more}</CORSRule>");
        }
        CorsConfig::parse_xml(format!("{body}</CORSConfiguration>").as_bytes())
    }

    fn refused(rules: &[(&str, &str, &str)]) -> (S3ErrorCode, String) {
        let e = config(rules).unwrap_err();
        (e.code, e.message)
    }

    fn header(h: &HeaderMap, name: HeaderName) -> Option<&str> {
        h.get(name).and_then(|v| v.to_str().ok())
    }

    #[test]
    fn parses_the_api_put_bucket_cors_example_and_round_trips() {
        let body = br#"<CORSConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
          <CORSRule><AllowedOrigin>http://www.example.com</AllowedOrigin>
            <AllowedHeader>*</AllowedHeader><AllowedMethod>PUT</AllowedMethod>
            <AllowedMethod>POST</AllowedMethod><AllowedMethod>DELETE</AllowedMethod>
            <MaxAgeSeconds>3000</MaxAgeSeconds><ExposeHeader>x-amz-meta-a</ExposeHeader>
          </CORSRule>
          <CORSRule><ID>r2</ID><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>
          </CORSRule></CORSConfiguration>"#;
        let c = CorsConfig::parse_xml(body).unwrap();
        let r = &c.rules[0];
        assert_eq!(r.allowed_methods, ["PUT", "POST", "DELETE"]);
        assert_eq!((r.allowed_headers.len(), r.expose_headers.len()), (1, 1));
        assert_eq!(
            (r.allowed_headers[0].as_str(), r.max_age_seconds),
            ("*", Some(3000))
        );
        assert_eq!(
            (r.id.as_deref(), c.rules[1].id.as_deref()),
            (None, Some("r2"))
        );
        assert!(
            c.to_xml()
                .contains("<CORSConfiguration xmlns=\"http://s3.amazonaws.com/")
        );
        assert_eq!(c, CorsConfig::parse_xml(c.to_xml().as_bytes()).unwrap());
    }

    #[test]
    fn schema_errors_are_malformed_xml_as_localstack_and_versitygw_1863_recorded() {
        let age = "<MaxAgeSeconds>1</MaxAgeSeconds>";
        for more in [
            &format!("{age}{age}")[..],
            "<MaxAgeSeconds>-1</MaxAgeSeconds>",
            "<Bogus/>",
        ] {
            assert_eq!(
                refused(&[("*", "GET", more)]).0,
                S3ErrorCode::MalformedXML,
                "{more}"
            );
        }
        assert_eq!(refused(&[]).0, S3ErrorCode::MalformedXML, "no rule");
        let rule = |inner: &str| {
            format!("<CORSConfiguration><CORSRule>{inner}</CORSRule></CORSConfiguration>")
        };
        for bad in [
            rule(""),
            rule("<AllowedMethod>GET</AllowedMethod>"),
            rule("<AllowedOrigin>*</AllowedOrigin>"),
            "<CORSConfiguration>".to_owned(),
            "garbage".to_owned(),
            "<Cors/>".to_owned(),
        ] {
            let e = CorsConfig::parse_xml(bad.as_bytes()).unwrap_err();
            assert_eq!(e.code, S3ErrorCode::MalformedXML, "{bad}");
        }
    }

    #[test]
    fn invalid_rules_in_the_words_s3_answered_localstack_and_versitygw_1870() {
        for m in ["MYMETHOD", "OPTIONS", "get", ""] {
            let message =
                format!("Found unsupported HTTP method in CORS config. Unsupported method is {m}");
            assert_eq!(
                refused(&[("*", m, "")]),
                (S3ErrorCode::InvalidRequest, message)
            );
        }
        let origin = "AllowedOrigin \"*example*.com\" can not have more than one wildcard.";
        assert_eq!(refused(&[("*example*.com", "GET", "")]).1, origin);
        let headers = "<AllowedHeader>x-*-*</AllowedHeader>";
        let message = "AllowedHeader \"x-*-*\" can not have more than one wildcard.".to_owned();
        assert_eq!(
            refused(&[("*", "GET", headers)]),
            (S3ErrorCode::InvalidRequest, message)
        );
        assert_eq!(
            refused(&[("*", "GET", ""); MAX_RULES + 1]).0,
            S3ErrorCode::InvalidRequest
        );
        assert!(config(&[("*", "GET", ""); MAX_RULES]).is_ok());
        // An empty origin is accepted and given back (LocalStack test_put_cors_empty_origin).
        assert_eq!(
            config(&[("", "GET", "")]).unwrap().rules[0].allowed_origins,
            [""]
        );
    }

    #[test]
    fn origins_match_as_s3_tests_and_localstack_recorded() {
        let c = config(&[
            ("http://*.example.com", "GET PUT", ""),
            ("start*end", "GET", ""),
        ]);
        let c = c.unwrap();
        let hit = c.preflight("http://a.b.example.com", "PUT", &[]).unwrap();
        assert_eq!(hit.allow_origin, "http://a.b.example.com");
        assert!(hit.allow_credentials);
        for miss in [
            "https://a.example.com",
            "http://a.example.com/",
            "HTTP://a.example.com",
        ] {
            assert!(c.actual(miss, "GET").is_none(), "{miss}");
        }
        assert!(
            c.actual("startend", "GET").is_some(),
            "* matches nothing too"
        );
        assert!(c.actual("0start12end", "GET").is_none(), "anchored");
        assert!(c.actual("startend", "PUT").is_none());
        assert!(
            c.actual("http://a.example.com", "get").is_none(),
            "methods are exact"
        );
    }

    #[test]
    fn headers_match_without_case_and_the_first_full_match_wins() {
        let hs = "<AllowedHeader>x-amz-*</AllowedHeader><AllowedHeader>If-MATCH</AllowedHeader>";
        let c = config(&[
            ("http://a", "GET", hs),
            ("*", "GET PUT", ""),
            ("*", "GET", "<AllowedHeader>*</AllowedHeader>"),
        ]);
        let c = c.unwrap();
        let asked = requested_headers("X-Amz-Date, if-match,,x-AMZ-meta-a ");
        assert_eq!(asked, ["x-amz-date", "if-match", "x-amz-meta-a"]);
        let hit = c.preflight("http://a", "GET", &asked).unwrap();
        assert_eq!(
            (hit.allowed_headers, hit.allow_origin.as_str()),
            (asked.clone(), "http://a")
        );
        // Rule 1 lacks `authorization`, rule 2 allows no header (LocalStack
        // test_put_cors_default_values): rule 3 answers.
        let with_auth = [asked[0].clone(), "authorization".to_owned()];
        assert_eq!(
            c.preflight("http://a", "GET", &with_auth)
                .unwrap()
                .allow_origin,
            "*"
        );
        assert!(c.preflight("http://a", "PUT", &with_auth).is_none());
        assert!(c.preflight("http://a", "PUT", &[]).is_some());
    }

    #[test]
    fn answer_headers_as_localstack_recorded_them() {
        let max_age = "<MaxAgeSeconds>3000</MaxAgeSeconds><AllowedHeader>*</AllowedHeader>";
        let expose = "<ExposeHeader>x-amz-id-2</ExposeHeader><ExposeHeader>ETag</ExposeHeader>";
        let c = config(&[("https://l:4200", "GET PUT", max_age), ("*", "GET", expose)]).unwrap();
        let mut h = HeaderMap::new();
        h.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
        let asked = requested_headers("x-amz-request-payer, x-amz-expected-bucket-owner");
        let hit = c.preflight("https://l:4200", "PUT", &asked).unwrap();
        hit.apply(&mut h, true);
        hit.apply(&mut h, true);
        assert_eq!(
            header(&h, ACCESS_CONTROL_ALLOW_ORIGIN),
            Some("https://l:4200")
        );
        assert_eq!(header(&h, ACCESS_CONTROL_ALLOW_METHODS), Some("GET, PUT"));
        let allow = "x-amz-request-payer, x-amz-expected-bucket-owner";
        assert_eq!(header(&h, ACCESS_CONTROL_ALLOW_HEADERS), Some(allow));
        assert_eq!(header(&h, ACCESS_CONTROL_MAX_AGE), Some("3000"));
        assert_eq!(header(&h, ACCESS_CONTROL_ALLOW_CREDENTIALS), Some("true"));
        let vary: Vec<_> = h
            .get_all(VARY)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        assert_eq!(
            vary,
            ["Accept-Encoding", VARY_VALUE],
            "appended once, not clobbered"
        );

        let mut h = HeaderMap::new();
        c.actual("http://random:1234", "GET")
            .unwrap()
            .apply(&mut h, false);
        assert_eq!(header(&h, ACCESS_CONTROL_ALLOW_ORIGIN), Some("*"));
        assert_eq!(
            header(&h, ACCESS_CONTROL_EXPOSE_HEADERS),
            Some("x-amz-id-2, ETag")
        );
        assert_eq!(header(&h, ACCESS_CONTROL_ALLOW_CREDENTIALS), None);
        let mut h = HeaderMap::new();
        c.actual("https://l:4200", "GET")
            .unwrap()
            .apply(&mut h, false);
        assert_eq!(
            header(&h, ACCESS_CONTROL_MAX_AGE),
            Some("3000"),
            "actual requests too"
        );
        assert_eq!(header(&h, ACCESS_CONTROL_ALLOW_HEADERS), None);
    }

    #[test]
    fn server_default_allows_the_listed_origins() {
        assert!(CorsConfig::server_default(&[]).is_empty());
        let c = CorsConfig::server_default(&["*".to_owned()]);
        let hit = c.preflight("http://x", "DELETE", &requested_headers("authorization"));
        assert!(
            hit.unwrap()
                .expose_headers
                .iter()
                .any(|h| h == "x-lifeboat-sync")
        );
        assert_eq!(c, CorsConfig::parse_xml(c.to_xml().as_bytes()).unwrap());
    }

    proptest::proptest! {
        #[test]
        fn cors_parser_never_panics(s in "\\PC{0,200}") {
            let _ = CorsConfig::parse_xml(s.as_bytes());
            let _ = requested_headers(&s);
        }
    }
}
