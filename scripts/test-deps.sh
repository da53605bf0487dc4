#!/usr/bin/env bash
# What `make test` needs besides Go, installed from Debian's packages when
# missing: gcc (the race detector uses cgo), chromium (the dashboard's
# browser tests), iproute2 (the partition tests' network namespaces), and
# util-linux's mount (the disk-full test's tmpfs), nodejs (Node.js workers),
# and python3-grpcio and python3-protobuf for /usr/bin/python3 (the Python
# SDK, sdk/python, and its example plugins). As root it installs them;
# otherwise it names what is missing in one line and fails.
set -euo pipefail

need=()
command -v gcc >/dev/null || need+=(gcc libc6-dev)
command -v chromium >/dev/null || need+=(chromium)
command -v ip >/dev/null || need+=(iproute2)
command -v mount >/dev/null || need+=(mount)
command -v node >/dev/null || need+=(nodejs)
/usr/bin/python3 -c 'import grpc, google.protobuf' 2>/dev/null || need+=(python3-grpcio python3-protobuf)
((${#need[@]})) || exit 0

if [[ $(id -u) -ne 0 ]]; then
  echo "make test needs Debian's ${need[*]}: run 'sudo apt-get install -y ${need[*]}' (or make test as root, which installs them)" >&2
  exit 1
fi
echo "installing what the tests need: ${need[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
