//! `rescind revoke tokens --from-file FILE`: incident response, many ids at once.
//!
//! The whole file is read and validated before anything is written, so a typo
//! on line 90,000 stops the run before line 1 is revoked. Ids then go to the
//! node in `RevokeBatch` calls (one durable write each). Every revocation is
//! idempotent, so a rerun after an interruption sends the file again and the
//! node answers `already_revoked` for what it already holds: the job finishes
//! and no op is written twice.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use clap::Args;
use rescind_core::limits::{self, MAX_REVOKE_BATCH};
use rescind_proto::v1 as pb;
use serde::Deserialize;
use serde_json::json;

use crate::opts::now_ms;
use crate::timearg::{parse_duration, parse_time_ms};

/// Most line errors listed before the count of the rest.
const SHOWN_ERRORS: usize = 20;

/// `rescind revoke tokens ...`
#[derive(Args, Debug)]
pub struct BulkArgs {
    /// The file: one token id per line, or JSON Lines
    /// (`{"token_id": "...", "expires_at_ms": 1767225600000, "issuer": "..."}`).
    /// Blank lines and lines starting with `#` are skipped.
    #[arg(long, value_name = "FILE")]
    from_file: PathBuf,
    /// Validate the whole file and say what would be revoked, writing nothing.
    #[arg(long)]
    dry_run: bool,
    /// Revocations per RevokeBatch call (one durable write each), 1..=10000.
    #[arg(long, default_value_t = MAX_REVOKE_BATCH as u64, value_parser = clap::value_parser!(u64).range(1..=MAX_REVOKE_BATCH as u64))]
    batch_size: u64,
    /// At most this many revocations a second (0: as fast as the node takes them).
    #[arg(long, default_value_t = 0)]
    max_rate: u64,
    /// Issuer for lines that name none (plain ids, JSON without `issuer`).
    #[arg(long, default_value = "")]
    issuer: String,
    /// Lines without `expires_at_ms` expire this long from now (DUR).
    #[arg(long, value_parser = parse_duration, conflicts_with = "expires_at")]
    expires_in: Option<Duration>,
    /// Lines without `expires_at_ms` expire at this TIME. Neither flag: kept forever.
    #[arg(long)]
    expires_at: Option<String>,
    #[command(flatten)]
    common: crate::revoke::RevokeCommon,
}

/// One JSON line.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    token_id: String,
    #[serde(default)]
    expires_at_ms: Option<i64>,
    #[serde(default)]
    issuer: Option<String>,
}

/// The file, validated.
struct Plan {
    revocations: Vec<pb::TokenRevocation>,
    duplicates: usize,
    lines: usize,
}

/// Read and validate `path`; every error names its line and field.
fn plan(path: &Path, default_issuer: &str, default_expiry: i64) -> anyhow::Result<Plan> {
    let text = std::fs::read_to_string(path).with_context(|| format!("--from-file {}", path.display()))?;
    let mut revocations: Vec<pb::TokenRevocation> = Vec::new();
    let mut seen = HashMap::new();
    let mut duplicates = 0;
    let mut errors = Vec::new();
    let mut lines = 0;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        lines += 1;
        match parse_line(line, default_issuer, default_expiry) {
            Ok(r) => match seen.entry((r.issuer.clone(), r.token_id.clone())) {
                Entry::Vacant(v) => {
                    v.insert(revocations.len());
                    revocations.push(r);
                }
                Entry::Occupied(o) => {
                    // The longest-lived line wins (0: never expires).
                    duplicates += 1;
                    let kept = &mut revocations[*o.get()];
                    if r.expires_at_ms == 0
                        || (kept.expires_at_ms != 0 && r.expires_at_ms > kept.expires_at_ms)
                    {
                        kept.expires_at_ms = r.expires_at_ms;
                    }
                }
            },
            Err(e) => errors.push(format!("{}:{}: {e}", path.display(), n + 1)),
        }
    }
    if !errors.is_empty() {
        let more = errors.len().saturating_sub(SHOWN_ERRORS);
        let mut message = errors
            .into_iter()
            .take(SHOWN_ERRORS)
            .collect::<Vec<_>>()
            .join("\n");
        if more > 0 {
            message.push_str(&format!("\n... and {more} more"));
        }
        return Err(anyhow!(
            "{message}\nnothing was revoked: fix the file and run again"
        ));
    }
    Ok(Plan {
        revocations,
        duplicates,
        lines,
    })
}

