/* fault_test: I/O fault injection through the public C API.
 *
 * Run under the faultfs shim: LD_PRELOAD=libaidb_faultfs.so aidb_fault_test DIR
 * (tests/reliability/run.sh does this). For every mutating operation
 * (upsert, batch upsert, delete, snapshot_to, and the database's create,
 * upsert, snapshot and drop) and every fallible file call it makes (write,
 * fsync, rename, ftruncate: the first, the second, ... call), with ENOSPC,
 * EIO and short writes, it checks that:
 *   - the call fails with AIDB_IO_ERROR (an injected fault is never ignored);
 *   - the collection stays readable and holds exactly what was acknowledged;
 *   - once the fault clears, writes succeed again;
 *   - after close + reopen (+ recovery), the data is exactly the acknowledged
 *     data, byte for byte: nothing lost, no failed write resurrected (a failed
 *     fsync is never later taken for a success).
 * Exits 0 when every case holds; prints one line per failure.
 *
 *   aidb_fault_test DIR            the sweep above
 *   aidb_fault_test DIR tmpfs      the same checks on a real full file system:
 *                                  DIR must be a small tmpfs; fills it up.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aidb.h"

#define DIM 8
#define MAXID 65536

static void (*fault_configure)(const char*);
static long long (*fault_injected)(void);

static int failures;
static int cases;
static char g_case[512];

static void fail(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stdout, "FAIL [%s] ", g_case);
  vfprintf(stdout, fmt, ap);
  fputc('\n', stdout);
  va_end(ap);
  ++failures;
}

/* The model: version of each id (0 = absent). */
static int model[MAXID];
static int next_id;

static void make_id(int i, char out[40]) { snprintf(out, 40, "00000000-0000-4000-8000-%012x", i); }
static void make_vec(int i, int ver, float* v) {
  for (int d = 0; d < DIM; ++d) v[d] = (float)((i * 131 + ver * 17 + d * 7) % 97) / 8.f - 6.f;
}
static void make_payload(int i, int ver, char* out, size_t cap) {
  snprintf(out, cap, "{\"i\":%d,\"v\":%d,\"pad\":\"%0*d\"}", i, ver, 20 + (i % 50), 0);
}

static int upsert(aidb_collection* c, int i, int ver) {
  char id[40], p[128];
  float v[DIM];
  make_id(i, id);
  make_vec(i, ver, v);
  make_payload(i, ver, p, sizeof p);
  return aidb_collection_upsert(c, id, v, DIM, p, (size_t)-1, NULL);
}

/* Checks that `c` holds exactly the model. */
/* One case: a call made under a fault spec fails with AIDB_IO_ERROR if a
 * fault was injected, and succeeds if none was. */
static void expect_outcome(long long injected, int rc) {
  ++cases;
  if (injected > 0 && rc != AIDB_IO_ERROR) {
    fail("%d fault(s) injected but the call returned %s", (int)injected, aidb_status_name(rc));
  }
  if (injected == 0 && rc != AIDB_OK)
    fail("no fault injected but the call returned %s", aidb_status_name(rc));
}

static void check_model(aidb_collection* c, const char* when) {
  uint64_t n = 0, want = 0;
  for (int i = 0; i < next_id; ++i) want += model[i] != 0;
  if (aidb_collection_count(c, &n, NULL) != AIDB_OK) {
    fail("%s: count failed", when);
    return;
  }
  if (n != want)
    fail("%s: count %llu, acknowledged %llu", when, (unsigned long long)n,
         (unsigned long long)want);
  for (int i = 0; i < next_id; ++i) {
    char id[40], p[128];
    float v[DIM], got[DIM];
    char* payload = NULL;
    make_id(i, id);
    int rc = aidb_collection_get(c, id, got, DIM, &payload, NULL);
    if (model[i] == 0) {
      if (rc != AIDB_NOT_FOUND)
        fail("%s: id %d should be absent, get -> %s", when, i, aidb_status_name(rc));
      aidb_free(payload);
      continue;
    }
    if (rc != AIDB_OK) {
      fail("%s: acknowledged id %d lost (%s)", when, i, aidb_status_name(rc));
      continue;
    }
    make_vec(i, model[i], v);
    make_payload(i, model[i], p, sizeof p);
    if (memcmp(v, got, sizeof v) != 0) fail("%s: id %d vector differs", when, i);
    if (!payload || strcmp(payload, p) != 0)
      fail("%s: id %d payload %s, want %s", when, i, payload ? payload : "(null)", p);
    aidb_free(payload);
  }
  /* Searches keep working. */
  float q[DIM];
  make_vec(1, 1, q);
  aidb_search_result* r = NULL;
  if (aidb_collection_search(c, q, DIM, NULL, &r, NULL) != AIDB_OK) fail("%s: search failed", when);
  aidb_search_result_free(r);
}

