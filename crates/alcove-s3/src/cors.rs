//! Bucket CORS as S3 has it, in one place: checking a configuration against AWS's rules
//! (PutBucketCors), and matching a browser's request against a bucket's rules — a preflight
//! (`OPTIONS` with `Origin` and `Access-Control-Request-*`) or an actual request that carries
//! `Origin` — into the `Access-Control-*` headers of the answer.
//!
//! Protocol logic only: it may not touch storage (callers read and store the rules, as
//! [`alcove_ufs::CorsRule`]s) and looks at nothing of a request but its headers.

use alcove_ufs::CorsRule;
use http::header::{
    HeaderName, ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS,
    ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use http::{HeaderMap, HeaderValue, StatusCode};
use s3s::dto::{CORSConfiguration, CORSRule};
use s3s::{S3Error, S3ErrorCode};

/// AWS's limit on the rules of one configuration.
pub const MAX_RULES: usize = 100;
/// The only methods a rule may allow.
const METHODS: [&str; 5] = ["GET", "PUT", "POST", "DELETE", "HEAD"];
/// What every answer under a CORS configuration varies by.
const VARY_BY: &str = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method";

/// Why a CORS configuration was refused (nothing is stored then).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A rule without an AllowedOrigin or an AllowedMethod (s3s lets an empty list through).
    #[error("The XML you provided was not well-formed or did not validate against our published schema")]
    Incomplete,
    #[error("The number of CORS rules should not exceed allowed limit of 100 rules.")]
    TooManyRules,
    #[error("Found unsupported HTTP method in CORS config. Unsupported method is {0}")]
    UnsupportedMethod(String),
    #[error("AllowedOrigin \"{0}\" can not have more than one wildcard.")]
    OriginWildcards(String),
    #[error("AllowedHeader \"{0}\" can not have more than one wildcard.")]
    HeaderWildcards(String),
    #[error("ExposeHeader \"{0}\" contains wildcard. We currently do not support wildcard for ExposeHeader.")]
    ExposeWildcard(String),
}

impl From<ConfigError> for S3Error {
    fn from(e: ConfigError) -> Self {
        let code = match e {
            ConfigError::Incomplete => S3ErrorCode::MalformedXML,
            _ => S3ErrorCode::InvalidRequest,
        };
        S3Error::with_message(code, e.to_string())
    }
}

/// Why a preflight request is not answered with the `Access-Control-*` headers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreflightError {
    #[error("Insufficient information. Origin request header needed.")]
    MissingOrigin,
    #[error("Invalid Access-Control-Request-Method: null")]
    MissingMethod,
    /// No configuration, or no rule allows the origin, the method and every requested header.
    #[error("CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headerss are not whitelisted by the resource's CORS spec.")]
    Forbidden,
}

impl From<PreflightError> for S3Error {
    fn from(e: PreflightError) -> Self {
        let (code, status): (&[u8], _) = match e {
            PreflightError::MissingOrigin | PreflightError::MissingMethod => (b"BadRequest", StatusCode::BAD_REQUEST),
            PreflightError::Forbidden => (b"AccessForbidden", StatusCode::FORBIDDEN),
        };
        let code = S3ErrorCode::from_bytes(code).unwrap_or(S3ErrorCode::InvalidRequest);
        let mut err = S3Error::with_message(code, e.to_string());
        err.set_status_code(status);
        err
    }
}

/// Checks a configuration a client puts and turns it into the rules to store.
pub fn rules_from_config(config: CORSConfiguration) -> Result<Vec<CorsRule>, ConfigError> {
    if config.cors_rules.len() > MAX_RULES {
        return Err(ConfigError::TooManyRules);
    }
    let rules: Vec<CorsRule> = config.cors_rules.into_iter().map(rule_from_dto).collect();
    if rules.is_empty() {
        return Err(ConfigError::Incomplete);
    }
    rules.iter().try_for_each(check_rule)?;
    Ok(rules)
}

fn rule_from_dto(rule: CORSRule) -> CorsRule {
    CorsRule {
        id: rule.id,
        allowed_origins: rule.allowed_origins,
        allowed_methods: rule.allowed_methods,
        allowed_headers: rule.allowed_headers.unwrap_or_default(),
        expose_headers: rule.expose_headers.unwrap_or_default(),
        max_age_seconds: rule.max_age_seconds,
    }
}

