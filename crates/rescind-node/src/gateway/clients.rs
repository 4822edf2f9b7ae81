//! OAuth client credentials for `/oauth2/revoke` and `/oauth2/introspect`
//! (RFC 6749 §2.3.1, HTTP Basic), kept as hashes.

use std::path::Path;

use base64::Engine as _;

use super::config::GatewayError;

/// The configured clients: `(client_id, blake3(secret))`.
#[derive(Clone, Default)]
pub struct OAuthClients {
    clients: Vec<(String, [u8; 32])>,
}

impl std::fmt::Debug for OAuthClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OAuthClients({} clients)", self.clients.len())
    }
}

impl OAuthClients {
    /// Read `client_id:secret` lines (blank lines and `#` comments skipped).
    pub fn load(path: &Path) -> Result<Self, GatewayError> {
        let field = "gateway.oauth_clients_file";
        let text = std::fs::read_to_string(path).map_err(|source| GatewayError::File {
            field,
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|problem| GatewayError::Invalid {
            field,
            problem: format!("{}: {problem}", path.display()),
        })
    }

    /// Parse the file's text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut clients = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((id, secret)) = line.split_once(':') else {
                return Err(format!("line {}: expected client_id:secret", n + 1));
            };
            if rescind_core::limits::id("client_id", id).is_err() || secret.len() < 16 {
                return Err(format!(
                    "line {}: the client id must be 1..=512 printable bytes and the secret must be at least 16 bytes",
                    n + 1
                ));
            }
            clients.push((id.to_owned(), *blake3::hash(secret.as_bytes()).as_bytes()));
        }
        Ok(Self { clients })
    }

    /// The client an `Authorization: Basic ...` value authenticates, if any.
    pub fn authenticate(&self, header: &str) -> Option<&str> {
        let (scheme, b64) = header.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .ok()?;
        let pair = String::from_utf8(raw).ok()?;
        let (id, secret) = pair.split_once(':')?;
        let (id, secret) = (form_decode(id)?, form_decode(secret)?);
        let presented = blake3::hash(secret.as_bytes());
        // Every entry is compared, so the time taken does not say which id exists.
        let mut found = None;
        for (cid, hash) in &self.clients {
            let same_secret = presented == blake3::Hash::from(*hash);
            if same_secret && *cid == id {
                found = Some(cid.as_str());
            }
        }
        found
    }
}

/// RFC 6749 §2.3.1: the id and secret are form-urlencoded before Basic.
fn form_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_checked_against_the_file() {
        let clients =
            OAuthClients::parse("# gateways\ngw:0123456789abcdef\nother:fedcba9876543210xx\n").unwrap();
        let basic = |s: &str| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(s));
        assert_eq!(clients.authenticate(&basic("gw:0123456789abcdef")), Some("gw"));
        assert_eq!(
            clients.authenticate(&basic("gw:fedcba9876543210xx")),
            None,
            "another client's secret"
        );
        assert_eq!(clients.authenticate(&basic("gw:wrong")), None);
        assert_eq!(clients.authenticate("Bearer x"), None);
        assert_eq!(clients.authenticate("Basic !!!"), None);
        assert!(OAuthClients::parse("nocolon").is_err());
        assert!(OAuthClients::parse("a:short").is_err());
    }
}