static void rm_rf(const char* dir) {
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "rm -rf %s failed\n", dir);
}

static int exists(const char* p) {
  struct stat sb;
  return stat(p, &sb) == 0;
}

/* ---- standalone collections (docs/operations.md, "Restore") ---- */

struct sa {
  char dir[4096], wal[4200], snap[4200];
  aidb_collection* c;
};

static aidb_collection* sa_open(struct sa* s, int recover) {
  aidb_collection_options o;
  aidb_collection_options_init(&o);
  o.name = "faults";
  o.dim = DIM;
  o.metric = AIDB_METRIC_EUCLIDEAN;
  o.wal_path = s->wal;
  o.wal_mmap_threshold = 1024;
  aidb_collection* c = NULL;
  char* err = NULL;
  int rc = aidb_collection_open(&o, &c, &err);
  if (rc != AIDB_OK) {
    fail("reopen: open failed: %s", err ? err : "");
    aidb_free(err);
    return NULL;
  }
  if (recover) {
    if (exists(s->snap) && (rc = aidb_collection_load_snapshot(c, s->snap, &err)) != AIDB_OK) {
      fail("reopen: load_snapshot: %s %s", aidb_status_name(rc), err ? err : "");
      aidb_free(err);
      err = NULL;
    }
    if ((rc = aidb_recover(c, NULL, NULL, &err)) != AIDB_OK) {
      fail("reopen: recover: %s %s", aidb_status_name(rc), err ? err : "");
      aidb_free(err);
    }
  }
  return c;
}

/* A fresh standalone collection in root/sub (emptied first), with an empty
 * model; s->c is NULL if it could not be opened. */
static void sa_fresh(struct sa* s, const char* root, const char* sub) {
  memset(s, 0, sizeof *s);
  snprintf(s->dir, sizeof s->dir, "%s/%s", root, sub);
  rm_rf(s->dir);
  mkdir(s->dir, 0755);
  snprintf(s->wal, sizeof s->wal, "%s/wal.log", s->dir);
  snprintf(s->snap, sizeof s->snap, "%s/latest.aidbsnap", s->dir);
  memset(model, 0, sizeof model);
  next_id = 0;
  s->c = sa_open(s, 0);
}

enum sa_op { SA_UPSERT, SA_BATCH, SA_DELETE, SA_SNAPSHOT, SA_NOPS };
static const char* sa_names[] = {"upsert", "upsert_batch", "delete", "snapshot_to"};

/* Runs op; returns its status and updates the model only on success. */
static int sa_run(struct sa* s, int op) {
  switch (op) {
    case SA_UPSERT: {
      int i = next_id++;
      int rc = upsert(s->c, i, 1);
      if (rc == AIDB_OK) model[i] = 1;
      return rc;
    }
    case SA_BATCH: {
      enum { N = 40 };
      char idbuf[N][40], pbuf[N][128];
      const char* ids[N];
      const char* ps[N];
      float v[N * DIM];
      int first = next_id;
      /* Half new ids, half replacements of existing ones. */
      for (int k = 0; k < N; ++k) {
        int i = k % 2 ? next_id++ : k;
        int ver = model[i] + 1;
        make_id(i, idbuf[k]);
        make_vec(i, ver, v + k * DIM);
        make_payload(i, ver, pbuf[k], sizeof pbuf[k]);
        ids[k] = idbuf[k];
        ps[k] = pbuf[k];
      }
      int rc = aidb_collection_upsert_batch(s->c, N, ids, v, DIM, ps, NULL);
      if (rc == AIDB_OK) {
        for (int k = 0; k < N; ++k) {
          int i = k % 2 ? first + k / 2 : k;
          model[i] += 1;
        }
      }
      return rc;
    }
    case SA_DELETE: {
      int i = 3;
      while (i < next_id && model[i] == 0) ++i;
      char id[40];
      make_id(i, id);
      int rc = aidb_collection_delete(s->c, id, NULL);
      if (rc == AIDB_OK) model[i] = 0;
      return rc;
    }
    case SA_SNAPSHOT: return aidb_collection_snapshot_to(s->c, s->snap, NULL);
  }
  return AIDB_INTERNAL;
}