fn check_rule(rule: &CorsRule) -> Result<(), ConfigError> {
    if rule.allowed_origins.is_empty() || rule.allowed_methods.is_empty() {
        return Err(ConfigError::Incomplete);
    }
    if let Some(m) = rule.allowed_methods.iter().find(|m| !METHODS.contains(&m.as_str())) {
        return Err(ConfigError::UnsupportedMethod(m.clone()));
    }
    let wildcards = |s: &String| s.matches('*').count();
    if let Some(o) = rule.allowed_origins.iter().find(|o| wildcards(o) > 1) {
        return Err(ConfigError::OriginWildcards(o.clone()));
    }
    if let Some(h) = rule.allowed_headers.iter().find(|h| wildcards(h) > 1) {
        return Err(ConfigError::HeaderWildcards(h.clone()));
    }
    if let Some(h) = rule.expose_headers.iter().find(|h| wildcards(h) > 0) {
        return Err(ConfigError::ExposeWildcard(h.clone()));
    }
    Ok(())
}

/// The stored rules in GetBucketCors's shape.
pub fn rules_to_dto(rules: Vec<CorsRule>) -> Vec<CORSRule> {
    rules
        .into_iter()
        .map(|r| CORSRule {
            id: r.id,
            allowed_origins: r.allowed_origins,
            allowed_methods: r.allowed_methods,
            allowed_headers: (!r.allowed_headers.is_empty()).then_some(r.allowed_headers),
            expose_headers: (!r.expose_headers.is_empty()).then_some(r.expose_headers),
            max_age_seconds: r.max_age_seconds,
        })
        .collect()
}

/// `pattern` with at most one `*` (any run of characters) against `value`, ignoring ASCII case
/// (origins' schemes and hosts, and header names, are case-insensitive).
pub(crate) fn wildcard_match(pattern: &str, value: &str) -> bool {
    let (pattern, value) = (pattern.to_ascii_lowercase(), value.to_ascii_lowercase());
    match pattern.split_once('*') {
        None => pattern == value,
        Some((head, tail)) => {
            value.len() >= head.len() + tail.len() && value.starts_with(head) && value.ends_with(tail)
        }
    }
}

/// What a browser asks of a bucket: from where, with which method, sending which headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsRequest {
    pub origin: String,
    pub method: String,
    /// `Access-Control-Request-Headers` of a preflight; empty for an actual request.
    pub headers: Vec<String>,
}

impl CorsRequest {
    /// A preflight's question, from its `Origin` and `Access-Control-Request-*` headers.
    pub fn preflight(headers: &HeaderMap) -> Result<Self, PreflightError> {
        let text = |name: &HeaderName| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
        let origin = text(&ORIGIN).filter(|o| !o.is_empty()).ok_or(PreflightError::MissingOrigin)?;
        let method =
            text(&ACCESS_CONTROL_REQUEST_METHOD).filter(|m| !m.is_empty()).ok_or(PreflightError::MissingMethod)?;
        let requested = headers
            .get_all(ACCESS_CONTROL_REQUEST_HEADERS)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(str::to_owned)
            .collect();
        Ok(Self { origin: origin.to_owned(), method: method.to_owned(), headers: requested })
    }

    /// An actual request's question: `None` when it carries no `Origin` (not a CORS request).
    pub fn actual(method: &http::Method, headers: &HeaderMap) -> Option<Self> {
        let origin = headers.get(ORIGIN)?.to_str().ok()?.trim();
        (!origin.is_empty()).then(|| Self {
            origin: origin.to_owned(),
            method: method.to_string(),
            headers: Vec::new(),
        })
    }

