/* powerloss_db: power cuts (the powerfs shim) under concurrent database work.
 *
 *   aidb_powerloss_db DIR CUTS SEED [writers|catalog]
 *   environment: AIDB_POWERFS, AIDB_POWERFS_ROLLBACK (required),
 *                AIDB_POWERFS_VARIANT (default mix), AIDB_POWERFS_MAX_CUT
 *
 * The writer (this program re-executed) opens the database DIR in fsync mode
 * and runs three threads at once: two writers upserting single points and
 * atomic batches and deleting in collection "main" (disjoint ids, so their
 * records share WAL groups), and a control thread that takes snapshots of
 * "main" while they write, quiescent snapshots, restores of earlier quiescent
 * snapshots, and (mostly, in the catalog flavour) creates and drops
 * collections cat0..cat5 and writes into them, which rewrites MANIFESTs,
 * collection.json files and the database directory. Each thread tells the
 * parent what it is about to do ("B") and what was acknowledged ("A").
 *
 * The power is cut at a random operation count or on SIGUSR2 after a random
 * time; the rollback tool rewinds the files; the parent opens the database
 * and checks: every acknowledged write is there, byte for byte; each
 * thread's operation in flight is all there or all absent; a restore in
 * flight left "main" wholly before or wholly after it; the set of
 * collections is the acknowledged one (an in-flight create or drop either
 * way) and a dropped collection never comes back with old points; counts
 * match (no duplicate, no phantom); recovery never reports corruption.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
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

#define DIM 8
#define NCAT 6
#define NSLOT (NCAT + 1) /* slot 0 = main, 1.. = cat0.. */
#define MAXID 30000
/* Fresh ids stop here; then writers only replace and delete. */
#define FRESH_LIMIT (MAXID - 4 * MAXBATCH)
#define CATIDS 48
#define MAXBATCH 16
#define NQ 4 /* quiescent snapshots remembered */

static int ver[NSLOT][MAXID]; /* 0 = absent */
static int exists[NSLOT];
static int next_k[2]; /* writer t's next fresh id is t + 2 * next_k[t] */

static void make_id(int slot, int i, char out[40]) {
  snprintf(out, 40, "00000000-0000-4000-8%03x-%012x", slot, i);
}
static void make_vec(int slot, int i, int v, float* out) {
  for (int d = 0; d < DIM; ++d) out[d] = (float)((i * 131 + v * 17 + d * 7 + slot * 3) % 97) / 8.f;
}
static void make_payload(int slot, int i, int v, char* out, size_t cap) {
  snprintf(out, cap, "{\"s\":%d,\"i\":%d,\"v\":%d}", slot, i, v);
}
static void slot_name(int slot, char out[16]) {
  if (slot == 0) snprintf(out, 16, "main");
  else snprintf(out, 16, "cat%d", slot - 1);
}

static uint64_t seed_state;
static uint32_t rnd_r(uint64_t* s) {
  *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
  return (uint32_t)(*s >> 33);
}
static uint32_t rnd(void) { return rnd_r(&seed_state); }

/* ---------------- the writer (child) ---------------- */

static aidb_db* g_db;
static pthread_rwlock_t g_quiesce = PTHREAD_RWLOCK_INITIALIZER;
static pthread_mutex_t g_model_mu = PTHREAD_MUTEX_INITIALIZER;
static char g_qpaths[NQ][4096];
static int g_nq;
static int g_catalog;
static int g_fresh;

static void die(const char* what, int rc, char* err) {
  fprintf(stderr, "powerloss_db: %s: %s %s\n", what, aidb_status_name(rc), err ? err : "");
  _exit(3);
}

static aidb_collection* open_slot(int slot) {
  char name[16];
  slot_name(slot, name);
  aidb_collection* c = NULL;
  char* err = NULL;
  int rc = aidb_db_open_collection(g_db, name, &c, &err);
  if (rc != AIDB_OK) die("open collection", rc, err);
  return c;
}

