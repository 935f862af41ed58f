# The node daemon image, agentry-nodeagent:VERSION: `agentry nodeagent`, one pod a node (a
# DaemonSet), serving gRPC on a unix socket in a hostPath directory the agent pods mount.
# The ENTRYPOINT includes the subcommand, so the DaemonSet passes only flags. Build from the
# repository root (images/README.md):
#
#   docker build -f images/nodeagent.Dockerfile -t agentry-nodeagent:0.1.0 .

# Build stage: what CI builds (.ci/run), on the same Debian release with the same packages.
# Its instructions are the agent image's, so BuildKit builds that stage once for both.
FROM debian:bookworm AS build
WORKDIR /src
# The installer alone first, so its slow layer stays cached until the package list changes.
COPY scripts/bootstrap scripts/bootstrap
RUN scripts/bootstrap && rm -rf /var/lib/apt/lists/*
# The whole tree (images/nodeagent.Dockerfile.dockerignore keeps the host's build/ out) with
# .git, so the version baked in at configure time names the commit.
COPY . .
# Only the target the image ships. Stripping drops the DWARF debug info (137 MB -> 6 MB)
# and keeps the symbol table, so backtraces still name functions.
RUN --mount=type=cache,target=/root/.cache/ccache \
    cmake --preset default \
    && cmake --build --preset default --target agentry \
    && strip --strip-debug build/default/cli/agentry

# Runtime stage: the same release, slim, with only the shared libraries the binary links.
# NVIDIA's libnvidia-ml.so.1 is opened at run time (nodeagent/devices/nvml.cc) and comes from
# the NVIDIA container toolkit on GPU nodes, not from this image.
FROM debian:bookworm-slim
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="agentry-nodeagent" \
      org.opencontainers.image.description="Agentry node daemon: devices, models, hot KV caches" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
# One package per library in the binary's NEEDED list (images/tests checks the list against
# the binary the build produced).
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
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
# The same "nonroot" user as the agent pods (kNonRootUid in operator/render.cc).
RUN groupadd --system --gid 65532 nonroot \
    && useradd --system --uid 65532 --gid 65532 --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin nonroot
# Owned by root: the user that runs it cannot replace it.
COPY --from=build /src/build/default/cli/agentry /usr/local/bin/agentry
USER 65532:65532
# /metrics (--metrics-port; --metrics-host defaults to 127.0.0.1, the DaemonSet widens it).
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/agentry", "nodeagent"]
