# The agent pod's image, agentry:VERSION: the `agentry` binary, which the operator's pods run
# twice (operator/render.cc): container `runtime` with args `runtime ...` and native sidecar
# `state` with args `state ...`. So the ENTRYPOINT is the binary alone and the pod supplies
# the subcommand. Build from the repository root (images/README.md):
#
#   docker build -f images/agent.Dockerfile -t agentry:0.1.0 .

# Build stage: what CI builds (.ci/run), on the same Debian release with the same packages.
FROM debian:bookworm AS build
WORKDIR /src
# The installer alone first, so its slow layer stays cached until the package list changes.
COPY scripts/bootstrap scripts/bootstrap
RUN scripts/bootstrap && rm -rf /var/lib/apt/lists/*
# The whole tree (images/agent.Dockerfile.dockerignore keeps the host's build/ out) with .git,
# so the version baked in at configure time names the commit.
COPY . .
# Only the target the image ships. Stripping drops the DWARF debug info (137 MB -> 6 MB)
# and keeps the symbol table, so backtraces still name functions.
RUN --mount=type=cache,target=/root/.cache/ccache \
    cmake --preset default \
    && cmake --build --preset default --target agentry \
    && strip --strip-debug build/default/cli/agentry

# Runtime stage: the same release, slim, with only the shared libraries the binary links.
FROM debian:bookworm-slim
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="agentry" \
      org.opencontainers.image.description="Agentry agent pod: runtime container and state sidecar" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
# One package per library in the binary's NEEDED list (images/tests checks the list against
# the binary the build produced); ca-certificates for tools called over HTTPS.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
       ca-certificates \
       libabsl20220623 \
       libc6 \
       libcpprest2.10 \
       libgcc-s1 \
       libgrpc++1.51 \
       libgrpc29 \
       libprotobuf32 \
       libsqlite3-0 \
       libssl3 \
       libstdc++6 \
       libyaml-cpp0.7 \
    && rm -rf /var/lib/apt/lists/*
# The "nonroot" user the operator's pods run as (kNonRootUid in operator/render.cc).
RUN groupadd --system --gid 65532 nonroot \
    && useradd --system --uid 65532 --gid 65532 --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin nonroot
# Owned by root: the user that runs it cannot replace it.
COPY --from=build /src/build/default/cli/agentry /usr/local/bin/agentry
USER 65532:65532
# runtime: the session API; state: /metrics.
EXPOSE 8080 9465
ENTRYPOINT ["/usr/local/bin/agentry"]