static void* writer_thread(void* arg) {
  const int t = (int)(intptr_t)arg;
  uint64_t rs = seed_state ^ (0x9E37ULL * (uint64_t)(t + 1));
  aidb_collection* c = open_slot(0);
  char* err = NULL;
  for (;;) {
    uint32_t r = rnd_r(&rs) % 100;
    usleep(rnd_r(&rs) % 400);
    pthread_rwlock_rdlock(&g_quiesce);
    int rc;
    if (r < 55) {
      int i;
      pthread_mutex_lock(&g_model_mu);
      int fresh = t + 2 * next_k[t] < FRESH_LIMIT;
      if ((r < 35 && fresh) || next_k[t] == 0) i = t + 2 * next_k[t]++;
      else i = t + 2 * (int)(rnd_r(&rs) % (uint32_t)next_k[t]);
      int v = ver[0][i] + 1;
      pthread_mutex_unlock(&g_model_mu);
      char idb[40], p[96];
      float vec[DIM];
      make_id(0, i, idb);
      make_vec(0, i, v, vec);
      make_payload(0, i, v, p, sizeof p);
      say("B %d U 0 %d %d\n", t, i, v);
      if ((rc = aidb_collection_upsert(c, idb, vec, DIM, p, (size_t)-1, &err)) != AIDB_OK)
        die("upsert", rc, err);
      pthread_mutex_lock(&g_model_mu);
      ver[0][i] = v;
      pthread_mutex_unlock(&g_model_mu);
      say("A %d %lld\n", t, now_ns());
    } else if (r < 85) {
      int nb = 2 + (int)(rnd_r(&rs) % (MAXBATCH - 1));
      char idb[MAXBATCH][40], pb[MAXBATCH][96];
      const char* ids[MAXBATCH];
      const char* ps[MAXBATCH];
      float vec[MAXBATCH * DIM];
      int bi[MAXBATCH], bv[MAXBATCH];
      char line[2048];
      pthread_mutex_lock(&g_model_mu);
      for (int k = 0; k < nb; ++k) {
        int i = t + 2 * next_k[t]; /* fresh ids: distinct within the batch */
        if (i < FRESH_LIMIT || next_k[t] <= 10) ++next_k[t];
        if ((k % 3 == 2 || i >= FRESH_LIMIT) && next_k[t] > 10) {
          int old = t + 2 * (int)(rnd_r(&rs) % (uint32_t)(next_k[t] - 1));
          int dup = 0;
          for (int j = 0; j < k; ++j) dup |= bi[j] == old;
          if (!dup) i = old;
          else if (i >= FRESH_LIMIT) {
            nb = k; /* no distinct id left to use: a shorter batch */
            break;
          }
        }
        bi[k] = i;
        bv[k] = ver[0][i] + 1;
      }
      pthread_mutex_unlock(&g_model_mu);
      if (nb < 1) {
        pthread_rwlock_unlock(&g_quiesce);
        continue;
      }
      int len = snprintf(line, sizeof line, "B %d M 0 %d", t, nb);
      for (int k = 0; k < nb; ++k) {
        make_id(0, bi[k], idb[k]);
        make_vec(0, bi[k], bv[k], vec + k * DIM);
        make_payload(0, bi[k], bv[k], pb[k], sizeof pb[k]);
        ids[k] = idb[k];
        ps[k] = pb[k];
        len += snprintf(line + len, sizeof line - (size_t)len, " %d %d", bi[k], bv[k]);
      }
      say("%s\n", line);
      if ((rc = aidb_collection_upsert_batch(c, (size_t)nb, ids, vec, DIM, ps, &err)) != AIDB_OK)
        die("batch", rc, err);
      pthread_mutex_lock(&g_model_mu);
      for (int k = 0; k < nb; ++k) ver[0][bi[k]] = bv[k];
      pthread_mutex_unlock(&g_model_mu);
      say("A %d %lld\n", t, now_ns());
    } else if (next_k[t] > 0) {
      pthread_mutex_lock(&g_model_mu);
      int i = t + 2 * (int)(rnd_r(&rs) % (uint32_t)next_k[t]);
      int present = ver[0][i] != 0;
      pthread_mutex_unlock(&g_model_mu);
      if (present) {
        char idb[40];
        make_id(0, i, idb);
        say("B %d D 0 %d\n", t, i);
        /* NOT_FOUND is fine: a restore may have taken the point away. */
        rc = aidb_collection_delete(c, idb, &err);
        if (rc != AIDB_OK && rc != AIDB_NOT_FOUND) die("delete", rc, err);
        aidb_free(err);
        err = NULL;
        pthread_mutex_lock(&g_model_mu);
        ver[0][i] = 0;
        pthread_mutex_unlock(&g_model_mu);
        say("A %d %lld\n", t, now_ns());
      }
    }
    pthread_rwlock_unlock(&g_quiesce);
  }
  return NULL;
}

