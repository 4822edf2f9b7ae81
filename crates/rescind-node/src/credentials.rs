//! Named credentials: bearer tokens from a file, each with a name and a
//! role, stored as hashes and reloaded when the file changes.
//!
//! One line per credential, `NAME ROLE blake3:HEX`: NAME is 1..=64 of
//! `A-Z a-z 0-9 . _ -`, ROLE is `admin` (revoke, retire peers, the audit
//! trail, and every read) or `reader` (Check, CheckBatch, Watch, Status,
//! ListPeers), and HEX the 64 hex digits of the token's blake3 hash
//! (`rescind credential new` prints a token and its line). Blank lines and
//! `#` comments are skipped; at most [`MAX_CREDENTIALS`]. The file holds no
//! token: a copy of it authenticates nobody. The peer role is not a token:
//! peers prove themselves with the cluster key (and, with mutual TLS, their
//! certificate).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;

use crate::file_stamp::{Stamp, stamp};

/// Most credentials one file may hold.
pub const MAX_CREDENTIALS: usize = 1024;

/// How often the file is checked for changes.
pub const RELOAD_EVERY: Duration = Duration::from_secs(5);

/// What a credential may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Writes and reads.
    Admin,
    /// Reads only.
    Reader,
}

impl Role {
    /// As written in the file.
    pub fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Reader => "reader",
        }
    }
}

/// One credential: its name, role, and its token's hash.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    /// Names the caller in the audit trail.
    pub name: String,
    /// What it may do.
    pub role: Role,
    hash: [u8; 32],
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credential({} {})", self.name, self.role.name())
    }
}

/// The hash a credential line holds for `token`.
pub fn hash_line(name: &str, role: Role, token: &str) -> String {
    format!(
        "{name} {} blake3:{}",
        role.name(),
        blake3::hash(token.as_bytes()).to_hex()
    )
}

/// Parse a credentials file's text; an error names the line and what is wrong.
pub fn parse(text: &str) -> Result<Vec<Credential>, String> {
    let mut out: Vec<Credential> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = |what: String| format!("line {}: {what}", i + 1);
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [name, role, hash] = fields[..] else {
            return Err(at("expected `NAME ROLE blake3:HEX`".into()));
        };
        rescind_core::limits::label("name", name).map_err(|e| at(e.to_string()))?;
        let role = match role {
            "admin" => Role::Admin,
            "reader" => Role::Reader,
            other => return Err(at(format!("role `{other}`: expected admin or reader"))),
        };
        let hex = hash
            .strip_prefix("blake3:")
            .ok_or_else(|| at("the hash must start with `blake3:`".into()))?;
        let hash = blake3::Hash::from_hex(hex)
            .map_err(|_| at("the hash must be 64 hex digits after `blake3:`".into()))?;
        if out.iter().any(|c| c.name == name) {
            return Err(at(format!("`{name}` is listed twice")));
        }
        if let Some(other) = out.iter().find(|c| c.hash == *hash.as_bytes()) {
            return Err(at(format!(
                "the same token as `{}` (one token, one credential)",
                other.name
            )));
        }
        if out.len() == MAX_CREDENTIALS {
            return Err(at(format!("more than {MAX_CREDENTIALS} credentials")));
        }
        out.push(Credential {
            name: name.to_owned(),
            role,
            hash: *hash.as_bytes(),
        });
    }
    Ok(out)
}

/// The credentials of a file, reloaded by [`Credentials::watch_file`].
pub struct Credentials {
    path: PathBuf,
    current: RwLock<(Arc<Vec<Credential>>, Option<Stamp>)>,
}

impl Credentials {
    /// Read `path` (a start-up error when it is missing or malformed).
    pub fn load(path: &Path) -> Result<Self, String> {
        let (list, stamp) = read(path)?;
        Ok(Self {
            path: path.to_owned(),
            current: RwLock::new((Arc::new(list), stamp)),
        })
    }

    /// The credential whose token hashes to `hash`, comparing every entry
    /// (the time taken does not say which, or whether one, matched).
    pub fn find(&self, hash: &[u8; 32]) -> Option<Credential> {
        let list = self.current.read().0.clone();
        let mut found = None;
        for c in list.iter() {
            if ct_eq(&c.hash, hash) {
                found = Some(c.clone());
            }
        }
        found
    }

    /// How many credentials are in force.
    pub fn len(&self) -> usize {
        self.current.read().0.len()
    }