    /// The first rule that allows this origin, this method and every requested header (AWS's
    /// order of evaluation), and the origin pattern that matched.
    fn matching<'r>(&self, rules: &'r [CorsRule]) -> Option<(&'r CorsRule, &'r str)> {
        rules.iter().find_map(|rule| {
            let origin = rule.allowed_origins.iter().find(|o| wildcard_match(o, &self.origin))?;
            let method = rule.allowed_methods.contains(&self.method);
            let headers =
                self.headers.iter().all(|h| rule.allowed_headers.iter().any(|allowed| wildcard_match(allowed, h)));
            (method && headers).then_some((rule, origin.as_str()))
        })
    }

    /// The headers a preflight is answered with (status 200), or why it is refused.
    pub fn answer_preflight(&self, rules: Option<&[CorsRule]>) -> Result<HeaderMap, PreflightError> {
        let (rule, origin) = rules.and_then(|r| self.matching(r)).ok_or(PreflightError::Forbidden)?;
        let mut out = self.allow(rule, origin);
        if !self.headers.is_empty() {
            insert_joined(&mut out, ACCESS_CONTROL_ALLOW_HEADERS, &self.headers);
        }
        Ok(out)
    }

    /// The headers an actual response under `rules` gets: the `Access-Control-*` set of the
    /// first matching rule, and `Vary` whenever the bucket has rules (the answer depends on
    /// `Origin`, so caches must key on it).
    pub fn answer_actual(&self, rules: &[CorsRule]) -> HeaderMap {
        match self.matching(rules) {
            Some((rule, origin)) => self.allow(rule, origin),
            None => HeaderMap::from_iter([(VARY, HeaderValue::from_static(VARY_BY))]),
        }
    }

    /// The `Access-Control-*` headers of a rule matched with the origin pattern `origin`. A rule
    /// open to every origin (`*`) answers `*` and no credentials, as AWS does.
    fn allow(&self, rule: &CorsRule, origin: &str) -> HeaderMap {
        let mut out = HeaderMap::new();
        if origin == "*" {
            out.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        } else if let Ok(v) = HeaderValue::from_str(&self.origin) {
            out.insert(ACCESS_CONTROL_ALLOW_ORIGIN, v);
            out.insert(ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        }
        insert_joined(&mut out, ACCESS_CONTROL_ALLOW_METHODS, &rule.allowed_methods);
        if !rule.expose_headers.is_empty() {
            insert_joined(&mut out, ACCESS_CONTROL_EXPOSE_HEADERS, &rule.expose_headers);
        }
        if let Some(age) = rule.max_age_seconds {
            out.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from(age));
        }
        out.insert(VARY, HeaderValue::from_static(VARY_BY));
        out
    }
}

