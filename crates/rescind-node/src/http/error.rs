//! [`ApiError`]: every HTTP error as JSON `{error, field, limit}`.

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rescind_core::limits::FieldError;
use serde_json::json;

use crate::engine::EngineError;

/// An HTTP error: a status and a JSON body naming the field and the limit.
#[derive(Debug)]
pub struct ApiError {
    /// 400, 401, 403, 413, 415, 429 or 503.
    pub status: StatusCode,
    /// What went wrong, for people.
    pub error: String,
    /// The request field at fault, when one is.
    pub field: Option<String>,
    /// The rule the field breaks, when there is one.
    pub limit: Option<String>,
    /// RFC 6749 §5.2 `error_description` (the OAuth endpoints, whose
    /// `error` is a code).
    pub description: Option<String>,
    /// Extra headers (`WWW-Authenticate`, `Retry-After`).
    pub headers: Vec<(HeaderName, String)>,
}

impl ApiError {
    /// An error with no field.
    pub fn new(status: StatusCode, error: impl Into<String>) -> Self {
        Self {
            status,
            error: error.into(),
            field: None,
            limit: None,
            description: None,
            headers: Vec::new(),
        }
    }

    /// 400 naming a field.
    pub fn field(field: impl Into<String>, error: impl Into<String>) -> Self {
        Self {
            field: Some(field.into()),
            ..Self::new(StatusCode::BAD_REQUEST, error)
        }
    }

    /// Add a header.
    pub fn with_header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// 401 with a `WWW-Authenticate: Bearer` challenge.
    pub fn unauthenticated(error: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, error)
            .with_header(header::WWW_AUTHENTICATE, "Bearer realm=\"rescind\"")
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        Self {
            limit: Some(e.problem.clone()),
            field: Some(e.field.clone()),
            ..Self::new(StatusCode::BAD_REQUEST, e.to_string())
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::NotCaughtUp { .. }
            | EngineError::Unavailable(_)
            | EngineError::Recovering
            | EngineError::Unrecoverable(_) => Self::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
                .with_header(header::RETRY_AFTER, "1"),
            EngineError::Storage(_) => Self::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        }
    }
}

impl From<tonic::Status> for ApiError {
    /// The auth checks shared with gRPC answer with a status.
    fn from(s: tonic::Status) -> Self {
        match s.code() {
            tonic::Code::Unauthenticated => Self::unauthenticated(s.message()),
            tonic::Code::PermissionDenied => Self::new(StatusCode::FORBIDDEN, s.message()),
            tonic::Code::InvalidArgument => Self::new(StatusCode::BAD_REQUEST, s.message()),
            tonic::Code::ResourceExhausted => Self::new(StatusCode::TOO_MANY_REQUESTS, s.message()),
            _ => Self::new(StatusCode::SERVICE_UNAVAILABLE, s.message()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"error": self.error, "field": self.field, "limit": self.limit});
        if let Some(d) = self.description {
            body["error_description"] = serde_json::Value::String(d);
        }
        let mut resp = (self.status, axum::Json(body)).into_response();
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::try_from(value) {
                resp.headers_mut().append(name, v);
            }
        }
        resp
    }
}
