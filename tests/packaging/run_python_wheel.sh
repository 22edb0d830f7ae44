#!/usr/bin/env bash
# The Python package installs with pip alone, libaidb bundled:
#   tests/packaging/run_python_wheel.sh BUILD_DIR
# 1. `python -m build bindings/python` in a fresh venv: an sdist (with the
#    library's sources in _aidb_src/), then a wheel built from that sdist by
#    scikit-build-core (CMake builds the `aidb` target only).
# 2. The wheel holds aidb/libaidb.so.0 and aidb._fast (the compiled
#    single-query search) and nothing else compiled.
# 3. A fresh venv with the wheel (+ numpy, pytest from PyPI), no
#    AIDB_LIBRARY, AIDB_LIB, LD_LIBRARY_PATH or PKG_CONFIG_PATH, and no
#    libaidb known to the dynamic loader: `import aidb` loads the bundled
#    library, search() goes through aidb._fast, and the binding's tests
#    pass (AIDB_EXPECT_FAST=1: test_fast.py must not skip).
# 4. `pip install ./bindings/python` (a checkout, no sdist) into another
#    fresh venv: it builds and bundles the library too.
# BUILD_DIR is only where the work happens (BUILD_DIR/packaging/python-wheel;
# the log of each step is kept there). With ccache (CCACHE_DIR shared),
# rebuilding the library from a fresh sdist, or from the checkout after the
# sdist, takes seconds.
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
mkdir -p "$1"
BUILD=$(realpath "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=$BUILD/packaging/python-wheel
rm -rf "$OUT"
mkdir -p "$OUT/tmp" "$OUT/dist"
# A clean environment: nothing points at a libaidb.
unset AIDB_LIBRARY AIDB_LIB AIDB_LIB_DIR LD_LIBRARY_PATH PKG_CONFIG_PATH
# pip and build unpack the sdist and build under TMPDIR. Both builds (the
# sdist's, under TMPDIR, and the checkout's, in bindings/python/build/)
# compile a copy of the library made in their build directory
# (bindings/python/CMakeLists.txt), so with a ccache base directory above
# both they compile the same relative paths and the second build, like every
# fresh sdist build, is served from the cache.
export TMPDIR=$OUT/tmp
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$(python3 -c 'import os, sys; print(os.path.commonpath(sys.argv[1:]))' "$OUT" "$ROOT/bindings/python")}
export PIP_DISABLE_PIP_VERSION_CHECK=1

if ldconfig -p | grep -q 'libaidb\.so'; then
  echo "a libaidb is installed system-wide; this test needs a machine without one:" >&2
  ldconfig -p | grep 'libaidb\.so' >&2
  exit 1
fi

step() { echo "--- $*"; }

step "python -m build (sdist, then a wheel from the sdist)"
python3 -m venv "$OUT/build-venv"
"$OUT/build-venv/bin/pip" install -q build
start=$SECONDS
"$OUT/build-venv/bin/python" -m build --outdir "$OUT/dist" "$ROOT/bindings/python" \
  >"$OUT/build.log" 2>&1 || { tail -50 "$OUT/build.log"; exit 1; }
echo "built in $((SECONDS - start))s: $(cd "$OUT/dist" && echo *)"
grep -E "Build files have been written|Built target aidb|Installing:|Successfully built" \
  "$OUT/build.log" | sed 's/^/  /' || true
[ ! -e "$ROOT/bindings/python/_aidb_src" ] || { echo "_aidb_src left in the checkout"; exit 1; }

SDIST=$(echo "$OUT"/dist/aidb-*.tar.gz)
WHEEL=$(echo "$OUT"/dist/aidb-*.whl)
step "sdist carries the library's sources"
tar -tzf "$SDIST" >"$OUT/sdist.txt"
for f in _aidb_src/CMakeLists.txt _aidb_src/include/aidb.h.in _aidb_src/src/CMakeLists.txt \
  _aidb_src/cmake/install.cmake CMakeLists.txt pyproject.toml _build_backend/aidb_build_backend.py \
  aidb/_capi.py src/aidb_fast.c; do
  grep -q "^aidb-[^/]*/$f$" "$OUT/sdist.txt" || { echo "sdist lacks $f"; exit 1; }
done
echo "$(wc -l <"$OUT/sdist.txt") files, $(grep -c /_aidb_src/ "$OUT/sdist.txt") of them libaidb's"

step "wheel contents"
python3 - "$WHEEL" <<'PY'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
so = sorted(n for n in names if ".so" in n)
print(sys.argv[1].rsplit("/", 1)[1], len(names), "files; compiled:", so)
assert len(so) == 2 and so[1] == "aidb/libaidb.so.0", so
assert so[0].startswith("aidb/_fast.cpython-") and so[0].endswith(".so"), so
PY

step "fresh venv: the wheel, numpy and pytest"
python3 -m venv "$OUT/venv"
"$OUT/venv/bin/pip" install -q "$WHEEL" pytest
"$OUT/venv/bin/pip" list 2>/dev/null | grep -Ei '^(aidb|numpy|pytest) '
cd "$OUT"
"$OUT/venv/bin/python" - <<'PY'
import ctypes.util, os
import aidb, aidb._capi as C, aidb._search as S
assert not any(k in os.environ for k in ("AIDB_LIBRARY", "AIDB_LIB", "LD_LIBRARY_PATH"))
assert ctypes.util.find_library("aidb") is None, "a system libaidb exists"
assert C.LIBRARY == C.BUNDLED_LIBRARY, C.LIBRARY
print("import aidb: library", aidb.version(), "loaded from", C.LIBRARY)
assert S.SEARCH_ROUTE == "extension", S.SEARCH_ROUTE
print("search route:", S.SEARCH_ROUTE, "(" + S._fast.__file__ + ")")
PY
# The tests, copied out of the checkout so nothing but the installed package
# can be imported; the header of the layout test is the one this build
# generated from the repository's include/aidb.h.in.
cp -r "$ROOT/bindings/python/tests" "$OUT/tests"
AIDB_EXPECT_FAST=1 AIDB_INCLUDE_DIR=$BUILD/include \
  "$OUT/venv/bin/python" -m pytest -q -p no:cacheprovider "$OUT/tests" 2>&1 | tee "$OUT/pytest.log" | tail -3

step "pip install ./bindings/python (from the checkout) into a fresh venv"
python3 -m venv "$OUT/venv-src"
start=$SECONDS
"$OUT/venv-src/bin/pip" install "$ROOT/bindings/python" >"$OUT/pip-install-src.log" 2>&1 ||
  { tail -50 "$OUT/pip-install-src.log"; exit 1; }
echo "installed in $((SECONDS - start))s"
"$OUT/venv-src/bin/python" -c 'import aidb, aidb._capi as C, aidb._search as S
assert C.LIBRARY == C.BUNDLED_LIBRARY, C.LIBRARY
assert S.SEARCH_ROUTE == "extension", S.SEARCH_ROUTE
with aidb.Collection("t", dim=2) as c:
    c.upsert(aidb.new_id(), [1.0, 0.0])
    print("import aidb: library", aidb.version(), "from", C.LIBRARY, "- search:", c.search([1.0, 0.0], k=1)[0].score)'
echo "python wheel: OK"
