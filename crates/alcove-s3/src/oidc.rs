//! OIDC tokens: verifies a JWT (RS256 or ES256) against the keys of the identity provider's
//! JWKS, and its issuer, audience, expiry and not-before time, and says which user (and groups)
//! it names. Used for `Authorization: Bearer <JWT>` requests and by STS
//! `AssumeRoleWithWebIdentity` ([`crate::sts`]).
//!
//! The JWKS comes from `jwks_url`, or from the `jwks_uri` of the issuer's discovery document
//! (`<issuer>/.well-known/openid-configuration`). It is fetched on first use, again when it is an
//! hour old, and again when a token names a key it does not hold (a rotation) — but not more
//! often than `refetch_interval`, so tokens with made-up key ids cannot make the worker hammer
//! the provider.

use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

/// How long a fetched JWKS is used before it is fetched again.
const MAX_KEY_AGE: Duration = Duration::from_secs(3600);
/// How long a fetch from the provider may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest JWKS or discovery document read.
const MAX_DOCUMENT: usize = 1 << 20;

/// `[auth.oidc]`, checked.
#[derive(Debug, Clone)]
pub struct OidcSettings {
    /// The `iss` tokens must carry.
    pub issuer: String,
    /// Where the keys are; `None`: discovered from the issuer.
    pub jwks_url: Option<String>,
    /// The `aud` tokens must carry (one of them, when `aud` is a list).
    pub audience: String,
    /// The claim that names the user.
    pub user_claim: String,
    /// The claim that lists the user's groups.
    pub groups_claim: Option<String>,
    /// Leeway on `exp` and `nbf`.
    pub clock_skew: Duration,
    /// The shortest time between two fetches of the JWKS for an unknown key id.
    pub refetch_interval: Duration,
}

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token has expired")]
    Expired,
    #[error("{0}")]
    Invalid(String),
    /// The provider's keys could not be had.
    #[error("the identity provider's keys could not be fetched: {0}")]
    Provider(String),
}

/// What a verified token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// The value of the user claim.
    pub user: String,
    pub groups: Vec<String>,
    /// `sub`.
    pub subject: String,
    pub issuer: String,
    /// The audience that matched.
    pub audience: String,
}

/// The JWKS as last fetched.
#[derive(Default)]
struct KeyCache {
    keys: JwkSet,
    /// The discovered (or configured) JWKS address.
    jwks_url: Option<String>,
    /// When the keys were last fetched successfully.
    fetched: Option<Instant>,
    /// When a fetch was last tried.
    tried: Option<Instant>,
}

/// Verifies tokens of one identity provider.
pub struct OidcVerifier {
    settings: OidcSettings,
    http: reqwest::Client,
    /// Held only to look a key up, and while fetching (so fetches never run twice at once).
    cache: tokio::sync::Mutex<KeyCache>,
}