/* One case: fresh collection with a baseline snapshot and WAL tail, then `op`
 * under fault `spec`. Returns the number of faults injected (0: the op makes
 * fewer such calls; the sweep stops). */
static long long sa_case(const char* root, int op, const char* spec) {
  struct sa s;
  sa_fresh(&s, root, "sa");
  if (!s.c) return 0;
  for (int i = 0; i < 30; ++i) {
    int k = next_id++;
    if (upsert(s.c, k, 1) == AIDB_OK) model[k] = 1;
  }
  if (aidb_collection_snapshot_to(s.c, s.snap, NULL) != AIDB_OK) fail("baseline snapshot failed");
  for (int i = 0; i < 10; ++i) {
    int k = next_id++;
    if (upsert(s.c, k, 1) == AIDB_OK) model[k] = 1;
  }

  long long before = fault_injected();
  fault_configure(spec);
  int rc = sa_run(&s, op);
  fault_configure("off");
  long long injected = fault_injected() - before;
  expect_outcome(injected, rc);
  check_model(s.c, "live, after the failed call");
  /* Writes succeed again once the fault is gone, and so does a checkpoint. */
  int k = next_id++;
  int urc = upsert(s.c, k, 1);
  if (urc == AIDB_OK) model[k] = 1;
  else fail("upsert after the fault cleared returned %s", aidb_status_name(urc));
  if (op == SA_SNAPSHOT) {
    char* err = NULL;
    int src = aidb_collection_snapshot_to(s.c, s.snap, &err);
    if (src != AIDB_OK)
      fail("snapshot_to after the fault cleared: %s %s", aidb_status_name(src), err ? err : "");
    aidb_free(err);
    k = next_id++;
    if (upsert(s.c, k, 1) == AIDB_OK) model[k] = 1;
  }
  check_model(s.c, "live, after the fault cleared");
  aidb_collection_close(s.c);
  /* Reopen as docs/operations.md, "Restore", says: snapshot + WAL replay. */
  s.c = sa_open(&s, 1);
  if (s.c) {
    check_model(s.c, "after reopen");
    aidb_collection_close(s.c);
  }
  /* Also a reopen straight after the failure, before any later write: crash
   * right after the failed call. */
  return injected;
}

/* Same, but reopens straight after the failed call (no later writes), as a
 * crash right after the error would. */
static void sa_case_crash(const char* root, int op, const char* spec) {
  struct sa s;
  sa_fresh(&s, root, "sa2");
  if (!s.c) return;
  for (int i = 0; i < 20; ++i) {
    int k = next_id++;
    if (upsert(s.c, k, 1) == AIDB_OK) model[k] = 1;
  }
  if (aidb_collection_snapshot_to(s.c, s.snap, NULL) != AIDB_OK) fail("baseline snapshot failed");
  for (int i = 0; i < 5; ++i) {
    int k = next_id++;
    if (upsert(s.c, k, 1) == AIDB_OK) model[k] = 1;
  }
  fault_configure(spec);
  (void)sa_run(&s, op);
  fault_configure("off");
  aidb_collection_close(s.c);
  s.c = sa_open(&s, 1);
  if (s.c) {
    check_model(s.c, "reopen right after the failed call");
    aidb_collection_close(s.c);
  }
}

/* ---- the commit pipeline: concurrent writers, a failing fdatasync ---- */

enum { PW_THREADS = 8, PW_PER = 30 };
static aidb_collection* pw_coll;
static int pw_base;
static volatile int pw_stop;
static unsigned char pw_seen[MAXID];
static int pw_io_errors[PW_THREADS];
static int pw_other[PW_THREADS];

