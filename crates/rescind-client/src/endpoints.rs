//! The endpoint set: one lazily connected channel per endpoint, its measured
//! round trip and region, whether it is down, and the order calls try them in.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;
use tonic::transport::Channel;

use crate::error::ClientError;

/// Makes a channel for an endpoint: TCP by default ([`tcp_connector`]); the
/// simulator injects its own network.
pub type Connector = Arc<dyn Fn(&str) -> Result<Channel, ClientError> + Send + Sync>;

/// A connector dialing `http://{addr}` (or the URL as given) over TCP,
/// lazily, with `TCP_NODELAY` and HTTP/2 keepalive pings, so a silently dead
/// connection is noticed within about `connect_timeout`.
pub fn tcp_connector(connect_timeout: Duration) -> Connector {
    Arc::new(move |addr: &str| {
        let url = if addr.contains("://") {
            addr.to_owned()
        } else {
            format!("http://{addr}")
        };
        let endpoint = Channel::from_shared(url)
            .map_err(|_| ClientError::Config(format!("endpoint `{addr}` is not host:port or a URL")))?;
        Ok(lazy(endpoint, connect_timeout))
    })
}

/// Connect `endpoint` lazily with `TCP_NODELAY` and keepalive pings.
fn lazy(endpoint: tonic::transport::Endpoint, connect_timeout: Duration) -> Channel {
    endpoint
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(1))
        .keep_alive_timeout(connect_timeout)
        .keep_alive_while_idle(true)
        .connect_lazy()
}

/// TLS to the nodes: the CA their certificates chain to, optionally a
/// client certificate (for nodes with `tls.client_ca`), and the name to
/// check the certificates for (default: each endpoint's host).
#[derive(Clone, Debug)]
pub struct ClientTls {
    /// PEM of the CA bundle the nodes' certificates chain to.
    pub ca_pem: Vec<u8>,
    /// PEM of a client certificate chain and its key.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
    /// The name the nodes' certificates must be valid for.
    pub server_name: Option<String>,
}

/// A connector dialing `https://{addr}` over TLS, otherwise as
/// [`tcp_connector`].
pub fn tls_connector(connect_timeout: Duration, tls: ClientTls) -> Connector {
    Arc::new(move |addr: &str| {
        let host_port = addr
            .strip_prefix("https://")
            .or_else(|| addr.strip_prefix("http://"))
            .unwrap_or(addr);
        let url = format!("https://{host_port}");
        let mut config = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(&tls.ca_pem));
        if let Some((cert, key)) = &tls.identity {
            config = config.identity(tonic::transport::Identity::from_pem(cert, key));
        }
        if let Some(name) = &tls.server_name {
            config = config.domain_name(name.clone());
        }
        let endpoint = Channel::from_shared(url)
            .map_err(|_| ClientError::Config(format!("endpoint `{addr}` is not host:port or a URL")))?
            .tls_config(config)
            .map_err(|e| ClientError::Config(format!("tls: {e}")))?;
        Ok(lazy(endpoint, connect_timeout))
    })
}

/// Most endpoints one client takes.
pub const MAX_ENDPOINTS: usize = 64;

/// How long an endpoint that failed is tried only after the others.
const DOWN_FOR: Duration = Duration::from_secs(2);

/// One endpoint as the client sees it.
#[derive(Clone, Debug)]
pub struct EndpointView {
    /// As configured.
    pub addr: String,
    /// Last measured round trip of a `Status` probe.
    pub rtt: Option<Duration>,
    /// Region the node reported.
    pub region: Option<String>,
    /// Node id the node reported.
    pub node_id: Option<String>,
    /// Failed recently: tried after the healthy ones.
    pub down: bool,
}

struct Entry {
    addr: String,
    channel: Channel,
    rtt: Option<Duration>,
    region: Option<String>,
    node_id: Option<String>,
    down_until: Option<Instant>,
}

/// The endpoints of one client; cheap to share.
pub struct Endpoints {
    entries: Mutex<Vec<Entry>>,
    region: Option<String>,
}

impl Endpoints {
    /// Channels for `addrs` (deduplicated, in order); `region` is the caller's.
    pub fn new(addrs: &[String], region: Option<String>, connector: &Connector) -> Result<Self, ClientError> {
        if addrs.is_empty() {
            return Err(ClientError::Config(
                "endpoints: give at least one node address".into(),
            ));
        }
        if addrs.len() > MAX_ENDPOINTS {
            return Err(ClientError::Config(format!(
                "endpoints: at most {MAX_ENDPOINTS}, got {}",
                addrs.len()
            )));
        }
        let mut entries: Vec<Entry> = Vec::new();
        for addr in addrs {
            let addr = addr.trim();
            if addr.is_empty() {
                return Err(ClientError::Config("endpoints: an address is empty".into()));
            }
            if entries.iter().any(|e| e.addr == addr) {
                continue;
            }
            entries.push(Entry {
                addr: addr.to_owned(),
                channel: connector(addr)?,
                rtt: None,
                region: None,
                node_id: None,
                down_until: None,
            });
        }
        Ok(Self {
            entries: Mutex::new(entries),
            region,
        })
    }

    /// How many endpoints there are.
    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    /// True when there are none (never, once built).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The endpoints to try, best first: healthy before recently failed;
    /// among those, the caller's region first, then by measured round trip
    /// (unmeasured last), then as configured.
    pub fn order(&self) -> Vec<(usize, String, Channel)> {
        let now = Instant::now();
        let entries = self.entries.lock();
        let mut idx: Vec<usize> = (0..entries.len()).collect();
        idx.sort_by_key(|&i| {
            let e = &entries[i];
            let down = e.down_until.is_some_and(|t| t > now);
            let other_region = match (&self.region, &e.region) {
                (Some(mine), Some(theirs)) => mine != theirs,
                _ => true,
            };
            (down, other_region, e.rtt.unwrap_or(Duration::MAX), i)
        });
        idx.into_iter()
            .map(|i| (i, entries[i].addr.clone(), entries[i].channel.clone()))
            .collect()
    }

    /// A probe of endpoint `i` answered after `rtt`.
    pub fn measured(&self, i: usize, rtt: Duration, region: &str, node_id: &str) {
        if let Some(e) = self.entries.lock().get_mut(i) {
            // Smooth a little so one slow answer does not reorder everything.
            e.rtt = Some(match e.rtt {
                Some(old) => (old * 3 + rtt) / 4,
                None => rtt,
            });
            e.region = Some(region.to_owned());
            e.node_id = Some(node_id.to_owned());
            e.down_until = None;
        }
    }

    /// Endpoint `i` answered a call.
    pub fn up(&self, i: usize) {
        if let Some(e) = self.entries.lock().get_mut(i) {
            e.down_until = None;
        }
    }

    /// Endpoint `i` failed: try it after the others for a while.
    pub fn down(&self, i: usize) {
        if let Some(e) = self.entries.lock().get_mut(i) {
            e.down_until = Some(Instant::now() + DOWN_FOR);
        }
    }

    /// Every endpoint, for status output.
    pub fn view(&self) -> Vec<EndpointView> {
        let now = Instant::now();
        self.entries
            .lock()
            .iter()
            .map(|e| EndpointView {
                addr: e.addr.clone(),
                rtt: e.rtt,
                region: e.region.clone(),
                node_id: e.node_id.clone(),
                down: e.down_until.is_some_and(|t| t > now),
            })
            .collect()
    }
}
