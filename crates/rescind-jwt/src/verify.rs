//! [`Verifier`]: the key store, key reloading, and token verification.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, Validation};
use parking_lot::{Mutex, RwLock};
use serde_json::{Map, Value};

use crate::cache::{ClaimsCache, token_key};
use crate::claims::{ClaimRules, Claims};
use crate::config::JwtConfig;
use crate::error::{JwtError, Rejection, sanitize_alg};
use crate::keys::{self, ASYMMETRIC, KeyEntry, KeySet};

/// Longest token accepted, in bytes; longer ones are [`Rejection::Malformed`] before any work.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Verifies bearer JWTs against the configured keys and maps their claims.
///
/// Cheap to clone (an `Arc` inside), `Send + Sync`. Keys sit behind a lock that is only ever
/// held for a pointer swap or clone, never across an `.await`.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Asymmetric keys from `jwks_file` / `jwks_url` / [`Verifier::replace_keys`].
    Jwks,
    /// The single HS256 key of `hs256_secret_file`.
    Hs256,
}

struct Inner {
    mode: Mode,
    rules: ClaimRules,
    jwks_file: Option<PathBuf>,
    jwks_url: Option<String>,
    refresh_interval: Duration,
    http: Option<reqwest::Client>,
    active: RwLock<Arc<KeySet>>,
    sources: Mutex<Sources>,
    generation: AtomicU64,
    cache: Option<ClaimsCache>,
}

/// The keys of each source; the active set is their concatenation.
#[derive(Default)]
struct Sources {
    file: Vec<Arc<KeyEntry>>,
    file_hash: Option<[u8; 32]>,
    url: Vec<Arc<KeyEntry>>,
    url_hash: Option<[u8; 32]>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("hs256", &(self.inner.mode == Mode::Hs256))
            .field("keys", &self.key_count())
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// Builds a verifier: validates `cfg`, loads `jwks_file` or `hs256_secret_file` now (an
    /// unreadable or keyless file is an error). Keys of `jwks_url` arrive with the first
    /// [`Verifier::refresh_from_url`]; until then tokens get [`Rejection::NoKeys`] unless the
    /// file provides keys.
    pub fn new(cfg: &JwtConfig) -> Result<Self, JwtError> {
        cfg.validate()?;
        keys::ensure_crypto_provider();
        let mut sources = Sources::default();
        let mode = if let Some(path) = &cfg.hs256_secret_file {
            sources.file = vec![Arc::new(keys::load_secret(path)?)];
            Mode::Hs256
        } else {
            if let Some(path) = &cfg.jwks_file {
                let bytes = keys::read_jwks_file(path)?;
                let set = keys::parse_jwks("jwks_file", &bytes)?;
                sources.file = keys::build_entries("jwks_file", &set, false)?;
                sources.file_hash = Some(*blake3::hash(&bytes).as_bytes());
            }
            Mode::Jwks
        };
        let http = match &cfg.jwks_url {
            Some(_) => Some(keys::http_client(cfg.fetch_timeout)?),
            None => None,
        };
        let entries = sources.file.clone();
        Ok(Self {
            inner: Arc::new(Inner {
                mode,
                rules: ClaimRules::from_config(cfg),
                jwks_file: cfg.jwks_file.clone(),
                jwks_url: cfg.jwks_url.clone(),
                refresh_interval: cfg.refresh_interval,
                http,
                active: RwLock::new(Arc::new(KeySet {
                    generation: 0,
                    entries,
                })),
                sources: Mutex::new(sources),
                generation: AtomicU64::new(0),
                cache: ClaimsCache::new(cfg.cache_entries),
            }),
        })
    }

