#!/usr/bin/env bash
# Runs a small Apache Kafka cluster (KRaft combined mode: every broker is also
# a controller) on loopback, for AIDB's cluster mode: tests, benchmarks and
# scripts/cluster.sh. See docs/cluster.md.
#
#   scripts/kafka.sh up     [--brokers N] [--dir DIR] [--base-port P]
#   scripts/kafka.sh down   [--dir DIR]
#   scripts/kafka.sh status [--dir DIR]
#   scripts/kafka.sh kill   ID [--dir DIR]     (SIGKILL one broker: fault tests)
#   scripts/kafka.sh start  ID [--dir DIR]     (restart one stopped broker)
#   scripts/kafka.sh prepare                   (install tools, resolve jars only)
#
# Defaults: 3 brokers, DIR=$ROOT/data/kafka, base port 19092. Broker i
# (0-based) listens for clients on 127.0.0.1:(P+2i) and for the controller
# quorum on 127.0.0.1:(P+2i+1). `up` prints the bootstrap list on stdout as its
# last line (also in DIR/bootstrap) and exits once every broker answers a
# metadata request. The broker jars come from Maven Central through
# cluster/pom.xml (resolved once into cluster/target/dependency); Java 17+ and
# Maven are installed with apt-get when missing, and so is kcat (the readiness
# probe, librdkafka's own client).
#
# Environment: KAFKA_HEAP (default -Xmx384m -Xms64m), KAFKA_START_TIMEOUT
# (seconds, default 120), KAFKA_STOP_TIMEOUT (seconds before SIGKILL, default
# 20).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
JARS="$ROOT/cluster/target/dependency"

cmd=${1:-}
[ $# -gt 0 ] && shift
brokers=3
dir="$ROOT/data/kafka"
base_port=19092
id_arg=""
while [ $# -gt 0 ]; do
  case "$1" in
    --brokers) brokers=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    --base-port) base_port=$2; shift 2 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    [0-9]*) id_arg=$1; shift ;;
    *) echo "kafka.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

log() { echo "kafka.sh: $*" >&2; }

apt_install() {
  # Installs Debian packages, running apt-get update only when the first try
  # fails (a fresh machine has no package lists).
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "$@" >&2 || { apt-get update -q >&2 && apt-get install -y -q "$@" >&2; }
}

ensure_tools() {
  local missing=()
  command -v java >/dev/null || missing+=(default-jre-headless)
  command -v mvn >/dev/null || missing+=(maven)
  command -v kcat >/dev/null || missing+=(kcat)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    apt_install "${missing[@]}"
  fi
}

ensure_jars() {
  if ! ls "$JARS"/kafka_2.13-*.jar >/dev/null 2>&1 || ! ls "$JARS"/kafka-tools-*.jar >/dev/null 2>&1; then
    log "resolving the Kafka jars (cluster/pom.xml)"
    mvn -q -f "$ROOT/cluster/pom.xml" dependency:copy-dependencies >&2
  fi
}

# Stable per-directory cluster id (KRaft wants 16 bytes, base64url, 22 chars).
# Never with a leading '-': StorageTool would read "-t -xyz" as a flag.
cluster_id() {
  while [ ! -s "$dir/cluster.id" ] || [ "$(head -c 1 "$dir/cluster.id")" = "-" ]; do
    head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' >"$dir/cluster.id"
  done
  cat "$dir/cluster.id"
}

