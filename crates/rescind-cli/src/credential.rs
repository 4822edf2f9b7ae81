//! `rescind credential new --name NAME --role admin|reader`: a fresh random
//! token (printed once, for the caller to keep) and the line to add to the
//! node's `--credentials-file`, which holds only the token's hash.

use clap::{Args, Subcommand, ValueEnum};
use rescind_node::credentials::{Role, hash_line};

/// Flags of `rescind credential`.
#[derive(Args, Debug)]
pub struct CredentialArgs {
    #[command(subcommand)]
    command: CredentialCommand,
}

#[derive(Subcommand, Debug)]
enum CredentialCommand {
    /// Make a token for NAME with ROLE; print the token, then the file line.
    New {
        /// The credential's name, as the audit trail will show it (1..=64 of A-Z a-z 0-9 . _ -).
        #[arg(long)]
        name: String,
        /// admin: revoke, retire peers, read the audit trail, and every read;
        /// reader: Check, CheckBatch, Watch, Status, ListPeers.
        #[arg(long, value_enum)]
        role: RoleArg,
        /// Print only the file line, reading the token from RESCIND_TOKEN
        /// (to hash a token made elsewhere).
        #[arg(long)]
        hash_only: bool,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum RoleArg {
    Admin,
    Reader,
}

/// Run `rescind credential`.
pub fn run(args: CredentialArgs) -> anyhow::Result<()> {
    let CredentialCommand::New {
        name,
        role,
        hash_only,
    } = args.command;
    rescind_core::limits::label("--name", &name).map_err(|e| anyhow::anyhow!("{e}"))?;
    let role = match role {
        RoleArg::Admin => Role::Admin,
        RoleArg::Reader => Role::Reader,
    };
    if hash_only {
        let token = std::env::var("RESCIND_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                anyhow::anyhow!("--hash-only reads the token from RESCIND_TOKEN, which is not set")
            })?;
        rescind_node::auth::check_token_format("RESCIND_TOKEN", &token).map_err(|e| anyhow::anyhow!(e))?;
        println!("{}", hash_line(&name, role, &token));
        return Ok(());
    }
    let token: String = (0..32).map(|_| format!("{:02x}", rand::random::<u8>())).collect();
    println!("token: {token}");
    println!("{}", hash_line(&name, role, &token));
    eprintln!(
        "Keep the token; add the second line to the node's --credentials-file (it is reloaded within 5 s)."
    );
    Ok(())
}
