#!/usr/bin/env bash
# pyzipapp.sh SRC OUT: packs the Python plugin in directory SRC (its
# __main__.py and any other .py files) with wpm's Python SDK
# (sdk/python/wpm_plugin) into OUT, one executable zipapp run by Debian's
# /usr/bin/python3, which has python3-grpcio and python3-protobuf. One
# file, so wpm can checksum it like a Go plugin.
set -euo pipefail
src=$1 out=$2
root=$(cd "$(dirname "$0")/.." && pwd)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/wpm_plugin"
cp "$root"/sdk/python/wpm_plugin/*.py "$stage/wpm_plugin/"
cp "$src"/*.py "$stage/"
mkdir -p "$(dirname "$out")"
/usr/bin/python3 -m zipapp "$stage" -p /usr/bin/python3 -o "$out.tmp"
chmod 0755 "$out.tmp"
mv "$out.tmp" "$out"
