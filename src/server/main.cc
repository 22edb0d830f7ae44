// aidbd: the AIDB HTTP daemon. See `aidbd --help` and docs/http-api.md.
#include <aidb.h>
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <uv.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "api.h"
#include "cluster/logic.h"
#include "cluster/router.h"
#include "http_server.h"
#include "util.h"

namespace {

using namespace aidbd;

#define AIDBD_STR2(x) #x
#define AIDBD_STR(x) AIDBD_STR2(x)

const char kUsage[] = R"(Usage: aidbd [options]

The AIDB vector database daemon: serves the REST API of docs/http-api.md over
HTTP/1.1. Collections persist in the data directory and come back on restart.
Every option can also be set with the environment variable in brackets; a flag
wins over the variable.

  --data-dir DIR            data directory, created if missing [AIDB_DATA_DIR]
                            (default ./data)
  --listen HOST:PORT        address to listen on; port 0 picks a free port; the
                            bound address is logged at every log level
                            (event=listening addr=..)
                            [AIDB_LISTEN] (default 127.0.0.1:8080)
  --api-key KEY             require this key on every route but /health, in the
                            header `api-key: KEY` or `Authorization: Bearer KEY`
                            [AIDB_API_KEY] (default: none; prefer the variable,
                            command lines are visible to other users)
  --log-level LEVEL         debug, info, warn, error or off [AIDB_LOG_LEVEL]
                            (default info)
  --durability MODE         fsync, batch or none: when a write is acknowledged
                            [AIDB_DURABILITY] (default fsync)
  --batch-interval-ms N     fsync interval in batch mode [AIDB_BATCH_INTERVAL_MS]
                            (default )" AIDBD_STR(AIDB_DEFAULT_BATCH_INTERVAL_MS) R"()
  --max-body-bytes N        largest request body, else 413 [AIDB_MAX_BODY_BYTES]
                            (default 67108864)
  --max-header-bytes N      largest request line + headers, else 431
                            [AIDB_MAX_HEADER_BYTES] (default 16384)
  --request-timeout-ms N    time a client has to send a whole request (else 408)
                            and to read a response [AIDB_REQUEST_TIMEOUT_MS]
                            (default 30000)
  --idle-timeout-ms N       keep-alive connections idle this long are closed
                            [AIDB_IDLE_TIMEOUT_MS] (default 60000)
  --shutdown-timeout-ms N   on SIGINT/SIGTERM, wait this long for in-flight
                            requests [AIDB_SHUTDOWN_TIMEOUT_MS] (default 30000)
  --max-connections N       open connections beyond this are closed at once
                            [AIDB_MAX_CONNECTIONS] (default 4096). aidbd
                            raises its soft RLIMIT_NOFILE to fit them; when
                            the hard limit is too low the default is lowered
                            (with a warning) and an explicit value is refused
  --max-connections-per-ip N  open connections one client address may have;
                            more are closed at once, unanswered (IPv6: per
                            address). 0 = no limit [AIDB_MAX_CONNECTIONS_PER_IP]
                            (default 0)
  --io-threads N            event loops serving connections, each on a thread
                            of its own; a new connection goes to the loop with
                            the fewest. Short searches run on these loops, all
                            other engine calls on the worker threads. 0 serves
                            on the accepting loop [AIDB_IO_THREADS] (default:
                            the number of CPUs; at most 256)
  --threads N               worker threads for engine calls: libuv's thread pool
                            [UV_THREADPOOL_SIZE] (default 8; at most 1024)

Cluster mode (see docs/cluster.md): with --kafka, collections are sharded and
replicated over the nodes through Kafka topics; without it aidbd is the
standalone daemon.
  --kafka BROKERS           comma-separated host:port of Kafka brokers
                            [AIDB_KAFKA]
  --node-id ID              this node's name, [A-Za-z0-9_-]{1,64}; required
                            with --kafka [AIDB_NODE_ID]
  --advertise HOST:PORT     address other nodes use to reach this node
                            [AIDB_ADVERTISE] (default: the bound --listen)
  --replica-group G         replica group (0, 1, ...): a collection with
                            replication R is held by groups 0..R-1
                            [AIDB_REPLICA_GROUP] (default 0)
  --consistency-timeout-ms N  longest wait of a session or strong read before
                            it answers 504 [AIDB_CONSISTENCY_TIMEOUT_MS]
                            (default 5000)
  --history-interval-ms N   how often the web console's history samples every
                            collection's points and WAL size (360 samples are
                            kept: an hour at the default)
                            [AIDB_HISTORY_INTERVAL_MS] (default 10000)
  --help                    print this text
  --version                 print the version