    /// Verifies `token` at time `now_ms` (unix milliseconds): signature against the keys,
    /// then `iss`, `aud`, `exp` and `nbf`. A token seen before under the same keys is served
    /// from the cache, its `exp`/`nbf` re-checked against `now_ms`. Never panics.
    pub fn verify(&self, token: &str, now_ms: u64) -> Result<Arc<Claims>, Rejection> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Err(Rejection::Malformed);
        }
        let set = self.inner.active.read().clone();
        let key = token_key(token);
        let leeway = self.inner.rules.leeway_ms;
        if let Some(cache) = &self.inner.cache
            && let Some(claims) = cache.get(&key, set.generation)
        {
            claims.check_time(now_ms, leeway)?;
            return Ok(claims);
        }
        let claims = Arc::new(self.verify_uncached(token, &set)?);
        claims.check_time(now_ms, leeway)?;
        if let Some(cache) = &self.inner.cache {
            cache.insert(key, set.generation, claims.clone());
        }
        Ok(claims)
    }

    /// The signature and claim rules of `token` without the time checks
    /// (for revoking a token that is not valid yet: it will be). Not cached.
    pub fn verify_ignoring_time(&self, token: &str) -> Result<Arc<Claims>, Rejection> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Err(Rejection::Malformed);
        }
        let set = self.inner.active.read().clone();
        Ok(Arc::new(self.verify_uncached(token, &set)?))
    }

    /// The clock skew allowed on `exp` and `nbf`, ms.
    pub fn leeway_ms(&self) -> u64 {
        self.inner.rules.leeway_ms
    }

    /// Claims a proxy has already verified (Envoy's `jwt_authn` payload in
    /// ext_authz metadata): no signature to check, but the same claim rules
    /// (`iss`, `aud`, `exp` required) and time checks as [`Verifier::verify`].
    pub fn trusted_payload(&self, raw: Map<String, Value>, now_ms: u64) -> Result<Arc<Claims>, Rejection> {
        let claims = Claims::from_raw(raw, None, &self.inner.rules)?;
        claims.check_time(now_ms, self.inner.rules.leeway_ms)?;
        Ok(Arc::new(claims))
    }

    fn verify_uncached(&self, token: &str, set: &KeySet) -> Result<Claims, Rejection> {
        let (alg, kid) = parse_header(token)?;
        let allowed = match self.inner.mode {
            Mode::Jwks => ASYMMETRIC.contains(&alg),
            Mode::Hs256 => alg == Algorithm::HS256,
        };
        if !allowed {
            return Err(Rejection::AlgorithmNotAllowed(format!("{alg:?}")));
        }
        if set.entries.is_empty() {
            return Err(Rejection::NoKeys);
        }
        let candidates: Vec<&KeyEntry> = match (self.inner.mode, kid.as_deref()) {
            // One secret: its kid, if the token names one, does not select anything.
            (Mode::Hs256, _) => set.entries.iter().map(|e| &**e).collect(),
            (Mode::Jwks, Some(kid)) => {
                let named: Vec<&KeyEntry> = set
                    .entries
                    .iter()
                    .filter(|e| e.kid.as_deref() == Some(kid))
                    .map(|e| &**e)
                    .collect();
                if named.is_empty() {
                    return Err(Rejection::UnknownKey);
                }
                let fit: Vec<&KeyEntry> = named.into_iter().filter(|e| e.accepts(alg)).collect();
                if fit.is_empty() {
                    return Err(Rejection::AlgorithmNotAllowed(format!("{alg:?}")));
                }
                fit
            }
            (Mode::Jwks, None) => {
                let fit: Vec<&KeyEntry> = set
                    .entries
                    .iter()
                    .filter(|e| e.accepts(alg))
                    .map(|e| &**e)
                    .collect();
                if fit.len() != 1 {
                    return Err(Rejection::UnknownKey);
                }
                fit
            }
        };
        let mut validation = Validation::new(alg);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.leeway = 0;
        let mut last = Rejection::BadSignature;
        for entry in candidates {
            match jsonwebtoken::decode::<Map<String, Value>>(token, &entry.key, &validation) {
                Ok(data) => {
                    let claims = Claims::from_raw(data.claims, kid.clone(), &self.inner.rules);
                    if let Err(r) = &claims {
                        tracing::debug!(kid = ?entry.kid, alg = ?alg, reason = %r, "token claims rejected");
                    }
                    return claims;
                }
                Err(e) => {
                    last = map_decode_error(e.kind(), alg);
                    if last != Rejection::BadSignature {
                        break;
                    }
                }
            }
        }
        tracing::debug!(alg = ?alg, reason = %last, "token rejected");
        Err(last)
    }

    /// Re-reads `jwks_file` and swaps its keys in when its content changed (compared by
    /// blake3 hash, so a same-size rewrite within one mtime tick is still seen). Returns
    /// whether the keys changed. On error (unreadable file, bad JSON, no usable key) the
    /// current keys stay. `Ok(false)` when no `jwks_file` is configured. Blocking file I/O:
    /// from async code run it under `spawn_blocking` (as [`Verifier::spawn_refresh`] does).
    pub fn reload_if_changed(&self) -> Result<bool, JwtError> {
        let Some(path) = &self.inner.jwks_file else {
            return Ok(false);
        };
        let bytes = keys::read_jwks_file(path)?;
        let hash = *blake3::hash(&bytes).as_bytes();
        if self.inner.sources.lock().file_hash == Some(hash) {
            return Ok(false);
        }
        let set = keys::parse_jwks("jwks_file", &bytes)?;
        let entries = keys::build_entries("jwks_file", &set, false)?;
        let mut sources = self.inner.sources.lock();
        sources.file = entries;
        sources.file_hash = Some(hash);
        self.publish(&sources);
        tracing::info!(keys = sources.file.len(), "reloaded jwks_file");
        Ok(true)
    }

    /// Fetches `jwks_url` (with the configured timeout) and swaps its keys in; returns how many
    /// usable keys it published. An unchanged document leaves the keys (and the cache) as they
    /// are. On error the current keys stay. No lock is held across the fetch.
    pub async fn refresh_from_url(&self) -> Result<usize, JwtError> {
        let (Some(url), Some(http)) = (&self.inner.jwks_url, &self.inner.http) else {
            return Err(JwtError::config("jwks_url", "not configured"));
        };
        let bytes = keys::fetch_jwks(http, url).await?;
        let hash = *blake3::hash(&bytes).as_bytes();
        {
            let sources = self.inner.sources.lock();
            if sources.url_hash == Some(hash) {
                return Ok(sources.url.len());
            }
        }
        let set = keys::parse_jwks("jwks_url", &bytes)?;
        let entries = keys::build_entries("jwks_url", &set, false)?;
        let n = entries.len();
        let mut sources = self.inner.sources.lock();
        sources.url = entries;
        sources.url_hash = Some(hash);
        self.publish(&sources);
        tracing::info!(keys = n, "refreshed jwks_url");
        Ok(n)
    }

    /// Replaces every key (those of `jwks_file` and `jwks_url` alike) with `set`, and clears
    /// the cache, so a key absent from `set` stops verifying at once. Returns the number of
    /// usable keys; an empty `set` is allowed (every token then gets [`Rejection::NoKeys`]),
    /// a non-empty one without any usable key is an error. A later reload or refresh that
    /// finds changed content replaces that source's part again. Refused for an HS256
    /// verifier.
    pub fn replace_keys(&self, set: JwkSet) -> Result<usize, JwtError> {
        if self.inner.mode == Mode::Hs256 {
            return Err(JwtError::config(
                "hs256_secret_file",
                "replace_keys is not available: this verifier uses the HS256 secret only",
            ));
        }
        let entries = keys::build_entries("replace_keys", &set, true)?;
        let n = entries.len();
        let mut sources = self.inner.sources.lock();
        sources.file = entries;
        sources.url = Vec::new();
        self.publish(&sources);
        Ok(n)
    }

    /// The number of usable keys currently loaded (1 for an HS256 verifier).
    pub fn key_count(&self) -> usize {
        self.inner.active.read().entries.len()
    }

    /// The number of tokens in the verified-token cache (0 when it is disabled).
    pub fn cached_tokens(&self) -> usize {
        self.inner.cache.as_ref().map_or(0, ClaimsCache::len)
    }

    /// Spawns (on the current Tokio runtime) a task that every `refresh_interval` runs
    /// [`Verifier::reload_if_changed`] when a `jwks_file` is set and
    /// [`Verifier::refresh_from_url`] when a `jwks_url` is set (the first run is immediate),
    /// logging failures (with no URL, token or secret). Abort the handle to stop it.
    pub fn spawn_refresh(&self) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(this.inner.refresh_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if this.inner.jwks_file.is_some() {
                    let v = this.clone();
                    match tokio::task::spawn_blocking(move || v.reload_if_changed()).await {
                        Ok(Err(e)) => tracing::warn!(error = %e, "jwks_file reload failed; keeping keys"),
                        Err(e) => tracing::warn!(error = %e, "jwks_file reload task failed"),
                        Ok(Ok(_)) => {}
                    }
                }
                if this.inner.jwks_url.is_some()
                    && let Err(e) = this.refresh_from_url().await
                {
                    tracing::warn!(error = %e, "jwks_url refresh failed; keeping keys");
                }
            }
        })
    }

    /// Publishes the concatenation of the sources as a new key-set generation and clears the
    /// cache. Called with the sources lock held, so publications are ordered.
    fn publish(&self, sources: &Sources) {
        let generation = self.inner.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let entries = sources.file.iter().chain(&sources.url).cloned().collect();
        *self.inner.active.write() = Arc::new(KeySet { generation, entries });
        if let Some(cache) = &self.inner.cache {
            cache.clear();
        }
    }
}