static void quiescent_snapshot(void) {
  char* path = NULL;
  char* err = NULL;
  say("B 2 Q\n");
  int rc = aidb_db_snapshot(g_db, "main", &path, &err);
  if (rc != AIDB_OK) die("quiescent snapshot", rc, err);
  say("A 2 %lld %s\n", now_ns(), path);
  if (g_nq == NQ) {
    memmove(g_qpaths[0], g_qpaths[1], sizeof g_qpaths[0] * (NQ - 1));
    --g_nq;
  }
  snprintf(g_qpaths[g_nq++], sizeof g_qpaths[0], "%s", path);
  aidb_free(path);
}

static void control_thread(void) {
  char* err = NULL;
  int rc;
  for (;;) {
    uint32_t r = rnd() % 100;
    if (g_catalog) r = r < 30 ? r : 60 + r % 40; /* mostly catalog work */
    usleep(200 + rnd() % 2000);
    if (r < 25) {
      pthread_rwlock_rdlock(&g_quiesce);
      say("B 2 S\n");
      if ((rc = aidb_db_snapshot(g_db, "main", NULL, &err)) != AIDB_OK) die("snapshot", rc, err);
      say("A 2 %lld\n", now_ns());
      pthread_rwlock_unlock(&g_quiesce);
    } else if (r < 45) {
      pthread_rwlock_wrlock(&g_quiesce);
      quiescent_snapshot();
      pthread_rwlock_unlock(&g_quiesce);
    } else if (r < 60) {
      if (g_nq == 0) continue;
      pthread_rwlock_wrlock(&g_quiesce);
      /* A fresh quiescent snapshot empties the WAL, so the restore yields
       * exactly the chosen snapshot's points. */
      quiescent_snapshot();
      /* Chosen after it: the list (and the parent's) may have dropped its
       * oldest entry. */
      int j = (int)(rnd() % (uint32_t)g_nq);
      char target[4096];
      snprintf(target, sizeof target, "%s", g_qpaths[j]);
      say("B 2 R %s\n", target);
      if ((rc = aidb_db_restore(g_db, "main", target, &err)) != AIDB_OK) die("restore", rc, err);
      say("A 2 %lld\n", now_ns());
      pthread_rwlock_unlock(&g_quiesce);
    } else {
      int slot = 1 + (int)(rnd() % NCAT);
      char name[16];
      slot_name(slot, name);
      if (!exists[slot]) {
        aidb_collection_options o;
        aidb_collection_options_init(&o);
        o.name = name;
        o.dim = DIM;
        o.metric = AIDB_METRIC_EUCLIDEAN;
        say("B 2 C %d\n", slot);
        if ((rc = aidb_db_create_collection(g_db, &o, NULL, &err)) != AIDB_OK)
          die("create", rc, err);
        exists[slot] = 1;
        say("A 2 %lld\n", now_ns());
      } else if (r < 72) {
        say("B 2 X %d\n", slot);
        if ((rc = aidb_db_drop_collection(g_db, name, &err)) != AIDB_OK) die("drop", rc, err);
        exists[slot] = 0;
        memset(ver[slot], 0, sizeof ver[slot]);
        say("A 2 %lld\n", now_ns());
      } else if (r < 80) {
        say("B 2 S %d\n", slot);
        if ((rc = aidb_db_snapshot(g_db, name, NULL, &err)) != AIDB_OK)
          die("cat snapshot", rc, err);
        say("A 2 %lld\n", now_ns());
      } else {
        aidb_collection* c = open_slot(slot);
        int i = (int)(rnd() % CATIDS);
        int v = ver[slot][i] + 1;
        char idb[40], p[96];
        float vec[DIM];
        make_id(slot, i, idb);
        make_vec(slot, i, v, vec);
        make_payload(slot, i, v, p, sizeof p);
        say("B 2 U %d %d %d\n", slot, i, v);
        if ((rc = aidb_collection_upsert(c, idb, vec, DIM, p, (size_t)-1, &err)) != AIDB_OK)
          die("cat upsert", rc, err);
        ver[slot][i] = v;
        say("A 2 %lld\n", now_ns());
        aidb_collection_close(c);
      }
    }
  }
}

