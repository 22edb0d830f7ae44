/* crash_loop: SIGKILL a writer with fsync durability again and again, and
 * check after each kill that recovery brings back every acknowledged write,
 * byte for byte, with no duplicate and no phantom.
 *
 *   aidb_crash_loop DIR KILLS [lib|db] [SEED]
 *
 * The writer is this program re-executed as a child ("writer" mode). It mixes
 * single upserts (new ids and replacements), atomic batch upserts, deletes and
 * checkpoints (lib: aidb_collection_snapshot_to to DIR/latest.aidbsnap, the
 * workflow of docs/operations.md, "Checkpoints"; db: aidb_db_snapshot, what
 * the daemon uses), and tells the parent over a pipe what it is about to do
 * ("B ...") and what was acknowledged ("A"). Kills come two ways,
 * alternately:
 *   - the parent sends SIGKILL after a random delay;
 *   - a crash point: when the faultfs shim is preloaded (AIDB_FAULTFS names
 *     it), the child is told to kill itself right before or right after its
 *     k-th write / fsync / rename / ftruncate on the WAL, its LSN sidecar, a
 *     snapshot's temp file or the MANIFEST: kills inside snapshot_to and
 *     inside the WAL truncation, at every step, not just by luck.
 * After each kill the parent recovers the collection (lib: open + load the
 * snapshot + aidb_recover; db: aidb_db_open) and checks: every acknowledged
 * point is there with its exact vector and payload; an acknowledged delete
 * stays deleted; the one operation in flight is either wholly there or wholly
 * absent (a batch never half-applied); nothing else is there (no phantom) and
 * the count equals the number of distinct points (no duplicate).
 * Prints a summary line; exits non-zero on any violation.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "aidb.h"
#include "harness.h"

#define DIM 12
#define MAXID 200000
#define MAXBATCH 32
#define BATCH_MS 20

static int model[MAXID]; /* version per id, 0 = absent */
static int next_id;

static void make_id(int i, char out[40]) { snprintf(out, 40, "00000000-0000-4000-8000-%012x", i); }
static void make_vec(int i, int ver, float* v) {
  for (int d = 0; d < DIM; ++d) v[d] = (float)((i * 131 + ver * 17 + d * 7) % 97) / 8.f - 6.f;
}
static void make_payload(int i, int ver, char* out, size_t cap) {
  snprintf(out, cap, "{\"i\":%d,\"v\":%d,\"tag\":\"%c\"}", i, ver, 'a' + (i + ver) % 26);
}

static uint64_t rng_state;
static uint32_t rnd(void) {
  rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
  return (uint32_t)(rng_state >> 33);
}

static void die(const char* what, int rc, char* err) {
  fprintf(stderr, "crash_loop: %s: %s %s\n", what, aidb_status_name(rc), err ? err : "");
  exit(3);
}

/* ---------------- opening (both sides) ---------------- */

struct store {
  int db_mode;
  int batch; /* durability batch (else fsync) */
  char dir[4096];
  char wal[4200], snap[4200];
  aidb_db* db;
  aidb_collection* c;
};

static int exists(const char* p) {
  struct stat sb;
  return stat(p, &sb) == 0;
}

