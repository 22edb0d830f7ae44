#!/usr/bin/env bash
# Packaging and binding tests against the library built in BUILD_DIR:
#   tests/packaging/run_bindings.sh BUILD_DIR
# 1. `cmake --install BUILD_DIR` into BUILD_DIR/packaging/prefix
# 2. the packaging tests (run_packaging.sh) against that prefix, and checks
#    that every binding declares every header function and carries the
#    version of CMakeLists.txt's project(VERSION) (the library's)
# 3. Go: go vet, gofmt, staticcheck (pinned, from the module proxy) and
#    go test -race (cgo finds aidb.pc through PKG_CONFIG_PATH); a consumer
#    module outside the repository with README.md's replace directive
# 4. Rust: cargo test + clippy -D warnings, linked (pkg-config) and with the
#    `dlopen` feature (loading $AIDB_LIBRARY, no LD_LIBRARY_PATH), and with
#    the `bundled` feature (libaidb built from source, linked statically, with
#    no installed libaidb visible)
# 5. Python: a venv in BUILD_DIR with numpy + pytest, the package installed
#    with pip without a bundled library (AIDB_PYTHON_BUNDLE=OFF; aidb._fast
#    built against the installed header), pytest with AIDB_LIBRARY pointing
#    at the installed library (also with the ctypes route only), then with
#    the dynamic loader finding it; then run_python_wheel.sh: the
#    sdist/wheel that bundles libaidb, tested in a fresh venv with no libaidb
#    anywhere else
# Set AIDB_SKIP_BINDINGS="go rust python python_wheel packaging" (any subset)
# to skip parts.
# Ends with "bindings: N passed, N failed"; exits non-zero on any failure.
set -uo pipefail

if [ $# -lt 1 ]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
BUILD=$(realpath "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=$BUILD/packaging
PREFIX=$OUT/prefix
SKIP=" ${AIDB_SKIP_BINDINGS:-} "
# Toolchains installed in their default places but not on PATH.
for d in /usr/local/go/bin "$HOME/go/bin" "$HOME/.cargo/bin"; do
  [ -d "$d" ] && case ":$PATH:" in *":$d:"*) ;; *) PATH=$PATH:$d ;; esac
done
export PATH
mkdir -p "$OUT"

passed=0
failed=0
failures=()
run() { # run NAME COMMAND... (output streamed, prefixed)
  local name=$1
  shift
  echo "=== $name"
  local start=$SECONDS
  # Not in an `if`: errexit is ignored inside a tested command, subshells too.
  (set -e; "$@") 2>&1 | sed -u "s/^/[$name] /"
  if [ "${PIPESTATUS[0]}" -eq 0 ]; then
    echo "=== $name: PASS ($((SECONDS - start))s)"
    passed=$((passed + 1))
  else
    echo "=== $name: FAIL ($((SECONDS - start))s)"
    failed=$((failed + 1))
    failures+=("$name")
  fi
}
skipped() { [[ "$SKIP" == *" $1 "* ]]; }

# --- install ----------------------------------------------------------------
rm -rf "$PREFIX"
if ! cmake --install "$BUILD" --prefix "$PREFIX" >"$OUT/install.log" 2>&1; then
  cat "$OUT/install.log"
  echo "bindings: 0 passed, 1 failed"
  exit 1
fi
LIBDIR=$PREFIX/lib
[ -e "$LIBDIR/libaidb.so" ] || LIBDIR=$PREFIX/lib64
LIB=$LIBDIR/libaidb.so.$(sed -n 's/^#define AIDB_ABI_VERSION \([0-9]*\).*/\1/p' "$PREFIX/include/aidb.h")
export PKG_CONFIG_PATH=$LIBDIR/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
export LD_LIBRARY_PATH=$LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# The header the Rust and Python layout tests compile against.
export AIDB_INCLUDE_DIR=$PREFIX/include
echo "installed $(basename "$LIB") into $PREFIX"