/// `a, b, c` as one header; a value that cannot be a header (stored text is the client's) is
/// left out rather than failing the answer.
fn insert_joined(out: &mut HeaderMap, name: HeaderName, values: &[String]) {
    if let Ok(v) = HeaderValue::from_str(&values.join(", ")) {
        out.insert(name, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(origins: &[&str], methods: &[&str], headers: &[&str]) -> CorsRule {
        let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        CorsRule {
            allowed_origins: own(origins),
            allowed_methods: own(methods),
            allowed_headers: own(headers),
            ..Default::default()
        }
    }

    fn config(rules: Vec<CorsRule>) -> CORSConfiguration {
        CORSConfiguration { cors_rules: rules_to_dto(rules) }
    }

    fn ask(origin: &str, method: &str, headers: &[&str]) -> CorsRequest {
        CorsRequest {
            origin: origin.into(),
            method: method.into(),
            headers: headers.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn wildcards_match_one_run_of_characters() {
        assert!(wildcard_match("https://*.example.com", "https://a.b.example.com"));
        assert!(wildcard_match("https://*.example.com", "HTTPS://App.Example.com"));
        assert!(!wildcard_match("https://*.example.com", "https://example.com"));
        assert!(!wildcard_match("https://*.example.com", "https://evil.com/.example.com.x"));
        assert!(wildcard_match("*", "null"));
        assert!(wildcard_match("x-amz-*", "X-Amz-Date"));
        assert!(!wildcard_match("ab*ba", "aba"), "head and tail may not overlap");
    }

    #[test]
    fn configurations_are_checked_as_aws_does() {
        assert_eq!(rules_from_config(config(vec![])), Err(ConfigError::Incomplete));
        assert_eq!(rules_from_config(config(vec![rule(&[], &["GET"], &[])])), Err(ConfigError::Incomplete));
        assert_eq!(
            rules_from_config(config(vec![rule(&["*"], &["GET", "PATCH"], &[])])),
            Err(ConfigError::UnsupportedMethod("PATCH".into()))
        );
        assert_eq!(
            rules_from_config(config(vec![rule(&["https://*.*.com"], &["GET"], &[])])),
            Err(ConfigError::OriginWildcards("https://*.*.com".into()))
        );
        assert_eq!(
            rules_from_config(config(vec![rule(&["*"], &["GET"], &["x-*-*"])])),
            Err(ConfigError::HeaderWildcards("x-*-*".into()))
        );
        let mut exposing = rule(&["*"], &["GET"], &[]);
        exposing.expose_headers = vec!["x-amz-*".into()];
        assert_eq!(rules_from_config(config(vec![exposing])), Err(ConfigError::ExposeWildcard("x-amz-*".into())));
        let many = vec![rule(&["*"], &["GET"], &[]); MAX_RULES + 1];
        assert_eq!(rules_from_config(config(many)), Err(ConfigError::TooManyRules));
        let most = vec![rule(&["*"], &["GET"], &["*"]); MAX_RULES];
        assert_eq!(rules_from_config(config(most.clone())), Ok(most));
    }

    #[test]
    fn errors_have_aws_codes_and_statuses() {
        let e = S3Error::from(ConfigError::UnsupportedMethod("PATCH".into()));
        assert_eq!(*e.code(), S3ErrorCode::InvalidRequest);
        assert_eq!(S3Error::from(ConfigError::Incomplete).code(), &S3ErrorCode::MalformedXML);
        let e = S3Error::from(PreflightError::Forbidden);
        assert_eq!((e.code().as_str(), e.status_code()), ("AccessForbidden", Some(StatusCode::FORBIDDEN)));
        let e = S3Error::from(PreflightError::MissingOrigin);
        assert_eq!((e.code().as_str(), e.status_code()), ("BadRequest", Some(StatusCode::BAD_REQUEST)));
    }

    #[test]
    fn preflights_parse_their_headers() {
        let mut h = HeaderMap::new();
        assert_eq!(CorsRequest::preflight(&h), Err(PreflightError::MissingOrigin));
        h.insert(ORIGIN, HeaderValue::from_static("https://a.example.com"));
        assert_eq!(CorsRequest::preflight(&h), Err(PreflightError::MissingMethod));
        h.insert(ACCESS_CONTROL_REQUEST_METHOD, HeaderValue::from_static("PUT"));
        h.append(ACCESS_CONTROL_REQUEST_HEADERS, HeaderValue::from_static("Content-Type, x-amz-date"));
        h.append(ACCESS_CONTROL_REQUEST_HEADERS, HeaderValue::from_static("x-amz-meta-a,"));
        let asked = CorsRequest::preflight(&h).unwrap();
        assert_eq!(asked, ask("https://a.example.com", "PUT", &["Content-Type", "x-amz-date", "x-amz-meta-a"]));
    }

    #[test]
    fn the_first_rule_allowing_everything_asked_answers() {
        let mut narrow = rule(&["https://*.example.com"], &["GET", "PUT"], &["content-type", "x-amz-*"]);
        narrow.expose_headers = vec!["ETag".into(), "x-amz-request-id".into()];
        narrow.max_age_seconds = Some(600);
        let rules = vec![narrow, rule(&["*"], &["GET"], &[])];

        let h = ask("https://app.example.com", "PUT", &["Content-Type", "X-Amz-Date"]).answer_preflight(Some(&rules));
        let h = h.unwrap();
        assert_eq!(h[ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example.com");
        assert_eq!(h[ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
        assert_eq!(h[ACCESS_CONTROL_ALLOW_METHODS], "GET, PUT");
        assert_eq!(h[ACCESS_CONTROL_ALLOW_HEADERS], "Content-Type, X-Amz-Date");
        assert_eq!(h[ACCESS_CONTROL_EXPOSE_HEADERS], "ETag, x-amz-request-id");
        assert_eq!(h[ACCESS_CONTROL_MAX_AGE], "600");
        assert_eq!(h[VARY], VARY_BY);

        // Another origin falls through to the open rule: `*`, no credentials.
        let h = ask("https://other.org", "GET", &[]).answer_preflight(Some(&rules)).unwrap();
        assert_eq!(h[ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert!(!h.contains_key(ACCESS_CONTROL_ALLOW_CREDENTIALS));

        let refused = [
            ask("https://other.org", "PUT", &[]),
            ask("https://app.example.com", "DELETE", &[]),
            ask("https://app.example.com", "PUT", &["authorization"]),
            ask("https://other.org", "GET", &["x-custom"]),
        ];
        for asked in refused {
            assert_eq!(asked.answer_preflight(Some(&rules)), Err(PreflightError::Forbidden), "{asked:?}");
        }
        assert_eq!(ask("https://a.org", "GET", &[]).answer_preflight(None), Err(PreflightError::Forbidden));
    }

    #[test]
    fn actual_requests_get_headers_only_from_a_matching_rule() {
        let rules = vec![rule(&["https://*.example.com"], &["GET", "HEAD"], &[])];
        let mut h = HeaderMap::new();
        assert_eq!(CorsRequest::actual(&http::Method::GET, &h), None, "no Origin, no CORS");
        h.insert(ORIGIN, HeaderValue::from_static("https://app.example.com"));
        let asked = CorsRequest::actual(&http::Method::GET, &h).unwrap();
        let out = asked.answer_actual(&rules);
        assert_eq!(out[ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example.com");
        assert_eq!(out[VARY], VARY_BY);
        let out = CorsRequest::actual(&http::Method::PUT, &h).unwrap().answer_actual(&rules);
        assert!(!out.contains_key(ACCESS_CONTROL_ALLOW_ORIGIN), "PUT is not allowed");
        assert_eq!(out[VARY], VARY_BY, "but the answer still varies by Origin");
    }
}