/* Opens and recovers. Returns the status; *err gets a message. */
static int store_open(struct store* s, char** err) {
  int rc;
  if (s->db_mode) {
    aidb_db_options o;
    aidb_db_options_init(&o);
    o.wal_mmap_threshold = 1024;
    if (s->batch) {
      o.durability = AIDB_DURABILITY_BATCH;
      o.batch_interval_ms = BATCH_MS;
    }
    if ((rc = aidb_db_open(s->dir, &o, &s->db, err)) != AIDB_OK) return rc;
    rc = aidb_db_open_collection(s->db, "crash", &s->c, NULL);
    if (rc == AIDB_NOT_FOUND) {
      aidb_collection_options co;
      aidb_collection_options_init(&co);
      co.name = "crash";
      co.dim = DIM;
      co.metric = AIDB_METRIC_EUCLIDEAN;
      rc = aidb_db_create_collection(s->db, &co, &s->c, err);
    }
    return rc;
  }
  aidb_collection_options o;
  aidb_collection_options_init(&o);
  o.name = "crash";
  o.dim = DIM;
  o.metric = AIDB_METRIC_EUCLIDEAN;
  o.wal_path = s->wal;
  o.durability = s->batch ? AIDB_DURABILITY_BATCH : AIDB_DURABILITY_FSYNC;
  o.batch_interval_ms = BATCH_MS;
  o.wal_mmap_threshold = 1024;
  if ((rc = aidb_collection_open(&o, &s->c, err)) != AIDB_OK) return rc;
  if (exists(s->snap) && (rc = aidb_collection_load_snapshot(s->c, s->snap, err)) != AIDB_OK)
    return rc;
  return aidb_recover(s->c, NULL, NULL, err);
}

static void store_close(struct store* s) {
  aidb_collection_close(s->c);
  s->c = NULL;
  aidb_db_close(s->db);
  s->db = NULL;
}

/* ---------------- the writer (child) ---------------- */

static int writer_main(struct store* s, const char* state_path, uint64_t seed) {
  /* The parent's model, as it verified it: "next_id\n" then "id ver" lines. */
  FILE* f = fopen(state_path, "r");
  if (!f || fscanf(f, "%d", &next_id) != 1) die("read state", 0, NULL);
  int id, ver;
  while (fscanf(f, "%d %d", &id, &ver) == 2) model[id] = ver;
  fclose(f);
  rng_state = seed;
  char* err = NULL;
  int rc = store_open(s, &err);
  if (rc != AIDB_OK) die("writer open", rc, err);
  say("R\n");
  const uint32_t snap_every = 5 + rnd() % 40;
  for (uint32_t n = 1;; ++n) {
    uint32_t r = rnd() % 100;
    if (n % snap_every == 0) {
      say("B S\n");
      if (s->db_mode) rc = aidb_db_snapshot(s->db, "crash", NULL, &err);
      else rc = aidb_collection_snapshot_to(s->c, s->snap, &err);
      if (rc != AIDB_OK) die("snapshot", rc, err);
      say("A %lld\n", now_ns());
    } else if (r < 60) {
      /* One upsert: a new id, or a replacement. */
      int i = (r < 40 || next_id == 0) ? next_id++ : (int)(rnd() % (uint32_t)next_id);
      int v = model[i] + 1;
      char idb[40], p[128];
      float vec[DIM];
      make_id(i, idb);
      make_vec(i, v, vec);
      make_payload(i, v, p, sizeof p);
      say("B U %d %d\n", i, v);
      if ((rc = aidb_collection_upsert(s->c, idb, vec, DIM, p, (size_t)-1, &err)) != AIDB_OK)
        die("upsert", rc, err);
      model[i] = v;
      say("A %lld\n", now_ns());
    } else if (r < 85) {
      int nb = 2 + (int)(rnd() % (MAXBATCH - 1));
      char idb[MAXBATCH][40], pb[MAXBATCH][128];
      const char* ids[MAXBATCH];
      const char* ps[MAXBATCH];
      float vec[MAXBATCH * DIM];
      int bi[MAXBATCH], bv[MAXBATCH];
      char line[8192];
      int len = snprintf(line, sizeof line, "B M %d", nb);
      for (int k = 0; k < nb; ++k) {
        int i = (rnd() % 2 || next_id == 0) ? next_id++ : (int)(rnd() % (uint32_t)next_id);
        /* Distinct ids within a batch keep the expected state simple. */
        for (int j = 0; j < k; ++j) {
          if (bi[j] == i) {
            i = next_id++;
            break;
          }
        }
        bi[k] = i;
        bv[k] = model[i] + 1;
        make_id(i, idb[k]);
        make_vec(i, bv[k], vec + k * DIM);
        make_payload(i, bv[k], pb[k], sizeof pb[k]);
        ids[k] = idb[k];
        ps[k] = pb[k];
        len += snprintf(line + len, sizeof line - (size_t)len, " %d %d", i, bv[k]);
      }
      say("%s\n", line);
      if ((rc = aidb_collection_upsert_batch(s->c, (size_t)nb, ids, vec, DIM, ps, &err)) != AIDB_OK)
        die("batch", rc, err);
      for (int k = 0; k < nb; ++k) model[bi[k]] = bv[k];
      say("A %lld\n", now_ns());
    } else {
      /* Delete a present point. */
      if (next_id == 0) continue;
      int i = (int)(rnd() % (uint32_t)next_id);
      int tries = 0;
      while (model[i] == 0 && tries++ < 50) i = (int)(rnd() % (uint32_t)next_id);
      if (model[i] == 0) continue;
      char idb[40];
      make_id(i, idb);
      say("B D %d\n", i);
      if ((rc = aidb_collection_delete(s->c, idb, &err)) != AIDB_OK) die("delete", rc, err);
      model[i] = 0;
      say("A %lld\n", now_ns());
    }
  }
  return 0;
}