# --- packaging ----------------------------------------------------------------
skipped packaging || run packaging "$HERE/run_packaging.sh" "$PREFIX" "$OUT/work" "$BUILD"

# --- every header function is declared by each binding ----------------------
bindings_cover_header() {
  grep -oE '\baidb_[a-z0-9_]+\(' "$PREFIX/include/aidb.h" | tr -d '(' | sort -u >"$OUT/declared.txt"
  local missing=0
  for f in "$ROOT/bindings/rust/aidb-sys/src/lib.rs" "$ROOT/bindings/python/aidb/_capi.py"; do
    while read -r fn; do
      if ! grep -qE "\b$fn\b" "$f"; then
        echo "$fn is not declared in ${f#"$ROOT"/}"
        missing=1
      fi
    done <"$OUT/declared.txt"
  done
  [ "$missing" -eq 0 ] && echo "$(wc -l <"$OUT/declared.txt") functions declared by aidb-sys and the Python binding"
}
run header_coverage bindings_cover_header

# --- one version: CMakeLists.txt's project(VERSION) everywhere ---------------
# aidb.h and aidb.pc follow CMake; the Rust crates (Cargo.toml) and the
# Python package (aidb/_version.py, read by pyproject.toml) state it once
# each, and their tests compare it with the loaded library's aidb_version().
# The Go package has no version of its own (cgo reads aidb.h's).
bindings_versions() {
  local want
  want=$(sed -n 's/^project(aidb VERSION \([0-9][0-9.]*\).*/\1/p' "$ROOT/CMakeLists.txt")
  [ -n "$want" ] || { echo "no project(aidb VERSION ...) in CMakeLists.txt"; return 1; }
  {
    printf 'libaidb aidb_version()\t'
    python3 -c 'import ctypes, sys
lib = ctypes.CDLL(sys.argv[1]); lib.aidb_version.restype = ctypes.c_char_p
print(lib.aidb_version().decode())' "$LIB"
    printf 'include/aidb.h AIDB_VERSION\t%s\n' \
      "$(sed -n 's/^#define AIDB_VERSION "\(.*\)"/\1/p' "$PREFIX/include/aidb.h")"
    printf 'aidb.pc\t%s\n' "$(pkg-config --modversion aidb)"
    cargo metadata --no-deps --format-version 1 --manifest-path "$ROOT/bindings/rust/Cargo.toml" |
      python3 -c 'import json, sys
for p in json.load(sys.stdin)["packages"]:
    print("crate %s\t%s" % (p["name"], p["version"]))
    for d in p["dependencies"]:
        if d["name"].startswith("aidb"):
            print("crate %s: dependency %s\t%s" % (p["name"], d["name"], d["req"].lstrip("^=")))'
    printf 'python aidb/_version.py\t'
    python3 -c 'import runpy, sys; print(runpy.run_path(sys.argv[1])["__version__"])' \
      "$ROOT/bindings/python/aidb/_version.py"
  } >"$OUT/versions.txt"
  local bad=0 what got
  while IFS=$'\t' read -r what got; do
    if [ "$got" != "$want" ]; then
      echo "$what is ${got:-missing}, CMakeLists.txt says $want"
      bad=1
    fi
  done <"$OUT/versions.txt"
  [ "$(wc -l <"$OUT/versions.txt")" -ge 7 ] || { echo "too few versions found:"; cat "$OUT/versions.txt"; return 1; }
  [ "$bad" -eq 0 ] && echo "$(wc -l <"$OUT/versions.txt") declared versions are $want"
}
run versions bindings_versions

