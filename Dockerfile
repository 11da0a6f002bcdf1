# The image `sluice k8s --image` names: the `sluice` binary and the Rust example plugins on a
# minimal, non-root runtime (distroless cc: glibc and CA certificates, no shell).
#
#   docker build -t registry.example.com/sluice:1 .
#
# Plugins of your own: build them into /opt/sluice/plugins in a stage of your own FROM this
# image, and pin their digests in the configuration.

FROM rust:1.95-bookworm AS build
WORKDIR /src
RUN rustup target add wasm32-wasip2
COPY . .
# Rust guests only: the Python and JavaScript toolchains need their own stages (see README).
RUN cargo build --release --locked -p sluice-cli \
 && for g in hospital bank retail probe; do \
      cargo build --release --locked --target wasm32-wasip2 -p "$g" --target-dir /tmp/guests \
      && mkdir -p /out/plugins && cp "/tmp/guests/wasm32-wasip2/release/$g.wasm" /out/plugins/; \
    done \
 && cp target/release/sluice /out/sluice

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/sluice /usr/local/bin/sluice
COPY --from=build /out/plugins /opt/sluice/plugins
USER nonroot
ENTRYPOINT ["/usr/local/bin/sluice"]
