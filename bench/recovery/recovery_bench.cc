// aidb_recovery_bench: how fast a flat collection comes back, through the
// public C API.
//   1. WAL replay: writes ~--wal-mb MiB of WAL (Fashion-MNIST-sized records,
//      batches of 1000, durability none), then --runs times, in a fresh
//      process with the page cache warm: aidb_collection_open + aidb_recover.
//      Reports WAL bytes / elapsed time.
//   2. Snapshot load: recovers that collection once, snapshots it
//      (aidb_collection_snapshot_to), then --runs times, in a fresh process
//      with the page cache warm: aidb_collection_load_snapshot into a new
//      collection. Reports snapshot file bytes / elapsed time.
// Every child checks the point count it recovered. Data lives in
// D/aidb_recovery_bench (D: --dir, the build's bench-data by default), made
// fresh and removed at the end; nothing else in D is touched.
//
// Usage: aidb_recovery_bench [--runs N] [--wal-mb MB] [--dir D]
//        aidb_recovery_bench --prepare-only [--wal-mb MB] [--dir D]
//          writes the WAL and keeps it (for profiling: then run
//          aidb_recovery_bench --child replay <D>/aidb_recovery_bench/wal.log
//          <count> under perf)
//   (internal: --child replay <wal> <count> | --child load <snapshot> <count>)
#include <aidb.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "records.h"

using aidb_bench::kDim;

namespace {

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "aidb_recovery_bench: %s\n", what.c_str());
  std::exit(1);
}

uint64_t FileSize(const std::string& path) {
  struct stat sb;
  return ::stat(path.c_str(), &sb) == 0 ? static_cast<uint64_t>(sb.st_size) : 0;
}

// Reads a file once so it sits in the page cache ("warm").
void Warm(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) Die("open " + path);
  std::vector<char> buf(8 << 20);
  while (::read(fd, buf.data(), buf.size()) > 0) {
  }
  ::close(fd);
}

aidb_collection* OpenCollection(const char* wal_path, int durability) {
  aidb_collection_options o;
  aidb_collection_options_init(&o);
  o.name = "recovery";
  o.dim = kDim;
  o.metric = AIDB_METRIC_EUCLIDEAN;
  o.index_kind = AIDB_INDEX_FLAT;
  o.wal_path = wal_path;
  o.durability = durability;
  aidb_collection* c = nullptr;
  char* err = nullptr;
  if (aidb_collection_open(&o, &c, &err) != AIDB_OK) Die(std::string("open: ") + err);
  return c;
}

// CPU time (user + system) of this process so far, seconds.
double CpuSeconds() {
  struct rusage ru;
  ::getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec / 1e6;
}

uint64_t Count(aidb_collection* c) {
  uint64_t n = 0;
  char* err = nullptr;
  if (aidb_collection_count(c, &n, &err) != AIDB_OK) Die(std::string("count: ") + err);
  return n;
}

// Child: one timed recovery; prints "seconds bytes cpu_seconds" on stdout.
int Child(const std::string& what, const std::string& path, uint64_t expect) {
  char* err = nullptr;
  if (what == "replay") {
    const double c0 = CpuSeconds();
    const double t0 = aidb_bench::NowSeconds();
    aidb_collection* c = OpenCollection(path.c_str(), AIDB_DURABILITY_NONE);
    aidb_recover_stats st;
    aidb_recover_stats_init(&st);
    if (aidb_recover(c, nullptr, &st, &err) != AIDB_OK) Die(std::string("recover: ") + err);
    const double t1 = aidb_bench::NowSeconds();
    const double c1 = CpuSeconds();
    if (Count(c) != expect) Die("replay recovered " + std::to_string(Count(c)) + " points");
    std::printf("%.6f %llu %.6f\n", t1 - t0, static_cast<unsigned long long>(st.bytes_read),
                c1 - c0);
    aidb_collection_close(c);
    return 0;
  }
  if (what == "load") {
    const double c0 = CpuSeconds();
    const double t0 = aidb_bench::NowSeconds();
    aidb_collection* c = OpenCollection(nullptr, AIDB_DURABILITY_NONE);
    if (aidb_collection_load_snapshot(c, path.c_str(), &err) != AIDB_OK) {
      Die(std::string("load_snapshot: ") + err);
    }
    const double t1 = aidb_bench::NowSeconds();
    const double c1 = CpuSeconds();
    if (Count(c) != expect) Die("snapshot load gave " + std::to_string(Count(c)) + " points");
    std::printf("%.6f %llu %.6f\n", t1 - t0, static_cast<unsigned long long>(FileSize(path)),
                c1 - c0);
    aidb_collection_close(c);
    return 0;
  }
  Die("unknown child task " + what);
}

