#!/usr/bin/env bash
# Scale-out figures (docs/BENCHMARKS.md, "Scale-out"): one NATS server and
# 1, 2 or 3 worker hosts of 2 workers each behind a host of role api, with
# sleep-bound tasks (memusage holding 1 MB for 200 ms), so that two cores
# are not the limit; then the latency of a forwarded sync task against a
# local one. Needs hey (Debian's package). Everything on 127.0.0.1; it
# stops what it started. Run from the module's root after make build.
set -euo pipefail
cd "$(dirname "$0")/../.."
work=bin/bench-cluster
rm -rf "$work" && mkdir -p "$work"
[[ -x bin/nats-server ]] || GOBIN="$PWD/bin" go install github.com/nats-io/nats-server/v2@v2.15.3
pids=()
trap 'for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true' EXIT
bin/nats-server -a 127.0.0.1 -p 4399 -js -sd "$work/nats" >"$work/nats.log" 2>&1 &
pids+=($!)
sleep 1
printf 'pools:\n  - { name: MEM, plugin: memusage, workers: 2, queueLimit: 4096 }\n' >"$work/w.yaml"
printf 'pools: []\n' >"$work/api.yaml"
host() { # name role port config
	WPM_NATS_URL=nats://127.0.0.1:4399 WPM_NATS_NAME=$1 WPM_ROLE=$2 WPM_LOG_LEVEL=warn \
		bin/wpm serve --config "$4" --addr "127.0.0.1:$3" >"$work/$1.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do curl -fs "http://127.0.0.1:$3/readyz" >/dev/null && return; sleep 0.2; done
}
host c api 3390 "$work/api.yaml"
body='{"mb": 1, "duration": 200}'
for n in 1 2 3; do
	host "w$n" all "339$n" "$work/w.yaml"
	sleep 2 # every host sees the new one
	echo "== $n worker host(s), $((2 * n)) workers: 300 tasks of 200 ms at 24 connections through the api host"
	hey -n 300 -c 24 -m POST -d "$body" http://127.0.0.1:3390/v1/pools/MEM/tasks | grep -E 'Requests/sec|Total:|50%|99%|\[200\]|\[5'
done
echo "== latency of a trivial task, 1 connection, 500 requests: local on w1, then forwarded through c"
hey -n 500 -c 1 -m POST -d '{"mb": 0}' http://127.0.0.1:3391/v1/pools/MEM/tasks | grep -E 'Requests/sec|50%|99%'
hey -n 500 -c 1 -m POST -d '{"mb": 0}' http://127.0.0.1:3390/v1/pools/MEM/tasks | grep -E 'Requests/sec|50%|99%'
