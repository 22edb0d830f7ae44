/* A plain C99 program using the public header: proves aidb.h is C and that the
 * basic flow works without any C++ on the caller's side.
 * usage: aidb_c_api_test DIR */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "aidb.h"

static int failures = 0;
#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      ++failures;                                                              \
    }                                                                          \
  } while (0)

int main(int argc, char** argv) {
  const char* dir = argc > 1 ? argv[1] : "c_api_test_data";
  char wal[1024], snap[1024];
  aidb_collection_options o;
  aidb_collection* c = NULL;
  char* err = NULL;
  float v[3] = {1.f, 2.f, 3.f};
  aidb_search_result* r = NULL;
  const aidb_hit* hits = NULL;
  size_t n = 0;
  aidb_wal_info w;
  int rc;

  mkdir(dir, 0755);
  snprintf(wal, sizeof wal, "%s/c.wal", dir);
  snprintf(snap, sizeof snap, "%s/c.aidbsnap", dir);
  remove(wal);
  {
    char sidecar[1100];
    snprintf(sidecar, sizeof sidecar, "%s.lsn", wal);
    remove(sidecar); /* the LSN sidecar survives truncation by design */
  }

  CHECK(strcmp(aidb_version(), AIDB_VERSION) == 0);
  aidb_collection_options_init(&o);
  o.name = "c_test";
  o.dim = 3;
  o.metric = AIDB_METRIC_EUCLIDEAN;
  o.wal_path = wal;
  rc = aidb_collection_open(&o, &c, &err);
  CHECK(rc == AIDB_OK);
  if (rc != AIDB_OK) {
    fprintf(stderr, "open: %s\n", err ? err : "");
    aidb_free(err);
    return 1;
  }
  CHECK(aidb_collection_upsert(c, "6ba7b810-9dad-11d1-80b4-00c04fd430c8", v, 3, "{\"lang\":\"c\"}",
                               (size_t)-1, NULL) == AIDB_OK);
  rc = aidb_collection_upsert(c, "nope", v, 3, NULL, 0, &err);
  CHECK(rc == AIDB_INVALID_ARGUMENT);
  CHECK(err != NULL && strstr(err, "nope") != NULL);
  aidb_free(err);
  err = NULL;

  CHECK(aidb_collection_search(c, v, 3, NULL, &r, NULL) == AIDB_OK);
  CHECK(aidb_search_result_hits_v2(r, 0, &hits, &n, NULL) == AIDB_OK);
  CHECK(n == 1);
  if (n == 1) {
    CHECK(strcmp(hits[0].id, "6ba7b810-9dad-11d1-80b4-00c04fd430c8") == 0);
    CHECK(hits[0].score == 0.f && !signbit(hits[0].score)); /* L2 distance to itself */
    CHECK(hits[0].payload && strcmp(hits[0].payload, "{\"lang\":\"c\"}") == 0);
  }
  aidb_search_result_free(r);

  CHECK(aidb_collection_snapshot_to(c, snap, NULL) == AIDB_OK);
  aidb_wal_info_init(&w);
  CHECK(aidb_wal_stats(c, &w, NULL) == AIDB_OK);
  CHECK(w.size_bytes == 0 && w.has_last_truncate == 1 && w.last_lsn == 1);
  aidb_collection_close(c);

  { /* the functions added after 0.1.0's first cut, from C */
    char id[37];
    char* p = NULL;
    CHECK(aidb_uuid_generate_v2(id, NULL) == AIDB_OK && strlen(id) == 36);
    CHECK(aidb_uuid_generate_v2(NULL, NULL) == AIDB_MISUSE);
    CHECK(aidb_db_collection_path(dir, "c_test", AIDB_PATH_WAL, &p, NULL) == AIDB_OK);
    CHECK(p != NULL && strstr(p, "/c_test/wal.log") != NULL);
    aidb_free(p);
    CHECK(AIDB_DEFAULT_HNSW_M == 16 && AIDB_DEFAULT_BATCH_INTERVAL_MS == 10);
  }

  if (failures) {
    fprintf(stderr, "%d failed\n", failures);
    return 1;
  }
  printf("c_api_test: all checks passed\n");
  return 0;
}
