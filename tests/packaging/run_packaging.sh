#!/usr/bin/env bash
# Packaging tests against an installed prefix (see run_bindings.sh, which
# installs BUILD_DIR into a temporary prefix and calls this):
#   run_packaging.sh PREFIX WORKDIR [BUILD_DIR]
# 1. the header compiles as C99 and C++ with -Wall -Wextra -Werror (gcc, clang)
# 2. only aidb_* symbols are exported, and every header function is
# 3. a C program built only with `pkg-config --cflags --libs aidb` (shared),
#    and with `pkg-config --static` against libaidb.a
# 4. a C program that dlopen()s libaidb.so.<ABI> and uses only dlsym
# 5. a CMake project using find_package(aidb) (aidb::aidb, aidb::aidb_static)
# 6. abidiff against the committed baseline (tests/packaging/abi/libaidb.abi)
# Prints "packaging: N passed, N failed" and exits non-zero on any failure.
set -uo pipefail

PREFIX=$(realpath "$1")
WORK=$(realpath -m "$2")
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
LIBDIR=$PREFIX/lib
[ -d "$PREFIX/lib64" ] && [ ! -e "$LIBDIR/libaidb.so" ] && LIBDIR=$PREFIX/lib64
ABI=$(sed -n 's/^#define AIDB_ABI_VERSION \([0-9]*\).*/\1/p' "$PREFIX/include/aidb.h")
SO=$LIBDIR/libaidb.so.$ABI
rm -rf "$WORK" && mkdir -p "$WORK"
export PKG_CONFIG_PATH=$LIBDIR/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}

passed=0
failed=0
step() { # step NAME COMMAND...
  local name=$1
  shift
  # Not in an `if`: errexit is ignored inside a tested command, subshells too.
  (set -e; "$@") >"$WORK/$name.log" 2>&1
  if [ $? -eq 0 ]; then
    echo "PASS $name"
    passed=$((passed + 1))
  else
    echo "FAIL $name (log: $WORK/$name.log)"
    sed 's/^/    /' "$WORK/$name.log" | tail -40
    failed=$((failed + 1))
  fi
}

header_compiles() {
  local inc=$PREFIX/include
  printf '#include <aidb.h>\nint main(void) { return aidb_version_number() == AIDB_VERSION_NUMBER ? 0 : 1; }\n' >"$WORK/h.c"
  cp "$WORK/h.c" "$WORK/h.cc"
  for cc in gcc clang; do
    command -v $cc >/dev/null || continue
    $cc -std=c99 -Wall -Wextra -Werror -pedantic -I"$inc" -fsyntax-only "$WORK/h.c"
    $cc -std=c11 -Wall -Wextra -Werror -pedantic -I"$inc" -fsyntax-only "$WORK/h.c"
  done
  for cxx in g++ clang++; do
    command -v $cxx >/dev/null || continue
    $cxx -std=c++11 -Wall -Wextra -Werror -pedantic -I"$inc" -fsyntax-only "$WORK/h.cc"
    $cxx -std=c++20 -Wall -Wextra -Werror -pedantic -I"$inc" -fsyntax-only "$WORK/h.cc"
  done
}

exports_only_aidb_symbols() {
  nm -D --defined-only "$SO" | awk '{print $3}' | sed 's/@.*//' | sort -u >"$WORK/exported.txt"
  # The version node (AIDB_0, an absolute symbol) is the only non-aidb_ entry allowed.
  local bad
  bad=$(grep -v -E '^aidb_[a-z0-9_]+$|^AIDB_[0-9]+$' "$WORK/exported.txt" || true)
  if [ -n "$bad" ]; then
    echo "non-aidb_ symbols exported:"; echo "$bad"; return 1
  fi
  grep -oE '\baidb_[a-z0-9_]+\(' "$PREFIX/include/aidb.h" | tr -d '(' | sort -u >"$WORK/declared.txt"
  local missing
  missing=$(comm -23 "$WORK/declared.txt" <(grep '^aidb_' "$WORK/exported.txt"))
  if [ -n "$missing" ]; then
    echo "declared in aidb.h but not exported:"; echo "$missing"; return 1
  fi
  local extra
  extra=$(comm -13 "$WORK/declared.txt" <(grep '^aidb_' "$WORK/exported.txt"))
  if [ -n "$extra" ]; then
    echo "exported but not declared in aidb.h:"; echo "$extra"; return 1
  fi
  readelf -d "$SO" | grep -q "SONAME.*\[libaidb.so.$ABI\]"
  echo "$(wc -l <"$WORK/declared.txt") functions, SONAME libaidb.so.$ABI"
}