# --- Go -----------------------------------------------------------------------
# staticcheck, pinned, from the tool dir scripts/install-deps.sh fills (not on
# the user's PATH, not in GOPATH/bin); built from Go's module cache when missing.
STATICCHECK_VERSION=v0.7.0 # staticcheck 2026.1; keep in step with install-deps.sh
go_tests() {
  cd "$ROOT/bindings/go"
  export CGO_ENABLED=1 GOFLAGS=-mod=mod
  go vet ./...
  gofmt_out=$(gofmt -l .)
  [ -z "$gofmt_out" ] || { echo "gofmt: $gofmt_out"; return 1; }
  local tools=${AIDB_GO_TOOLS:-$HOME/.cache/aidb-go-tools}
  if ! "$tools/staticcheck" -version 2>/dev/null | grep -q "($STATICCHECK_VERSION)"; then
    GOBIN=$tools GOFLAGS= go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
  fi
  "$tools/staticcheck" -version
  "$tools/staticcheck" ./...
  echo "go vet, gofmt and staticcheck: clean"
  go test -count=1 -race ./...
  # A module outside the repository uses the binding the way README.md says:
  # require + replace (the module path is not fetchable).
  local app=$OUT/go-consumer
  rm -rf "$app" && mkdir -p "$app"
  cat >"$app/main.go" <<'GO'
package main

import (
	"fmt"

	aidb "aidb/bindings/go"
)

func main() {
	fmt.Println("aidb", aidb.Version())
}
GO
  (cd "$app" && go mod init example.com/consumer >/dev/null 2>&1 &&
    go mod edit -require=aidb/bindings/go@v0.0.0 -replace=aidb/bindings/go="$ROOT/bindings/go" &&
    go vet . && go run .)
}
skipped go || run go go_tests

# --- Rust ---------------------------------------------------------------------
rust_tests() {
  cd "$ROOT/bindings/rust"
  export CARGO_TARGET_DIR=$OUT/cargo-target AIDB_TEST_TMPDIR=$OUT/tmp
  mkdir -p "$AIDB_TEST_TMPDIR"
  cargo fmt --check
  cargo clippy --locked --workspace --all-targets -- -D warnings
  cargo clippy --locked --workspace --all-targets --features aidb/dlopen -- -D warnings
  cargo test --locked --workspace
  # build.rs overrides: AIDB_LIB_DIR instead of pkg-config, and the static archive.
  env -u PKG_CONFIG_PATH AIDB_LIB_DIR="$LIBDIR" cargo test --locked -p aidb --test flows
  env -u PKG_CONFIG_PATH -u LD_LIBRARY_PATH AIDB_LIB_DIR="$LIBDIR" AIDB_STATIC=1 \
    cargo test --locked -p aidb --test flows
  # dlopen: nothing links libaidb; it is loaded by path from AIDB_LIBRARY.
  env -u LD_LIBRARY_PATH AIDB_LIBRARY="$LIB" cargo test --locked --workspace --features aidb/dlopen
  # Without a library to load, the dlopen build reports an error, not a crash.
  env -u LD_LIBRARY_PATH AIDB_LIBRARY=/nonexistent/libaidb.so.0 RUST_BACKTRACE=0 \
    cargo test --locked -p aidb --features dlopen --test flows version_matches_header \
    >"$OUT/rust-dlopen-missing.log" 2>&1 || true
  grep -q "status: LibraryUnavailable" "$OUT/rust-dlopen-missing.log"
  echo "dlopen build without a library: LibraryUnavailable error, as expected"
  rust_bundled
}

