//! RFC 7009 `POST /oauth2/revoke` and RFC 7662 `POST /oauth2/introspect`:
//! form-encoded, for callers authenticated by HTTP Basic (a configured
//! OAuth client, RFC 6749 §2.3.1) or by the admin bearer token. Errors take
//! RFC 6749 §5.2's shape (`error` is the OAuth code), plus `field`/`limit`.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::HttpState;
use super::body;
use super::error::ApiError;
use crate::gateway::NotRevocable;

/// The form both endpoints take. Other parameters are ignored (RFC 6749 §3.1).
#[derive(Deserialize)]
pub(super) struct TokenForm {
    token: String,
    #[serde(default)]
    token_type_hint: Option<String>,
}

/// The form-decoding path of `/oauth2/revoke` and `/oauth2/introspect`
/// bodies, for fuzzing and tests: the token and its hint.
pub fn decode_token_form(bytes: &[u8]) -> Result<(String, Option<String>), ApiError> {
    let form: TokenForm = body::parse_form(bytes)?;
    Ok((form.token, form.token_type_hint))
}

/// Who called: an OAuth client, or an admin.
enum Caller {
    Client(String),
    Admin(crate::auth::Admin),
}

/// An RFC 6749 §5.2 error: `error` is the OAuth code, `error_description`
/// the words.
fn oauth_error(status: StatusCode, code: &str, description: &str) -> ApiError {
    let mut e = ApiError::new(status, code)
        .with_header(header::CACHE_CONTROL, "no-store")
        .with_header(header::PRAGMA, "no-cache");
    e.description = Some(description.into());
    e
}

fn invalid_client() -> ApiError {
    let mut e = oauth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "client authentication failed",
    );
    e.headers
        .push((header::WWW_AUTHENTICATE, "Basic realm=\"rescind\"".into()));
    e
}

fn caller(s: &HttpState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return Err(invalid_client());
    };
    if let Some(token) = rescind_jwt::bearer(value) {
        if let Some(admin) = s.auth.admin_of(token) {
            return Ok(Caller::Admin(admin));
        }
        // A wrong Bearer token here is an admin-token guess: throttled alike.
        return match s.auth.note_failure(&super::metadata(headers)?) {
            Some(throttled) => Err(throttled.into()),
            None => Err(invalid_client()),
        };
    }
    match s.gateway.clients().authenticate(value) {
        Some(id) => Ok(Caller::Client(id.to_owned())),
        None => Err(invalid_client()),
    }
}

async fn token_form(s: &HttpState, headers: &HeaderMap, req: Body) -> Result<TokenForm, ApiError> {
    let form: TokenForm = body::form(headers, req, s.max_body).await.map_err(|mut e| {
        if e.status == StatusCode::BAD_REQUEST {
            e.description = Some(std::mem::replace(&mut e.error, "invalid_request".into()));
        }
        e
    })?;
    if form.token.is_empty() || form.token.len() > rescind_jwt::verify::MAX_TOKEN_LEN {
        let mut e = ApiError::field("token", "invalid_request");
        e.description = Some("token must not be empty".into());
        e.limit = Some(format!("1 to {} bytes", rescind_jwt::verify::MAX_TOKEN_LEN));
        return Err(e);
    }
    Ok(form)
}

fn no_store(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

/// RFC 7009 §2: 200 once the revocation is durable, and 200 for a token
/// that is invalid or expired (it can never pass again anyway).
pub(super) async fn revoke(
    State(s): State<HttpState>,
    headers: HeaderMap,
    req: Body,
) -> Result<Response, ApiError> {
    let caller = caller(&s, &headers)?;
    let form = token_form(&s, &headers, req).await?;
    let _hint = form.token_type_hint; // access_token / refresh_token: every kind is looked up alike
    let (client, actor) = match &caller {
        Caller::Client(id) => (Some(id.as_str()), id.clone()),
        Caller::Admin(crate::auth::Admin::Token) => (None, "admin".to_owned()),
        Caller::Admin(who) => (None, who.actor("")),
    };
    match s.gateway.revocation_for(&form.token, client) {
        Ok(None) => {}
        Ok(Some(mut cmd)) => {
            cmd.actor = actor;
            let out = s.engine.revoke(cmd).await?;
            tracing::info!(
                already = out.already_revoked,
                seq = out.seq,
                "revocation durable (oauth2/revoke)"
            );
        }
        Err(NotRevocable::UnsupportedType) => {
            return Err(oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_token_type",
                "opaque tokens need gateway.token_hash_key_file",
            ));
        }
        Err(NotRevocable::KeysUnavailable) => {
            // RFC 7009 §2.2.1: on 503 the client assumes the token still exists and retries.
            return Err(oauth_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the token's signing keys are not known yet; retry",
            )
            .with_header(header::RETRY_AFTER, "5"));
        }
        Err(NotRevocable::OtherClient) => {
            return Err(oauth_error(
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                "the token was issued to another client",
            ));
        }
    }
    Ok(no_store(StatusCode::OK.into_response()))
}

/// RFC 7662 §2.2: `{"active": true, ...claims}` for a JWT that verifies, is
/// in its validity window and is not revoked; `{"active": false}` otherwise.
pub(super) async fn introspect(
    State(s): State<HttpState>,
    headers: HeaderMap,
    req: Body,
) -> Result<Response, ApiError> {
    caller(&s, &headers)?;
    let form = token_form(&s, &headers, req).await?;
    let body = match s.gateway.introspect(&form.token) {
        Some(claims) => {
            let mut m = claims.raw.clone();
            m.insert("active".into(), Value::Bool(true));
            m.entry("token_type")
                .or_insert_with(|| Value::String("Bearer".into()));
            Value::Object(m)
        }
        None => json!({"active": false}),
    };
    Ok(no_store(Json(body).into_response()))
}