/* ---------------- the parent ---------------- */

/* The operation in flight when the child died. */
struct inflight {
  char kind; /* 0 none, 'U', 'M', 'D', 'S' */
  int n;
  int ids[MAXBATCH];
  int vers[MAXBATCH];
  long long ack_ns; /* when acknowledged (in the round log) */
};

/* Batch mode: the round's acknowledged operations, in order; the model is
 * then left as it was at the start of the round until verify_prefix. */
static int g_batch_log_mode;
static struct inflight* round_log;
static size_t round_n, round_cap;

static long long total_acked_ops, total_verified_points;

/* Applies the protocol lines in `data` to the model. */
static void apply_lines(char* data, struct inflight* inf, int* acked_ops) {
  char* save = NULL;
  for (char* line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    if (line[0] == 'B') {
      memset(inf, 0, sizeof *inf);
      inf->kind = line[2];
      char* p = line + 3;
      if (inf->kind == 'U') {
        inf->n = 1;
        sscanf(p, "%d %d", &inf->ids[0], &inf->vers[0]);
      } else if (inf->kind == 'D') {
        inf->n = 1;
        sscanf(p, "%d", &inf->ids[0]);
      } else if (inf->kind == 'M') {
        int off = 0;
        sscanf(p, "%d%n", &inf->n, &off);
        p += off;
        for (int k = 0; k < inf->n; ++k) {
          sscanf(p, "%d %d%n", &inf->ids[k], &inf->vers[k], &off);
          p += off;
        }
      }
      for (int k = 0; k < inf->n; ++k) {
        if (inf->ids[k] >= next_id) next_id = inf->ids[k] + 1;
      }
    } else if (line[0] == 'A') {
      inf->ack_ns = atoll(line + 1);
      if (g_batch_log_mode) {
        if (round_n == round_cap) {
          round_cap = round_cap ? round_cap * 2 : 256;
          round_log = realloc(round_log, round_cap * sizeof *round_log);
        }
        round_log[round_n++] = *inf;
      } else {
        for (int k = 0; k < inf->n; ++k) model[inf->ids[k]] = inf->kind == 'D' ? 0 : inf->vers[k];
      }
      memset(inf, 0, sizeof *inf);
      ++*acked_ops;
    }
  }
}