static void* pw_writer(void* arg) {
  int t = (int)(long)arg;
  for (int k = 0; k < PW_PER; ++k) {
    int i = pw_base + t * PW_PER + k;
    int rc = upsert(pw_coll, i, 1);
    if (rc == AIDB_OK) model[i] = 1; /* each thread owns its ids */
    else if (rc == AIDB_IO_ERROR) pw_io_errors[t]++;
    else pw_other[t]++;
  }
  return NULL;
}

/* Records every id a reader sees while the writers run: in fsync mode a
 * record is visible only once durable, so whatever was seen must have been
 * acknowledged. */
static void* pw_reader(void* arg) {
  (void)arg;
  while (!pw_stop) {
    for (int i = pw_base; i < pw_base + PW_THREADS * PW_PER; ++i) {
      char id[40];
      make_id(i, id);
      if (aidb_collection_get(pw_coll, id, NULL, 0, NULL, NULL) == AIDB_OK) pw_seen[i] = 1;
    }
  }
  return NULL;
}

/* 8 writers of single points while the k-th fdatasync of the WAL fails:
 * every writer of the groups that sync covered gets AIDB_IO_ERROR, nothing
 * of theirs is ever visible, everything acknowledged is there, before and
 * after reopening, and writes work again afterwards. */
static void pipeline_cases(const char* root) {
  static const char* specs[] = {
      "ops=fsync;path=wal.log;after=0;count=1;errno=EIO",
      "ops=fsync;path=wal.log;after=2;count=1;errno=EIO",
      "ops=fsync;path=wal.log;after=5;count=1;errno=EIO",
      "ops=fsync;path=wal.log;after=3;count=3;errno=EIO",
      "ops=write;path=wal.log;after=4;count=1;errno=ENOSPC",
  };
  for (size_t k = 0; k < sizeof specs / sizeof specs[0]; ++k) {
    snprintf(g_case, sizeof g_case, "%d concurrent writers under %s", PW_THREADS, specs[k]);
    struct sa s;
    sa_fresh(&s, root, "pipe");
    if (!s.c) return;
    for (int i = 0; i < 10; ++i) (void)sa_run(&s, SA_UPSERT);
    pw_coll = s.c;
    pw_base = next_id;
    next_id += PW_THREADS * PW_PER;
    memset(pw_seen, 0, sizeof pw_seen);
    memset(pw_io_errors, 0, sizeof pw_io_errors);
    memset(pw_other, 0, sizeof pw_other);
    pw_stop = 0;
    long long before = fault_injected();
    fault_configure(specs[k]);
    pthread_t w[PW_THREADS], r;
    pthread_create(&r, NULL, pw_reader, NULL);
    for (long t = 0; t < PW_THREADS; ++t) pthread_create(&w[t], NULL, pw_writer, (void*)t);
    for (int t = 0; t < PW_THREADS; ++t) pthread_join(w[t], NULL);
    pw_stop = 1;
    pthread_join(r, NULL);
    fault_configure("off");
    long long injected = fault_injected() - before;
    ++cases;
    int io = 0, other = 0;
    for (int t = 0; t < PW_THREADS; ++t) {
      io += pw_io_errors[t];
      other += pw_other[t];
    }
    if (injected == 0) fail("no fault injected");
    if (injected > 0 && io == 0) fail("%lld fault(s) injected, no writer failed", injected);
    if (other) fail("%d writer call(s) failed with something else than AIDB_IO_ERROR", other);
    for (int i = pw_base; i < pw_base + PW_THREADS * PW_PER; ++i) {
      if (pw_seen[i] && !model[i]) fail("id %d was visible but its write failed", i);
    }
    check_model(s.c, "live, after the failed syncs");
    if (sa_run(&s, SA_UPSERT) != AIDB_OK) fail("upsert after the fault cleared failed");
    aidb_collection_close(s.c);
    s.c = sa_open(&s, 1);
    if (s.c) {
      check_model(s.c, "after reopen");
      aidb_collection_close(s.c);
    }
    printf("pipeline: %-50s %2d of %d writes failed\n", specs[k], io, PW_THREADS * PW_PER);
  }
}