struct Timing {
  double seconds;
  uint64_t bytes;
  double cpu_seconds;
};

Timing RunChild(const std::string& self, const std::string& what, const std::string& path,
                uint64_t expect) {
  Warm(path);
  const std::string cmd =
      "'" + self + "' --child " + what + " '" + path + "' " + std::to_string(expect);
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) Die("popen");
  Timing t{0, 0, 0};
  unsigned long long b = 0;
  int got = std::fscanf(p, "%lf %llu %lf", &t.seconds, &b, &t.cpu_seconds);
  int rc = ::pclose(p);
  if (got != 3 || rc != 0) Die("child '" + cmd + "' failed");
  t.bytes = b;
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 5 && std::strcmp(argv[1], "--child") == 0) {
    return Child(argv[2], argv[3], std::strtoull(argv[4], nullptr, 10));
  }
  int runs = 5;
  bool prepare_only = false;
  uint64_t wal_mb = 1024;
  std::string parent = AIDB_BENCH_DATA_DIR;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) Die("missing value after " + a);
      return argv[++i];
    };
    if (a == "--runs") runs = std::atoi(val().c_str());
    else if (a == "--wal-mb") wal_mb = std::strtoull(val().c_str(), nullptr, 10);
    else if (a == "--dir") parent = val();
    else if (a == "--prepare-only") prepare_only = true;
    else {
      std::fprintf(stderr, "usage: %s [--runs N] [--wal-mb MB] [--dir D]\n", argv[0]);
      return 2;
    }
  }
  if (runs < 1 || wal_mb == 0) Die("bad arguments");
  char self[4096];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) Die("readlink /proc/self/exe");
  self[n] = 0;

  const std::string dir = aidb_bench::FreshWorkDir(parent, "aidb_recovery_bench");
  if (dir.empty()) Die("cannot create " + parent + "/aidb_recovery_bench");
  const std::string wal = dir + "/wal.log";
  const std::string snap = dir + "/collection.snapshot";

  // 1. Write the WAL: rounds of 60000 records (fresh ids each round).
  std::printf("# aidb_recovery_bench: AIDB %s, flat collection, dim %zu, data dir %s\n",
              aidb_version(), kDim, dir.c_str());
  const uint64_t target = wal_mb << 20;
  uint64_t written = 0;
  {
    aidb_collection* c = OpenCollection(wal.c_str(), AIDB_DURABILITY_NONE);
    char* err = nullptr;
    const double t0 = aidb_bench::NowSeconds();
    for (uint64_t round = 0; FileSize(wal) < target; ++round) {
      const aidb_bench::Records recs =
          aidb_bench::MakeRecords(60000, AIDB_BENCH_FMNIST_DIR, 1000 + round);
      std::vector<const char*> ids, pls;
      for (size_t i = 0; i < recs.count; ++i) {
        ids.push_back(recs.ids[i].c_str());
        pls.push_back(recs.payloads[i].c_str());
      }
      for (size_t i = 0; i + 1000 <= recs.count && FileSize(wal) < target; i += 1000) {
        if (aidb_collection_upsert_batch(c, 1000, ids.data() + i, recs.vector(i), kDim,
                                         pls.data() + i, &err) != AIDB_OK) {
          Die(std::string("upsert: ") + err);
        }
        written += 1000;
      }
    }
    const double t1 = aidb_bench::NowSeconds();
    aidb_collection_close(c);
    std::printf("# wrote %llu records, WAL %.1f MiB in %.1f s (durability none)\n",
                static_cast<unsigned long long>(written), FileSize(wal) / 1048576.0, t1 - t0);
  }

  if (prepare_only) return 0;

  // 2. Replay, each in a fresh process.
  std::vector<double> replay_gbps, replay_s, replay_cpu;
  uint64_t replay_bytes = 0;
  for (int r = 0; r < runs; ++r) {
    Timing t = RunChild(self, "replay", wal, written);
    replay_bytes = t.bytes;
    replay_s.push_back(t.seconds);
    replay_gbps.push_back(t.bytes / t.seconds / 1e9);
    replay_cpu.push_back(t.cpu_seconds);
    std::fprintf(stderr, "replay run %d: %.3f s (cpu %.3f s), %.2f GB/s\n", r + 1, t.seconds,
                 t.cpu_seconds, t.bytes / t.seconds / 1e9);
  }

  // 3. Snapshot the collection, then drop the WAL to save disk.
  {
    aidb_collection* c = OpenCollection(wal.c_str(), AIDB_DURABILITY_NONE);
    char* err = nullptr;
    if (aidb_recover(c, nullptr, nullptr, &err) != AIDB_OK) Die(std::string("recover: ") + err);
    const double t0 = aidb_bench::NowSeconds();
    if (aidb_collection_snapshot_to(c, snap.c_str(), &err) != AIDB_OK) {
      Die(std::string("snapshot_to: ") + err);
    }
    const double t1 = aidb_bench::NowSeconds();
    aidb_collection_close(c);
    std::printf("# snapshot %.1f MiB written in %.2f s\n", FileSize(snap) / 1048576.0, t1 - t0);
    ::unlink(wal.c_str());
    ::unlink((wal + ".lsn").c_str());
  }

  std::vector<double> load_gbps, load_s, load_cpu;
  uint64_t snap_bytes = 0;
  for (int r = 0; r < runs; ++r) {
    Timing t = RunChild(self, "load", snap, written);
    snap_bytes = t.bytes;
    load_s.push_back(t.seconds);
    load_gbps.push_back(t.bytes / t.seconds / 1e9);
    load_cpu.push_back(t.cpu_seconds);
    std::fprintf(stderr, "snapshot load run %d: %.3f s (cpu %.3f s), %.2f GB/s\n", r + 1, t.seconds,
                 t.cpu_seconds, t.bytes / t.seconds / 1e9);
  }
  aidb_bench::RemoveTree(dir);

  auto per_run = [](const std::vector<double>& v) {
    std::string s;
    char b[32];
    for (double x : v) {
      std::snprintf(b, sizeof(b), "%.2f ", x);
      s += b;
    }
    return s;
  };
  const double rg = aidb_bench::Median(replay_gbps), lg = aidb_bench::Median(load_gbps);
  // "cpu" columns: user + system CPU time of the timed section. Wall time
  // exceeds it when the machine is shared (runnable but not running).
  std::printf("\n%-26s %10s %8s %8s %8s %8s  %s\n", "phase (fresh process)", "bytes", "seconds",
              "GB/s", "cpu s", "GB/cpu-s", "GB/s per run");
  std::printf("%-26s %10llu %8.3f %8.2f %8.3f %8.2f  %s\n", "WAL replay (open+recover)",
              static_cast<unsigned long long>(replay_bytes), aidb_bench::Median(replay_s), rg,
              aidb_bench::Median(replay_cpu), replay_bytes / aidb_bench::Median(replay_cpu) / 1e9,
              per_run(replay_gbps).c_str());
  std::printf("%-26s %10llu %8.3f %8.2f %8.3f %8.2f  %s\n", "snapshot load",
              static_cast<unsigned long long>(snap_bytes), aidb_bench::Median(load_s), lg,
              aidb_bench::Median(load_cpu), snap_bytes / aidb_bench::Median(load_cpu) / 1e9,
              per_run(load_gbps).c_str());
  std::printf("\nWAL replay: %.2f GB/s (target >= 1 GB/s: %s)\n", rg, rg >= 1 ? "MET" : "MISSED");
  std::printf("snapshot load: %.2f GB/s (target >= 1 GB/s: %s)\n", lg, lg >= 1 ? "MET" : "MISSED");
  return 0;
}
