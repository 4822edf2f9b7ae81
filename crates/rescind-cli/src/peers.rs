//! `rescind peers`: list a node's peers, or retire one.

use anyhow::anyhow;
use clap::{Args, Subcommand};
use rescind_proto::v1 as pb;
use serde_json::json;

use crate::opts::{ClientOpts, staleness_json, staleness_text};

/// `rescind peers [remove NODE]`
#[derive(Args, Debug)]
pub struct PeersArgs {
    #[command(subcommand)]
    action: Option<PeersAction>,
    #[command(flatten)]
    client: ClientOpts,
}

#[derive(Subcommand, Debug)]
enum PeersAction {
    /// Retire a node (by name) so it no longer counts for staleness; spreads by gossip.
    Remove {
        /// The node's name.
        name: String,
    },
}

/// Run `rescind peers`.
pub async fn peers(args: PeersArgs) -> anyhow::Result<()> {
    let opts = &args.client;
    let client = opts.client().await?;
    if let Some(PeersAction::Remove { name }) = args.action {
        let message = pb::RemovePeerRequest { name: name.clone() };
        let (r, _, addr) = client
            .call(opts.timeout, |mut stub, left| {
                let req = client.request(message.clone(), left);
                async move { stub.remove_peer(req).await.map(|r| r.into_inner()) }
            })
            .await
            .map_err(|e| opts.error(e))?;
        if opts.json {
            println!("{}", json!({ "name": name, "removed": r.removed }));
        } else if r.removed {
            println!("{name}: retired; it no longer counts for staleness");
        } else {
            return Err(anyhow!("{name}: no such peer on {addr}"));
        }
        return Ok(());
    }
    let (list, _, _) = client
        .call(opts.timeout, |mut stub, left| {
            let req = client.request(pb::ListPeersRequest {}, left);
            async move { stub.list_peers(req).await.map(|r| r.into_inner()) }
        })
        .await
        .map_err(|e| opts.error(e))?;
    if opts.json {
        let peers: Vec<_> = list
            .peers
            .iter()
            .map(|p| {
                json!({
                    "name": p.name, "region": p.region, "addr": p.addr, "incarnation": p.incarnation,
                    "removed": p.removed, "last_contact_ago_ms": p.last_contact_ago_ms,
                    "staleness_ms": staleness_json(p.staleness_ms),
                })
            })
            .collect();
        println!("{}", json!({ "peers": peers }));
        return Ok(());
    }
    println!(
        "{:<20} {:<12} {:<22} {:>14} {:>12}",
        "NAME", "REGION", "ADDR", "LAST CONTACT", "LAG"
    );
    for p in &list.peers {
        let contact = p
            .last_contact_ago_ms
            .map_or("never".to_string(), |ms| format!("{ms} ms ago"));
        let lag = if p.removed {
            "retired".to_string()
        } else {
            staleness_text(p.staleness_ms)
        };
        println!(
            "{:<20} {:<12} {:<22} {:>14} {:>12}",
            p.name, p.region, p.addr, contact, lag
        );
    }
    Ok(())
}