/* The version of id i found in the collection (0 absent, -1 damaged). */
static int found_version(aidb_collection* c, int i) {
  char idb[40];
  make_id(i, idb);
  float v[DIM];
  char* payload = NULL;
  int rc = aidb_collection_get(c, idb, v, DIM, &payload, NULL);
  if (rc == AIDB_NOT_FOUND) return 0;
  if (rc != AIDB_OK) return -1;
  int pi = -1, pv = -1;
  if (!payload || sscanf(payload, "{\"i\":%d,\"v\":%d", &pi, &pv) != 2 || pi != i) pv = -1;
  if (pv > 0) {
    char want[128];
    float wv[DIM];
    make_payload(i, pv, want, sizeof want);
    make_vec(i, pv, wv);
    if (strcmp(want, payload) != 0 || memcmp(wv, v, sizeof v) != 0) pv = -1;
  }
  aidb_free(payload);
  return pv;
}

static int verify(struct store* s, int round, const struct inflight* inf) {
  char* err = NULL;
  int rc = store_open(s, &err);
  if (rc != AIDB_OK) {
    violation(round, "recovery failed: %s %s", aidb_status_name(rc), err ? err : "");
    aidb_free(err);
    store_close(s);
    return -1;
  }
  /* The in-flight operation: all there or all absent. */
  int inf_present = -1; /* unknown */
  if (inf->kind == 'U' || inf->kind == 'M' || inf->kind == 'D') {
    int applied = 0, not_applied = 0;
    for (int k = 0; k < inf->n; ++k) {
      int got = found_version(s->c, inf->ids[k]);
      int want_new = inf->kind == 'D' ? 0 : inf->vers[k];
      int want_old = model[inf->ids[k]];
      if (got == want_new && got != want_old) ++applied;
      else if (got == want_old && got != want_new) ++not_applied;
      else if (got != want_new || got != want_old) {
        violation(round, "in-flight id %d has version %d (old %d, new %d)", inf->ids[k], got,
                  want_old, want_new);
      }
    }
    if (applied && not_applied)
      violation(round, "in-flight batch of %d half applied (%d/%d)", inf->n, applied, inf->n);
    inf_present = applied > 0;
    if (applied) {
      for (int k = 0; k < inf->n; ++k) model[inf->ids[k]] = inf->kind == 'D' ? 0 : inf->vers[k];
    }
  }
  uint64_t want = 0, count = 0;
  for (int i = 0; i < next_id; ++i) {
    int got = found_version(s->c, i);
    if (got != model[i]) {
      if (model[i] == 0)
        violation(round, "phantom: id %d present (version %d) but never acknowledged", i, got);
      else if (got == 0)
        violation(round, "LOST: acknowledged id %d (version %d) missing", i, model[i]);
      else violation(round, "id %d has version %d, acknowledged %d", i, got, model[i]);
      model[i] = got > 0 ? got : 0;
    }
    if (got > 0) ++want;
    total_verified_points += got > 0;
  }
  if (aidb_collection_count(s->c, &count, NULL) != AIDB_OK || count != want) {
    violation(round, "count %llu but %llu distinct points found (duplicate or unknown id)",
              (unsigned long long)count, (unsigned long long)want);
  }
  store_close(s);
  return inf_present;
}

/* Batch durability after a power cut: the recovered state must be the model
 * after some prefix of the round's operations (acknowledged ones, then the one
 * in flight), and that prefix must hold every operation acknowledged before
 * the start of the last WAL sync that completed (or before an acknowledged
 * checkpoint). Returns the number of acknowledged operations lost. */
