#!/usr/bin/env bash
# Runs an AIDB cluster on this one machine: a 3-broker Apache Kafka (KRaft, on
# loopback, via scripts/kafka.sh) and 3 aidbd nodes in cluster mode. See
# docs/cluster.md.
#
#   scripts/cluster.sh up     [--dir DIR] [--nodes N] [--groups 0,1,0] [--aidbd BIN]
#   scripts/cluster.sh down   [--dir DIR]
#   scripts/cluster.sh status [--dir DIR]
#
# DIR (default ./data/cluster) holds kafka/ (the brokers) and nodeN/ (data
# dir, aidbd.log, pid). Node N (1-based) listens on 127.0.0.1:(18080+N) with
# --node-id nodeN and replica group N of --groups (default 0,1,0: with
# replication 2, group 0 splits the shards between node1 and node3 and group 1
# (node2) holds a copy of every shard, so any one node can fail). Brokers
# listen on 127.0.0.1:19092,19094,19096. BIN defaults to
# build/release/src/server/aidbd, built when missing. Extra aidbd flags:
# AIDB_CLUSTER_FLAGS (e.g. "--log-level debug"); the AIDB_* variables of
# aidbd apply as usual.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)

cmd=${1:-}
[ $# -gt 0 ] && shift
dir="$ROOT/data/cluster"
nodes=3
groups="0,1,0"
aidbd="$ROOT/build/release/src/server/aidbd"
base_http=18080
kafka_port=19092
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir=$2; shift 2 ;;
    --nodes) nodes=$2; shift 2 ;;
    --groups) groups=$2; shift 2 ;;
    --aidbd) aidbd=$2; shift 2 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "cluster.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
log() { echo "cluster.sh: $*" >&2; }

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

http_get() { # URL -> body on stdout; non-zero on failure
  python3 - "$1" <<'EOF'
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
        sys.stdout.write(r.read().decode())
except Exception as e:
    sys.stderr.write("%s: %s\n" % (sys.argv[1], e))
    sys.exit(1)
EOF
}

group_of() { # node number (1-based) -> replica group
  local n=$1 g
  IFS=, read -r -a g <<<"$groups"
  if [ $((n - 1)) -lt ${#g[@]} ]; then echo "${g[$((n - 1))]}"; else echo 0; fi
}

case "$cmd" in
  up)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [ ! -x "$aidbd" ]; then
      log "building aidbd"
      bash "$ROOT/scripts/build.sh" release aidbd aidb_cli >&2
    fi
    brokers=$(bash "$ROOT/scripts/kafka.sh" up --brokers 3 --dir "$dir/kafka" --base-port "$kafka_port" | tail -n 1)
    printf 'nodes=%s\ngroups=%s\n' "$nodes" "$groups" >"$dir/layout"
    for ((n = 1; n <= nodes; n++)); do
      nd="$dir/node$n"
      mkdir -p "$nd/data"
      if alive "$nd/pid"; then continue; fi
      addr="127.0.0.1:$((base_http + n))"
      # shellcheck disable=SC2086
      setsid "$aidbd" --data-dir "$nd/data" --listen "$addr" --advertise "$addr" \
        --kafka "$brokers" --node-id "node$n" --replica-group "$(group_of "$n")" \
        ${AIDB_CLUSTER_FLAGS:-} >>"$nd/aidbd.log" 2>&1 </dev/null &
      echo $! >"$nd/pid"
    done
    for ((n = 1; n <= nodes; n++)); do
      addr="127.0.0.1:$((base_http + n))"
      for ((t = 0; t < 600; t++)); do
        http_get "http://$addr/health" >/dev/null 2>&1 && break
        alive "$dir/node$n/pid" || { log "node$n exited; see $dir/node$n/aidbd.log"; tail -n 20 "$dir/node$n/aidbd.log" >&2; exit 1; }
        sleep 0.1
      done
      http_get "http://$addr/health" >/dev/null || { log "node$n not answering on $addr"; exit 1; }
      log "node$n up on http://$addr (replica group $(group_of "$n"))"
    done
    echo "kafka $brokers"
    for ((n = 1; n <= nodes; n++)); do echo "node$n http://127.0.0.1:$((base_http + n))"; done
    ;;
  down)
    [ -d "$dir" ] || exit 0
    pids=()
    for f in "$dir"/node*/pid; do
      [ -e "$f" ] || continue
      if alive "$f"; then pids+=("$(cat "$f")"); kill -TERM "$(cat "$f")" 2>/dev/null || true; fi
      rm -f "$f"
    done
    for ((t = 0; t < 300 && ${#pids[@]} > 0; t++)); do
      left=()
      for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && left+=("$p"); done
      pids=("${left[@]+"${left[@]}"}")
      sleep 0.1
    done
    for p in "${pids[@]+"${pids[@]}"}"; do log "SIGKILL aidbd $p"; kill -KILL "$p" 2>/dev/null || true; done
    bash "$ROOT/scripts/kafka.sh" down --dir "$dir/kafka"
    ;;
  status)
    [ -s "$dir/layout" ] || { log "no cluster in $dir"; exit 1; }
    # shellcheck disable=SC1091
    . "$dir/layout"
    rc=0
    bash "$ROOT/scripts/kafka.sh" status --dir "$dir/kafka" || rc=1
    shown=""
    for ((n = 1; n <= nodes; n++)); do
      addr="127.0.0.1:$((base_http + n))"
      if alive "$dir/node$n/pid"; then
        echo "node$n $addr pid $(cat "$dir/node$n/pid") up"
        if [ -z "$shown" ] && body=$(http_get "http://$addr/cluster"); then
          echo "GET http://$addr/cluster:"
          echo "$body" | python3 -m json.tool
          shown=1
        fi
      else
        echo "node$n $addr down"
        rc=1
      fi
    done
    exit $rc
    ;;
  *)
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2
    exit 2
    ;;
esac
