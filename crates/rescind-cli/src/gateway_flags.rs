//! `rescind serve` flags of the HTTP API, `[gateway]` and `[jwt]`; each
//! overrides the TOML config and has an env twin.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use rescind_node::Config;
use rescind_node::gateway::StalePolicy;

use crate::timearg::parse_duration;

fn parse_policy(s: &str) -> Result<StalePolicy, String> {
    StalePolicy::parse(s).ok_or_else(|| format!("expected open or closed (got {s:?})"))
}

/// `--http-listen`: an address, or `off` (None).
#[derive(Clone, Copy, Debug)]
struct HttpListen(Option<std::net::SocketAddr>);

fn parse_http_listen(s: &str) -> Result<HttpListen, String> {
    rescind_node::config::parse_listen_or_off(s).map(HttpListen)
}

/// Gateway flags.
#[derive(Args, Debug)]
pub struct GatewayArgs {
    /// HTTP API address (JSON API, OAuth revoke / introspect, forward-auth);
    /// `off` for none; port 0 picks a free port. [default: 127.0.0.1:7480]
    #[arg(long, env = "RESCIND_HTTP_LISTEN", value_parser = parse_http_listen)]
    http_listen: Option<HttpListen>,
    /// JWKS file JWTs are verified against (re-read when it changes).
    #[arg(long, env = "RESCIND_JWKS_FILE")]
    jwks_file: Option<PathBuf>,
    /// JWKS URL (http or https), fetched in the background.
    #[arg(long, env = "RESCIND_JWKS_URL")]
    jwks_url: Option<String>,
    /// File with an HS256 secret (only without a JWKS; at least 32 bytes).
    #[arg(long, env = "RESCIND_JWT_HS256_SECRET_FILE")]
    jwt_hs256_secret_file: Option<PathBuf>,
    /// An accepted `iss` (repeatable; env: comma-separated). [default: any]
    #[arg(long = "jwt-issuer", env = "RESCIND_JWT_ISSUERS", value_delimiter = ',')]
    jwt_issuers: Vec<String>,
    /// An accepted `aud` (repeatable; env: comma-separated). [default: not checked]
    #[arg(long = "jwt-audience", env = "RESCIND_JWT_AUDIENCES", value_delimiter = ',')]
    jwt_audiences: Vec<String>,
    /// Clock skew allowed on `exp` and `nbf` (DUR). [default: 30s]
    #[arg(long, env = "RESCIND_JWT_LEEWAY", value_parser = parse_duration)]
    jwt_leeway: Option<Duration>,
    /// Refuse JWTs without `exp`. [default: true]
    #[arg(long, env = "RESCIND_JWT_REQUIRE_EXP")]
    jwt_require_exp: Option<bool>,
    /// Claim holding the tenant. [default: none]
    #[arg(long, env = "RESCIND_JWT_TENANT_CLAIM")]
    jwt_tenant_claim: Option<String>,
    /// Claim holding the token version. [default: none]
    #[arg(long, env = "RESCIND_JWT_VERSION_CLAIM")]
    jwt_version_claim: Option<String>,
    /// Verified-signature cache capacity (0: off). [default: 100000]
    #[arg(long, env = "RESCIND_JWT_CACHE_ENTRIES")]
    jwt_cache_entries: Option<usize>,
    /// How often the JWKS file and URL are re-read (DUR). [default: 60s]
    #[arg(long, env = "RESCIND_JWT_REFRESH_INTERVAL", value_parser = parse_duration)]
    jwt_refresh_interval: Option<Duration>,
    /// Timeout of one JWKS URL fetch (DUR). [default: 10s]
    #[arg(long, env = "RESCIND_JWT_FETCH_TIMEOUT", value_parser = parse_duration)]
    jwt_fetch_timeout: Option<Duration>,
    /// When stale beyond --gateway-max-staleness: `closed` (deny) or `open`. [default: closed]
    #[arg(long, env = "RESCIND_GATEWAY_ON_STALE", value_parser = parse_policy)]
    gateway_on_stale: Option<StalePolicy>,
    /// Staleness above which --gateway-on-stale decides (DUR). [default: 30s]
    #[arg(long, env = "RESCIND_GATEWAY_MAX_STALENESS", value_parser = parse_duration)]
    gateway_max_staleness: Option<Duration>,
    /// Accept opaque bearer tokens at forward-auth and ext_authz (allowed
    /// unless revoked: only behind another authenticating layer). [default: false]
    #[arg(long, env = "RESCIND_OPAQUE_TOKENS")]
    opaque_tokens: Option<bool>,
    /// File with the 64-hex-digit key opaque tokens are hashed with (the same on every node).
    #[arg(long, env = "RESCIND_TOKEN_HASH_KEY_FILE")]
    token_hash_key_file: Option<PathBuf>,
    /// File of `client_id:secret` lines allowed to use /oauth2/revoke and /oauth2/introspect.
    #[arg(long, env = "RESCIND_OAUTH_CLIENTS_FILE")]
    oauth_clients_file: Option<PathBuf>,
    /// ext_authz: with no authorization header, believe the claims Envoy's
    /// jwt_authn filter put in metadata_context (only when nothing but Envoy
    /// reaches the gRPC port). [default: false]
    #[arg(long, env = "RESCIND_TRUST_JWT_AUTHN")]
    trust_jwt_authn: Option<bool>,
    /// Largest HTTP request body, bytes. [default: 4194304]
    #[arg(long, env = "RESCIND_MAX_HTTP_BODY")]
    max_http_body: Option<usize>,
    /// Most HTTP requests in flight (more get 429). [default: 1024]
    #[arg(long, env = "RESCIND_MAX_HTTP_REQUESTS")]
    max_http_requests: Option<usize>,
}