fn parse_line(line: &str, default_issuer: &str, default_expiry: i64) -> Result<pb::TokenRevocation, String> {
    let (token_id, expires_at_ms, issuer) = if line.starts_with('{') {
        let l: Line = serde_json::from_str(line).map_err(|e| format!("not a JSON revocation: {e}"))?;
        (
            l.token_id,
            l.expires_at_ms.unwrap_or(default_expiry),
            l.issuer.unwrap_or_else(|| default_issuer.to_owned()),
        )
    } else {
        (line.to_owned(), default_expiry, default_issuer.to_owned())
    };
    limits::id("token_id", &token_id).map_err(|e| e.to_string())?;
    if !issuer.is_empty() {
        limits::id("issuer", &issuer).map_err(|e| e.to_string())?;
    }
    limits::time_ms("expires_at_ms", expires_at_ms).map_err(|e| e.to_string())?;
    Ok(pb::TokenRevocation {
        token_id,
        expires_at_ms,
        issuer,
    })
}

/// Progress on stderr: a redrawn bar on a terminal, a line every 10% otherwise.
struct Progress {
    total: usize,
    tty: bool,
    last_tenth: usize,
    started: Instant,
}

impl Progress {
    fn new(total: usize) -> Self {
        Self {
            total,
            tty: std::io::stderr().is_terminal(),
            last_tenth: 0,
            started: Instant::now(),
        }
    }

    fn show(&mut self, done: usize) {
        let rate = done as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
        let mut err = std::io::stderr().lock();
        if self.tty {
            let filled = done * 30 / self.total.max(1);
            let _ = write!(
                err,
                "\r[{}{}] {done}/{} ({rate:.0}/s)",
                "#".repeat(filled),
                " ".repeat(30 - filled),
                self.total
            );
            if done == self.total {
                let _ = writeln!(err);
            }
        } else {
            let tenth = done * 10 / self.total.max(1);
            if tenth > self.last_tenth || done == self.total {
                self.last_tenth = tenth;
                let _ = writeln!(err, "progress: {done}/{} ({rate:.0}/s)", self.total);
            }
        }
    }
}

