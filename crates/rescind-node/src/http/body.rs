//! Request bodies: size, content type, then JSON or form data, each failure
//! an [`ApiError`] naming what is wrong (413, 415, 400 with the field).

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// Read at most `limit` bytes of `body`.
pub async fn read(body: Body, limit: usize) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|err| {
        let too_large =
            std::error::Error::source(&err).is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if !too_large {
            return ApiError::field("body", format!("the request body could not be read: {err}"));
        }
        let mut e = ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body larger than {limit} bytes"),
        );
        e.limit = Some(format!("at most {limit} bytes (gateway.max_body_bytes)"));
        e
    })
}

fn require_type(headers: &HeaderMap, wanted: &str) -> Result<(), ApiError> {
    let got = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = got.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case(wanted) {
        Ok(())
    } else {
        let mut e = ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("content-type must be {wanted} (got {:?})", got),
        );
        e.field = Some("content-type".into());
        Err(e)
    }
}

/// A JSON body: `application/json`, at most `limit` bytes, every field known.
pub async fn json<T: DeserializeOwned>(headers: &HeaderMap, body: Body, limit: usize) -> Result<T, ApiError> {
    require_type(headers, "application/json")?;
    let bytes = read(body, limit).await?;
    parse_json(&bytes)
}

/// Parse JSON `bytes` (every field known; trailing bytes refused).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let message = e.inner().to_string();
        ApiError::field(
            field_of(&e.path().to_string(), &message),
            format!("malformed JSON: {message}"),
        )
    })?;
    de.end()
        .map_err(|e| ApiError::field("body", format!("malformed JSON: {e}")))?;
    Ok(value)
}

/// A form body: `application/x-www-form-urlencoded`, at most `limit` bytes.
pub async fn form<T: DeserializeOwned>(headers: &HeaderMap, body: Body, limit: usize) -> Result<T, ApiError> {
    require_type(headers, "application/x-www-form-urlencoded")?;
    let bytes = read(body, limit).await?;
    parse_form(&bytes)
}

/// Parse form data `bytes`.
pub fn parse_form<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_urlencoded::from_bytes(bytes).map_err(|e| {
        let message = e.to_string();
        ApiError::field(field_of(".", &message), format!("malformed form data: {message}"))
    })
}

/// The field an error is about: the path serde reached, or the name a
/// "missing field `x`" / "unknown field `x`" message quotes.
fn field_of(path: &str, message: &str) -> String {
    if path != "." {
        return path.to_owned();
    }
    message
        .split('`')
        .nth(1)
        .filter(|_| message.contains("field"))
        .unwrap_or("body")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_field() {
        assert_eq!(field_of(".", "missing field `token`"), "token");
        assert_eq!(
            field_of("token.expires_at_ms", "invalid type"),
            "token.expires_at_ms"
        );
        assert_eq!(field_of(".", "expected value at line 1 column 1"), "body");
    }
}