impl std::fmt::Debug for OidcVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcVerifier").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl OidcVerifier {
    pub fn new(settings: OidcSettings) -> Result<Self, TokenError> {
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .build()
            .map_err(|e| TokenError::Provider(format!("no HTTP client: {e}")))?;
        let cache = KeyCache { jwks_url: settings.jwks_url.clone(), ..Default::default() };
        Ok(Self { settings, http, cache: tokio::sync::Mutex::new(cache) })
    }

    pub fn settings(&self) -> &OidcSettings {
        &self.settings
    }

    /// Checks `token` and says whom it names.
    pub async fn verify(&self, token: &str) -> Result<VerifiedToken, TokenError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| TokenError::Invalid(format!("the token is not a JWT signed with a known algorithm ({e})")))?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(TokenError::Invalid(format!(
                "tokens signed with {:?} are not accepted (RS256 or ES256 only)",
                header.alg
            )));
        }
        let key = self.key_for(header.kid.as_deref(), header.alg).await?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = self.settings.clock_skew.as_secs();
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let claims = jsonwebtoken::decode::<serde_json::Map<String, Value>>(token, &key, &validation)
            .map_err(|e| self.refusal(e))?
            .claims;
        self.read_claims(&claims)
    }

    fn refusal(&self, e: jsonwebtoken::errors::Error) -> TokenError {
        use jsonwebtoken::errors::ErrorKind as K;
        let s = &self.settings;
        TokenError::Invalid(match e.kind() {
            K::ExpiredSignature => return TokenError::Expired,
            K::InvalidSignature => "the token's signature does not verify".to_owned(),
            K::InvalidIssuer => format!("the token was not issued by {}", s.issuer),
            K::InvalidAudience => format!("the token is not meant for the audience {}", s.audience),
            K::ImmatureSignature => "the token is not valid yet (nbf)".to_owned(),
            K::MissingRequiredClaim(c) => format!("the token has no '{c}' claim"),
            K::InvalidAlgorithm => "the token's algorithm does not fit its key".to_owned(),
            _ => format!("the token is malformed ({e})"),
        })
    }

    fn read_claims(&self, claims: &serde_json::Map<String, Value>) -> Result<VerifiedToken, TokenError> {
        let s = &self.settings;
        let text = |name: &str| claims.get(name).and_then(Value::as_str).filter(|v| !v.is_empty());
        let user = text(&s.user_claim)
            .ok_or_else(|| TokenError::Invalid(format!("the token has no '{}' claim naming its user", s.user_claim)))?;
        let groups = match s.groups_claim.as_deref().and_then(|c| claims.get(c)) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(g)) => vec![g.clone()],
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            Some(_) => {
                return Err(TokenError::Invalid(format!(
                    "the token's '{}' claim is neither a string nor a list of strings",
                    s.groups_claim.as_deref().unwrap_or_default()
                )))
            }
        };
        Ok(VerifiedToken {
            user: user.to_owned(),
            groups,
            subject: text("sub").unwrap_or(user).to_owned(),
            issuer: s.issuer.clone(),
            audience: s.audience.clone(),
        })
    }

    /// The key that signed a token: from the cached JWKS, else from a fresh one.
    async fn key_for(&self, kid: Option<&str>, alg: Algorithm) -> Result<DecodingKey, TokenError> {
        let mut cache = self.cache.lock().await;
        if cache.fetched.is_none_or(|t| t.elapsed() > MAX_KEY_AGE) && self.may_fetch(&cache) {
            if let Err(e) = self.refresh(&mut cache).await {
                if cache.fetched.is_none() {
                    return Err(e);
                }
                tracing::warn!(error = %e, "could not refresh the OIDC keys; keeping the ones fetched before");
            }
        }
        if cache.fetched.is_none() {
            return Err(TokenError::Provider(
                "they were never fetched (the last try failed; the next comes after refetch_interval)".into(),
            ));
        }
        if let Some(key) = find_key(&cache.keys, kid, alg) {
            return decoding_key(key);
        }
        if self.may_fetch(&cache) {
            self.refresh(&mut cache).await?;
            if let Some(key) = find_key(&cache.keys, kid, alg) {
                return decoding_key(key);
            }
        }
        Err(TokenError::Invalid(match kid {
            Some(kid) => format!("the token was signed with a key the identity provider does not publish (kid {kid})"),
            None => "the token names no key (kid) and the identity provider has no single key for it".to_owned(),
        }))
    }

    fn may_fetch(&self, cache: &KeyCache) -> bool {
        cache.tried.is_none_or(|t| t.elapsed() >= self.settings.refetch_interval)
    }

    async fn refresh(&self, cache: &mut KeyCache) -> Result<(), TokenError> {
        cache.tried = Some(Instant::now());
        let url = match &cache.jwks_url {
            Some(url) => url.clone(),
            None => {
                let url = self.discover().await?;
                cache.jwks_url = Some(url.clone());
                url
            }
        };
        let body = self.fetch(&url).await?;
        let keys: JwkSet = serde_json::from_slice(&body)
            .map_err(|e| TokenError::Provider(format!("{url} is not a JWKS document: {e}")))?;
        tracing::info!(url = %url, keys = keys.keys.len(), "fetched the OIDC keys");
        cache.keys = keys;
        cache.fetched = Some(Instant::now());
        Ok(())
    }

    /// The `jwks_uri` of the issuer's discovery document, whose `issuer` must be ours.
    async fn discover(&self) -> Result<String, TokenError> {
        let url = format!("{}/.well-known/openid-configuration", self.settings.issuer.trim_end_matches('/'));
        let body = self.fetch(&url).await?;
        let doc: Value = serde_json::from_slice(&body)
            .map_err(|e| TokenError::Provider(format!("{url} is not a discovery document: {e}")))?;
        if doc.get("issuer").and_then(Value::as_str) != Some(self.settings.issuer.as_str()) {
            return Err(TokenError::Provider(format!("{url} names another issuer than {}", self.settings.issuer)));
        }
        doc.get("jwks_uri")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| TokenError::Provider(format!("{url} has no jwks_uri")))
    }

    async fn fetch(&self, url: &str) -> Result<bytes::Bytes, TokenError> {
        let failed = |e: String| TokenError::Provider(format!("GET {url}: {e}"));
        let resp = self.http.get(url).send().await.map_err(|e| failed(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(failed(format!("status {}", resp.status())));
        }
        if resp.content_length().is_some_and(|n| n > MAX_DOCUMENT as u64) {
            return Err(failed("the document is too large".into()));
        }
        let body = resp.bytes().await.map_err(|e| failed(e.to_string()))?;
        if body.len() > MAX_DOCUMENT {
            return Err(failed("the document is too large".into()));
        }
        Ok(body)
    }
}

