# The operator image, agentry-operator:VERSION: `agentry-operator`, which reconciles
# ManagedAgents into the objects that run them. It never links the inference engine, so the
# image carries neither gRPC nor SQLite. Build from the repository root (images/README.md):
#
#   docker build -f images/operator.Dockerfile -t agentry-operator:0.1.0 .

# Build stage: what CI builds (.ci/run), on the same Debian release with the same packages.
FROM debian:bookworm AS build
WORKDIR /src
# The installer alone first, so its slow layer stays cached until the package list changes.
COPY scripts/bootstrap scripts/bootstrap
RUN scripts/bootstrap && rm -rf /var/lib/apt/lists/*
# The whole tree (images/operator.Dockerfile.dockerignore keeps the host's build/ out) with
# .git, so the version baked in at configure time names the commit.
COPY . .
# Only the target the image ships. Stripping drops the DWARF debug info (40 MB -> 2.3 MB)
# and keeps the symbol table, so backtraces still name functions.
RUN --mount=type=cache,target=/root/.cache/ccache \
    cmake --preset default \
    && cmake --build --preset default --target agentry-operator \
    && strip --strip-debug build/default/operator/agentry-operator

# Runtime stage: the same release, slim, with only the shared libraries the binary links.
FROM debian:bookworm-slim
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="agentry-operator" \
      org.opencontainers.image.description="Agentry operator: reconciles ManagedAgents" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
# One package per library in the binary's NEEDED list (images/tests checks the list against
# the binary the build produced). The API server's CA comes from the service account, so no
# ca-certificates.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
       libc6 \
       libcpprest2.10 \
       libgcc-s1 \
       libssl3 \
       libstdc++6 \
       libyaml-cpp0.7 \
    && rm -rf /var/lib/apt/lists/*
# The same "nonroot" user as the agent pods (kNonRootUid in operator/render.cc).
RUN groupadd --system --gid 65532 nonroot \
    && useradd --system --uid 65532 --gid 65532 --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin nonroot
# Owned by root: the user that runs it cannot replace it.
COPY --from=build /src/build/default/operator/agentry-operator /usr/local/bin/agentry-operator
USER 65532:65532
# /metrics, /healthz, /readyz (--metrics-port).
EXPOSE 8081
ENTRYPOINT ["/usr/local/bin/agentry-operator"]
