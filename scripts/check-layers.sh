#!/usr/bin/env bash
# Checks the layer rules (src/CMakeLists.txt, docs/design.md) on the sources:
# every `#include "<module>/..."` in src/<dir> and tests/<dir> must name a
# module that <dir> may use. The build enforces the same rules through include
# paths; this check names the offending line and also covers the tests.
#
#   scripts/check-layers.sh [repo-root]     (exit 1 on a violation)
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root"

modules="core storage index engine capi"
# Allowed modules per source folder (its own folder is always allowed).
declare -A allowed=(
  [src/core]=""
  [src/storage]="core"
  [src/index]="core"
  [src/engine]="core storage index"
  [src/capi]="core storage index engine"
  [src/server]=""
  [src/cluster]=""
  [tests/core]="core"
  [tests/storage]="core storage"
  [tests/index]="core index"
  [tests/engine]="core storage index engine"
  [tests/capi]=""
  [tests/server]=""
  [tests/cluster]=""
)

status=0
for dir in "${!allowed[@]}"; do
  [[ -d $dir ]] || continue
  own=${dir#*/}
  ok=" $own ${allowed[$dir]} "
  while IFS= read -r hit; do
    file=${hit%%:*}
    rest=${hit#*:}
    line=${rest%%:*}
    text=${rest#*:}
    mod=$(sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"([a-z_]+)\/.*/\1/' <<<"$text")
    case " $modules " in *" $mod "*) ;; *) continue ;; esac
    if [[ $ok != *" $mod "* ]]; then
      echo "$file:$line: layer violation: $dir may not include $mod/ ($text)" >&2
      status=1
    fi
  done < <(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"[a-z_]+/' "$dir" \
             --include='*.h' --include='*.cc' --include='*.c' --include='*.cpp' || true)
done

# The Cap'n Proto schema belongs to storage: nobody else includes it or Cap'n
# Proto itself (src/capi only catches kj::Exception at the C boundary).
while IFS= read -r hit; do
  echo "$hit: layer violation: Cap'n Proto outside src/storage" >&2
  status=1
done < <(grep -rnE '#[[:space:]]*include[[:space:]]*[<"](capnp/|storage/snapshot\.capnp\.h)' \
           src tests --include='*.h' --include='*.cc' | grep -v '^src/storage/' || true)

if [[ $status -eq 0 ]]; then echo "layers: OK"; fi
exit $status
