# syntax=docker/dockerfile:1
#
# crier in a container: a release build on Debian bookworm, run from a
# distroless image (glibc and libgcc only: no shell, no package manager)
# as a non-root user.
#
#   docker build -t crier .
#   docker run -d --name crier -p 8080:8080 --stop-timeout 30 \
#       --ulimit nofile=1048576:1048576 -e CRIER_PUBLISH_SECRET=... crier
#
# Not built by CI: the machines this project is developed and tested on
# have no container engine and no base images, so this file is kept to
# standard, minimal steps (the same `cargo build --release --locked` that
# CI runs) rather than tested tricks. Report what breaks.

# ---- build ----------------------------------------------------------------
# The toolchain the project is tested with; bump with it.
FROM rust:1.95-bookworm AS build
WORKDIR /src
# Everything the build reads (.dockerignore keeps out target/, .git, tests
# and docs). benches/ stays: Cargo.toml declares its targets and cargo
# refuses a manifest whose declared targets are missing.
COPY . .
# Cache mounts keep the registry and the dependency builds between builds
# (BuildKit, the default builder); the binary is copied out of the cached
# target/ in the same step. The release profile keeps debug info for perf
# and backtraces on a host; the image drops it (21 MB -> 3 MB).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && objcopy --strip-debug target/release/crier /usr/local/bin/crier

# ---- run ------------------------------------------------------------------
# Debian 12 (bookworm, the builder's glibc) with libgcc_s, ca-certificates
# and tzdata; the :nonroot tag runs as uid/gid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /usr/local/bin/crier /usr/local/bin/crier
# Numeric, so Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
EXPOSE 8080

# Open files: one per connection. crier raises its soft limit to the hard
# limit at start (and logs both), so the hard limit is the ceiling. Docker
# hands containers the daemon's limits (from 25.0 on often 1024 soft /
# 524288 hard); for more connections pass `--ulimit nofile=N:N` (compose:
# `ulimits: nofile: N`), with N <= the host's fs.nr_open, as
# LimitNOFILE does for tuning/crier.service (the sizing is in
# tuning/CAPACITY.md). Host-wide settings (fs.nr_open, fs.file-max,
# tcp_mem) belong to the host (tuning/sysctl.conf); net.core.somaxconn is
# per network namespace: `--sysctl net.core.somaxconn=65535`.
#
# Shutdown: SIGTERM drains for up to drain-timeout (10 s). Docker's
# default stop timeout is also 10 s, after which it sends SIGKILL: give
# `docker run --stop-timeout 30` (compose: `stop_grace_period: 30s`,
# Kubernetes: terminationGracePeriodSeconds) so the drain can finish.
STOPSIGNAL SIGTERM

# The check publishes a nonce to the channel crier-health and waits for it
# on a subscription (`crier health`: exit 0 healthy, 1 unhealthy). It runs
# in the container's environment, so a publish secret given as
# CRIER_PUBLISH_SECRET reaches it; a secret given only by flag or config
# file does not (the check then fails with 401). With publish-allow set,
# include 127.0.0.1; with private-channels covering crier-health, add
# --channel or --token to this line.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/crier", "health", "--timeout", "3", "http://127.0.0.1:8080"]

# Arguments given to `docker run` replace CMD, not the entrypoint: keep
# `--listen 0.0.0.0:8080` in them (or `listen` in a mounted
# --config file), or crier listens on the container's loopback only.
# `docker run crier token …` and `docker run crier health URL` work too.
ENTRYPOINT ["/usr/local/bin/crier"]
CMD ["--listen", "0.0.0.0:8080"]