/// Run `rescind revoke tokens --from-file`.
pub async fn run(args: BulkArgs) -> anyhow::Result<()> {
    let now = now_ms();
    let expiry = match (args.expires_in, &args.expires_at) {
        (Some(d), _) => now.saturating_add(d.as_millis() as u64),
        (None, Some(at)) => parse_time_ms(at, now).map_err(|e| anyhow!("--expires-at: {e}"))?,
        (None, None) => 0,
    };
    let expiry = i64::try_from(expiry).context("--expires-at is too far away")?;
    if !args.issuer.is_empty() {
        limits::id("--issuer", &args.issuer)?;
    }
    limits::text("--reason", &args.common.reason)?;
    let plan = plan(&args.from_file, &args.issuer, expiry)?;
    let opts = &args.common.client;
    if args.dry_run {
        let batches = plan.revocations.len().div_ceil(args.batch_size as usize);
        if opts.json {
            println!(
                "{}",
                json!({"dry_run": true, "lines": plan.lines, "to_revoke": plan.revocations.len(),
                       "duplicate_lines": plan.duplicates, "batches": batches})
            );
        } else {
            println!(
                "dry run: {} lines valid; would revoke {} ids ({} duplicate lines skipped) in {batches} batches of up to {}; nothing written",
                plan.lines,
                plan.revocations.len(),
                plan.duplicates,
                args.batch_size
            );
        }
        return Ok(());
    }
    opts.require_admin_token()?;
    let actor = args.common.actor();
    limits::text("--actor", &actor)?;
    let client = opts.client().await?;
    let total = plan.revocations.len();
    let mut progress = Progress::new(total);
    let (mut new, mut already, mut done) = (0u64, 0u64, 0usize);
    let started = Instant::now();
    let mut covered = rescind_core::ConsistencyToken { dots: Vec::new() };
    for chunk in chunks(&plan.revocations, args.batch_size as usize) {
        let reqs = chunk
            .iter()
            .map(|t| pb::RevokeRequest {
                target: Some(pb::revoke_request::Target::Token(t.clone())),
                reason: args.common.reason.clone(),
                actor: actor.clone(),
            })
            .collect();
        let resp = client.revoke_batch(reqs).await.map_err(|e| {
            anyhow!(
                "{}\n{done} of {total} revoked before this failure; run the same command again to finish (nothing is written twice)",
                opts.error(e)
            )
        })?;
        new += resp.revoked;
        already += resp.already_revoked;
        done += chunk.len();
        // Batches may land on different nodes: the token covers them all.
        if let Ok(t) = rescind_core::ConsistencyToken::decode(&resp.consistency_token) {
            covered = merge(covered, t);
        }
        progress.show(done);
        if args.max_rate > 0 {
            let due = Duration::from_secs_f64(done as f64 / args.max_rate as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let token = rescind_client::ConsistencyToken::from_bytes(covered.encode()).to_hex();
    if opts.json {
        println!(
            "{}",
            json!({"revoked": new, "already_revoked": already, "duplicate_lines": plan.duplicates,
                   "seconds": secs, "consistency_token": token})
        );
    } else {
        println!(
            "revoked {new} ids ({already} already revoked, {} duplicate lines skipped) in {secs:.1}s\nconsistency token: {token}",
            plan.duplicates
        );
    }
    Ok(())
}

/// Largest encoded batch sent (the node decodes messages up to 4 MiB).
const MAX_BATCH_BYTES: usize = 3 * 1024 * 1024;

/// Consecutive runs of at most `size` revocations and [`MAX_BATCH_BYTES`].
fn chunks(all: &[pb::TokenRevocation], size: usize) -> Vec<&[pb::TokenRevocation]> {
    use prost::Message as _;
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, t) in all.iter().enumerate() {
        // The id, issuer, expiry, plus the reason and actor each entry repeats.
        let len = t.encoded_len() + 600;
        if i > start && (i - start == size || bytes + len > MAX_BATCH_BYTES) {
            out.push(&all[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += len;
    }
    if start < all.len() {
        out.push(&all[start..]);
    }
    out
}

/// Every op either token names.
fn merge(
    a: rescind_core::ConsistencyToken,
    b: rescind_core::ConsistencyToken,
) -> rescind_core::ConsistencyToken {
    let mut dots = a.dots;
    for (origin, seq) in b.dots {
        match dots.iter_mut().find(|(o, _)| *o == origin) {
            Some((_, s)) => *s = (*s).max(seq),
            None => dots.push((origin, seq)),
        }
    }
    rescind_core::ConsistencyToken { dots }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_id_keeps_its_longest_expiry_and_big_batches_split_by_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ids");
        std::fs::write(
            &path,
            "{\"token_id\":\"a\",\"expires_at_ms\":5}\n{\"token_id\":\"a\",\"expires_at_ms\":9}\na\n",
        )
        .unwrap();
        let p = plan(&path, "", 0).unwrap();
        assert_eq!(
            p.revocations[0].expires_at_ms, 0,
            "a line that never expires wins"
        );
        let big: Vec<pb::TokenRevocation> = (0..10_000)
            .map(|i| pb::TokenRevocation {
                token_id: format!("{i:0>500}"),
                ..Default::default()
            })
            .collect();
        let split = chunks(&big, 10_000);
        assert!(
            split.len() > 1,
            "10,000 ids of 500 bytes do not fit one 4 MiB message"
        );
        assert_eq!(split.iter().map(|c| c.len()).sum::<usize>(), 10_000);
    }

    #[test]
    fn lines_are_plain_ids_or_json_and_errors_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ids");
        std::fs::write(
            &path,
            "# incident 42\nplain-1\n\n{\"token_id\":\"j-1\",\"expires_at_ms\":5,\"issuer\":\"https://a\"}\nplain-1\n",
        )
        .unwrap();
        let p = plan(&path, "", 7).unwrap();
        assert_eq!((p.lines, p.duplicates, p.revocations.len()), (3, 1, 2));
        let sizes: Vec<usize> = chunks(&p.revocations, 1).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, [1, 1]);
        assert_eq!(p.revocations[0].expires_at_ms, 7);
        assert_eq!(p.revocations[1].issuer, "https://a");
        std::fs::write(&path, "ok\n{\"token_id\":\"x\",\"typo\":1}\nbad\u{7}id\n").unwrap();
        let e = plan(&path, "", 0).err().unwrap().to_string();
        assert!(e.contains("ids:2: not a JSON revocation"), "{e}");
        assert!(e.contains("ids:3: token_id: must not contain control"), "{e}");
        assert!(e.contains("nothing was revoked"), "{e}");
    }
}
