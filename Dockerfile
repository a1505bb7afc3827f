# Multi-stage build of the lifeboat binary. (No Docker engine runs on the CI machines, so this file
# is not exercised by CI; keep it in step with Cargo.toml's rust-version.)
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN cargo build --release --locked --bin lifeboat

FROM debian:bookworm-slim
# ca-certificates: an https upstream (AWS S3) is verified against the system roots.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/lifeboat --create-home lifeboat \
    && install -d -o lifeboat -g lifeboat /var/lib/lifeboat/data
COPY --from=build /src/target/release/lifeboat /usr/local/bin/lifeboat
USER lifeboat
WORKDIR /var/lib/lifeboat
ENV LIFEBOAT_ADDRESS=0.0.0.0:9000 LIFEBOAT_DATA_DIR=/var/lib/lifeboat/data
EXPOSE 9000
# The admin API stays on loopback unless LIFEBOAT_ADMIN_ADDRESS=0.0.0.0:9001 is set; set
# server.admin_token_file (mode 0600) or an admin user before exposing it.
EXPOSE 9001
# Set LIFEBOAT_ACCESS_KEY and LIFEBOAT_SECRET_KEY (or mount a config with [[users]]): Lifeboat
# refuses to listen on 0.0.0.0 with its development credentials.
# SIGTERM (what `docker stop` sends) stops accepting, lets requests in flight finish for
# server.shutdown_grace_seconds (30 s; keep docker's --stop-timeout above it), stops the replay
# worker after its current entry and closes the store: exit code 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/lifeboat", "serve"]