static long long g_lost_ops, g_lost_rounds;
static double g_max_lost_age_ms;
static int verify_prefix(struct store* s, int round, const struct inflight* inf, long long sync_ns,
                         long long cut_ns) {
  char* err = NULL;
  int rc = store_open(s, &err);
  if (rc != AIDB_OK) {
    violation(round, "recovery failed: %s %s", aidb_status_name(rc), err ? err : "");
    aidb_free(err);
    store_close(s);
    return 0;
  }
  size_t m = round_n + (inf->kind == 'U' || inf->kind == 'M' || inf->kind == 'D');
  size_t acked = round_n;
  size_t k_min = 0;
  for (size_t k = 0; k < acked; ++k) {
    if (round_log[k].ack_ns <= sync_ns || round_log[k].kind == 'S') k_min = k + 1;
  }
  int* got = malloc(sizeof(int) * (size_t)(next_id + 1));
  int* cur = malloc(sizeof(int) * (size_t)(next_id + 1));
  long mism = 0;
  for (int i = 0; i < next_id; ++i) {
    got[i] = found_version(s->c, i);
    if (got[i] < 0) violation(round, "id %d is damaged", i);
    cur[i] = model[i];
    mism += cur[i] != got[i];
  }
  long best = mism == 0 ? 0 : -1;
  for (size_t k = 0; k < m; ++k) {
    const struct inflight* op = k < acked ? &round_log[k] : inf;
    for (int j = 0; j < op->n; ++j) {
      int i = op->ids[j];
      int v = op->kind == 'D' ? 0 : op->vers[j];
      mism -= cur[i] != got[i];
      cur[i] = v;
      mism += cur[i] != got[i];
    }
    if (mism == 0) best = (long)k + 1;
  }
  if (best < 0) {
    violation(round, "the recovered state is no prefix of the %zu operations of the round", m);
  } else {
    if ((size_t)best < k_min) {
      violation(round,
                "LOST: %zu operations acknowledged before the last completed WAL sync (or a "
                "checkpoint), only %ld survived",
                k_min, best);
    }
    if ((size_t)best < acked) {
      g_lost_ops += (long long)(acked - (size_t)best);
      ++g_lost_rounds;
      double age = (double)(cut_ns - round_log[best].ack_ns) / 1e6;
      if (age > g_max_lost_age_ms) g_max_lost_age_ms = age;
    }
    for (long k = 0; k < best; ++k) {
      const struct inflight* op = (size_t)k < acked ? &round_log[k] : inf;
      for (int j = 0; j < op->n; ++j) model[op->ids[j]] = op->kind == 'D' ? 0 : op->vers[j];
    }
  }
  uint64_t want = 0, count = 0;
  for (int i = 0; i < next_id; ++i) {
    if (got[i] > 0) ++want;
    total_verified_points += got[i] > 0;
    if (got[i] >= 0) model[i] = got[i];
  }
  if (aidb_collection_count(s->c, &count, NULL) != AIDB_OK || count != want) {
    violation(round, "count %llu but %llu distinct points found (duplicate or unknown id)",
              (unsigned long long)count, (unsigned long long)want);
  }
  free(got);
  free(cur);
  store_close(s);
  round_n = 0;
  return best >= 0 && (size_t)best > acked;
}

/* Reads the cut time and the start of the last completed sync of the WAL
 * (inode wal_ino) from the powerfs journal. */
static void read_journal(const char* side, unsigned long long wal_ino, long long* sync_ns,
                         long long* cut_ns) {
  char p[4300], line[8192];
  snprintf(p, sizeof p, "%s/journal", side);
  *sync_ns = 0;
  *cut_ns = 0;
  FILE* f = fopen(p, "r");
  if (!f) return;
  while (fgets(line, sizeof line, f)) {
    unsigned long long seq, ino, start;
    long long ns;
    if (line[0] == 'S' && sscanf(line, "S %llu %llu %llu %lld", &seq, &ino, &start, &ns) == 4 &&
        ino == wal_ino && ns > *sync_ns)
      *sync_ns = ns;
    if (line[0] == 'K' && sscanf(line, "K %llu %lld", &seq, &ns) == 2) *cut_ns = ns;
  }
  fclose(f);
}

static void write_state(const char* path) {
  char tmp[4300];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE* f = fopen(tmp, "w");
  fprintf(f, "%d\n", next_id);
  for (int i = 0; i < next_id; ++i) {
    if (model[i]) fprintf(f, "%d %d\n", i, model[i]);
  }
  fclose(f);
  rename(tmp, path);
}