/* ---- databases (what the daemon uses) ---- */

enum db_op { DB_CREATE, DB_UPSERT, DB_SNAPSHOT, DB_DROP, DB_NOPS };
static const char* db_names[] = {"db_create_collection", "db_upsert", "db_snapshot",
                                 "db_drop_collection"};

static aidb_db* db_open(const char* dir) {
  aidb_db* db = NULL;
  char* err = NULL;
  aidb_db_options o;
  aidb_db_options_init(&o);
  o.wal_mmap_threshold = 1024;
  int rc = aidb_db_open(dir, &o, &db, &err);
  if (rc != AIDB_OK) {
    fail("db open: %s %s", aidb_status_name(rc), err ? err : "");
    aidb_free(err);
    return NULL;
  }
  return db;
}

static int db_create(aidb_db* db, const char* name, aidb_collection** out) {
  aidb_collection_options o;
  aidb_collection_options_init(&o);
  o.name = name;
  o.dim = DIM;
  o.metric = AIDB_METRIC_EUCLIDEAN;
  return aidb_db_create_collection(db, &o, out, NULL);
}

static long long db_case(const char* root, int op, const char* spec) {
  char dir[4200];
  snprintf(dir, sizeof dir, "%s/db", root);
  rm_rf(dir);
  memset(model, 0, sizeof model);
  next_id = 0;
  aidb_db* db = db_open(dir);
  if (!db) return 0;
  aidb_collection* c = NULL;
  if (db_create(db, "main", &c) != AIDB_OK) {
    fail("create main failed");
    aidb_db_close(db);
    return 0;
  }
  if (db_create(db, "other", NULL) != AIDB_OK) fail("create other failed");
  for (int i = 0; i < 25; ++i) {
    int k = next_id++;
    if (upsert(c, k, 1) == AIDB_OK) model[k] = 1;
  }
  if (aidb_db_snapshot(db, "main", NULL, NULL) != AIDB_OK) fail("baseline db snapshot failed");
  for (int i = 0; i < 10; ++i) {
    int k = next_id++;
    if (upsert(c, k, 1) == AIDB_OK) model[k] = 1;
  }

  long long before = fault_injected();
  fault_configure(spec);
  int rc = AIDB_INTERNAL;
  int created = 0, dropped = 0;
  switch (op) {
    case DB_CREATE:
      rc = db_create(db, "third", NULL);
      created = rc == AIDB_OK;
      break;
    case DB_UPSERT: {
      int k = next_id++;
      rc = upsert(c, k, 1);
      if (rc == AIDB_OK) model[k] = 1;
      break;
    }
    case DB_SNAPSHOT: rc = aidb_db_snapshot(db, "main", NULL, NULL); break;
    case DB_DROP:
      rc = aidb_db_drop_collection(db, "other", NULL);
      dropped = rc == AIDB_OK;
      break;
  }
  fault_configure("off");
  long long injected = fault_injected() - before;
  expect_outcome(injected, rc);
  check_model(c, "live, after the failed call");
  int k = next_id++;
  int urc = upsert(c, k, 1);
  if (urc == AIDB_OK) model[k] = 1;
  else fail("upsert after the fault cleared returned %s", aidb_status_name(urc));
  /* The failed operation can be retried once the fault is gone. */
  if (op == DB_CREATE && !created) {
    char* err = NULL;
    aidb_collection_options o;
    aidb_collection_options_init(&o);
    o.name = "third";
    o.dim = DIM;
    int crc = aidb_db_create_collection(db, &o, NULL, &err);
    if (crc != AIDB_OK)
      fail("create after the fault cleared: %s %s", aidb_status_name(crc), err ? err : "");
    aidb_free(err);
    created = crc == AIDB_OK;
  }
  if (op == DB_SNAPSHOT) {
    char* err = NULL;
    int src = aidb_db_snapshot(db, "main", NULL, &err);
    if (src != AIDB_OK)
      fail("db snapshot after the fault cleared: %s %s", aidb_status_name(src), err ? err : "");
    aidb_free(err);
  }
  /* What the live database shows for 'other' must be what a reopen finds. A
   * drop whose directory fsync failed may have taken effect (the unlink is
   * done): either outcome is fine as long as both views agree. */
  aidb_collection* o = NULL;
  int other_live = aidb_db_open_collection(db, "other", &o, NULL) == AIDB_OK;
  aidb_collection_close(o);
  if (dropped && other_live) fail("dropped collection 'other' still open in the live database");
  aidb_collection_close(c);
  aidb_db_close(db);

  db = db_open(dir);
  if (!db) return injected;
  if (aidb_db_open_collection(db, "main", &c, NULL) != AIDB_OK) {
    fail("main missing after reopen");
  } else {
    check_model(c, "after reopen");
    aidb_collection_close(c);
  }
  aidb_collection* t = NULL;
  int trc = aidb_db_open_collection(db, "third", &t, NULL);
  if (created && trc != AIDB_OK) fail("created collection 'third' missing after reopen");
  aidb_collection_close(t);
  trc = aidb_db_open_collection(db, "other", &t, NULL);
  if (dropped && trc == AIDB_OK) fail("dropped collection 'other' back after reopen");
  if (other_live != (trc == AIDB_OK)) {
    fail("collection 'other' %s in the live database but %s after reopen",
         other_live ? "present" : "absent", trc == AIDB_OK ? "present" : "absent");
  }
  aidb_collection_close(t);
  aidb_db_close(db);
  return injected;
}

