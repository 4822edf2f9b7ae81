//! Bearer-token authentication and token-id redaction for logs.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tonic::Status;
use tonic::metadata::MetadataMap;

use crate::config::Config;
use crate::credentials::{Credentials, Role};

/// Name of the generated admin token file inside the data dir.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

/// Where the admin token came from (for the start-up log line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSource {
    /// `admin_token` in config or env.
    Configured,
    /// Read from this file (configured `admin_token_file`, or a token generated earlier).
    File(PathBuf),
    /// Generated now into this file.
    Generated(PathBuf),
}

/// Why the node cannot settle on an admin token.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Listening beyond loopback with a token nobody configured is refused.
    #[error(
        "refusing to listen on {0} without a configured admin token: set admin_token \
         (or RESCIND_ADMIN_TOKEN) or admin_token_file; a generated token is only allowed on loopback"
    )]
    ExposedWithoutToken(SocketAddr),
    /// The token file could not be read or written.
    #[error("admin token file {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The token is too short, too long or not printable.
    #[error("{0}")]
    Format(String),
    /// The credentials file cannot be read or parsed.
    #[error("{0}")]
    Credentials(String),
}

/// A token must be 16..=256 visible ASCII characters.
pub fn check_token_format(key: &str, token: &str) -> Result<(), String> {
    if (16..=256).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(format!(
            "{key} must be 16 to 256 visible ASCII characters (no spaces)"
        ))
    }
}

/// The tokens a node accepts, kept as hashes so comparisons take the same time
/// whatever the input.
#[derive(Clone)]
pub struct Auth {
    admin: [u8; 32],
    check: Option<[u8; 32]>,
    redactor: Redactor,
    throttle: std::sync::Arc<crate::limits::AuthThrottle>,
    credentials: Option<std::sync::Arc<Credentials>>,
}

/// Who an admin call was authenticated as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admin {
    /// The node's admin token (`admin_token`, its file, or the generated one).
    Token,
    /// A named credential with the admin role.
    Named(String),
}

impl Admin {
    /// The audit actor of a revocation this caller made, saying `declared`:
    /// with the admin token, what the caller declared; with a named
    /// credential, its name, then `:` and what it declared (cut to fit the
    /// 256-byte actor limit).
    pub fn actor(&self, declared: &str) -> String {
        let Admin::Named(name) = self else {
            return declared.to_owned();
        };
        if declared.is_empty() {
            return name.clone();
        }
        let mut room = rescind_core::limits::MAX_TEXT_BYTES.saturating_sub(name.len() + 1);
        while !declared.is_char_boundary(room.min(declared.len())) {
            room -= 1;
        }
        format!("{name}:{}", &declared[..room.min(declared.len())])
    }
}

/// Metadata key carrying the caller's address to [`Auth`]: set by the
/// servers from the connection (a value sent by the client is dropped first,
/// see [`set_source`]), never by a client.
pub const SOURCE_HEADER: &str = "x-rescind-source";

/// Replace any `x-rescind-source` the client sent with the connection's
/// address (or none), as [`source_value`] formatted it.
pub fn set_source(headers: &mut http::HeaderMap, source: Option<http::HeaderValue>) {
    headers.remove(SOURCE_HEADER);
    if let Some(v) = source {
        headers.insert(SOURCE_HEADER, v);
    }
}

/// `ip` as the value of [`SOURCE_HEADER`].
pub fn source_value(ip: std::net::IpAddr) -> Option<http::HeaderValue> {
    http::HeaderValue::from_str(&ip.to_string()).ok()
}

fn source(metadata: &MetadataMap) -> Option<std::net::IpAddr> {
    metadata.get(SOURCE_HEADER)?.to_str().ok()?.parse().ok()
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Auth { .. }")
    }
}