write_config() {
  local i=$1 n=$2 voters=$3
  local port=$((base_port + 2 * i)) cport=$((base_port + 2 * i + 1))
  local rf=$((n < 3 ? n : 3))
  local isr=$((rf < 3 ? 1 : 2))
  mkdir -p "$dir/broker$i/data"
  cat >"$dir/broker$i/server.properties" <<EOF
# Written by scripts/kafka.sh: broker $i of $n, KRaft combined mode.
process.roles=broker,controller
node.id=$i
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/broker$i/data
num.partitions=1
default.replication.factor=$rf
min.insync.replicas=$isr
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
transaction.state.log.num.partitions=8
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$isr
group.initial.rebalance.delay.ms=0
# Short timeouts so that tests see failures and rebalances quickly.
group.min.session.timeout.ms=1000
broker.heartbeat.interval.ms=500
broker.session.timeout.ms=4000
controller.quorum.election.timeout.ms=1000
controller.quorum.fetch.timeout.ms=2000
replica.lag.time.max.ms=5000
transaction.abort.timed.out.transaction.cleanup.interval.ms=5000
transaction.remove.expired.transaction.cleanup.interval.ms=60000
# Small segments so that compaction has something to do in tests.
log.segment.bytes=16777216
log.cleaner.dedupe.buffer.size=8388608
log.cleaner.threads=1
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
num.replica.fetchers=1
background.threads=2
# Kafka's default, as most brokers run: aidbd never relies on topics made on
# first use and must never cause one (docs/cluster.md, "Topics and records").
auto.create.topics.enable=true
delete.topic.enable=true
EOF
}

write_log4j() {
  cat >"$dir/log4j2.yaml" <<'EOF'
Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka
        level: INFO
      - name: org.apache.kafka
        level: INFO
      - name: kafka.request.logger
        level: WARN
      - name: state.change.logger
        level: WARN
      - name: kafka.log.LogCleaner
        level: WARN
EOF
}

java_opts() {
  echo "${KAFKA_HEAP:--Xmx384m -Xms64m} -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError -XX:TieredStopAtLevel=1 -Djava.awt.headless=true -Dlog4j2.configurationFile=$dir/log4j2.yaml"
}