/// The header's algorithm and `kid`, with `none` (any case) and unknown algorithms refused.
fn parse_header(token: &str) -> Result<(Algorithm, Option<String>), Rejection> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Rejection::Malformed);
    };
    let bytes = URL_SAFE_NO_PAD.decode(header).map_err(|_| Rejection::Malformed)?;
    let Ok(Value::Object(header)) = serde_json::from_slice::<Value>(&bytes) else {
        return Err(Rejection::Malformed);
    };
    let Some(Value::String(alg)) = header.get("alg") else {
        return Err(Rejection::Malformed);
    };
    if alg.eq_ignore_ascii_case("none") {
        return Err(Rejection::AlgorithmNotAllowed("none".into()));
    }
    let alg = Algorithm::from_str(alg).map_err(|_| Rejection::AlgorithmNotAllowed(sanitize_alg(alg)))?;
    let kid = match header.get("kid") {
        None | Some(Value::Null) => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err(Rejection::Malformed),
    };
    Ok((alg, kid))
}

fn map_decode_error(kind: &ErrorKind, alg: Algorithm) -> Rejection {
    match kind {
        ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Json(_) | ErrorKind::Utf8(_) => {
            Rejection::Malformed
        }
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm | ErrorKind::UnsupportedAlgorithm => {
            Rejection::AlgorithmNotAllowed(format!("{alg:?}"))
        }
        _ => Rejection::BadSignature,
    }
}

// `Verifier` is shared across request handlers and the refresh task.
const _: () = {
    const fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<Verifier>();
};