impl Auth {
    /// Settle the admin token from config, a file, or a fresh one in the data dir.
    pub fn resolve(config: &Config) -> Result<(Self, TokenSource), AuthError> {
        let (admin, source) = if let Some(t) = &config.admin_token {
            (t.clone(), TokenSource::Configured)
        } else if let Some(path) = &config.admin_token_file {
            (read_token(path)?, TokenSource::File(path.clone()))
        } else if !config.listen.ip().is_loopback() {
            return Err(AuthError::ExposedWithoutToken(config.listen));
        } else if let Some(http) = config.http_listen.filter(|a| !a.ip().is_loopback()) {
            return Err(AuthError::ExposedWithoutToken(http));
        } else {
            let path = config.data_dir.join(ADMIN_TOKEN_FILE);
            if path.exists() {
                (read_token(&path)?, TokenSource::File(path))
            } else {
                (generate_token(&path)?, TokenSource::Generated(path))
            }
        };
        check_token_format("admin token", &admin).map_err(AuthError::Format)?;
        Ok((
            Self {
                admin: hash(&admin),
                check: config.check_token.as_deref().map(hash),
                redactor: Redactor::new(&admin),
                throttle: std::sync::Arc::new(crate::limits::AuthThrottle::from_config(&config.limits)),
                credentials: match &config.credentials_file {
                    Some(path) => Some(std::sync::Arc::new(
                        Credentials::load(path).map_err(AuthError::Credentials)?,
                    )),
                    None => None,
                },
            },
            source,
        ))
    }

    /// Reads only, as an edge serves them: `check_token` (if any) guards
    /// reads, and no token is an admin token.
    pub fn for_reads(check_token: Option<&str>) -> Self {
        let unguessable: [u8; 32] = rand::random();
        Self {
            admin: hash(&format!("{unguessable:?}")),
            check: check_token.map(hash),
            redactor: Redactor::new(&format!("{:?}", rand::random::<[u8; 32]>())),
            throttle: std::sync::Arc::new(crate::limits::AuthThrottle::from_config(
                &crate::limits::LimitsConfig::default(),
            )),
            credentials: None,
        }
    }

    /// `Revoke` and other writes: the admin token is required.
    #[allow(clippy::result_large_err)]
    pub fn require_admin(&self, metadata: &MetadataMap) -> Result<Admin, Status> {
        let result = match bearer(metadata) {
            Ok(Some(t)) => match self.admin_of(t) {
                Some(who) => return Ok(who),
                None if self.named(t).is_some() => {
                    return Err(Status::permission_denied(
                        "authorization: this credential has the reader role; revoking needs an admin",
                    ));
                }
                None => Err(Status::unauthenticated(
                    "authorization: the bearer token is not an admin token",
                )),
            },
            Ok(None) => Err(Status::unauthenticated(
                "authorization: missing; this call needs `authorization: Bearer <admin token>`",
            )),
            Err(e) => Err(e),
        };
        result.map_err(|e| self.failed(metadata, e))
    }

    /// Count a failed authentication made outside [`Auth::require_admin`] /
    /// [`Auth::require_reader`] (an admin token guessed at `/oauth2/*`);
    /// `Some` with the status to answer once the address is throttled.
    pub fn note_failure(&self, metadata: &MetadataMap) -> Option<Status> {
        let status = self.failed(metadata, Status::unauthenticated(""));
        (status.code() == tonic::Code::ResourceExhausted).then_some(status)
    }

    /// A failed authentication: counted against its source address, and
    /// answered "throttled" once the address has failed too often.
    fn failed(&self, metadata: &MetadataMap, status: Status) -> Status {
        let from = source(metadata);
        match self.throttle.fail(from) {
            crate::limits::Failure::Counted => status,
            crate::limits::Failure::Throttled { log } => {
                if log {
                    tracing::warn!(
                        source = ?from,
                        "throttling failed authentications from this address (logged once a minute)"
                    );
                }
                Status::resource_exhausted(
                    "authorization: too many failed authentications from this address; retry later",
                )
            }
        }
    }