/* ---- a real full file system ---- */

static int tmpfs_test(const char* dir) {
  snprintf(g_case, sizeof g_case, "tmpfs ENOSPC");
  struct sa s;
  memset(&s, 0, sizeof s);
  snprintf(s.dir, sizeof s.dir, "%s", dir);
  snprintf(s.wal, sizeof s.wal, "%s/wal.log", dir);
  snprintf(s.snap, sizeof s.snap, "%s/latest.aidbsnap", dir);
  memset(model, 0, sizeof model);
  next_id = 0;
  /* Ballast that we delete to make room again. */
  char ballast[4200];
  snprintf(ballast, sizeof ballast, "%s/ballast", dir);
  FILE* f = fopen(ballast, "w");
  static char block[64 * 1024];
  memset(block, 'x', sizeof block);
  for (int i = 0; i < 16 && f; ++i) fwrite(block, 1, sizeof block, f);
  if (f) fclose(f);

  s.c = sa_open(&s, 0);
  if (!s.c) return 1;
  int rc = AIDB_OK, snaps_failed = 0, writes = 0;
  while (next_id < MAXID - 100) {
    rc = sa_run(&s, SA_BATCH);
    if (rc != AIDB_OK) break;
    ++writes;
    if (writes % 8 == 0) {
      int src = aidb_collection_snapshot_to(s.c, s.snap, NULL);
      if (src != AIDB_OK) {
        if (src != AIDB_IO_ERROR)
          fail("snapshot on a full disk returned %s", aidb_status_name(src));
        ++snaps_failed;
      }
    }
  }
  ++cases;
  if (rc != AIDB_IO_ERROR)
    fail("filling the disk ended with %s, want IO_ERROR", aidb_status_name(rc));
  printf("tmpfs: %d batches acknowledged, then %s; %d snapshot(s) failed on the full disk\n",
         writes, aidb_status_name(rc), snaps_failed);
  check_model(s.c, "full disk");
  /* More writes keep failing cleanly while the disk is full. */
  for (int i = 0; i < 3; ++i) {
    int r = sa_run(&s, SA_UPSERT);
    if (r != AIDB_OK && r != AIDB_IO_ERROR)
      fail("write on a full disk returned %s", aidb_status_name(r));
  }
  check_model(s.c, "full disk, after more failed writes");
  unlink(ballast);
  int r = sa_run(&s, SA_UPSERT);
  if (r != AIDB_OK) fail("upsert after freeing space returned %s", aidb_status_name(r));
  r = aidb_collection_snapshot_to(s.c, s.snap, NULL);
  if (r != AIDB_OK) fail("snapshot after freeing space returned %s", aidb_status_name(r));
  r = sa_run(&s, SA_UPSERT);
  if (r != AIDB_OK) fail("upsert after the snapshot returned %s", aidb_status_name(r));
  check_model(s.c, "space freed");
  aidb_collection_close(s.c);
  s.c = sa_open(&s, 1);
  if (s.c) {
    check_model(s.c, "reopen after a full disk");
    aidb_collection_close(s.c);
  }
  return 0;
}