impl GatewayArgs {
    /// Lay the flags over `config`.
    pub fn apply(&self, config: &mut Config) {
        if let Some(HttpListen(v)) = self.http_listen {
            config.http_listen = v;
        }
        let g = &mut config.gateway;
        if let Some(v) = self.gateway_on_stale {
            g.on_stale = v;
        }
        if let Some(v) = self.gateway_max_staleness {
            g.max_staleness = v;
        }
        if let Some(v) = self.opaque_tokens {
            g.opaque_tokens = v;
        }
        if let Some(v) = &self.token_hash_key_file {
            g.token_hash_key_file = Some(v.clone());
        }
        if let Some(v) = &self.oauth_clients_file {
            g.oauth_clients_file = Some(v.clone());
        }
        if let Some(v) = self.trust_jwt_authn {
            g.trust_jwt_authn = v;
        }
        if let Some(v) = self.max_http_body {
            g.max_body_bytes = v;
        }
        if let Some(v) = self.max_http_requests {
            g.max_http_requests = v;
        }
        let any_jwt = self.jwks_file.is_some()
            || self.jwks_url.is_some()
            || self.jwt_hs256_secret_file.is_some()
            || !self.jwt_issuers.is_empty()
            || !self.jwt_audiences.is_empty()
            || self.jwt_leeway.is_some()
            || self.jwt_require_exp.is_some()
            || self.jwt_tenant_claim.is_some()
            || self.jwt_version_claim.is_some()
            || self.jwt_cache_entries.is_some()
            || self.jwt_refresh_interval.is_some()
            || self.jwt_fetch_timeout.is_some();
        if !any_jwt {
            return;
        }
        let j = config.jwt.get_or_insert_with(Default::default);
        if let Some(v) = &self.jwks_file {
            j.jwks_file = Some(v.clone());
        }
        if let Some(v) = &self.jwks_url {
            j.jwks_url = Some(v.clone());
        }
        if let Some(v) = &self.jwt_hs256_secret_file {
            j.hs256_secret_file = Some(v.clone());
        }
        if !self.jwt_issuers.is_empty() {
            j.issuers = self.jwt_issuers.clone();
        }
        if !self.jwt_audiences.is_empty() {
            j.audiences = self.jwt_audiences.clone();
        }
        if let Some(v) = self.jwt_leeway {
            j.leeway = v;
        }
        if let Some(v) = self.jwt_require_exp {
            j.require_exp = v;
        }
        if let Some(v) = &self.jwt_tenant_claim {
            j.tenant_claim = Some(v.clone());
        }
        if let Some(v) = &self.jwt_version_claim {
            j.version_claim = Some(v.clone());
        }
        if let Some(v) = self.jwt_cache_entries {
            j.cache_entries = v;
        }
        if let Some(v) = self.jwt_refresh_interval {
            j.refresh_interval = v;
        }
        if let Some(v) = self.jwt_fetch_timeout {
            j.fetch_timeout = v;
        }
    }
}