alive() { # pid file -> 0 when that process runs
  local f=$1
  [ -s "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null
}

start_broker() {
  local i=$1
  if alive "$dir/broker$i/pid"; then return 0; fi
  # shellcheck disable=SC2046
  setsid java $(java_opts) -cp "$JARS/*" kafka.Kafka "$dir/broker$i/server.properties" \
    >>"$dir/broker$i/broker.log" 2>&1 </dev/null &
  echo $! >"$dir/broker$i/pid"
}

bootstrap() {
  local n=$1 i out=""
  for ((i = 0; i < n; i++)); do
    out+="${out:+,}127.0.0.1:$((base_port + 2 * i))"
  done
  echo "$out"
}

# 0 when the broker at $1 answers a metadata request and the cluster has $2
# brokers registered.
probe() {
  local addr=$1 want=$2 got
  got=$(timeout 5 kcat -b "$addr" -L -m 3 -J 2>/dev/null |
    python3 -c 'import json,sys; print(len(json.load(sys.stdin).get("brokers", [])))' 2>/dev/null) || return 1
  [ "${got:-0}" -ge "$want" ]
}

load_layout() {
  [ -s "$dir/layout" ] || { log "no cluster in $dir (run up first)"; exit 1; }
  # shellcheck disable=SC1091
  . "$dir/layout"
}

wait_up() {
  local n=$1 timeout=${KAFKA_START_TIMEOUT:-120} start=$SECONDS i
  for ((i = 0; i < n; i++)); do
    while ! probe "127.0.0.1:$((base_port + 2 * i))" "$n"; do
      if ! alive "$dir/broker$i/pid"; then
        log "broker $i exited; last lines of $dir/broker$i/broker.log:"
        tail -n 30 "$dir/broker$i/broker.log" >&2
        return 1
      fi
      if ((SECONDS - start > timeout)); then
        log "broker $i not up after ${timeout}s; see $dir/broker$i/broker.log"
        return 1
      fi
      sleep 0.5
    done
  done
}

stop_pids() { # SIGTERM every pid file given, SIGKILL after the timeout
  local f pids=() t=${KAFKA_STOP_TIMEOUT:-20} waited=0
  for f in "$@"; do
    if alive "$f"; then
      pids+=("$(cat "$f")")
      kill -TERM "$(cat "$f")" 2>/dev/null || true
    fi
  done
  while [ ${#pids[@]} -gt 0 ]; do
    local left=()
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && left+=("$p"); done
    pids=("${left[@]+"${left[@]}"}")
    [ ${#pids[@]} -eq 0 ] && break
    if ((waited >= t * 10)); then
      log "SIGKILL ${pids[*]} after ${t}s"
      for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
      break
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  for f in "$@"; do rm -f "$f"; done
}

case "$cmd" in
  prepare)
    ensure_tools
    ensure_jars
    ;;
  up)
    ensure_tools
    ensure_jars
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [ -s "$dir/layout" ]; then
      # An existing cluster keeps its layout (ports, size) across restarts.
      # shellcheck disable=SC1091
      . "$dir/layout"
    fi
    printf 'brokers=%s\nbase_port=%s\n' "$brokers" "$base_port" >"$dir/layout"
    voters=""
    for ((i = 0; i < brokers; i++)); do
      voters+="${voters:+,}$i@127.0.0.1:$((base_port + 2 * i + 1))"
    done
    cid=$(cluster_id)
    write_log4j
    started=$(date +%s.%N)
    for ((i = 0; i < brokers; i++)); do
      write_config "$i" "$brokers" "$voters"
      if [ ! -f "$dir/broker$i/data/meta.properties" ]; then
        # shellcheck disable=SC2046
        java $(java_opts) -cp "$JARS/*" kafka.tools.StorageTool format \
          -t "$cid" -c "$dir/broker$i/server.properties" --ignore-formatted \
          >>"$dir/broker$i/broker.log" 2>&1 ||
          { log "formatting broker $i failed; see $dir/broker$i/broker.log"; tail -n 20 "$dir/broker$i/broker.log" >&2; exit 1; }
      fi
    done
    for ((i = 0; i < brokers; i++)); do start_broker "$i"; done
    if ! wait_up "$brokers"; then
      # Leave nothing half up (e.g. one broker could not bind its port).
      files=()
      for f in "$dir"/broker*/pid; do [ -e "$f" ] && files+=("$f"); done
      [ ${#files[@]} -gt 0 ] && stop_pids "${files[@]}"
      exit 1
    fi
    bootstrap "$brokers" >"$dir/bootstrap"
    log "$brokers brokers up in $(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $started}") s (dir $dir)"
    cat "$dir/bootstrap"
    ;;
  down)
    [ -d "$dir" ] || exit 0
    files=()
    for f in "$dir"/broker*/pid; do [ -e "$f" ] && files+=("$f"); done
    [ ${#files[@]} -gt 0 ] && stop_pids "${files[@]}"
    log "stopped"
    ;;
  status)
    load_layout
    rc=0
    for ((i = 0; i < brokers; i++)); do
      addr="127.0.0.1:$((base_port + 2 * i))"
      if alive "$dir/broker$i/pid"; then
        rss=$(awk '/VmRSS/{print $2 " " $3}' "/proc/$(cat "$dir/broker$i/pid")/status" 2>/dev/null || echo "?")
        if probe "$addr" 1; then st=up; else st=starting; rc=1; fi
        echo "broker $i $addr pid $(cat "$dir/broker$i/pid") $st rss $rss"
      else
        echo "broker $i $addr down"
        rc=1
      fi
    done
    echo "bootstrap $(bootstrap "$brokers")"
    exit $rc
    ;;
  kill)
    load_layout
    [ -n "$id_arg" ] || { log "kill needs a broker id"; exit 2; }
    if alive "$dir/broker$id_arg/pid"; then
      kill -KILL "$(cat "$dir/broker$id_arg/pid")"
      rm -f "$dir/broker$id_arg/pid"
    fi
    ;;
  start)
    load_layout
    [ -n "$id_arg" ] || { log "start needs a broker id"; exit 2; }
    ensure_tools
    start_broker "$id_arg"
    while ! probe "127.0.0.1:$((base_port + 2 * id_arg))" 1; do
      alive "$dir/broker$id_arg/pid" || { log "broker $id_arg exited"; exit 1; }
      sleep 0.5
    done
    ;;
  *)
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2
    exit 2
    ;;
esac
