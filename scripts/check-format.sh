#!/usr/bin/env bash
# Checks that every C and C++ file tracked by git is formatted as .clang-format
# says (clang-format --dry-run -Werror). Generated files (Cap'n Proto output)
# are not tracked; the fuzz corpus is not code. Exits 1 on any difference and
# lists the files; fix one with `clang-format -i FILE`.
#   scripts/check-format.sh [FILE...]     (default: every tracked C/C++ file)
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
CLANG_FORMAT=${CLANG_FORMAT:-clang-format}
if ! command -v "$CLANG_FORMAT" >/dev/null 2>&1; then
  echo "check-format: $CLANG_FORMAT not found (scripts/install-deps.sh installs clang-format)" >&2
  exit 1
fi

if [ $# -gt 0 ]; then
  files=("$@")
else
  mapfile -d '' files < <(git ls-files -z -- '*.c' '*.cc' '*.cpp' '*.h' '*.hpp' \
    ':!:*.capnp.h' ':!:*.capnp.c++' ':!:fuzz/corpus/*')
fi

bad=()
for f in "${files[@]}"; do
  if ! "$CLANG_FORMAT" --style=file --dry-run -Werror "$f" >/dev/null 2>&1; then
    bad+=("$f")
  fi
done

echo "check-format: ${#files[@]} files checked with $("$CLANG_FORMAT" --version | sed 's/.*version //')"
if [ ${#bad[@]} -gt 0 ]; then
  echo "check-format: ${#bad[@]} files are not formatted:"
  printf '  %s\n' "${bad[@]}"
  echo "check-format: the first differences:"
  "$CLANG_FORMAT" --style=file --dry-run "${bad[0]}" 2>&1 | head -20
  echo "check-format: fix with: clang-format -i <file>"
  exit 1
fi
echo "check-format: ok"