pkgconfig_shared() {
  # Consumers of the shared library get the header path and -laidb, nothing else.
  [ "$(pkg-config --cflags aidb | xargs)" = "-I$PREFIX/include" ]
  [ "$(pkg-config --modversion aidb)" = "$(sed -n 's/^#define AIDB_VERSION "\(.*\)"/\1/p' "$PREFIX/include/aidb.h")" ]
  # shellcheck disable=SC2046
  cc -std=c99 -Wall -Wextra -Werror -o "$WORK/consumer_pc" "$HERE/consumer.c" $(pkg-config --cflags --libs aidb)
  LD_LIBRARY_PATH=$LIBDIR "$WORK/consumer_pc" "$WORK"
  # grep reads all of ldd's output: with -q it may exit first, and ldd's
  # SIGPIPE then fails the pipeline (pipefail); seen as a flake under load.
  LD_LIBRARY_PATH=$LIBDIR ldd "$WORK/consumer_pc" | grep "libaidb.so.$ABI => $LIBDIR/" >/dev/null
}

pkgconfig_static() {
  # The archive instead of the .so; its C++ dependencies from Libs.private.
  # shellcheck disable=SC2046
  cc -std=c99 -Wall -Wextra -Werror -o "$WORK/consumer_pc_static" "$HERE/consumer.c" \
    $(pkg-config --cflags aidb) $(pkg-config --static --libs aidb | sed 's/-laidb\b/-l:libaidb.a/')
  ! ldd "$WORK/consumer_pc_static" | grep -q libaidb
  mkdir -p "$WORK/static" && "$WORK/consumer_pc_static" "$WORK/static"
}

dlopen_only() {
  # No -laidb: the library is reached through dlopen + dlsym only.
  cc -std=c99 -Wall -Wextra -Werror -I"$PREFIX/include" -o "$WORK/consumer_dl" "$HERE/consumer_dlopen.c" -ldl
  ! ldd "$WORK/consumer_dl" | grep -q libaidb
  LD_LIBRARY_PATH=$LIBDIR "$WORK/consumer_dl"
  "$WORK/consumer_dl" "$SO" # by path, without LD_LIBRARY_PATH
}

cmake_find_package() {
  cmake -S "$HERE/cmake_consumer" -B "$WORK/cmake" -G Ninja -DCMAKE_PREFIX_PATH="$PREFIX" -DCMAKE_BUILD_TYPE=Release
  cmake --build "$WORK/cmake"
  LD_LIBRARY_PATH=$LIBDIR "$WORK/cmake/consumer_shared" "$WORK"
  [ -x "$WORK/cmake/consumer_static" ] # aidb::aidb_static exists
  mkdir -p "$WORK/cmake_static" && "$WORK/cmake/consumer_static" "$WORK/cmake_static"
  ! ldd "$WORK/cmake/consumer_static" | grep -q libaidb
}

abi_matches_baseline() {
  local base=$HERE/abi/libaidb.abi
  if ! command -v abidiff >/dev/null; then
    echo "abidiff not installed (Debian abigail-tools)"; return 1
  fi
  if ! readelf -S "$SO" | grep -q debug_info; then
    echo "SKIP: $SO has no debug info (build with RelWithDebInfo or Debug for the ABI check)"
    return 0
  fi
  local rc=0
  abidiff --headers-dir2 "$PREFIX/include" --drop-private-types --exported-interfaces-only \
    "$base" "$SO" >"$WORK/abidiff.txt" || rc=$?
  cat "$WORK/abidiff.txt"
  # abidiff's exit code is a bit field: 1 error, 2 usage, 4 ABI change,
  # 8 incompatible ABI change. Additions (4 alone) are allowed.
  if (( rc & 1 || rc & 2 || rc & 8 )); then
    echo "ABI break against $base (exit $rc); if intended, bump AIDB_ABI_VERSION and refresh the"
    echo "baseline: abidw --headers-dir include --drop-private-types --exported-interfaces-only \\"
    echo "  --no-show-locs --no-corpus-path --out-file $base <libaidb.so>"
    return 1
  fi
}

step header_c99_cxx_werror header_compiles
step exported_symbols exports_only_aidb_symbols
step pkgconfig_shared pkgconfig_shared
step pkgconfig_static pkgconfig_static
step dlopen_dlsym dlopen_only
step cmake_find_package cmake_find_package
step abidiff_baseline abi_matches_baseline

echo "packaging: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
