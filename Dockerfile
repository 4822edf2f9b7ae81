# syntax=docker/dockerfile:1.7
#
# Rescind node image: `docker build -t rescind:local .` at the workspace root
# (BuildKit, the default builder since Docker 23, is needed for the cache mounts).
#
#   docker run --rm -p 7400:7400 -p 7480:7480 -v rescind-data:/var/lib/rescind \
#     -e RESCIND_ADMIN_TOKEN=$(openssl rand -hex 32) rescind:local
#
# The image listens on 0.0.0.0 (gRPC 7400: clients, peers, grpc.health.v1 and
# reflection; HTTP 7480: JSON API, /metrics, /healthz, /readyz), so the node
# refuses to start without an admin token (RESCIND_ADMIN_TOKEN or
# RESCIND_ADMIN_TOKEN_FILE). In a cluster also set RESCIND_CLUSTER_KEY_FILE,
# RESCIND_ADVERTISE_ADDR and RESCIND_PEERS: see deploy/compose and
# deploy/kubernetes. Every `rescind serve` flag has an env twin RESCIND_*.

ARG RUST_VERSION=1.95

# ---- build ---------------------------------------------------------------
FROM rust:${RUST_VERSION}-slim-bookworm AS builder
WORKDIR /src
# A workspace build needs every member's manifest, so the whole context goes
# in at once (.dockerignore keeps target/ and .git out); the cache mounts keep
# the crates.io registry and the target dir between builds instead of layers.
# No protoc: proto/ compiles with protox (pure Rust) in rescind-proto's build.rs.
COPY . .
RUN --mount=type=cache,id=rescind-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=rescind-cargo-git,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,id=rescind-target,target=/src/target,sharing=locked \
    cargo build --release --locked -p rescind-cli \
 && install -D -m 0755 target/release/rescind /out/usr/local/bin/rescind \
 && install -d -m 0700 /out/var/lib/rescind

# ---- run -----------------------------------------------------------------
# distroless/cc: glibc, libgcc, CA certificates (JWKS over https), no shell.
FROM gcr.io/distroless/cc-debian12:nonroot

ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="rescind" \
      org.opencontainers.image.description="Rescind: a replicated token revocation store (rescind serve runs a node)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://example.invalid/rescind" \
      org.opencontainers.image.documentation="https://example.invalid/rescind#readme" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot"

COPY --from=builder /out/usr/local/bin/rescind /usr/local/bin/rescind
# Owned by the node's user before VOLUME, so a fresh named volume starts
# with that owner and mode 0700.
COPY --from=builder --chown=10001:10001 /out/var/lib/rescind /var/lib/rescind

ENV RESCIND_DATA_DIR=/var/lib/rescind \
    RESCIND_LISTEN=0.0.0.0:7400 \
    RESCIND_HTTP_LISTEN=0.0.0.0:7480

USER 10001:10001
VOLUME ["/var/lib/rescind"]
EXPOSE 7400 7480

# No shell or curl in the image: the binary asks its own gRPC port
# (grpc.health.v1, service ""), exit 0 only while SERVING, i.e. loaded and not
# recovering. Start period: loading 10M ids takes seconds, recovering from a
# peer can take minutes (bounded by recovery_timeout, default 5m).
# With client TLS (--tls-cert), set RESCIND_TLS_CA (and RESCIND_TLS_SERVER_NAME,
# a name the certificate is valid for) in the container: `rescind health`
# reads both from the environment.
HEALTHCHECK --interval=10s --timeout=5s --start-period=2m --retries=3 \
    CMD ["/usr/local/bin/rescind", "health", "--addr", "127.0.0.1:7400", "--timeout", "3s"]

# SIGTERM drains requests and flushes the writer (give it ~30 s to stop).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/rescind"]
CMD ["serve"]