static void read_state(const char* path) {
  FILE* f = fopen(path, "r");
  if (!f) die("read state", 0, NULL);
  char line[8192];
  while (fgets(line, sizeof line, f)) {
    int a, b, c;
    if (line[0] == 'k' && sscanf(line, "k %d %d", &a, &b) == 2) {
      next_k[0] = a;
      next_k[1] = b;
    } else if (line[0] == 'e' && sscanf(line, "e %d", &a) == 1) {
      exists[a] = 1;
    } else if (line[0] == 'q') {
      line[strcspn(line, "\n")] = 0;
      snprintf(g_qpaths[g_nq++], sizeof g_qpaths[0], "%s", line + 2);
    } else if (sscanf(line, "%d %d %d", &a, &b, &c) == 3) {
      ver[a][b] = c;
    }
  }
  fclose(f);
}

static int writer_main(const char* dir, const char* state) {
  read_state(state);
  aidb_db_options o;
  aidb_db_options_init(&o);
  o.wal_mmap_threshold = 4096;
  char* err = NULL;
  int rc = aidb_db_open(dir, &o, &g_db, &err);
  if (rc != AIDB_OK) die("writer open", rc, err);
  say("R\n");
  if (g_fresh) {
    /* A database made from nothing: its directory, "main", one point. */
    aidb_collection_options co;
    aidb_collection_options_init(&co);
    co.name = "main";
    co.dim = DIM;
    co.metric = AIDB_METRIC_EUCLIDEAN;
    say("B 2 C 0\n");
    if ((rc = aidb_db_create_collection(g_db, &co, NULL, &err)) != AIDB_OK) die("create", rc, err);
    say("A 2 %lld\n", now_ns());
    aidb_collection* c = open_slot(0);
    char idb[40], p[96];
    float vec[DIM];
    make_id(0, 0, idb);
    make_vec(0, 0, 1, vec);
    make_payload(0, 0, 1, p, sizeof p);
    say("B 0 U 0 0 1\n");
    if ((rc = aidb_collection_upsert(c, idb, vec, DIM, p, (size_t)-1, &err)) != AIDB_OK)
      die("upsert", rc, err);
    say("A 0 %lld\n", now_ns());
    aidb_free(err);
    for (int i = 1; i < FRESH_LIMIT; ++i) { /* more points until the cut */
      make_id(0, i, idb);
      make_vec(0, i, 1, vec);
      make_payload(0, i, 1, p, sizeof p);
      say("B 0 U 0 %d 1\n", i);
      if ((rc = aidb_collection_upsert(c, idb, vec, DIM, p, (size_t)-1, &err)) != AIDB_OK)
        die("upsert", rc, err);
      say("A 0 %lld\n", now_ns());
      usleep(500);
    }
    for (;;) pause();
  }
  pthread_t th[2];
  for (int t = 0; t < 2; ++t) pthread_create(&th[t], NULL, writer_thread, (void*)(intptr_t)t);
  control_thread();
  return 0;
}

/* ---------------- the parent ---------------- */

struct op {
  char kind; /* 0 none; U M D (slot 0 or a cat), S Q R C X */
  int slot, n;
  int ids[MAXBATCH], vers[MAXBATCH];
  char path[4096];
};

struct qsnap {
  char path[4096];
  int* vers; /* main's versions when it was taken */
};
static struct qsnap qs[NQ];
static int nqs;
static long long acked_kind[128]; /* acknowledged operations by kind */
static long long total_acked, total_checks;
static int max_main_id;

static void remember_q(const char* path) {
  if (nqs == NQ) {
    free(qs[0].vers);
    memmove(&qs[0], &qs[1], sizeof qs[0] * (NQ - 1));
    --nqs;
  }
  snprintf(qs[nqs].path, sizeof qs[nqs].path, "%s", path);
  qs[nqs].vers = malloc(sizeof(int) * MAXID);
  memcpy(qs[nqs].vers, ver[0], sizeof(int) * MAXID);
  ++nqs;
}

static const int* q_vers(const char* path) {
  for (int j = 0; j < nqs; ++j) {
    if (!strcmp(qs[j].path, path)) return qs[j].vers;
  }
  return NULL;
}