/* Recovery that must cut a torn tail, with the cut (ftruncate) or its fsync
 * failing: an I/O error, then a clean recovery once the fault clears. */
static void recover_cases(const char* root) {
  static const char* specs[] = {"ops=ftruncate;path=wal.log;count=1;errno=EIO",
                                "ops=fsync;path=wal.log;count=1;errno=EIO",
                                "ops=ftruncate;path=wal.log;count=1;errno=ENOSPC"};
  for (size_t k = 0; k < sizeof specs / sizeof specs[0]; ++k) {
    snprintf(g_case, sizeof g_case, "recover cutting a torn tail under %s", specs[k]);
    struct sa s;
    sa_fresh(&s, root, "rec");
    for (int i = 0; i < 10; ++i) (void)sa_run(&s, SA_UPSERT);
    aidb_collection_close(s.c);
    /* A torn tail: half of one more record. */
    FILE* f = fopen(s.wal, "ab");
    fwrite("\x11\x22\x33\x44\x30\x00\x00\x00\x0b\x00", 1, 10, f);
    fclose(f);
    s.c = sa_open(&s, 0);
    fault_configure(specs[k]);
    long long before = fault_injected();
    int rc = aidb_recover(s.c, NULL, NULL, NULL);
    fault_configure("off");
    ++cases;
    if (fault_injected() > before && rc != AIDB_IO_ERROR)
      fail("recover returned %s", aidb_status_name(rc));
    if (fault_injected() == before) fail("the fault was never hit");
    aidb_collection_close(s.c);
    s.c = sa_open(&s, 1);
    if (s.c) {
      check_model(s.c, "recovered after the fault cleared");
      if (sa_run(&s, SA_UPSERT) != AIDB_OK) fail("upsert after recovery failed");
      aidb_collection_close(s.c);
    }
    s.c = sa_open(&s, 1);
    if (s.c) {
      check_model(s.c, "reopened");
      aidb_collection_close(s.c);
    }
  }
}

/* BATCH durability: a failed background fdatasync makes every later write
 * fail (the acknowledged records' fate is unknown, so nothing may pretend a
 * later sync covered them) until the collection is reopened. */
