//! [`ClientError`]: what a call can fail with.

/// Why a client call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The configuration cannot be used (names the setting).
    #[error("invalid client config: {0}")]
    Config(String),
    /// No endpoint answered before the deadline; the last error of each is listed.
    #[error("no rescind node answered within {deadline_ms} ms ({attempts})")]
    Unreachable {
        /// The deadline that ran out.
        deadline_ms: u64,
        /// `addr: error` for the endpoints tried.
        attempts: String,
    },
    /// A node refused the request (bad input, auth, ...): not retried elsewhere.
    #[error("node {addr} answered {code:?}: {message}")]
    Refused {
        /// The endpoint that answered.
        addr: String,
        /// The gRPC status code.
        code: tonic::Code,
        /// The node's message.
        message: String,
    },
    /// A node sent something this client cannot use.
    #[error("node {addr} sent an invalid answer: {detail}")]
    Invalid {
        /// The endpoint.
        addr: String,
        /// What was wrong.
        detail: String,
    },
}
