/* A user program of the installed library: built with nothing but
 * `pkg-config --cflags --libs aidb` (and, for the static variant,
 * `pkg-config --static`), or through CMake's find_package(aidb).
 * Exercises the workflow of docs/operations.md: upsert, checkpoint (WAL to 0 bytes), more upserts,
 * restore into a fresh handle on the same WAL, search. Exit code 0 = pass. */
#include <aidb.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(call)                                                                              \
  do {                                                                                           \
    char* msg_ = NULL;                                                                           \
    int rc_ = (call);                                                                            \
    if (rc_ != AIDB_OK) {                                                                        \
      fprintf(stderr, "%s:%d: %s -> %s: %s\n", __FILE__, __LINE__, #call, aidb_status_name(rc_), \
              msg_ ? msg_ : "");                                                                 \
      aidb_free(msg_);                                                                           \
      return 1;                                                                                  \
    }                                                                                            \
  } while (0)
#define EXPECT(cond)                                                      \
  do {                                                                    \
    if (!(cond)) {                                                        \
      fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond); \
      return 1;                                                           \
    }                                                                     \
  } while (0)

static int open_coll(const char* wal, aidb_collection** out) {
  aidb_collection_options o;
  aidb_collection_options_init(&o);
  o.name = "consumer";
  o.dim = 3;
  o.metric = AIDB_METRIC_EUCLIDEAN;
  o.wal_path = wal;
  CHECK(aidb_collection_open(&o, out, &msg_));
  return 0;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s WORKDIR\n", argv[0]);
    return 2;
  }
  EXPECT(aidb_version_number() == AIDB_VERSION_NUMBER);
  EXPECT(strcmp(aidb_version(), AIDB_VERSION) == 0);
  char wal[4096], snap[4096];
  snprintf(wal, sizeof wal, "%s/consumer.wal", argv[1]);
  snprintf(snap, sizeof snap, "%s/consumer.snapshot", argv[1]);

  aidb_collection* c = NULL;
  if (open_coll(wal, &c)) return 1;
  const float a[3] = {1, 0, 0}, b[3] = {0, 1, 0}, d[3] = {0, 0, 1};
  const char* ida = "00000000-0000-4000-8000-00000000000a";
  const char* idb = "00000000-0000-4000-8000-00000000000b";
  const char* idd = "00000000-0000-4000-8000-00000000000d";
  CHECK(aidb_collection_upsert(c, ida, a, 3, "{\"t\":\"a\"}", (size_t)-1, &msg_));
  CHECK(aidb_collection_upsert(c, idb, b, 3, NULL, 0, &msg_));
  CHECK(aidb_collection_snapshot_to(c, snap, &msg_));
  aidb_wal_info wi;
  aidb_wal_info_init(&wi);
  CHECK(aidb_wal_stats(c, &wi, &msg_));
  EXPECT(wi.size_bytes == 0 && wi.has_last_truncate);
  CHECK(aidb_collection_upsert(c, idd, d, 3, NULL, 0, &msg_));
  aidb_collection_close(c);

  if (open_coll(wal, &c)) return 1;
  CHECK(aidb_collection_load_snapshot(c, snap, &msg_));
  CHECK(aidb_recover(c, NULL, NULL, &msg_));
  uint64_t n = 0;
  CHECK(aidb_collection_count(c, &n, &msg_));
  EXPECT(n == 3);
  aidb_search_result* r = NULL;
  CHECK(aidb_collection_search(c, d, 3, NULL, &r, &msg_));
  const aidb_hit* hits = NULL;
  size_t nh = 0;
  EXPECT(aidb_search_result_hits_v2(r, 0, &hits, &nh, NULL) == AIDB_OK && nh == 3);
  EXPECT(strcmp(hits[0].id, idd) == 0);
  aidb_search_result_free(r);
  aidb_collection_close(c);
  printf("consumer: ok (aidb %s)\n", aidb_version());
  return 0;
}
