//! Compiles `proto/` with protox (pure Rust), so no system `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read at run time, not with `env!`: a build-script binary reused from
    // another checkout sharing the target dir would otherwise look for
    // that checkout's proto/.
    let root = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = ["rescind/v1/rescind.proto", "rescind/v1/peers.proto"];
    for f in &files {
        println!("cargo:rerun-if-changed={}", root.join(f).display());
    }
    let fds = protox::compile(files, [&root])?;
    // For gRPC server reflection.
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("rescind_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // Decoded without an owned `CheckRequest` per check: see check_batch.rs.
        .extern_path(
            ".rescind.v1.CheckBatchRequest",
            "crate::check_batch::CheckBatchRequest",
        )
        .compile_fds(fds)?;
    Ok(())
}