# Feature `bundled`: aidb-sys builds libaidb.a from the repository with the
# cmake crate and links it statically. Nothing installed may be used: no
# AIDB_LIB_DIR, PKG_CONFIG_PATH or LD_LIBRARY_PATH, and no libaidb known to
# the dynamic loader or in /usr/local.
rust_bundled() {
  if ldconfig -p | grep -q 'libaidb\.so' || compgen -G "/usr/local/lib*/libaidb*" >/dev/null; then
    echo "a libaidb is installed system-wide; the bundled test needs a machine without one"
    return 1
  fi
  local target=$OUT/cargo-target-bundled
  # AIDB_INCLUDE_DIR stays: only the layout test reads it (the header to
  # compare with, generated from the same aidb.h.in); nothing links through it.
  env -u PKG_CONFIG_PATH -u LD_LIBRARY_PATH -u AIDB_LIB_DIR -u AIDB_LIBRARY -u AIDB_STATIC \
    CARGO_TARGET_DIR="$target" CMAKE_BUILD_PARALLEL_LEVEL=2 \
    bash -c 'cargo clippy --locked --workspace --all-targets --features aidb/bundled -- -D warnings &&
             cargo test --locked --workspace --features aidb/bundled'
  # The test programs carry libaidb: no libaidb.so among their needs.
  local bin n=0
  for bin in "$target"/debug/deps/flows-*; do
    [ -x "$bin" ] && [ -f "$bin" ] || continue
    if readelf -d "$bin" | grep -q 'NEEDED.*libaidb'; then
      echo "$bin needs a shared libaidb"
      return 1
    fi
    n=$((n + 1))
  done
  [ "$n" -gt 0 ] || { echo "no flows test program found in $target"; return 1; }
  echo "bundled: libaidb built from source and linked statically, no system libaidb used"
}
skipped rust || run rust rust_tests

# --- Python -------------------------------------------------------------------
# The system-library route: the package built without a bundled library
# (AIDB_PYTHON_BUNDLE=OFF: only aidb._fast is compiled, against
# $AIDB_INCLUDE_DIR), loading the installed libaidb by $AIDB_LIBRARY, then
# through the dynamic loader (LD_LIBRARY_PATH); the ctypes route alone
# (AIDB_PYTHON_FAST=0, what a package without the extension uses) too.
python_tests() {
  local venv=$OUT/venv
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
  fi
  "$venv/bin/python" -c "import numpy, pytest, scikit_build_core" 2>/dev/null ||
    "$venv/bin/pip" install -q --disable-pip-version-check numpy pytest "scikit-build-core>=0.10"
  "$venv/bin/pip" install -q --disable-pip-version-check --no-deps --no-build-isolation \
    --force-reinstall -C cmake.define.AIDB_PYTHON_BUNDLE=OFF \
    -C build-dir="$OUT/python-nobundle-build" "$ROOT/bindings/python"
  cd "$ROOT/bindings/python"
  # The installed package (not the source tree) is imported: pytest puts
  # tests/ on sys.path, not the current directory.
  (cd / && AIDB_LIBRARY="$LIB" "$venv/bin/python" -c 'import os, aidb._capi as C
assert not os.path.exists(C.BUNDLED_LIBRARY), C.BUNDLED_LIBRARY')
  AIDB_EXPECT_FAST=1 AIDB_LIBRARY="$LIB" "$venv/bin/pytest" -q -p no:cacheprovider tests
  AIDB_PYTHON_FAST=0 AIDB_LIBRARY="$LIB" "$venv/bin/pytest" -q -p no:cacheprovider tests
  (cd / && AIDB_LIBRARY="$LIB" "$venv/bin/python" -c 'import sys, aidb._capi as C
assert C.LIBRARY == sys.argv[1], C.LIBRARY' "$LIB")
  env -u AIDB_LIBRARY "$venv/bin/pytest" -q -p no:cacheprovider tests
  (cd / && env -u AIDB_LIBRARY "$venv/bin/python" -c 'import aidb._capi as C
assert C.LIBRARY == "libaidb.so.0", C.LIBRARY')
  echo "system library route: by AIDB_LIBRARY and by the dynamic loader"
}
skipped python || run python python_tests

# The bundled route: pip/build alone, no library installed (its own script).
skipped python || skipped python_wheel || run python_wheel "$HERE/run_python_wheel.sh" "$BUILD"

echo
if [ "$failed" -gt 0 ]; then
  echo "failed: ${failures[*]}"
fi
echo "bindings: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
