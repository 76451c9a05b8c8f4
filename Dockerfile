# Ferry's image: one binary, `ferry`, for `server`, `dataplane` and `connector`.
#
# Built from a binary made outside the image (no toolchain, nothing fetched at run time):
#   cargo build --release --locked -p ferry
#   DOCKER_BUILDKIT=0 docker build -t ferry:0.1.0 .
# or from any directory holding the binary:
#   docker build --build-arg FERRY_BINARY=ferry -t ferry:0.1.0 <dir>
# docs/deploy.md has a variant that compiles inside a `rust` image, for builders with a
# registry at hand.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}

# CA certificates for HTTPS to the control plane, S3 and the connectors' databases; a
# system user without a shell or password.
RUN set -eux; \
    if [ ! -s /etc/ssl/certs/ca-certificates.crt ]; then \
        apt-get update; \
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates; \
        rm -rf /var/lib/apt/lists/*; \
    fi; \
    groupadd --system --gid 10001 ferry; \
    useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/ferry --create-home \
        --shell /usr/sbin/nologin ferry

ARG FERRY_BINARY=target/release/ferry
COPY ${FERRY_BINARY} /usr/local/bin/ferry

USER 10001:10001
WORKDIR /var/lib/ferry
ENV FERRY_DATA_DIR=/var/lib/ferry/data
# The data plane's probes and metrics (--health-listen) and the control plane's API.
EXPOSE 8085 8000
ENTRYPOINT ["/usr/local/bin/ferry"]
CMD ["--help"]
