#!/usr/bin/env bash
# Installs the Debian packages AIDB's build, tests and benchmarks need, when they
# are missing. Idempotent; safe to run on every build. Needs root (or sudo).
set -euo pipefail

PKGS=(
  # build
  cmake ninja-build pkg-config ccache g++ clang
  # libFuzzer runtime for the fuzz targets (fuzz/)
  libclang-rt-14-dev
  # required libraries
  libcapnp-dev capnproto libuv1-dev libgtest-dev libgmock-dev libbenchmark-dev
  # CRC32C (Intel ISA-L), JSON, HTTP parsing
  libisal-dev libsimdjson-dev nlohmann-json3-dev libhttp-parser-dev libcurl4-openssl-dev
  # benchmark peers and data
  libhnswlib-dev dataset-fashion-mnist zlib1g-dev libsqlite3-dev librocksdb-dev wrk
  # tooling used by tests
  prometheus curl python3-venv abigail-tools
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
