//! # rescind-proto
//!
//! Rust types, clients and servers for the `rescind.v1` gRPC API, generated at
//! build time from `proto/rescind/v1/*.proto` by protox + tonic-prost-build.
//!
//! ## Layout
//! - [`v1`]: the generated messages, `revocations_client` and `revocations_server`.
//! - [`check_batch`]: `CheckBatchRequest`, by hand: a batch decodes into one
//!   buffer and borrowed checks, not an owned `CheckRequest` per check.
//! - [`FILE_DESCRIPTOR_SET`]: the encoded descriptors, for gRPC reflection.

/// The `rescind.v1` package.
pub mod v1 {
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    tonic::include_proto!("rescind.v1");
    pub use crate::check_batch::{CheckBatchRequest, CheckRequestRef};
}

pub mod check_batch;

/// The encoded `FileDescriptorSet` of `rescind.v1`, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/rescind_descriptor.bin"));