/// A signing key of the set that fits `alg`: the one named `kid`, or, for a token naming none,
/// the only one that fits.
fn find_key<'a>(keys: &'a JwkSet, kid: Option<&str>, alg: Algorithm) -> Option<&'a Jwk> {
    let fits = |k: &&Jwk| {
        let kind_fits = match (&k.algorithm, alg) {
            (AlgorithmParameters::RSA(_), Algorithm::RS256) => true,
            (AlgorithmParameters::EllipticCurve(p), Algorithm::ES256) => p.curve == EllipticCurve::P256,
            _ => false,
        };
        let declared = k.common.key_algorithm.is_none_or(|a| match alg {
            Algorithm::RS256 => a == KeyAlgorithm::RS256,
            _ => a == KeyAlgorithm::ES256,
        });
        let signing = !matches!(k.common.public_key_use, Some(PublicKeyUse::Encryption));
        kind_fits && declared && signing
    };
    match kid {
        Some(kid) => keys.find(kid).filter(fits),
        None => {
            let mut candidates = keys.keys.iter().filter(fits);
            match (candidates.next(), candidates.next()) {
                (Some(only), None) => Some(only),
                _ => None,
            }
        }
    }
}

fn decoding_key(jwk: &Jwk) -> Result<DecodingKey, TokenError> {
    DecodingKey::from_jwk(jwk).map_err(|e| TokenError::Provider(format!("a key of the JWKS cannot be used: {e}")))
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_token<B>(req: &http::Request<B>) -> Option<&str> {
    let value = req.headers().get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(json: &str) -> JwkSet {
        serde_json::from_str(json).unwrap()
    }

    /// Made-up key material: only the shapes matter to the lookup.
    fn rsa(kid: &str, extra: &str) -> String {
        use base64::Engine as _;
        let n = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([0xC3u8; 256]);
        format!(r#"{{"kty":"RSA","kid":"{kid}",{extra}"n":"{n}","e":"AQAB"}}"#)
    }

    fn ec(kid: &str) -> String {
        use base64::Engine as _;
        let coordinate = |b: u8| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([b; 32]);
        format!(r#"{{"kty":"EC","kid":"{kid}","crv":"P-256","x":"{}","y":"{}"}}"#, coordinate(1), coordinate(2))
    }

    #[test]
    fn keys_are_found_by_kid_and_kind() {
        let both = set(&format!(r#"{{"keys":[{},{}]}}"#, rsa("r1", ""), ec("e1")));
        assert!(find_key(&both, Some("r1"), Algorithm::RS256).is_some());
        assert!(find_key(&both, Some("r1"), Algorithm::ES256).is_none(), "an RSA key never checks ES256");
        assert!(find_key(&both, Some("e1"), Algorithm::ES256).is_some());
        assert!(find_key(&both, Some("zz"), Algorithm::RS256).is_none());
        assert!(find_key(&both, None, Algorithm::ES256).is_some(), "the only EC key");
        let two_rsa = set(&format!(r#"{{"keys":[{},{}]}}"#, rsa("r1", ""), rsa("r2", "")));
        assert!(find_key(&two_rsa, None, Algorithm::RS256).is_none(), "no kid, two candidates");
        let encryption = set(&format!(r#"{{"keys":[{}]}}"#, rsa("r1", r#""use":"enc","#)));
        assert!(find_key(&encryption, Some("r1"), Algorithm::RS256).is_none());
        assert!(decoding_key(&both.keys[0]).is_ok() && decoding_key(&both.keys[1]).is_ok());
    }

    #[test]
    fn bearer_tokens_are_read_from_the_header() {
        let req = |v: &str| http::Request::builder().header("authorization", v).body(()).unwrap();
        assert_eq!(bearer_token(&req("Bearer abc.def.ghi")), Some("abc.def.ghi"));
        assert_eq!(bearer_token(&req("bearer  x")), Some("x"));
        assert_eq!(bearer_token(&req("Bearer ")), None);
        assert_eq!(bearer_token(&req("AWS4-HMAC-SHA256 Credential=a/b")), None);
    }

    #[tokio::test]
    async fn tokens_without_a_usable_algorithm_are_refused_before_any_fetch() {
        let verifier = OidcVerifier::new(OidcSettings {
            issuer: "http://127.0.0.1:9/".into(),
            jwks_url: Some("http://127.0.0.1:9/jwks".into()),
            audience: "alcove".into(),
            user_claim: "sub".into(),
            groups_claim: None,
            clock_skew: Duration::from_secs(60),
            refetch_interval: Duration::from_secs(10),
        })
        .unwrap();
        use base64::Engine as _;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let claims = b64(r#"{"sub":"eve","iss":"http://127.0.0.1:9/","aud":"alcove","exp":9999999999}"#);
        let none = format!("{}.{claims}.", b64(r#"{"alg":"none","typ":"JWT"}"#));
        assert!(matches!(verifier.verify(&none).await, Err(TokenError::Invalid(_))));
        let hs = format!("{}.{claims}.c2ln", b64(r#"{"alg":"HS256","typ":"JWT"}"#));
        let e = verifier.verify(&hs).await.unwrap_err();
        assert!(e.to_string().contains("HS256"), "{e}");
        assert!(matches!(verifier.verify("not a token").await, Err(TokenError::Invalid(_))));
    }
}
