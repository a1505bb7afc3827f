# Multi-stage build of the lifeboat binary. (No Docker engine runs on the CI machines, so this file
# is not exercised by CI; keep it in step with Cargo.toml's rust-version.)
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN cargo build --release --locked --bin lifeboat

FROM debian:bookworm-slim
RUN useradd --system --home /var/lib/lifeboat --create-home lifeboat
COPY --from=build /src/target/release/lifeboat /usr/local/bin/lifeboat
USER lifeboat
WORKDIR /var/lib/lifeboat
ENV LIFEBOAT_ADDRESS=0.0.0.0:9000 LIFEBOAT_DATA_DIR=/var/lib/lifeboat/data
EXPOSE 9000
# Set LIFEBOAT_ACCESS_KEY and LIFEBOAT_SECRET_KEY (or mount a config with [[users]]): Lifeboat
# refuses to listen on 0.0.0.0 with its development credentials.
ENTRYPOINT ["/usr/local/bin/lifeboat", "serve"]