static void apply_op(const struct op* o) {
  switch (o->kind) {
    case 'U':
    case 'M':
      for (int k = 0; k < o->n; ++k) ver[o->slot][o->ids[k]] = o->vers[k];
      break;
    case 'D': ver[o->slot][o->ids[0]] = 0; break;
    case 'C': exists[o->slot] = 1; break;
    case 'X':
      exists[o->slot] = 0;
      memset(ver[o->slot], 0, sizeof ver[o->slot]);
      break;
    case 'R': {
      const int* v = q_vers(o->path);
      if (v) memcpy(ver[0], v, sizeof(int) * MAXID);
      break;
    }
  }
}

static void parse_lines(char* data, struct op inf[3], int* acked) {
  char* save = NULL;
  for (char* line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    int t, off = 0;
    if (line[0] == 'B' && sscanf(line, "B %d %n", &t, &off) == 1 && t >= 0 && t < 3) {
      struct op* o = &inf[t];
      memset(o, 0, sizeof *o);
      char* p = line + off;
      o->kind = p[0];
      p += 1;
      if (o->kind == 'U') {
        o->n = 1;
        sscanf(p, "%d %d %d", &o->slot, &o->ids[0], &o->vers[0]);
      } else if (o->kind == 'D') {
        o->n = 1;
        sscanf(p, "%d %d", &o->slot, &o->ids[0]);
      } else if (o->kind == 'M') {
        int n2 = 0;
        sscanf(p, "%d %d%n", &o->slot, &o->n, &n2);
        p += n2;
        for (int k = 0; k < o->n && k < MAXBATCH; ++k) {
          sscanf(p, "%d %d%n", &o->ids[k], &o->vers[k], &n2);
          p += n2;
        }
      } else if (o->kind == 'C' || o->kind == 'X') {
        sscanf(p, "%d", &o->slot);
      } else if (o->kind == 'R') {
        snprintf(o->path, sizeof o->path, "%s", p + 1);
      }
      if (o->slot == 0) {
        for (int k = 0; k < o->n; ++k) {
          if (o->ids[k] > max_main_id) max_main_id = o->ids[k];
        }
      }
    } else if (line[0] == 'A' && sscanf(line, "A %d %n", &t, &off) == 1 && t >= 0 && t < 3) {
      struct op* o = &inf[t];
      if (o->kind == 'Q') {
        char* p = strchr(line + off, ' ');
        if (p) remember_q(p + 1);
      }
      apply_op(o);
      ++acked_kind[(unsigned char)o->kind & 127];
      memset(o, 0, sizeof *o);
      ++*acked;
    }
  }
}

/* The version of (slot, i) (0 absent, -1 damaged). */
static int found(aidb_collection* c, int slot, int i) {
  char idb[40];
  make_id(slot, i, idb);
  float v[DIM];
  char* payload = NULL;
  int rc = aidb_collection_get(c, idb, v, DIM, &payload, NULL);
  if (rc == AIDB_NOT_FOUND) return 0;
  if (rc != AIDB_OK) return -1;
  int ps = -1, pi = -1, pv = -1;
  if (!payload || sscanf(payload, "{\"s\":%d,\"i\":%d,\"v\":%d", &ps, &pi, &pv) != 3 ||
      ps != slot || pi != i)
    pv = -1;
  if (pv > 0) {
    char want[96];
    float wv[DIM];
    make_payload(slot, i, pv, want, sizeof want);
    make_vec(slot, i, pv, wv);
    if (strcmp(want, payload) != 0 || memcmp(wv, v, sizeof v) != 0) pv = -1;
  }
  aidb_free(payload);
  return pv;
}

/* Checks one collection against `want` (versions), allowing the ops in
 * flight on it to be wholly applied or wholly absent; returns mismatches and
 * fills got[]. */