Signals: SIGINT or SIGTERM stops accepting connections, finishes the requests
in flight, flushes and closes every WAL, then exits 0. A second signal stops
waiting for slow clients.
)";

struct Options {
  std::string data_dir = "./data";
  std::string listen = "127.0.0.1:8080";
  std::string api_key;
  std::string log_level = "info";
  std::string durability = aidb_durability_name(AIDB_DEFAULT_DURABILITY);
  uint64_t batch_interval_ms = AIDB_DEFAULT_BATCH_INTERVAL_MS;
  HttpLimits limits;
  uint64_t threads = 0;
  int64_t io_threads = -1;  // -1: one per CPU
  std::string kafka;        // cluster mode when set
  std::string node_id;
  std::string advertise;
  uint64_t replica_group = 0;
  uint64_t consistency_timeout_ms = 5000;
  uint64_t history_interval_ms = 10000;
  bool max_connections_set = false;  // by the flag or AIDB_MAX_CONNECTIONS
};

[[noreturn]] void UsageError(const std::string& msg) {
  std::fprintf(stderr, "aidbd: %s\nTry 'aidbd --help'.\n", msg.c_str());
  std::exit(2);
}

uint64_t ParseUint(const std::string& flag, const std::string& v) {
  if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos || v.size() > 19) {
    UsageError(flag + " needs a non-negative integer, not '" + v + "'");
  }
  return std::strtoull(v.c_str(), nullptr, 10);
}

void Apply(Options* o, const std::string& key, const std::string& v) {
  if (key == "--max-connections") o->max_connections_set = true;
  if (key == "--data-dir") o->data_dir = v;
  else if (key == "--listen") o->listen = v;
  else if (key == "--api-key") o->api_key = v;
  else if (key == "--log-level") o->log_level = v;
  else if (key == "--durability") o->durability = v;
  else if (key == "--batch-interval-ms") o->batch_interval_ms = ParseUint(key, v);
  else if (key == "--max-body-bytes") o->limits.max_body_bytes = ParseUint(key, v);
  else if (key == "--max-header-bytes") o->limits.max_header_bytes = ParseUint(key, v);
  else if (key == "--request-timeout-ms") o->limits.request_timeout_ms = ParseUint(key, v);
  else if (key == "--idle-timeout-ms") o->limits.idle_timeout_ms = ParseUint(key, v);
  else if (key == "--shutdown-timeout-ms") o->limits.shutdown_timeout_ms = ParseUint(key, v);
  else if (key == "--threads") o->threads = ParseUint(key, v);
  else if (key == "--io-threads")
    o->io_threads = static_cast<int64_t>(std::min<uint64_t>(ParseUint(key, v), 256));
  else if (key == "--max-connections") o->limits.max_connections = ParseUint(key, v);
  else if (key == "--max-connections-per-ip") o->limits.max_connections_per_ip = ParseUint(key, v);
  else if (key == "--kafka") o->kafka = v;
  else if (key == "--node-id") o->node_id = v;
  else if (key == "--advertise") o->advertise = v;
  else if (key == "--replica-group") o->replica_group = ParseUint(key, v);
  else if (key == "--consistency-timeout-ms") o->consistency_timeout_ms = ParseUint(key, v);
  else if (key == "--history-interval-ms") o->history_interval_ms = ParseUint(key, v);
  else UsageError("unknown option " + key);
}

