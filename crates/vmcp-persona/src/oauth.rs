//! OAuth 2.1 resource-server mode (MCP authorization spec, RFC 9068 / RFC 9728): the gateway
//! accepts access tokens that a configured issuer signed, and maps a claim to a persona.
//!
//! - Keys come from the issuer's JWKS, fetched over HTTP(S) and cached; an unknown `kid` makes
//!   one refetch (at most every [`MIN_REFETCH`]), so key rotation works without a restart and a
//!   flood of forged `kid`s cannot hammer the issuer (nor hold up tokens with a known `kid`).
//! - Checked: signature (asymmetric algorithms only: `none` and HMAC are refused), `iss`, `aud`,
//!   `exp` (required) and `nbf`. The persona is the value of the configured claim.
//! - Errors name what failed (for the `WWW-Authenticate` header and the audit log), never the token.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header, errors::ErrorKind};

/// The shortest time between two JWKS fetches.
pub const MIN_REFETCH: Duration = Duration::from_secs(10);
/// A cached JWKS is refreshed after this long even if every `kid` is known.
const MAX_AGE: Duration = Duration::from_secs(3600);

/// Clock skew allowed on `exp` and `nbf`, here and wherever an expiry is enforced later.
pub const LEEWAY_SECS: u64 = 30;

/// How the gateway checks JWTs.
#[derive(Debug, Clone)]
pub struct OAuthConfig {
    /// Expected `iss`.
    pub issuer: String,
    pub jwks_url: String,
    /// Expected `aud` (one of, when `aud` is an array).
    pub audience: String,
    /// The claim whose string value names the persona.
    pub persona_claim: String,
}

/// Why a JWT was refused. `as_str` is the stable word for logs and the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("malformed token")]
    Malformed,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
    #[error("token is for another audience")]
    WrongAudience,
    #[error("token is from another issuer")]
    WrongIssuer,
    #[error("bad signature")]
    BadSignature,
    #[error("signing key not known to the issuer's JWKS")]
    UnknownKey,
    #[error("algorithm not accepted")]
    BadAlgorithm,
    #[error("token names no persona")]
    NoPersona,
    #[error("cannot fetch the issuer's keys: {0}")]
    Jwks(String),
}

impl JwtError {
    pub fn as_str(&self) -> &'static str {
        match self {
            JwtError::Malformed => "jwt_malformed",
            JwtError::Expired => "jwt_expired",
            JwtError::NotYetValid => "jwt_not_yet_valid",
            JwtError::WrongAudience => "jwt_wrong_audience",
            JwtError::WrongIssuer => "jwt_wrong_issuer",
            JwtError::BadSignature => "jwt_bad_signature",
            JwtError::UnknownKey => "jwt_unknown_key",
            JwtError::BadAlgorithm => "jwt_bad_algorithm",
            JwtError::NoPersona => "jwt_no_persona",
            JwtError::Jwks(_) => "jwks_unavailable",
        }
    }
}

/// A token that passed every check.
#[derive(Debug, Clone)]
pub struct Verified {
    pub persona: String,
    /// `sub`, for the audit log (a subject id, not a secret).
    pub subject: String,
    /// `exp`, seconds since the epoch.
    pub expires: u64,
}

#[derive(Debug, serde::Deserialize)]
struct Claims {
    #[serde(default)]
    sub: Option<String>,
    exp: u64,
    #[serde(flatten)]
    rest: serde_json::Map<String, serde_json::Value>,
}

/// Checks JWTs against one issuer; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct OAuthValidator {
    cfg: OAuthConfig,
    http: reqwest::Client,
    /// The keys as last fetched: every verification reads them without waiting.
    keys: RwLock<Option<Arc<Keys>>>,
    /// When the JWKS was last fetched; held while a refetch is decided and made, so that
    /// concurrent misses make one fetch, and only they wait for it.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
}

/// The issuer's JWKS as last fetched, each key decoded once per fetch rather than per token.
#[derive(Debug)]
struct Keys {
    /// Each JWK's `kid` and its key (`None`: it does not decode, so a token naming it fails).
    keys: Vec<(Option<String>, Option<Arc<DecodingKey>>)>,
    fetched: Instant,
}

impl Keys {
    fn new(set: &JwkSet) -> Self {
        let keys = set
            .keys
            .iter()
            .map(|jwk| (jwk.common.key_id.clone(), DecodingKey::from_jwk(jwk).ok().map(Arc::new)))
            .collect();
        Self { keys, fetched: Instant::now() }
    }

    fn stale(&self) -> bool {
        self.fetched.elapsed() > MAX_AGE
    }

