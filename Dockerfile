# syntax=docker/dockerfile:1.7
# The operator image: `docker build -t dpo .` (BuildKit). The binary links glibc dynamically
# (aws-lc, the SDK's TLS crypto, is C), so the runtime is distroless/cc of the same Debian.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS build
# aws-lc-sys compiles C; cmake covers the targets its cc build does not.
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY benches ./benches
COPY src ./src
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin dpo \
 && cp target/release/dpo /dpo

FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="data-protection-operator" \
      org.opencontainers.image.description="Enforces data-protection policy on Amazon EKS" \
      org.opencontainers.image.source="https://github.com/dpo-dev/data-protection-operator" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /dpo /dpo
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["/dpo"]
CMD ["controller"]