static const char* crash_points[][2] = {
    /* ops, path: where the child kills itself */
    {"write", "wal.log"},   {"fsync", "wal.log"},    {"ftruncate", "wal.log"},  {"write", ".tmp"},
    {"fsync", ".tmp"},      {"rename", ".aidbsnap"}, {"rename", "wal.log.lsn"}, {"fsync", "crash"},
    {"rename", "MANIFEST"}, {"write", "MANIFEST"},   {"ftruncate", "wal.log"},  {"fsync", "snap"},
};

int main(int argc, char** argv) {
  if (argc >= 2 && !strcmp(argv[1], "writer")) {
    /* writer DIR lib|db STATE SEED */
    struct store s;
    memset(&s, 0, sizeof s);
    snprintf(s.dir, sizeof s.dir, "%s", argv[2]);
    s.db_mode = !strncmp(argv[3], "db", 2);
    s.batch = strstr(argv[3], "batch") != NULL;
    snprintf(s.wal, sizeof s.wal, "%s/wal.log", s.dir);
    snprintf(s.snap, sizeof s.snap, "%s/latest.aidbsnap", s.dir);
    return writer_main(&s, argv[4], strtoull(argv[5], NULL, 10));
  }
  if (argc < 3) {
    fprintf(stderr, "usage: %s DIR KILLS [lib|db|lib-batch|db-batch] [SEED]\n", argv[0]);
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  struct store s;
  memset(&s, 0, sizeof s);
  snprintf(s.dir, sizeof s.dir, "%s", argv[1]);
  mkdir(s.dir, 0755);
  int kills = atoi(argv[2]);
  const char* mode = argc > 3 ? argv[3] : "lib";
  s.db_mode = !strncmp(mode, "db", 2);
  s.batch = strstr(mode, "batch") != NULL;
  rng_state = argc > 4 ? strtoull(argv[4], NULL, 10) : 42;
  snprintf(s.wal, sizeof s.wal, "%s/wal.log", s.dir);
  snprintf(s.snap, sizeof s.snap, "%s/latest.aidbsnap", s.dir);
  char state[4300];
  snprintf(state, sizeof state, "%s/../%s-crash-state", s.dir, mode);
  /* AIDB_CRASH_STATE: where the model goes (outside a file system whose
   * page cache the hook throws away). AIDB_CRASH_HOOK: a shell command run
   * after each kill, before recovery (tests/reliability/run.sh's realfs
   * stage copies the loop device's image there: a real power cut). */
  if (getenv("AIDB_CRASH_STATE")) snprintf(state, sizeof state, "%s", getenv("AIDB_CRASH_STATE"));
  const char* hook = getenv("AIDB_CRASH_HOOK");
  const char* shim = getenv("AIDB_FAULTFS");
  /* Power-loss mode: the powerfs shim journals what is unsynced and cuts the
   * power (at a random operation count, or on SIGUSR2 after a random delay);
   * the rollback tool then rewinds the files before the check. */
  const char* power = getenv("AIDB_POWERFS");
  const char* rollback = getenv("AIDB_POWERFS_ROLLBACK");
  const char* variant = getenv("AIDB_POWERFS_VARIANT") ? getenv("AIDB_POWERFS_VARIANT") : "mix";
  const int max_cut = getenv("AIDB_POWERFS_MAX_CUT") ? atoi(getenv("AIDB_POWERFS_MAX_CUT")) : 600;
  char side[4300];
  snprintf(side, sizeof side, "%s.side", s.dir);
  if (power) {
    if (!rollback) {
      fprintf(stderr, "crash_loop: AIDB_POWERFS needs AIDB_POWERFS_ROLLBACK\n");
      return 2;
    }
    shim = NULL;
    mkdir(side, 0755);
    g_batch_log_mode = s.batch;
  } else if (s.batch) {
    fprintf(stderr, "crash_loop: batch modes need AIDB_POWERFS (a kill keeps the page cache)\n");
    return 2;
  }
  int power_rounds = 0, count_cuts = 0, rollback_failures = 0;
  char self[4096];
  if (self_path(self, sizeof self) != 0) return 2;

  int rounds = 0, self_kills = 0, timed_kills = 0, inflight_applied = 0, inflight_dropped = 0;
  int snapshot_kills = 0, no_ack_rounds = 0; /* rounds killed before any ack */
  write_state(state);
  while (rounds < kills) {
    ++rounds;
    int use_point = shim && rounds % 2 == 0;
    char spec[512] = "";
    if (use_point) {
      int p = (int)(rnd() % (sizeof crash_points / sizeof crash_points[0]));
      snprintf(spec, sizeof spec, "ops=%s;path=%s;after=%u;count=1;mode=%s", crash_points[p][0],
               crash_points[p][1], rnd() % 6, rnd() % 2 ? "kill" : "killafter");
    }
    /* Power mode: odd rounds cut at a random operation count, even ones on a
     * signal after a random delay. */
    int power_cut_at = power && rounds % 2 == 1 ? 1 + (int)(rnd() % (unsigned)max_cut) : 0;
    /* One in four of those lands in the first operations: start-up recovery. */
    if (power_cut_at && rounds % 8 == 1) power_cut_at = 1 + (int)(rnd() % 30);
    char seed[32];
    snprintf(seed, sizeof seed, "%u", rnd());
    int from_child = -1;
    pid_t pid = fork_writer(&from_child);
    if (pid < 0) return 2;
    if (pid == 0) {
      if (use_point) {
        setenv("LD_PRELOAD", shim, 1);
        setenv("AIDB_FAULT", spec, 1);
      }
      if (power) powerfs_child_env(power, s.dir, side, power_cut_at);
      execl(self, self, "writer", s.dir, mode, state, seed, (char*)NULL);
      _exit(127);
    }
    /* Read until the child is ready, then give it a random time to work. */
    struct child_output out_buf;
    child_output_init(&out_buf);
    int ready = 0;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    const long budget_ms = use_point ? 1500 : 5 + (long)(rnd() % 150);
    long ready_ms = -1;
    int parent_killed = 0;
    long signalled_ms = -1;
    fcntl(from_child, F_SETFL, O_NONBLOCK);
    for (;;) {
      ssize_t n = child_output_read(&out_buf, from_child);
      if (n > 0) {
        if (!ready && memchr(out_buf.data, 'R', out_buf.len)) ready = 1;
        continue;
      }
      if (n == 0) break; /* child gone (killed itself or failed) */
      struct timespec t;
      clock_gettime(CLOCK_MONOTONIC, &t);
      long ms = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
      if (ready && ready_ms < 0) ready_ms = ms;
      if (power) {
        /* The shim cuts the power itself: at its operation count, or on the
         * signal. Keep reading so the writer never blocks on the pipe. */
        if (!power_cut_at && ready_ms >= 0 && signalled_ms < 0 && ms - ready_ms >= budget_ms) {
          kill(pid, SIGUSR2);
          signalled_ms = ms;
          parent_killed = 1;
        }
        if (ms > 60000 || (signalled_ms >= 0 && ms - signalled_ms > 10000)) {
          violation(rounds, "the power cut did not come (cut_at %d, signalled %ld ms ago)",
                    power_cut_at, signalled_ms >= 0 ? ms - signalled_ms : -1);
          kill(pid, SIGKILL);
          break;
        }
        usleep(1000);
        continue;
      }
      if (ready_ms >= 0 && ms - ready_ms >= budget_ms) {
        kill(pid, SIGKILL);
        parent_killed = 1;
        /* drain what is left */
        fcntl(from_child, F_SETFL, 0);
        while (child_output_read(&out_buf, from_child) > 0) {
        }
        break;
      }
      if (ms > 30000) {
        kill(pid, SIGKILL);
        parent_killed = 1;
        break;
      }
      usleep(1000);
    }
    int status = child_output_finish(&out_buf, from_child, pid);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
      violation(rounds, "writer did not die by SIGKILL (status %d): %.400s", status, out_buf.data);
      free(out_buf.data);
      break;
    }
    struct inflight inf;
    memset(&inf, 0, sizeof inf);
    int acked = 0;
    apply_lines(out_buf.data, &inf, &acked);
    free(out_buf.data);
    if (acked == 0) ++no_ack_rounds;
    total_acked_ops += acked;
    if (parent_killed) ++timed_kills;
    else ++self_kills;
    if (inf.kind == 'S') ++snapshot_kills;
    long long sync_ns = 0, cut_ns = 0;
    if (power) {
      ++power_rounds;
      count_cuts += power_cut_at > 0;
      char walp[4400];
      if (s.db_mode) snprintf(walp, sizeof walp, "%s/crash/wal.log", s.dir);
      else snprintf(walp, sizeof walp, "%s", s.wal);
      struct stat wsb;
      unsigned long long wal_ino = stat(walp, &wsb) == 0 ? (unsigned long long)wsb.st_ino : 0;
      read_journal(side, wal_ino, &sync_ns, &cut_ns);
      char rb_seed[32];
      snprintf(rb_seed, sizeof rb_seed, "%u", rnd());
      if (run_rollback(rollback, s.dir, side, variant, rb_seed) != 0) {
        violation(rounds, "rollback after the power cut failed (see its output above)");
        ++rollback_failures;
        break;
      }
    }
    if (hook && system(hook) != 0) {
      violation(rounds, "the crash hook failed: %s", hook);
      break;
    }
    int r = s.batch ? verify_prefix(&s, rounds, &inf, sync_ns, cut_ns) : verify(&s, rounds, &inf);
    if (r == 1) ++inflight_applied;
    if (r == 0) ++inflight_dropped;
    if (violations > 20) break;
    if (s.db_mode) {
      char cdir[4400];
      snprintf(cdir, sizeof cdir, "%s/crash", s.dir);
      prune_snapshots_in(cdir, NULL, 0);
    }
    write_state(state);
  }
  int live = 0;
  for (int i = 0; i < next_id; ++i) live += model[i] != 0;
  if (power) {
    printf(
        "powerloss %s (variant %s): %d power cuts survived (%d at an operation count, %d on a "
        "signal, %d inside a checkpoint, %d before a first ack), %lld acknowledged operations, "
        "%lld point checks, %d live points, in-flight op applied %d / dropped %d",
        mode, variant, power_rounds - (violations ? 1 : 0), count_cuts, power_rounds - count_cuts,
        snapshot_kills, no_ack_rounds, total_acked_ops, total_verified_points, live,
        inflight_applied, inflight_dropped);
    if (s.batch) {
      printf(
          "; batch %d ms: %lld acknowledged operations lost in %lld cuts, oldest lost %.1f ms "
          "before the cut, none older than the last WAL sync",
          BATCH_MS, g_lost_ops, g_lost_rounds, g_max_lost_age_ms);
    }
    printf("; violations: %d\n", violations);
    (void)rollback_failures;
    return violations ? 1 : 0;
  }
  printf(
      "crash_loop %s: %d kills survived (%d timed SIGKILLs, %d at crash points, %d inside a "
      "checkpoint, %d before a first ack), %lld acknowledged operations, %lld point checks, %d live points, in-flight op "
      "applied %d / dropped %d; violations (lost, phantom, duplicate, torn batch): %d\n",
      s.db_mode ? "db" : "lib", rounds - (violations ? 1 : 0), timed_kills, self_kills,
      snapshot_kills, no_ack_rounds, total_acked_ops, total_verified_points, live, inflight_applied,
      inflight_dropped, violations);
  return violations ? 1 : 0;
}
