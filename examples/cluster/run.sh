#!/usr/bin/env bash
# A wpm cluster on one machine (docs/SCALING.md): three NATS servers
# clustered with JetStream, and three wpm hosts pointed at them:
#
#   host a  role all     http://127.0.0.1:3101  pools CPU (2 workers), MEM (1)
#   host b  role worker  http://127.0.0.1:3102  pool  CPU (4 workers); HTTP: probes and /metrics only
#   host c  role api     http://127.0.0.1:3103  no workers: every task goes through NATS
#
# NATS clients listen on 127.0.0.1:4301-4303, routes on 6301-6303,
# monitoring on 8301-8303. Streams
# and buckets keep 3 replicas, so one NATS server can go without losing a
# task. Everything stays on 127.0.0.1; Ctrl-C (or SIGTERM) stops it all.
# Run from the module's root: make cluster.
set -euo pipefail
cd "$(dirname "$0")/../.."

work=${CLUSTER_DIR:-bin/cluster}
nats_version=v2.15.3
mkdir -p "$work"
make build >/dev/null
if [[ ! -x bin/nats-server ]]; then
	echo "building nats-server $nats_version into bin/ (once)"
	GOBIN="$PWD/bin" go install "github.com/nats-io/nats-server/v2@$nats_version"
fi

pids=()
stop() {
	trap - INT TERM EXIT
	echo "stopping"
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	wait || true
}
trap stop INT TERM EXIT

routes=nats://127.0.0.1:6301,nats://127.0.0.1:6302,nats://127.0.0.1:6303
for i in 1 2 3; do
	bin/nats-server -n "n$i" -a 127.0.0.1 -p "430$i" -m "830$i" -js -sd "$work/nats$i" \
		--cluster_name wpm -cluster "nats://127.0.0.1:630$i" -routes "$routes" \
		>"$work/nats$i.log" 2>&1 &
	pids+=($!)
done
urls=nats://127.0.0.1:4301,nats://127.0.0.1:4302,nats://127.0.0.1:4303

cat >"$work/a.yaml" <<'YAML'
pools:
  - { name: CPU, plugin: cpuload, workers: 2 }
  - { name: MEM, plugin: memusage, workers: 1 }
YAML
cat >"$work/b.yaml" <<'YAML'
pools:
  - { name: CPU, plugin: cpuload, workers: 4 }
YAML
cat >"$work/c.yaml" <<'YAML'
pools: []
YAML

host() { # name role port
	WPM_NATS_URL=$urls WPM_NATS_NAME=$1 WPM_NATS_REPLICAS=3 WPM_ROLE=$2 \
		bin/wpm serve --config "$work/$1.yaml" --addr "127.0.0.1:$3" >"$work/$1.log" 2>&1 &
	pids+=($!)
}
wait_ok() { # url: wait up to 30 s for a 2xx
	for _ in $(seq 150); do
		curl -fs "$1" >/dev/null && return
		sleep 0.2
	done
}
# wpm makes its streams once JetStream has elected its meta leader.
for i in 1 2 3; do wait_ok "http://127.0.0.1:830$i/healthz"; done
host a all 3101
host b worker 3102
host c api 3103
for port in 3101 3102 3103; do wait_ok "http://127.0.0.1:$port/readyz"; done
sleep 2 # every host has heartbeated
curl -s http://127.0.0.1:3103/v1/cluster | head -c 2000; echo
cat <<TXT

The cluster runs (logs in $work/). Try:
  curl -si -XPOST localhost:3103/v1/pools/CPU/tasks -d '{"duration": 500}'   # X-Wpm-Host: a or b
  curl -s -XPOST localhost:3103/example/pool -d '{"poolName": "MEM", "workerTask": {"mb": 50}}'
  bin/wpm status --url http://127.0.0.1:3101
  kill -9 <pid of a NATS server or a wpm host>                                 # nothing accepted is lost
Ctrl-C stops everything.
TXT
wait || true # until Ctrl-C: a process killed to try a failure does not end the demo