static int compare(int round, aidb_collection* c, int slot, const int* want, const struct op inf[3],
                   int* got, int report) {
  int n = slot == 0 ? max_main_id + 1 : CATIDS;
  int bad = 0;
  static int flight[MAXID]; /* 1 + index of the in-flight op touching an id */
  memset(flight, 0, sizeof(int) * (size_t)n);
  for (int t = 0; t < 3; ++t) {
    if ((inf[t].kind == 'U' || inf[t].kind == 'M' || inf[t].kind == 'D') && inf[t].slot == slot) {
      for (int k = 0; k < inf[t].n; ++k) flight[inf[t].ids[k]] = t + 1;
    }
  }
  for (int i = 0; i < n; ++i) {
    got[i] = found(c, slot, i);
    ++total_checks;
    if (got[i] == want[i] || flight[i]) continue;
    ++bad;
    if (report) {
      violation(round, "%s id %d (slot %d): version %d, acknowledged %d",
                got[i] == 0 ? "LOST" : "wrong", i, slot, got[i], want[i]);
    }
  }
  /* In-flight ops: all or nothing. */
  for (int t = 0; t < 3; ++t) {
    const struct op* o = &inf[t];
    if (!(o->kind == 'U' || o->kind == 'M' || o->kind == 'D') || o->slot != slot) continue;
    int applied = 0, absent = 0;
    for (int k = 0; k < o->n; ++k) {
      int nv = o->kind == 'D' ? 0 : o->vers[k];
      int g = got[o->ids[k]];
      if (g == nv && g != want[o->ids[k]]) ++applied;
      else if (g == want[o->ids[k]] && g != nv) ++absent;
      else if (g != nv) {
        ++bad;
        if (report) violation(round, "in-flight id %d has version %d", o->ids[k], g);
      }
    }
    if (applied && absent) {
      ++bad;
      if (report) violation(round, "in-flight batch half applied (%d of %d)", applied, o->n);
    }
  }
  uint64_t count = 0, live = 0;
  for (int i = 0; i < n; ++i) live += got[i] > 0;
  if (aidb_collection_count(c, &count, NULL) != AIDB_OK || count != live) {
    ++bad;
    if (report)
      violation(round, "slot %d: count %llu but %llu points found", slot, (unsigned long long)count,
                (unsigned long long)live);
  }
  return bad;
}

static int inflight_applied, inflight_dropped, restore_cuts, catalog_cuts;

static void verify(const char* dir, int round, struct op inf[3]) {
  aidb_db_options o;
  aidb_db_options_init(&o);
  aidb_db* db = NULL;
  char* err = NULL;
  int rc = aidb_db_open(dir, &o, &db, &err);
  if (rc != AIDB_OK) {
    violation(round, "recovery failed: %s %s", aidb_status_name(rc), err ? err : "");
    aidb_free(err);
    return;
  }
  static int got[MAXID];
  const struct op* ctl = &inf[2];
  for (int slot = 0; slot < NSLOT; ++slot) {
    char name[16];
    slot_name(slot, name);
    aidb_collection* c = NULL;
    rc = aidb_db_open_collection(db, name, &c, NULL);
    int present = rc == AIDB_OK;
    int want_present = exists[slot];
    if ((ctl->kind == 'C' || ctl->kind == 'X') && ctl->slot == slot) {
      catalog_cuts++;
      if (present != want_present) {
        /* The in-flight create or drop happened. */
        struct op tmp = *ctl;
        apply_op(&tmp);
        ++inflight_applied;
      } else {
        ++inflight_dropped;
      }
      want_present = present; /* either is fine */
      exists[slot] = present;
      if (ctl->kind == 'X' && !present) memset(ver[slot], 0, sizeof ver[slot]);
    }
    if (present != want_present) {
      violation(
          round, "collection %s %s", name,
          present ? "came back after an acknowledged drop" : "LOST after an acknowledged create");
      exists[slot] = present;
      if (!present) memset(ver[slot], 0, sizeof ver[slot]);
    }
    if (!present) continue;
    if (ctl->kind == 'R' && slot == 0) {
      /* A restore in flight: before it or after it, wholly. */
      ++restore_cuts;
      const int* after = q_vers(ctl->path);
      if (compare(round, c, 0, ver[0], inf, got, 0) == 0) {
        ++inflight_dropped;
      } else if (after && compare(round, c, 0, after, inf, got, 0) == 0) {
        memcpy(ver[0], after, sizeof(int) * MAXID);
        ++inflight_applied;
      } else {
        violation(round, "restore in flight: main is neither the state before it nor after it");
        compare(round, c, 0, ver[0], inf, got, 1);
      }
    } else {
      compare(round, c, slot, ver[slot], inf, got, 1);
    }
    /* Take over what was found (resolves the ops in flight). */
    int n = slot == 0 ? max_main_id + 1 : CATIDS;
    for (int i = 0; i < n; ++i) {
      if (got[i] >= 0) ver[slot][i] = got[i];
    }
    aidb_collection_close(c);
  }
  aidb_db_close(db);
}

