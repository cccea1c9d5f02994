# syntax=docker/dockerfile:1
# podperf: one image with the three binaries (podperf-worker, podperf-dispatcher, podperf).
#   docker build -t registry.example.com/podperf/podperf:0.1.0 .
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bins \
 && install -D -m 0755 -t /out target/release/podperf target/release/podperf-worker \
      target/release/podperf-dispatcher

FROM debian:bookworm-slim
# The tools the worker runs. ping and traceroute get cap_net_raw as file capabilities, so the
# non-root user can open raw sockets when the pod adds NET_RAW (and drops everything else).
RUN apt-get update \
 && apt-get install -y --no-install-recommends iputils-ping traceroute iperf3 sockperf iputils-tracepath libcap2-bin ca-certificates \
 && setcap cap_net_raw+ep "$(readlink -f /usr/bin/ping)" \
 && setcap cap_net_raw+ep "$(readlink -f /usr/bin/traceroute)" \
 && apt-get purge -y libcap2-bin && apt-get autoremove -y \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin podperf
COPY --from=build /out/ /usr/local/bin/
USER 10001:10001
# iperf3 server of a pod-network worker (5202 for the hostNetwork one).
EXPOSE 5201
# sockperf server (TCP and UDP; 11112 for the hostNetwork one).
EXPOSE 11111 11111/udp
CMD ["podperf-worker"]
