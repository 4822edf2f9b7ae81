//! `rescind health`: ask a node's `grpc.health.v1` service, for container
//! health checks and scripts. Exits 0 only when the service is `SERVING`;
//! needs no token.

use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::Args;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::timearg::parse_duration;

/// Flags of `rescind health`.
#[derive(Args, Debug)]
pub struct HealthArgs {
    /// The node's gRPC address, host:port.
    #[arg(long, env = "RESCIND_ADDR", default_value = "127.0.0.1:7400")]
    addr: String,
    /// The service to ask about ("" is the whole node; also rescind.v1.Revocations).
    #[arg(long, default_value = "")]
    service: String,
    /// Give up after this long (DUR).
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    timeout: Duration,
    /// Dial over TLS, trusting this CA bundle (PEM): for a node with --tls-cert.
    #[arg(long, env = "RESCIND_TLS_CA")]
    tls_ca: Option<std::path::PathBuf>,
    /// Name the node's certificate must be valid for. [default: the address's host]
    #[arg(long, env = "RESCIND_TLS_SERVER_NAME")]
    tls_server_name: Option<String>,
}

/// Print the node's serving status; an error unless it is `SERVING`.
pub async fn health(args: HealthArgs) -> anyhow::Result<()> {
    let scheme = if args.tls_ca.is_some() { "https" } else { "http" };
    let mut endpoint = Channel::from_shared(format!("{scheme}://{}", args.addr))
        .map_err(|e| anyhow!("--addr {}: {e}", args.addr))?;
    if let Some(ca) = &args.tls_ca {
        let pem = std::fs::read(ca).map_err(|e| anyhow!("--tls-ca {}: {e}", ca.display()))?;
        let mut tls = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(pem));
        if let Some(name) = &args.tls_server_name {
            tls = tls.domain_name(name.clone());
        }
        endpoint = endpoint.tls_config(tls).map_err(|e| anyhow!("--tls-ca: {e}"))?;
    }
    let channel = endpoint
        .connect_timeout(args.timeout)
        .timeout(args.timeout)
        .connect()
        .await
        .with_context(|| format!("cannot reach rescind node at {}", args.addr))?;
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: args.service.clone(),
        })
        .await
        .map_err(|s| anyhow!("{}: health check failed: {}", args.addr, s.message()))?
        .into_inner();
    let status = ServingStatus::try_from(answer.status).unwrap_or(ServingStatus::Unknown);
    println!("{}: {}", args.addr, status.as_str_name());
    if status != ServingStatus::Serving {
        bail!("{} is not serving", args.addr);
    }
    Ok(())
}