/* Removes the snapshots no MANIFEST names and no restore may use
 * (harness.h). */
static void prune_snapshots(const char* dbdir) {
  const char* keep[NQ];
  for (int j = 0; j < nqs; ++j) keep[j] = qs[j].path;
  for (int slot = 0; slot < NSLOT; ++slot) {
    char name[16], cdir[4400];
    slot_name(slot, name);
    snprintf(cdir, sizeof cdir, "%s/%s", dbdir, name);
    prune_snapshots_in(cdir, keep, nqs);
  }
}

static void write_state(const char* path) {
  char tmp[4300];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE* f = fopen(tmp, "w");
  fprintf(f, "k %d %d\n", next_k[0], next_k[1]);
  for (int s = 0; s < NSLOT; ++s) {
    if (exists[s]) fprintf(f, "e %d\n", s);
    int n = s == 0 ? max_main_id + 1 : CATIDS;
    for (int i = 0; i < n; ++i) {
      if (ver[s][i]) fprintf(f, "%d %d %d\n", s, i, ver[s][i]);
    }
  }
  for (int j = 0; j < nqs; ++j) fprintf(f, "q %s\n", qs[j].path);
  fclose(f);
  rename(tmp, path);
}

int main(int argc, char** argv) {
  if (argc >= 2 && !strcmp(argv[1], "writer")) {
    /* writer DIR STATE SEED FLAVOUR */
    seed_state = strtoull(argv[4], NULL, 10);
    g_catalog = !strcmp(argv[5], "catalog");
    g_fresh = !strcmp(argv[5], "fresh");
    return writer_main(argv[2], argv[3]);
  }
  if (argc < 4) {
    fprintf(stderr, "usage: %s DIR CUTS SEED [writers|catalog|fresh]\n", argv[0]);
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char* dir = argv[1];
  int cuts = atoi(argv[2]);
  seed_state = strtoull(argv[3], NULL, 10);
  const char* flavour = argc > 4 ? argv[4] : "writers";
  const char* power = getenv("AIDB_POWERFS");
  const char* rollback = getenv("AIDB_POWERFS_ROLLBACK");
  const char* variant = getenv("AIDB_POWERFS_VARIANT") ? getenv("AIDB_POWERFS_VARIANT") : "mix";
  const int max_cut = getenv("AIDB_POWERFS_MAX_CUT") ? atoi(getenv("AIDB_POWERFS_MAX_CUT")) : 1500;
  if (!power || !rollback) {
    fprintf(stderr, "powerloss_db: set AIDB_POWERFS and AIDB_POWERFS_ROLLBACK\n");
    return 2;
  }
  mkdir(dir, 0755);
  char side[4300], state[4300], self[4096], dbdir[4300];
  /* The shim watches DIR; the database is DIR/db (so its own creation is
   * tracked too in the fresh flavour). */
  snprintf(dbdir, sizeof dbdir, "%s/db", dir);
  const int fresh = !strcmp(flavour, "fresh");
  snprintf(side, sizeof side, "%s.side", dir);
  snprintf(state, sizeof state, "%s.state", dir);
  mkdir(side, 0755);
  if (self_path(self, sizeof self) != 0) return 2;
  if (!fresh) {
    /* "main" exists before the first cut (made without the shim). */
    aidb_db_options o;
    aidb_db_options_init(&o);
    aidb_db* db = NULL;
    char* err = NULL;
    if (aidb_db_open(dbdir, &o, &db, &err) != AIDB_OK) return 2;
    aidb_collection_options co;
    aidb_collection_options_init(&co);
    co.name = "main";
    co.dim = DIM;
    co.metric = AIDB_METRIC_EUCLIDEAN;
    int rc = aidb_db_create_collection(db, &co, NULL, &err);
    if (rc != AIDB_OK && rc != AIDB_ALREADY_EXISTS) return 2;
    aidb_db_close(db);
    exists[0] = 1;
  }
  write_state(state);
  int rounds = 0, count_cuts = 0, startup_cuts = 0;
  while (rounds < cuts && violations <= 20) {
    ++rounds;
    if (fresh) {
      /* Each round starts from nothing (removed without the shim). */
      char cmd[4400];
      snprintf(cmd, sizeof cmd, "rm -rf '%s'", dbdir);
      if (system(cmd) != 0) return 2;
      memset(ver, 0, sizeof ver);
      memset(exists, 0, sizeof exists);
      write_state(state);
    }
    int cut_at = rounds % 2 == 1 ? 1 + (int)(rnd() % (unsigned)max_cut) : 0;
    if (cut_at && (rounds % 8 == 1 || fresh)) cut_at = 1 + (int)(rnd() % 30);
    char seed[32];
    snprintf(seed, sizeof seed, "%u", rnd());
    int from_child = -1;
    pid_t pid = fork_writer(&from_child);
    if (pid < 0) return 2;
    if (pid == 0) {
      powerfs_child_env(power, dir, side, cut_at);
      execl(self, self, "writer", dbdir, state, seed, flavour, (char*)NULL);
      _exit(127);
    }
    struct child_output out_buf;
    child_output_init(&out_buf);
    long long t0 = now_ns(), ready_ns = 0, signalled = 0;
    const long long budget = (10 + (long long)(rnd() % 300)) * 1000000LL;
    fcntl(from_child, F_SETFL, O_NONBLOCK);
    for (;;) {
      ssize_t n = child_output_read(&out_buf, from_child);
      if (n > 0) {
        if (!ready_ns && memchr(out_buf.data, 'R', out_buf.len)) ready_ns = now_ns();
        continue;
      }
      if (n == 0) break;
      long long now = now_ns();
      if (!cut_at && ready_ns && !signalled && now - ready_ns >= budget) {
        kill(pid, SIGUSR2);
        signalled = now;
      }
      if (now - t0 > 60000000000LL || (signalled && now - signalled > 10000000000LL)) {
        violation(rounds, "the power cut did not come");
        kill(pid, SIGKILL);
        break;
      }
      usleep(1000);
    }
    int status = child_output_finish(&out_buf, from_child, pid);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
      violation(rounds, "writer did not die by the power cut (status %d)", status);
      free(out_buf.data);
      break;
    }
    count_cuts += cut_at > 0;
    startup_cuts += !ready_ns;
    struct op inf[3];
    memset(inf, 0, sizeof inf);
    int acked = 0;
    parse_lines(out_buf.data, inf, &acked);
    free(out_buf.data);
    total_acked += acked;
    /* next fresh ids: past everything announced */
    for (int t = 0; t < 2; ++t) {
      while (t + 2 * next_k[t] <= max_main_id) ++next_k[t];
    }
    if (run_rollback(rollback, dir, side, variant, seed) != 0) {
      violation(rounds, "rollback failed");
      break;
    }
    verify(dbdir, rounds, inf);
    prune_snapshots(dbdir);
    write_state(state);
  }
  int live = 0, cols = 0;
  for (int s = 0; s < NSLOT; ++s) {
    cols += exists[s];
    int n = s == 0 ? max_main_id + 1 : CATIDS;
    for (int i = 0; i < n; ++i) live += ver[s][i] > 0;
  }
  printf(
      "powerloss_db %s (variant %s): %d power cuts survived (%d at an operation count, %d of them "
      "before the writer was ready, %d on a signal; %d during a restore, %d during a create or "
      "drop), %lld acknowledged operations from 3 threads, %lld point checks, %d live points in %d "
      "collections, in-flight ops applied %d / dropped %d; violations: %d\n",
      flavour, variant, rounds - (violations ? 1 : 0), count_cuts, startup_cuts,
      rounds - count_cuts, restore_cuts, catalog_cuts, total_acked, total_checks, live, cols,
      inflight_applied, inflight_dropped, violations);
  printf(
      "powerloss_db %s: acknowledged snapshots %lld (quiescent %lld), restores %lld, creates %lld, "
      "drops %lld, batches %lld, deletes %lld\n",
      flavour, acked_kind['S'], acked_kind['Q'], acked_kind['R'], acked_kind['C'], acked_kind['X'],
      acked_kind['M'], acked_kind['D']);
  return violations ? 1 : 0;
}
