# Alcove worker image: multi-stage, runs as a non-root user. Not built by the test suite (this
# project's CI machine has no container runtime); build with: docker build -t alcove:0.1.0 .
FROM rust:1.92-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p alcove && strip target/release/alcove

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 alcove \
    && useradd --system --uid 10001 --gid alcove --home-dir /data --shell /usr/sbin/nologin alcove \
    && mkdir -p /data /cache /etc/alcove && chown alcove:alcove /data /cache
COPY --from=build /src/target/release/alcove /usr/local/bin/alcove
USER 10001:10001
# S3, peer, admin (health, readiness, metrics).
EXPOSE 29998 29999 30000
VOLUME ["/data", "/cache"]
ENTRYPOINT ["/usr/local/bin/alcove"]
CMD ["serve", "--root", "/data", "--s3-addr", "0.0.0.0:29998"]