Options ParseOptions(int argc, char** argv) {
  Options o;
  static const std::pair<const char*, const char*> kEnv[] = {
      {"AIDB_DATA_DIR", "--data-dir"},
      {"AIDB_LISTEN", "--listen"},
      {"AIDB_API_KEY", "--api-key"},
      {"AIDB_LOG_LEVEL", "--log-level"},
      {"AIDB_DURABILITY", "--durability"},
      {"AIDB_BATCH_INTERVAL_MS", "--batch-interval-ms"},
      {"AIDB_MAX_BODY_BYTES", "--max-body-bytes"},
      {"AIDB_MAX_HEADER_BYTES", "--max-header-bytes"},
      {"AIDB_REQUEST_TIMEOUT_MS", "--request-timeout-ms"},
      {"AIDB_IDLE_TIMEOUT_MS", "--idle-timeout-ms"},
      {"AIDB_SHUTDOWN_TIMEOUT_MS", "--shutdown-timeout-ms"},
      {"AIDB_MAX_CONNECTIONS", "--max-connections"},
      {"AIDB_MAX_CONNECTIONS_PER_IP", "--max-connections-per-ip"},
      {"UV_THREADPOOL_SIZE", "--threads"},
      {"AIDB_IO_THREADS", "--io-threads"},
      {"AIDB_KAFKA", "--kafka"},
      {"AIDB_NODE_ID", "--node-id"},
      {"AIDB_ADVERTISE", "--advertise"},
      {"AIDB_REPLICA_GROUP", "--replica-group"},
      {"AIDB_CONSISTENCY_TIMEOUT_MS", "--consistency-timeout-ms"},
      {"AIDB_HISTORY_INTERVAL_MS", "--history-interval-ms"},
  };
  for (auto& [env, flag] : kEnv) {
    if (const char* v = std::getenv(env); v && *v) Apply(&o, flag, v);
  }
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      std::printf("\nVersion: aidbd %s (libaidb %s)\n", AIDB_VERSION, aidb_version());
      std::exit(0);
    }
    if (a == "--version") {
      std::printf("aidbd %s (libaidb %s)\n", AIDB_VERSION, aidb_version());
      std::exit(0);
    }
    if (a.rfind("--", 0) != 0) UsageError("unexpected argument '" + a + "'");
    size_t eq = a.find('=');
    if (eq != std::string::npos) {
      Apply(&o, a.substr(0, eq), a.substr(eq + 1));
    } else {
      if (i + 1 >= argc) UsageError(a + " needs a value");
      Apply(&o, a, argv[++i]);
    }
  }
  return o;
}

bool SplitHostPort(const std::string& s, std::string* host, int* port) {
  std::string p;
  if (!s.empty() && s[0] == '[') {
    size_t close = s.find(']');
    if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':') return false;
    *host = s.substr(1, close - 1);
    p = s.substr(close + 2);
  } else {
    size_t colon = s.rfind(':');
    if (colon == std::string::npos) {
      *host = "127.0.0.1";
      p = s;
    } else {
      *host = colon == 0 ? "127.0.0.1" : s.substr(0, colon);
      p = s.substr(colon + 1);
    }
  }
  if (*host == "localhost") *host = "127.0.0.1";
  if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  *port = std::atoi(p.c_str());
  return *port <= 65535;
}

// File descriptors open in this process now, or -1 without /proc.
long CountOpenFds() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  long n = 0;
  while (const struct dirent* e = ::readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(dir);
  return n - 1;  // the listing's own
}

// What aidbd keeps open besides its connections: whatever is open once the
// database is (a WAL per collection, libuv's own), plus per event loop its
// epoll and wake-up descriptors, plus a reserve for the listener, the
// accept's short-lived duplicate, collections created later, snapshots being
// written or read, and (cluster mode) the Kafka client's sockets and pipes.
constexpr uint64_t kFdReserve = 128;
constexpr uint64_t kFdPerLoop = 4;
constexpr uint64_t kFdCluster = 128;
// Below this many connections aidbd refuses to start rather than serve.
constexpr uint64_t kMinConnections = 16;

uint64_t RlimValue(rlim_t v) { return v == RLIM_INFINITY ? UINT64_MAX : static_cast<uint64_t>(v); }

