//! # rescind
//!
//! The `rescind` command: run a node (`serve`) or talk to one (`revoke`,
//! `check`, `status`).
//!
//! ## Layout
//! - `main.rs`: the command line (clap) and dispatch.
//! - [`serve`]: config layering (defaults ← TOML ← env ← flags) and the node's lifetime;
//!   [`gateway_flags`] holds the HTTP, `[gateway]` and `[jwt]` flags,
//!   [`storage_flags`] the storage ones, [`ops_flags`] `[gossip]`, keys, metrics and logs,
//!   [`tls_flags`] `[tls]`.
//! - [`health`]: `rescind health`, the gRPC health probe.
//! - [`credential`]: `rescind credential new`, a named token and its hashed line.
//! - [`opts`]: options every client command takes, and the `rescind_client::Client` they make.
//! - [`revoke`], [`check`], [`status`], [`peers`]: one file per client command;
//!   [`bulk`] is `revoke tokens --from-file`.
//! - [`edge`]: `rescind edge`, the sidecar serving checks from a local replica.
//! - [`timearg`]: TIME and DUR arguments.
//! - [`traces`]: logs on stderr and the optional OTLP trace exporter.

// Doc comments on clap types are `--help` text, not Markdown.
#![allow(rustdoc::invalid_html_tags, rustdoc::bare_urls)]

mod audit;
mod bulk;
mod check;
mod credential;
mod edge;
mod gateway_flags;
mod health;
mod ops_flags;
mod opts;
mod peers;
mod revoke;
mod serve;
mod status;
mod storage_flags;
mod timearg;
mod tls_flags;
mod traces;

/// mimalloc: measurably less CPU per request than glibc malloc on the
/// check path (see README → Benchmarks), and less fragmentation.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Rescind: a replicated token revocation store.
///
/// Run a node with `rescind serve`, then revoke and check tokens against it.
/// TIME is RFC 3339 (2026-11-23T10:00:00Z), unix seconds, `now`, `now-15m` or
/// `now+1h`; DUR is 90s, 15m, 1h, 30d.
#[derive(Parser, Debug)]
#[command(name = "rescind", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a node (defaults: data in ./rescind-data, gRPC on 127.0.0.1:7400).
    Serve(Box<serve::ServeArgs>),
    /// Revoke a token id, or every token of a principal issued before a time.
    Revoke(revoke::RevokeArgs),
    /// Ask the node whether a token is revoked.
    Check(check::CheckArgs),
    /// Show the node's identity, counts, state digest and version vector.
    Status(status::StatusArgs),
    /// List the node's peers with region, last contact and lag; or retire one.
    Peers(peers::PeersArgs),
    /// List who revoked what, and when, from a node's audit trail (admin token).
    Audit(audit::AuditArgs),
    /// Ask a node's gRPC health service; exit 0 only when it is SERVING.
    Health(health::HealthArgs),
    /// Make a named credential: print a new token and its credentials-file line.
    Credential(credential::CredentialArgs),
    /// Run an edge sidecar: a local replica serving Check / CheckBatch / Status
    /// (default 127.0.0.1:7401), following --upstream nodes.
    Edge(edge::EdgeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::serve(*args).await,
            Command::Revoke(args) => revoke::revoke(args).await,
            Command::Check(args) => check::check(args).await,
            Command::Status(args) => status::status(args).await,
            Command::Peers(args) => peers::peers(args).await,
            Command::Edge(args) => edge::edge(args).await,
            Command::Audit(args) => audit::audit(args).await,
            Command::Health(args) => health::health(args).await,
            Command::Credential(args) => credential::run(args),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
