# syntax=docker/dockerfile:1
# The logferry node agent image:  docker build -t logferry:0.1.0 .
# Kubernetes manifests that run it: k8s/ (docs/deploy.md).

# Node 24 LTS on Debian 12 (bookworm), slim: no compilers, and tini is one apt package away. Both stages
# use the same pinned patch release. For byte-for-byte reproducible builds pin the digest as well:
#   docker buildx imagetools inspect node:24.21.0-bookworm-slim   (the "Digest:" line), then
#   docker build --build-arg NODE_IMAGE=node:24.21.0-bookworm-slim@sha256:<digest> .
ARG NODE_IMAGE=node:24.21.0-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
# Dependencies first, so editing src/ does not invalidate the npm ci layer.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM ${NODE_IMAGE} AS runtime
LABEL org.opencontainers.image.title="logferry" \
      org.opencontainers.image.description="Kubernetes node log agent: container logs to Elasticsearch, nothing lost" \
      org.opencontainers.image.licenses="Apache-2.0"
# tini runs as PID 1: the kernel gives PID 1 no default signal actions and leaves it the orphans to reap.
# tini forwards SIGTERM/SIGINT/SIGHUP to node (graceful drain, config reload) and reaps zombies. It is
# baked in because `docker run --init` does not exist in Kubernetes. Debian's package, not pinned to a
# revision: pinned revisions vanish from the mirrors when security updates replace them.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production
# Production dependencies only (no TypeScript, test or lint tools). No dependency has an install
# script, so --ignore-scripts changes nothing today and keeps it that way.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force
COPY bin ./bin
COPY --from=build /src/dist ./dist
# The default state directory, owned by the image's user for `docker run` without a volume; in
# Kubernetes it is a hostPath (k8s/daemonset.yaml).
RUN mkdir -p /var/lib/logferry && chown 1000:1000 /var/lib/logferry
# `logferry` on the PATH, so that `kubectl exec -it ds/logferry -- logferry top` needs nothing else in
# the image: bin/logferry.js is executable (git mode 755) and starts with `#!/usr/bin/env node`, and
# node resolves the link, so its imports of /app/dist are found.
RUN ln -s /app/bin/logferry.js /usr/local/bin/logferry
# No NODE_OPTIONS or MALLOC_* here: `logferry agent` derives V8's heap limit from its buffer budget
# (old space = 3 x maxBufferBytes + 64 MiB, a 2 MiB semi-space) and sets glibc's malloc so that freed
# Buffer memory goes back to the system, re-executing itself once with them (src/cli/runtime.ts;
# docs/deploy.md "Sizing"). A value set here or in the pod would win over the derived one.
# Non-root by default: `node`, uid 1000, from the base image, given numerically so that Kubernetes'
# runAsNonRoot can verify it. It reads world-readable logs only. Where the kubelet writes logs as
# root-only 0640 (most nodes), k8s/daemonset.yaml overrides this with runAsUser 0, every capability
# dropped but DAC_READ_SEARCH (read any file, write none) and a read-only root filesystem; with plain
# docker: docker run --user 0 --cap-drop ALL --cap-add DAC_READ_SEARCH ...
USER 1000:1000
EXPOSE 2020
# `logferry agent`; extra arguments (CMD, or `args:` in Kubernetes) are agent options, e.g.
#   docker run ... logferry:0.1.0 --config /etc/logferry/config.yaml
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/bin/logferry.js", "agent"]
CMD []