// Makes --max-connections fit RLIMIT_NOFILE (docs/operations.md, "File
// descriptors"): raises the soft limit toward the hard limit to cover the
// connections and the reserve. When the hard limit is too low, a default
// max_connections is lowered to what fits (with a warning) and an explicit
// one makes aidbd refuse to start (returns false): past the limit accept()
// fails with EMFILE and clients are dropped without an answer.
bool FitFdLimit(Options* o, unsigned io_threads, bool cluster) {
  struct rlimit rl;
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    Log(LogLevel::kWarn, "fd_limit_unknown", KV().Add("error", std::strerror(errno)));
    return true;
  }
  long open_now = CountOpenFds();
  uint64_t reserve = static_cast<uint64_t>(open_now < 0 ? 64 : open_now) + kFdReserve +
                     kFdPerLoop * (io_threads + 1ull) + (cluster ? kFdCluster : 0);
  uint64_t wanted = o->limits.max_connections;
  uint64_t need = wanted > UINT64_MAX - reserve ? UINT64_MAX : wanted + reserve;
  uint64_t soft_before = RlimValue(rl.rlim_cur);
  uint64_t hard = RlimValue(rl.rlim_max);
  uint64_t soft = soft_before;
  if (soft < need) {
    struct rlimit raised = rl;
    raised.rlim_cur = static_cast<rlim_t>(std::min(need, hard));
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) {
      soft = RlimValue(raised.rlim_cur);
    } else {
      Log(LogLevel::kWarn, "fd_limit_raise_failed",
          KV().Add("soft_limit", static_cast<unsigned long long>(soft_before))
              .Add("wanted", static_cast<unsigned long long>(raised.rlim_cur))
              .Add("error", std::strerror(errno)));
    }
  }
  KV kv;
  kv.Add("soft_limit_was", static_cast<unsigned long long>(soft_before))
      .Add("soft_limit", static_cast<unsigned long long>(soft))
      .Add("hard_limit", static_cast<unsigned long long>(hard))
      .Add("open", static_cast<long long>(open_now))
      .Add("reserve", static_cast<unsigned long long>(reserve));
  if (soft >= need) {
    Log(LogLevel::kDebug, "fd_limit",
        kv.Add("max_connections", static_cast<unsigned long long>(wanted)));
    return true;
  }
  uint64_t fit = soft > reserve ? soft - reserve : 0;
  kv.Add("max_connections_requested", static_cast<unsigned long long>(wanted))
      .Add("max_connections_possible", static_cast<unsigned long long>(fit))
      .Add("needed", static_cast<unsigned long long>(need));
  if (o->max_connections_set || fit < kMinConnections) {
    Log(LogLevel::kError, "fd_limit_too_low",
        kv.Add("hint", o->max_connections_set
                           ? "lower --max-connections or raise the hard RLIMIT_NOFILE (ulimit -Hn, "
                             "systemd LimitNOFILE=)"
                           : "raise the hard RLIMIT_NOFILE (ulimit -Hn, systemd LimitNOFILE=)"));
    return false;
  }
  o->limits.max_connections = fit;
  Log(LogLevel::kWarn, "fd_limit_low",
      kv.Add("max_connections", static_cast<unsigned long long>(fit))
          .Add("hint",
               "max_connections lowered to fit; raise the hard RLIMIT_NOFILE (ulimit -Hn, "
               "systemd LimitNOFILE=) to serve more"));
  return true;
}

struct Daemon {
  uv_loop_t loop;
  uv_signal_t sigint;
  uv_signal_t sigterm;
  HttpServer* server = nullptr;
};

// SIGINT and SIGTERM: blocked in every thread but the loop's, and there only
// while the loop runs (threads inherit the mask of their creator, so they are
// blocked from the start of main()).
sigset_t StopSignals() {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGINT);
  sigaddset(&s, SIGTERM);
  return s;
}

void OnSignal(uv_signal_t* h, int signum) {
  auto* d = static_cast<Daemon*>(h->data);
  Log(LogLevel::kInfo, "shutdown", KV().Add("signal", signum == SIGINT ? "SIGINT" : "SIGTERM"));
  d->server->Shutdown([d] {
    Log(LogLevel::kInfo, "drained");
    // Closing the handles restores the default dispositions: a SIGTERM or
    // SIGINT then would kill the process while it flushes the WALs. Shutdown
    // is under way, so further signals are ignored: blocked (held pending)
    // across the switch, then discarded by SIG_IGN.
    sigset_t stop = StopSignals();
    pthread_sigmask(SIG_BLOCK, &stop, nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&d->sigint), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&d->sigterm), nullptr);
    ::signal(SIGINT, SIG_IGN);
    ::signal(SIGTERM, SIG_IGN);
  });
}

}  // namespace

