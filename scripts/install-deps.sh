#!/usr/bin/env bash
# Installs what AIDB's build, tests and benchmarks need, when it is missing:
#   apt     the Debian packages below (apt-get, with sudo when not root)
#   rust    the Rust binding's crates (cargo fetch --locked)
#   python  a local wheelhouse with the Python test packages (numpy, pytest,
#           setuptools, wheel; selenium for the console's browser test;
#           scikit-build-core and build for the bundled Python package),
#           from which the test scripts build their venvs offline
#           ($AIDB_WHEELHOUSE, default ~/.cache/aidb-wheels)
#   go      staticcheck (pinned) in Go's module cache, for the Go binding's
#           checks, which run with GOPROXY=off
#   kafka   the Kafka broker jars of cluster/pom.xml in Maven's local
#           repository (the cluster tests run the brokers from them)
#
#   scripts/install-deps.sh [--check] [apt|rust|python|go|kafka ...]   (default: all)
#
# Installing is its own step: scripts/build.sh and scripts/test.sh never
# install; they run this with --check, which only lists what is missing and
# exits 1 if anything is. When everything is present this script does nothing
# and reaches no package registry. Needs root (or sudo) only to install
# Debian packages.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)

PKGS=(
  # build
  cmake ninja-build pkg-config ccache g++ clang
  # libFuzzer runtime for the fuzz targets (fuzz/)
  libclang-rt-14-dev
  # required libraries
  libcapnp-dev capnproto libuv1-dev libgtest-dev libgmock-dev libbenchmark-dev
  # CRC32C (Intel ISA-L), JSON, HTTP parsing
  libisal-dev libsimdjson-dev nlohmann-json3-dev libhttp-parser-dev
  # cluster mode: Kafka client; Kafka brokers for its tests (JDK + Maven)
  librdkafka-dev libcurl4-openssl-dev default-jre-headless maven
  # benchmark peers and data
  libhnswlib-dev dataset-fashion-mnist zlib1g-dev libsqlite3-dev librocksdb-dev wrk
  # tooling used by tests
  prometheus curl python3-venv python3-dev abigail-tools
  # style checks (scripts/check-format.sh, scripts/lint.sh)
  clang-format clang-tidy
  # the console's browser test (tests/console); broker readiness (scripts/kafka.sh)
  chromium chromium-driver kcat
)
# Keep in step with tests/console/requirements.txt and bindings/python/pyproject.toml.
PY_PKGS=(numpy pytest setuptools wheel "selenium==4.27.1" "pytest==8.3.4"
  "scikit-build-core>=0.10" build)
# Keep in step with tests/packaging/run_bindings.sh.
STATICCHECK_VERSION=v0.7.0
GO_TOOLS=${AIDB_GO_TOOLS:-$HOME/.cache/aidb-go-tools}
WHEELHOUSE=${AIDB_WHEELHOUSE:-$HOME/.cache/aidb-wheels}

CHECK=0
PARTS=()
for a in "$@"; do
  case "$a" in
    --check) CHECK=1 ;;
    apt | rust | python | go | kafka) PARTS+=("$a") ;;
    -h | --help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "install-deps: unknown argument '$a'" >&2; exit 2 ;;
  esac
done
[ ${#PARTS[@]} -eq 0 ] && PARTS=(apt rust python go kafka)
want() { [[ " ${PARTS[*]} " == *" $1 "* ]]; }

# Toolchains installed in their default places but not on PATH.
for d in /usr/local/go/bin "$HOME/go/bin" "$HOME/.cargo/bin"; do
  [ -d "$d" ] && case ":$PATH:" in *":$d:"*) ;; *) PATH=$PATH:$d ;; esac
done
export PATH

missing=()

# --- Debian packages ----------------------------------------------------------
if want apt; then
  apt_missing=()
  for p in "${PKGS[@]}"; do
    if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
      apt_missing+=("$p")
    fi
  done
  if [ ${#apt_missing[@]} -gt 0 ]; then
    if [ "$CHECK" = 1 ]; then
      missing+=("Debian packages: ${apt_missing[*]}")
    else
      SUDO=""
      if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
      echo "install-deps: installing ${apt_missing[*]}" >&2
      export DEBIAN_FRONTEND=noninteractive
      $SUDO apt-get update -qq
      $SUDO apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null
    fi
  fi
fi

# --- Rust crates of bindings/rust ---------------------------------------------
if want rust && command -v cargo >/dev/null 2>&1; then
  if ! (cd "$ROOT/bindings/rust" &&
        cargo metadata --locked --offline --format-version 1 >/dev/null 2>&1); then
    if [ "$CHECK" = 1 ]; then
      missing+=("Rust crates of bindings/rust (cargo fetch)")
    else
      echo "install-deps: fetching the Rust binding's crates" >&2
      (cd "$ROOT/bindings/rust" && cargo fetch --locked)
    fi
  fi
fi

# --- Python test packages (a local wheelhouse) --------------------------------
if want python; then
  have_wheels() {
    python3 -m pip install --dry-run --quiet --no-index --find-links "$WHEELHOUSE" \
      --disable-pip-version-check --ignore-installed "${PY_PKGS[@]}" >/dev/null 2>&1
  }
  if ! have_wheels; then
    if [ "$CHECK" = 1 ]; then
      missing+=("Python test wheels in $WHEELHOUSE: ${PY_PKGS[*]}")
    else
      echo "install-deps: downloading ${PY_PKGS[*]} into $WHEELHOUSE" >&2
      mkdir -p "$WHEELHOUSE"
      python3 -m pip download --quiet --disable-pip-version-check -d "$WHEELHOUSE" "${PY_PKGS[@]}"
      have_wheels || { echo "install-deps: the wheelhouse is still incomplete" >&2; exit 1; }
    fi
  fi
fi

# --- staticcheck in Go's module cache ------------------------------------------
if want go && command -v go >/dev/null 2>&1; then
  if ! "$GO_TOOLS/staticcheck" -version 2>/dev/null | grep -F "($STATICCHECK_VERSION)" >/dev/null; then
    if [ "$CHECK" = 1 ]; then
      missing+=("staticcheck $STATICCHECK_VERSION (go install)")
    else
      echo "install-deps: installing staticcheck $STATICCHECK_VERSION into $GO_TOOLS" >&2
      GOBIN=$GO_TOOLS GOFLAGS= go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
    fi
  fi
fi

# --- Kafka broker jars (cluster/pom.xml) ---------------------------------------
if want kafka && command -v mvn >/dev/null 2>&1; then
  if ! mvn -o -q -f "$ROOT/cluster/pom.xml" dependency:copy-dependencies >/dev/null 2>&1; then
    if [ "$CHECK" = 1 ]; then
      missing+=("Kafka broker jars of cluster/pom.xml (mvn dependency:copy-dependencies)")
    else
      echo "install-deps: resolving the Kafka broker jars (cluster/pom.xml)" >&2
      mvn -q -f "$ROOT/cluster/pom.xml" dependency:copy-dependencies
    fi
  fi
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: missing:" >&2
  for m in "${missing[@]}"; do echo "  - $m" >&2; done
  echo "install-deps: run scripts/install-deps.sh to install them" >&2
  exit 1
fi
exit 0