    /// A credential with the reader role is in force (reads then need a token).
    pub fn has_readers(&self) -> bool {
        self.current.read().0.iter().any(|c| c.role == Role::Reader)
    }

    /// No credential is in force.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reload when the file's modification time changed; a file that no
    /// longer reads or parses keeps the credentials in force. Returns
    /// whether new ones were taken.
    pub fn reload_if_changed(&self) -> Result<bool, String> {
        let stamp = stamp(&self.path);
        if stamp == self.current.read().1 {
            return Ok(false);
        }
        let (list, stamp) = read(&self.path)?;
        *self.current.write() = (Arc::new(list), stamp);
        Ok(true)
    }

    /// Check the file every [`RELOAD_EVERY`] until the task is stopped.
    pub async fn watch_file(self: Arc<Self>) {
        let mut every = tokio::time::interval(RELOAD_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            every.tick().await;
            let me = self.clone();
            match tokio::task::spawn_blocking(move || me.reload_if_changed()).await {
                Ok(Ok(true)) => {
                    failing = false;
                    tracing::info!(credentials = self.len(), "credentials file reloaded");
                }
                Ok(Ok(false)) => failing = false,
                Ok(Err(e)) if !failing => {
                    failing = true;
                    tracing::error!(file = %self.path.display(), error = %e, "credentials file changed but cannot be used; keeping the credentials in force");
                }
                _ => {}
            }
        }
    }
}

fn read(path: &Path) -> Result<(Vec<Credential>, Option<Stamp>), String> {
    let stamp = stamp(path);
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("credentials_file {}: {e}", path.display()))?;
    let list = parse(&text).map_err(|e| format!("credentials_file {}: {e}", path.display()))?;
    Ok((list, stamp))
}

fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_and_errors_name_the_line() {
        let text = format!(
            "# who may revoke\n{}\n\n{}\n",
            hash_line("ci-bot", Role::Admin, "token-one-0123456789"),
            hash_line("edge-eu", Role::Reader, "token-two-0123456789")
        );
        let list = parse(&text).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!((list[0].name.as_str(), list[0].role), ("ci-bot", Role::Admin));
        assert_eq!((list[1].name.as_str(), list[1].role), ("edge-eu", Role::Reader));
        for (bad, says) in [
            ("a admin", "line 1: expected"),
            ("a owner blake3:00", "role `owner`"),
            ("a admin sha256:00", "must start with `blake3:`"),
            ("a admin blake3:zz", "64 hex digits"),
            ("bad/name admin blake3:00", "name"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        let twice = format!(
            "{}\n{}",
            hash_line("x", Role::Admin, "t1"),
            hash_line("x", Role::Reader, "t2")
        );
        assert!(parse(&twice).unwrap_err().contains("line 2: `x` is listed twice"));
        let shared = format!(
            "{}\n{}",
            hash_line("x", Role::Admin, "t1"),
            hash_line("y", Role::Reader, "t1")
        );
        assert!(
            parse(&shared)
                .unwrap_err()
                .contains("line 2: the same token as `x`")
        );
    }

    #[test]
    fn tokens_are_found_by_hash_and_the_file_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        std::fs::write(&path, hash_line("alice", Role::Admin, "alice-token-0123456789")).unwrap();
        let creds = Credentials::load(&path).unwrap();
        let h = |t: &str| *blake3::hash(t.as_bytes()).as_bytes();
        assert_eq!(creds.find(&h("alice-token-0123456789")).unwrap().name, "alice");
        assert!(creds.find(&h("nobody")).is_none());
        // Rewrite with a modification time `secs` ahead (a rewrite within
        // the file system's time granularity would look unchanged).
        let rewrite = |text: String, secs: u64| {
            std::fs::write(&path, text).unwrap();
            let later = std::time::SystemTime::now() + Duration::from_secs(secs);
            let file = std::fs::File::options().write(true).open(&path).unwrap();
            file.set_modified(later).unwrap();
        };
        // A broken rewrite keeps what was in force.
        rewrite("garbage".into(), 10);
        assert!(creds.reload_if_changed().is_err());
        assert!(creds.find(&h("alice-token-0123456789")).is_some());
        // A good one replaces it.
        rewrite(hash_line("bob", Role::Reader, "bob-token-0123456789"), 20);
        assert!(creds.reload_if_changed().unwrap());
        assert!(creds.find(&h("alice-token-0123456789")).is_none());
        assert_eq!(creds.find(&h("bob-token-0123456789")).unwrap().role, Role::Reader);
    }
}