int main(int argc, char** argv) {
  // Only the daemon ignores SIGPIPE: a client that goes away makes writes fail
  // with EPIPE instead of killing the process. The library never touches signals.
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t stop_signals = StopSignals();
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  Options o = ParseOptions(argc, argv);

  LogLevel level;
  if (!ParseLogLevel(o.log_level, &level)) UsageError("unknown log level '" + o.log_level + "'");
  int durability = 0;
  if (aidb_durability_from_string(o.durability.c_str(), &durability, nullptr) != AIDB_OK) {
    UsageError("unknown durability '" + o.durability + "': use fsync, batch or none");
  }
  std::string host;
  int port = 0;
  if (!SplitHostPort(o.listen, &host, &port)) UsageError("bad --listen '" + o.listen + "'");
  if (o.limits.max_body_bytes == 0) UsageError("--max-body-bytes must be positive");
  const bool cluster = !o.kafka.empty();
  if (cluster && !aidbd::cluster::ValidNodeId(o.node_id)) {
    UsageError("--kafka needs --node-id: 1 to 64 of A-Z a-z 0-9 _ -");
  }
  if (o.replica_group > 1024) UsageError("--replica-group must be at most 1024");
  if (o.history_interval_ms < 100 || o.history_interval_ms > 86400000) {
    UsageError("--history-interval-ms must be between 100 and 86400000");
  }

  // libuv sizes its process-wide pool from UV_THREADPOOL_SIZE when the first
  // work item is queued. Engine calls block (fsync, snapshots), so default to
  // more threads than libuv's 4.
  uint64_t threads = o.threads ? o.threads : 8;
  if (threads > 1024) threads = 1024;
  ::setenv("UV_THREADPOOL_SIZE", std::to_string(threads).c_str(), 1);
  unsigned io_threads = o.io_threads >= 0 ? static_cast<unsigned>(o.io_threads)
                                          : std::max(1u, std::thread::hardware_concurrency());

  InstallLibraryLogger(level);

  std::error_code ec;
  std::filesystem::create_directories(o.data_dir, ec);
  if (ec) {
    Log(LogLevel::kError, "data_dir_failed",
        KV().Add("dir", o.data_dir).Add("error", ec.message()));
    return 1;
  }
  std::string data_dir = std::filesystem::canonical(o.data_dir, ec).string();
  if (ec) {
    Log(LogLevel::kError, "data_dir_failed",
        KV().Add("dir", o.data_dir).Add("error", ec.message()));
    return 1;
  }
  // In cluster mode the node's shard replicas are the collections of
  // <data-dir>/shards; <data-dir>/cluster holds their offset-named snapshots.
  std::string db_dir = cluster ? data_dir + "/shards" : data_dir;
  Log(LogLevel::kInfo, "starting",
      KV().Add("version", aidb_version())
          .Add("data_dir", data_dir)
          .Add("durability", o.durability)
          .Add("threads", static_cast<unsigned long long>(threads))
          .Add("io_threads", io_threads)
          .Add("auth", o.api_key.empty() ? "off" : "api-key"));

  aidb_db_options dbo;
  aidb_db_options_init(&dbo);
  dbo.create_if_missing = 1;
  dbo.durability = durability;
  dbo.batch_interval_ms = static_cast<uint32_t>(o.batch_interval_ms);
  aidb_db* db = nullptr;
  char* err = nullptr;
  int64_t t0 = NowUnixNs();
  int st = aidb_db_open(db_dir.c_str(), &dbo, &db, &err);
  if (st != AIDB_OK) {
    Log(LogLevel::kError, "open_failed",
        KV().Add("dir", db_dir).Add("status", aidb_status_name(st)).Add("error", err ? err : ""));
    aidb_free(err);
    return 1;
  }
  Log(LogLevel::kInfo, "opened",
      KV().Add("dir", db_dir).Add("seconds", static_cast<double>(NowUnixNs() - t0) / 1e9));
  if (!FitFdLimit(&o, io_threads, cluster)) {
    aidb_db_close(db);
    return 1;
  }

  Daemon d;
  int rc = uv_loop_init(&d.loop);
  if (rc != 0) {
    Log(LogLevel::kError, "loop_init_failed", KV().Add("error", uv_strerror(rc)));
    aidb_db_close(db);
    return 1;
  }
  int exit_code = 0;
  {
    ApiConfig cfg;
    cfg.data_dir = db_dir;
    cfg.wal_dir = data_dir;  // what a create's "wal_dir" must name
    cfg.api_key = o.api_key;
    cfg.start_unix_ns = NowUnixNs();
    cfg.history_interval_ms = static_cast<int64_t>(o.history_interval_ms);
    Api api(db, cfg);
    std::unique_ptr<aidbd::cluster::Router> router;
    if (cluster) {
      aidbd::cluster::ClusterOptions co;
      co.brokers = o.kafka;
      co.node_id = o.node_id;
      co.advertise = o.advertise;
      co.replica_group = static_cast<int>(o.replica_group);
      co.consistency_timeout_ms = o.consistency_timeout_ms;
      co.data_dir = data_dir;
      co.api_key = o.api_key;
      router = std::make_unique<aidbd::cluster::Router>(&api, db, co);
    }
    Handler* handler = router ? static_cast<Handler*>(router.get()) : &api;
    std::unique_ptr<HttpServer> server;
    try {
      server = std::make_unique<HttpServer>(&d.loop, handler, o.limits, io_threads);
    } catch (const std::exception& e) {
      Log(LogLevel::kError, "server_init_failed", KV().Add("error", e.what()));
      api.ReleaseHandles();
      aidb_db_close(db);
      return 1;
    }
    d.server = server.get();

    std::string bound;
    rc = server->Listen(host, port, &bound);
    if (rc != 0) {
      Log(LogLevel::kError, "listen_failed",
          KV().Add("addr", o.listen).Add("error", uv_strerror(rc)));
      exit_code = 1;
    }
    if (rc == 0) rc = uv_signal_init(&d.loop, &d.sigint);
    if (rc == 0) rc = uv_signal_init(&d.loop, &d.sigterm);
    if (rc == 0) {
      d.sigint.data = &d;
      d.sigterm.data = &d;
      rc = uv_signal_start(&d.sigint, OnSignal, SIGINT);
      if (rc == 0) rc = uv_signal_start(&d.sigterm, OnSignal, SIGTERM);
      if (rc != 0) {
        Log(LogLevel::kError, "signal_failed", KV().Add("error", uv_strerror(rc)));
        exit_code = 1;
      }
    }
    if (exit_code == 0 && router) {
      std::string cerr;
      if (!router->Start(bound, &cerr)) {
        Log(LogLevel::kError, "cluster_start_failed", KV().Add("error", cerr));
        exit_code = 1;
      }
    }
    if (exit_code == 0) {
      // Printed at every log level: with --listen HOST:0 it is how callers
      // learn the port.
      LogLine(static_cast<int>(LogLevel::kInfo), "aidbd", "listening",
              KV().Add("addr", bound).str());
      pthread_sigmask(SIG_UNBLOCK, &stop_signals, nullptr);
      rc = uv_run(&d.loop, UV_RUN_DEFAULT);
      (void)rc;  // non-zero only if uv_stop() was called; handles are closed below
    }
    server.reset();  // joins the I/O threads: no request runs any more
    if (router) router->Stop();
    api.ReleaseHandles();
  }
  aidb_db_close(db);
  Log(LogLevel::kInfo, "wal_flushed");

  // Close whatever is left (nothing, after a clean drain) and check the loop.
  uv_walk(
      &d.loop,
      [](uv_handle_t* h, void*) {
        if (!uv_is_closing(h)) uv_close(h, nullptr);
      },
      nullptr);
  rc = uv_run(&d.loop, UV_RUN_DEFAULT);
  rc = uv_loop_close(&d.loop);
  if (rc != 0) {
    Log(LogLevel::kError, "loop_close_failed", KV().Add("error", uv_strerror(rc)));
    return 1;
  }
  Log(LogLevel::kInfo, "stopped", KV().Add("exit_code", exit_code));
  return exit_code;
}