    /// Reads: open unless a check token is configured; then it or the admin token.
    #[allow(clippy::result_large_err)]
    pub fn require_reader(&self, metadata: &MetadataMap) -> Result<(), Status> {
        let unguessable;
        let check = match &self.check {
            Some(c) => c,
            // Reader credentials guard reads as a check token does.
            None if self.credentials.as_ref().is_some_and(|c| c.has_readers()) => {
                unguessable = rand::random::<[u8; 32]>();
                &unguessable
            }
            None => return Ok(()),
        };
        let result = match bearer(metadata) {
            Ok(Some(t)) => {
                let h = hash(t);
                if ct_eq(&h, check) | ct_eq(&h, &self.admin) || self.named(t).is_some() {
                    return Ok(());
                }
                Err(Status::unauthenticated(
                    "authorization: the bearer token is not the check token",
                ))
            }
            Ok(None) => Err(Status::unauthenticated(
                "authorization: missing; this node needs `authorization: Bearer <check token>` for reads",
            )),
            Err(e) => Err(e),
        };
        result.map_err(|e| self.failed(metadata, e))
    }

    /// Who `token` authenticates as an admin, if it does (for HTTP front
    /// ends that take it beside other credentials, like RFC 7009's Basic auth).
    pub fn admin_of(&self, token: &str) -> Option<Admin> {
        let h = hash(token);
        let named = self.named(token).filter(|c| c.role == Role::Admin);
        if ct_eq(&h, &self.admin) {
            return Some(Admin::Token);
        }
        named.map(|c| Admin::Named(c.name))
    }

    /// The named credential `token` is, if any.
    fn named(&self, token: &str) -> Option<crate::credentials::Credential> {
        self.credentials.as_ref()?.find(&hash(token))
    }

    /// The credentials file, to watch for changes (None without one).
    pub fn credentials(&self) -> Option<std::sync::Arc<Credentials>> {
        self.credentials.clone()
    }

    /// The redactor for token ids in logs.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }
}

#[allow(clippy::result_large_err)]
fn bearer(metadata: &MetadataMap) -> Result<Option<&str>, Status> {
    let Some(value) = metadata.get("authorization") else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| Status::unauthenticated("authorization: not visible ASCII"))?;
    match value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
    {
        Some(t) => Ok(Some(t.trim())),
        None => Err(Status::unauthenticated(
            "authorization: expected `Bearer <token>`",
        )),
    }
}

fn hash(token: &str) -> [u8; 32] {
    *blake3::hash(token.as_bytes()).as_bytes()
}

fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token in a token file: its first line, trimmed (the format of the
/// generated `<data-dir>/admin.token`; clients read it the same way).
pub fn read_token(path: &Path) -> Result<String, AuthError> {
    let text = std::fs::read_to_string(path).map_err(|source| AuthError::File {
        path: path.to_owned(),
        source,
    })?;
    Ok(text.lines().next().unwrap_or_default().trim().to_owned())
}

/// The token a client sends: `explicit` (a flag or environment variable)
/// if given, else the one in `<data_dir>/admin.token`.
pub fn token_or_file(explicit: Option<&str>, data_dir: &Path) -> Result<String, AuthError> {
    match explicit {
        Some(token) => Ok(token.to_owned()),
        None => read_token(&data_dir.join(ADMIN_TOKEN_FILE)),
    }
}

fn generate_token(path: &Path) -> Result<String, AuthError> {
    let token: String = (0..32).map(|_| format!("{:02x}", rand::random::<u8>())).collect();
    let err = |source| AuthError::File {
        path: path.to_owned(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(err)?;
    writeln!(file, "{token}").map_err(err)?;
    file.sync_all().map_err(err)?;
    Ok(token)
}

/// Turns a token id into a short keyed hash for logs: stable on one node (so
/// log lines about the same id can be matched), useless for recovering the id.
#[derive(Clone)]
pub struct Redactor {
    key: [u8; 32],
}

impl Redactor {
    /// A redactor keyed from the admin token.
    pub fn new(secret: &str) -> Self {
        Self {
            key: blake3::derive_key("rescind 2026-11 log redaction of token ids", secret.as_bytes()),
        }
    }

    /// 12 hex digits naming `id` in logs.
    pub fn short(&self, id: &str) -> String {
        let h = blake3::keyed_hash(&self.key, id.as_bytes());
        h.to_hex()[..12].to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md(value: &str) -> MetadataMap {
        let mut m = MetadataMap::new();
        m.insert("authorization", value.parse().unwrap());
        m
    }

    #[test]
    fn admin_and_check_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_owned(),
            check_token: Some("reader-token-0123456789".into()),
            ..Config::default()
        };
        let (auth, source) = Auth::resolve(&config).unwrap();
        let TokenSource::Generated(path) = source else {
            panic!("expected a generated token, got {source:?}");
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let admin = read_token(&path).unwrap();
        assert!(auth.require_admin(&md(&format!("Bearer {admin}"))).is_ok());
        assert!(auth.require_admin(&md("Bearer reader-token-0123456789")).is_err());
        assert!(auth.require_admin(&MetadataMap::new()).is_err());
        assert!(auth.require_admin(&md(&admin)).is_err(), "no Bearer prefix");
        assert!(auth.require_reader(&md("Bearer reader-token-0123456789")).is_ok());
        assert!(auth.require_reader(&md(&format!("Bearer {admin}"))).is_ok());
        assert!(auth.require_reader(&MetadataMap::new()).is_err());
        // A second start reads the same token back.
        let (_, again) = Auth::resolve(&config).unwrap();
        assert_eq!(again, TokenSource::File(path));
    }

    #[test]
    fn exposed_without_a_configured_token_is_refused() {
        let config = Config {
            listen: "0.0.0.0:7400".parse().unwrap(),
            ..Config::default()
        };
        let err = Auth::resolve(&config).unwrap_err();
        assert!(
            err.to_string().contains("refusing to listen on 0.0.0.0:7400"),
            "{err}"
        );
        let ok = Config {
            admin_token: Some("a-configured-admin-token".into()),
            ..config
        };
        assert_eq!(Auth::resolve(&ok).unwrap().1, TokenSource::Configured);
    }

    #[test]
    fn a_named_admin_is_the_audit_actor_within_the_text_limit() {
        assert_eq!(Admin::Token.actor("ops"), "ops");
        let ci = Admin::Named("ci-bot".into());
        assert_eq!(ci.actor(""), "ci-bot");
        assert_eq!(ci.actor("pipeline-42"), "ci-bot:pipeline-42");
        // A long declared actor (multi-byte characters) is cut at a
        // character boundary so the whole stays within 256 bytes.
        let long = "é".repeat(200);
        let actor = ci.actor(&long);
        assert!(
            actor.len() <= rescind_core::limits::MAX_TEXT_BYTES,
            "{}",
            actor.len()
        );
        assert!(actor.starts_with("ci-bot:é"));
        assert!(rescind_core::limits::text("actor", &actor).is_ok());
    }

    #[test]
    fn a_client_cannot_choose_its_source_address() {
        let mut headers = http::HeaderMap::new();
        headers.insert(SOURCE_HEADER, "10.9.9.9".parse().unwrap());
        set_source(&mut headers, None);
        assert!(headers.get(SOURCE_HEADER).is_none());
        headers.insert(SOURCE_HEADER, "10.9.9.9".parse().unwrap());
        let value = source_value("192.0.2.1".parse().unwrap());
        set_source(&mut headers, value);
        assert_eq!(headers.get_all(SOURCE_HEADER).iter().count(), 1);
        assert_eq!(headers.get(SOURCE_HEADER).unwrap(), "192.0.2.1");
    }

    #[test]
    fn redaction_is_stable_and_keyed() {
        let a = Redactor::new("secret-one-0123456789");
        let b = Redactor::new("secret-two-0123456789");
        assert_eq!(a.short("tok-1"), a.short("tok-1"));
        assert_ne!(a.short("tok-1"), b.short("tok-1"));
        assert!(!a.short("tok-1").contains("tok"));
    }
}

/// A shared secret held as a hash, compared in constant time.
#[derive(Clone)]
pub struct SharedSecret([u8; 32]);

impl SharedSecret {
    /// Hold `secret`.
    pub fn new(secret: &str) -> Self {
        Self(hash(secret))
    }

    /// Does `given` equal the secret?
    pub fn matches(&self, given: &str) -> bool {
        ct_eq(&hash(given), &self.0)
    }
}

impl std::fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedSecret(..)")
    }
}