static void batch_sticky_case(const char* root) {
  snprintf(g_case, sizeof g_case, "batch durability, failed background sync");
  char dir[4200], wal[4300];
  snprintf(dir, sizeof dir, "%s/batch", root);
  rm_rf(dir);
  mkdir(dir, 0755);
  snprintf(wal, sizeof wal, "%s/wal.log", dir);
  aidb_collection_options o;
  aidb_collection_options_init(&o);
  o.name = "batch";
  o.metric = AIDB_METRIC_EUCLIDEAN;
  o.dim = DIM;
  o.wal_path = wal;
  o.durability = AIDB_DURABILITY_BATCH;
  o.batch_interval_ms = 5;
  aidb_collection* c = NULL;
  if (aidb_collection_open(&o, &c, NULL) != AIDB_OK) {
    fail("open");
    return;
  }
  memset(model, 0, sizeof model);
  next_id = 0;
  for (int i = 0; i < 5; ++i) {
    int k = next_id++;
    if (upsert(c, k, 1) == AIDB_OK) model[k] = 1;
  }
  usleep(50000);
  fault_configure("ops=fsync;path=wal.log;count=1;errno=EIO");
  long long before = fault_injected();
  int k = next_id++;
  if (upsert(c, k, 1) == AIDB_OK) model[k] = 1; /* acknowledged before the sync */
  for (int i = 0; i < 100 && fault_injected() == before; ++i) usleep(2000);
  usleep(20000);
  fault_configure("off");
  ++cases;
  if (fault_injected() == before) fail("the background sync was never hit");
  for (int i = 0; i < 3; ++i) {
    int rc = upsert(c, next_id++, 1);
    if (rc != AIDB_IO_ERROR)
      fail("write %d after a failed background sync returned %s", i, aidb_status_name(rc));
  }
  aidb_collection_close(c);
  if (aidb_collection_open(&o, &c, NULL) != AIDB_OK ||
      aidb_recover(c, NULL, NULL, NULL) != AIDB_OK) {
    fail("reopen after a failed background sync");
    return;
  }
  /* The process did not crash, so the page cache still holds everything
   * acknowledged: after reopening it is all there, and writes work again. */
  check_model(c, "reopened after a failed background sync");
  if (upsert(c, next_id++, 1) != AIDB_OK) fail("write after reopening failed");
  aidb_collection_close(c);
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s DIR [tmpfs]\n", argv[0]);
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char* root = argv[1];
  mkdir(root, 0755);
  if (argc > 2 && !strcmp(argv[2], "tmpfs")) {
    tmpfs_test(root);
    printf("fault_test tmpfs: %d case(s), %d failure(s)\n", cases, failures);
    return failures ? 1 : 0;
  }
  fault_configure = (void (*)(const char*))dlsym(RTLD_DEFAULT, "faultfs_configure");
  fault_injected = (long long (*)(void))dlsym(RTLD_DEFAULT, "faultfs_injected");
  if (!fault_configure || !fault_injected) {
    fprintf(stderr, "fault_test: run me with LD_PRELOAD=<libaidb_faultfs.so>\n");
    return 2;
  }
  static const char* ops[] = {"write", "fsync", "rename", "ftruncate"};
  static const char* errs[] = {"ENOSPC", "EIO"};
  for (int kind = 0; kind < 2; ++kind) {
    int nops = kind == 0 ? SA_NOPS : DB_NOPS;
    for (int op = 0; op < nops; ++op) {
      const char* opname = kind == 0 ? sa_names[op] : db_names[op];
      int op_cases = 0;
      for (int o = 0; o < 4; ++o) {
        for (int mode = 0; mode < 3; ++mode) { /* ENOSPC, EIO, short write + ENOSPC */
          if (mode == 2 && o != 0) continue;
          for (int after = 0; after < 40; ++after) {
            char spec[256];
            snprintf(spec, sizeof spec, "ops=%s;after=%d;count=1;errno=%s%s", ops[o], after,
                     errs[mode == 1], mode == 2 ? ";mode=short" : "");
            if (mode == 2)
              snprintf(spec, sizeof spec, "ops=write;after=%d;count=2;errno=ENOSPC;mode=short",
                       after);
            snprintf(g_case, sizeof g_case, "%s under %s", opname, spec);
            long long n = kind == 0 ? sa_case(root, op, spec) : db_case(root, op, spec);
            if (kind == 0 && n > 0) sa_case_crash(root, op, spec);
            ++op_cases;
            if (n == 0) break; /* the op makes no more calls of this kind */
          }
        }
      }
      printf("%-22s %3d fault case(s)\n", opname, op_cases);
    }
  }
  /* A failed fsync is never taken for a later success: with fsync failing for
   * good, no write may ever be acknowledged. */
  {
    snprintf(g_case, sizeof g_case, "persistent fdatasync failure");
    struct sa s;
    sa_fresh(&s, root, "persist");
    for (int i = 0; i < 5; ++i) (void)sa_run(&s, SA_UPSERT);
    fault_configure("ops=fsync;path=wal.log;errno=EIO");
    for (int i = 0; i < 20; ++i) {
      int rc = sa_run(&s, i % 2 ? SA_UPSERT : SA_BATCH);
      if (rc != AIDB_IO_ERROR)
        fail("write %d acknowledged (%s) while fdatasync fails", i, aidb_status_name(rc));
    }
    fault_configure("off");
    ++cases;
    check_model(s.c, "after 20 failed syncs");
    (void)sa_run(&s, SA_UPSERT);
    aidb_collection_close(s.c);
    s.c = sa_open(&s, 1);
    if (s.c) {
      check_model(s.c, "reopen after failed syncs");
      aidb_collection_close(s.c);
    }
  }
  recover_cases(root);
  batch_sticky_case(root);
  pipeline_cases(root);
  printf("fault_test: %d case(s), %d failure(s)\n", cases, failures);
  return failures ? 1 : 0;
}