    /// The entry for `kid`, or the only one when the token names none.
    fn pick(&self, kid: Option<&str>) -> Option<&Option<Arc<DecodingKey>>> {
        match kid {
            Some(k) => self.keys.iter().find(|(id, _)| id.as_deref() == Some(k)).map(|(_, key)| key),
            None if self.keys.len() == 1 => self.keys.first().map(|(_, key)| key),
            None => None,
        }
    }
}

impl OAuthValidator {
    pub fn new(cfg: OAuthConfig) -> Result<Self, crate::PersonaError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| crate::PersonaError::Usage(format!("cannot build the JWKS client: {e}")))?;
        Ok(Self { cfg, http, keys: RwLock::new(None), last_fetch: tokio::sync::Mutex::new(None) })
    }

    pub fn config(&self) -> &OAuthConfig {
        &self.cfg
    }

    /// Check a bearer token; on success, the persona it names.
    pub async fn verify(&self, token: &str) -> Result<Verified, JwtError> {
        let header = decode_header(token).map_err(|_| JwtError::Malformed)?;
        if !matches!(
            header.alg,
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
                | Algorithm::ES256
                | Algorithm::ES384
                | Algorithm::EdDSA
        ) {
            return Err(JwtError::BadAlgorithm);
        }
        let key = self.key_for(header.kid.as_deref()).await?;
        let mut v = Validation::new(header.alg);
        v.set_issuer(&[&self.cfg.issuer]);
        v.set_audience(&[&self.cfg.audience]);
        v.set_required_spec_claims(&["exp", "iss", "aud"]);
        v.validate_nbf = true;
        v.leeway = LEEWAY_SECS;
        let data = decode::<Claims>(token, &key, &v).map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => JwtError::Expired,
            ErrorKind::ImmatureSignature => JwtError::NotYetValid,
            ErrorKind::InvalidAudience => JwtError::WrongAudience,
            ErrorKind::InvalidIssuer => JwtError::WrongIssuer,
            ErrorKind::InvalidSignature => JwtError::BadSignature,
            ErrorKind::InvalidAlgorithm => JwtError::BadAlgorithm,
            _ => JwtError::Malformed,
        })?;
        let persona = data
            .claims
            .rest
            .get(&self.cfg.persona_claim)
            .and_then(|v| v.as_str())
            .filter(|p| crate::validate_name(p).is_ok())
            .ok_or(JwtError::NoPersona)?;
        Ok(Verified {
            persona: persona.to_owned(),
            subject: data.claims.sub.unwrap_or_default(),
            expires: data.claims.exp,
        })
    }

    /// The key for `kid` (or the only key when the token names none), refetching the JWKS once
    /// when it is unknown or the cache is old.
    async fn key_for(&self, kid: Option<&str>) -> Result<Arc<DecodingKey>, JwtError> {
        // A fresh cache that knows the key answers at once, even while a refetch is under way.
        if let Some(keys) = self.cached()
            && !keys.stale()
            && let Some(entry) = keys.pick(kid)
        {
            return entry.clone().ok_or(JwtError::UnknownKey);
        }
        let mut last_fetch = self.last_fetch.lock().await;
        // Another request may have refetched while this one waited.
        let mut cache = self.cached();
        let stale = cache.as_ref().is_none_or(|k| k.stale());
        let known = cache.as_ref().is_some_and(|k| k.pick(kid).is_some());
        if stale || !known {
            let may_fetch = last_fetch.is_none_or(|t| t.elapsed() >= MIN_REFETCH);
            if cache.is_none() || may_fetch {
                *last_fetch = Some(Instant::now());
                match self.fetch().await {
                    Ok(set) => {
                        let keys = Arc::new(Keys::new(&set));
                        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Some(keys.clone());
                        cache = Some(keys);
                    }
                    Err(e) if cache.is_none() => return Err(e),
                    Err(e) => tracing::warn!("keeping the cached JWKS: {e}"),
                }
            }
        }
        let keys = cache.ok_or_else(|| JwtError::Jwks("no keys".into()))?;
        keys.pick(kid).cloned().flatten().ok_or(JwtError::UnknownKey)
    }

    fn cached(&self) -> Option<Arc<Keys>> {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    async fn fetch(&self) -> Result<JwkSet, JwtError> {
        let fail = |e: String| JwtError::Jwks(format!("{}: {e}", self.cfg.jwks_url));
        let resp = self.http.get(&self.cfg.jwks_url).send().await.map_err(|e| fail(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(fail(format!("HTTP {}", resp.status())));
        }
        let body = resp.bytes().await.map_err(|e| fail(e.to_string()))?;
        serde_json::from_slice(&body).map_err(|e| fail(e.to_string()))
    }
}
