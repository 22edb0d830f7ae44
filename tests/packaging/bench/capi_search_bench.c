/* Search QPS through the C API: the baseline the bindings' benchmarks are
 * compared with (tests/packaging/run_bench.sh).
 *
 *   capi_search_bench prepare DIR [N] [NQ]  build an HNSW collection of N random
 *       784-dim points (M=16, ef_construction=100), write DIR/bench.snapshot
 *       and NQ queries to DIR/queries.f32 (raw little-endian float32)
 *   capi_search_bench run DIR [ROUNDS]      load the snapshot, run every query
 *       ROUNDS times on one thread (top 10, with payloads), print QPS by wall
 *       clock and by process CPU time (cpu_qps)
 *
 * Every binding's benchmark does exactly what `run` does, through its API. */
#include <aidb.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DIM 784

static void die(const char* what, int rc, char* msg) {
  fprintf(stderr, "%s: %s: %s\n", what, aidb_status_name(rc), msg ? msg : "");
  aidb_free(msg);
  exit(1);
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float next_float(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (float)(rng >> 40) / (float)(1u << 24);
}

static double clock_s(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
static double now_s(void) { return clock_s(CLOCK_MONOTONIC); }
/* CPU time of the process: robust against other load on a shared machine. */
static double cpu_s(void) { return clock_s(CLOCK_PROCESS_CPUTIME_ID); }

static aidb_collection* open_collection(void) {
  aidb_collection_options o;
  aidb_collection_options_init(&o);
  o.name = "bench";
  o.dim = DIM;
  o.metric = AIDB_METRIC_EUCLIDEAN;
  o.index_kind = AIDB_INDEX_HNSW;
  o.hnsw_m = 16;
  o.hnsw_ef_construction = 100;
  aidb_collection* c = NULL;
  char* msg = NULL;
  int rc = aidb_collection_open(&o, &c, &msg);
  if (rc != AIDB_OK) die("open", rc, msg);
  return c;
}

static int prepare(const char* dir, size_t n, size_t nq) {
  aidb_collection* c = open_collection();
  const size_t batch = 500;
  float* vecs = malloc(sizeof(float) * DIM * batch);
  char(*ids)[37] = malloc(37 * batch);
  const char** idp = malloc(sizeof(char*) * batch);
  const char** payloads = malloc(sizeof(char*) * batch);
  char(*pbuf)[32] = malloc(32 * batch);
  for (size_t done = 0; done < n; done += batch) {
    size_t m = n - done < batch ? n - done : batch;
    for (size_t i = 0; i < m; i++) {
      for (size_t j = 0; j < DIM; j++) vecs[i * DIM + j] = next_float();
      aidb_uuid_generate_v2(ids[i], NULL);
      idp[i] = ids[i];
      snprintf(pbuf[i], sizeof pbuf[i], "{\"n\":%zu}", done + i);
      payloads[i] = pbuf[i];
    }
    char* msg = NULL;
    int rc = aidb_collection_upsert_batch(c, m, idp, vecs, DIM, payloads, &msg);
    if (rc != AIDB_OK) die("upsert_batch", rc, msg);
  }
  char path[4096];
  snprintf(path, sizeof path, "%s/bench.snapshot", dir);
  char* msg = NULL;
  int rc = aidb_collection_snapshot_to(c, path, &msg);
  if (rc != AIDB_OK) die("snapshot_to", rc, msg);
  snprintf(path, sizeof path, "%s/queries.f32", dir);
  FILE* f = fopen(path, "wb");
  if (!f) {
    perror(path);
    return 1;
  }
  for (size_t i = 0; i < nq * DIM; i++) {
    float x = next_float();
    fwrite(&x, sizeof x, 1, f);
  }
  fclose(f);
  aidb_collection_close(c);
  free(vecs);
  free(ids);
  free(idp);
  free(payloads);
  free(pbuf);
  return 0;
}

static int run(const char* dir, int rounds) {
  aidb_collection* c = open_collection();
  char path[4096];
  snprintf(path, sizeof path, "%s/bench.snapshot", dir);
  char* msg = NULL;
  int rc = aidb_collection_load_snapshot(c, path, &msg);
  if (rc != AIDB_OK) die("load_snapshot", rc, msg);
  snprintf(path, sizeof path, "%s/queries.f32", dir);
  FILE* f = fopen(path, "rb");
  if (!f) {
    perror(path);
    return 1;
  }
  fseek(f, 0, SEEK_END);
  size_t nq = (size_t)ftell(f) / (sizeof(float) * DIM);
  fseek(f, 0, SEEK_SET);
  float* q = malloc(sizeof(float) * DIM * nq);
  if (fread(q, sizeof(float) * DIM, nq, f) != nq) {
    fprintf(stderr, "short read\n");
    return 1;
  }
  fclose(f);
  aidb_search_options so;
  aidb_search_options_init(&so);
  so.top_k = 10;
  size_t total_hits = 0;
  double t0 = now_s(), c0 = cpu_s();
  for (int r = 0; r < rounds; r++) {
    for (size_t i = 0; i < nq; i++) {
      aidb_search_result* res = NULL;
      rc = aidb_collection_search(c, q + i * DIM, DIM, &so, &res, &msg);
      if (rc != AIDB_OK) die("search", rc, msg);
      const aidb_hit* hits;
      size_t count;
      aidb_search_result_hits_v2(res, 0, &hits, &count, NULL);
      total_hits += count;
      aidb_search_result_free(res);
    }
  }
  double dt = now_s() - t0, dc = cpu_s() - c0;
  printf("c qps=%.1f cpu_qps=%.1f queries=%zu hits=%zu\n", (double)nq * rounds / dt,
         (double)nq * rounds / dc, nq * rounds, total_hits);
  aidb_collection_close(c);
  free(q);
  return 0;
}

int main(int argc, char** argv) {
  if (argc >= 3 && strcmp(argv[1], "prepare") == 0) {
    return prepare(argv[2], argc > 3 ? strtoul(argv[3], NULL, 10) : 5000,
                   argc > 4 ? strtoul(argv[4], NULL, 10) : 1000);
  }
  if (argc >= 3 && strcmp(argv[1], "run") == 0) {
    return run(argv[2], argc > 3 ? atoi(argv[3]) : 3);
  }
  fprintf(stderr, "usage: %s prepare DIR [N] [NQ] | run DIR [ROUNDS]\n", argv[0]);
  return 2;
}
