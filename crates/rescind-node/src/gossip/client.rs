//! Outgoing peer connections: one lazily connected channel per address,
//! carrying the cluster key.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use rescind_proto::v1::peers_client::PeersClient;
use tonic::metadata::AsciiMetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// Metadata key that carries the cluster key.
pub const CLUSTER_KEY_HEADER: &str = "rescind-cluster-key";

/// Metadata key that carries the configured cluster id, so nodes of two
/// clusters refuse each other by name rather than by a key mismatch.
pub const CLUSTER_ID_HEADER: &str = "rescind-cluster-id";

/// Makes a channel for an address; real TCP in production, a simulated
/// network in the simulator.
pub type ChannelFactory = Arc<dyn Fn(&str) -> Option<Channel> + Send + Sync>;

/// A factory dialing `addr` over TCP, connecting lazily: plaintext, or
/// mutual TLS with `tls` (its certificates read per connection, so a reload
/// applies to the next one).
pub fn tcp_channels(
    connect_timeout: std::time::Duration,
    timeout: std::time::Duration,
    tls: Option<crate::tls::Tls>,
) -> ChannelFactory {
    Arc::new(move |addr: &str| {
        let endpoint = Channel::from_shared(format!("http://{addr}"))
            .ok()?
            .connect_timeout(connect_timeout)
            .timeout(timeout)
            .tcp_nodelay(true)
            // A partition can leave a connection silently dead: pings find
            // out, and the channel reconnects.
            .http2_keep_alive_interval(std::time::Duration::from_secs(1))
            .keep_alive_timeout(timeout)
            .keep_alive_while_idle(true);
        Some(match &tls {
            None => endpoint.connect_lazy(),
            Some(tls) => {
                let tls = tls.clone();
                endpoint.connect_with_connector_lazy(tower::service_fn(move |uri| {
                    crate::tls::dial::connect(tls.clone(), uri, connect_timeout)
                }))
            }
        })
    })
}

/// Adds the cluster key and the cluster id to every call.
#[derive(Clone)]
pub struct ClusterKey {
    key: AsciiMetadataValue,
    cluster_id: AsciiMetadataValue,
}

impl Interceptor for ClusterKey {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        req.metadata_mut().insert(CLUSTER_KEY_HEADER, self.key.clone());
        req.metadata_mut()
            .insert(CLUSTER_ID_HEADER, self.cluster_id.clone());
        Ok(req)
    }
}

/// A peer client.
pub type PeerClient = PeersClient<InterceptedService<Channel, ClusterKey>>;

/// Channels to peers, by address.
pub struct PeerChannels {
    factory: ChannelFactory,
    key: ClusterKey,
    channels: Mutex<HashMap<String, Channel>>,
}

impl PeerChannels {
    /// Channels made by `factory`, authenticated with `cluster_key`, naming
    /// `cluster_id` (None when either is not visible ASCII).
    pub fn new(factory: ChannelFactory, cluster_key: &str, cluster_id: &str) -> Option<Self> {
        Some(Self {
            factory,
            key: ClusterKey {
                key: cluster_key.parse().ok()?,
                cluster_id: cluster_id.parse().ok()?,
            },
            channels: Mutex::new(HashMap::new()),
        })
    }

    /// A client for `addr` (None when the address cannot be dialled).
    pub fn client(&self, addr: &str) -> Option<PeerClient> {
        let channel = {
            let mut map = self.channels.lock();
            match map.get(addr) {
                Some(c) => c.clone(),
                None => {
                    let c = (self.factory)(addr)?;
                    map.insert(addr.to_owned(), c.clone());
                    c
                }
            }
        };
        Some(
            PeersClient::with_interceptor(channel, self.key.clone())
                .max_decoding_message_size(rescind_core::limits::MAX_MESSAGE_BYTES)
                .max_encoding_message_size(rescind_core::limits::MAX_MESSAGE_BYTES),
        )
    }
}
