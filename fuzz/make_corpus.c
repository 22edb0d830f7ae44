/* Writes the seed corpora for the file-based fuzz targets with the real
 * library: fuzz/corpus/wal/ and fuzz/corpus/snapshot/ (one mode byte, then a
 * WAL or snapshot file written by AIDB). Filter and API seeds are text files
 * kept by hand. Build and run (from the repo root, after a release build):
 *   cc -Iinclude fuzz/make_corpus.c -Lbuild/release/src -laidb -o /tmp/mk &&
 *   LD_LIBRARY_PATH=build/release/src /tmp/mk fuzz/corpus
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aidb.h"

static void emit(const char* src, const char* dst, unsigned char mode) {
  FILE* in = fopen(src, "rb");
  FILE* out = fopen(dst, "wb");
  if (!in || !out) {
    perror(dst);
    exit(1);
  }
  fputc(mode, out);
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, in)) > 0) fwrite(buf, 1, n, out);
  fclose(in);
  fclose(out);
}

static aidb_collection* fill(const char* wal, int hnsw, int n, int with_deletes) {
  aidb_collection_options o;
  aidb_collection_options_init(&o);
  o.name = "seed";
  o.dim = 4;
  o.metric = AIDB_METRIC_EUCLIDEAN;
  o.index_kind = hnsw ? AIDB_INDEX_HNSW : AIDB_INDEX_FLAT;
  o.hnsw_m = 4;
  o.wal_path = wal;
  o.durability = AIDB_DURABILITY_NONE;
  aidb_collection* c = NULL;
  if (aidb_collection_open(&o, &c, NULL) != AIDB_OK) exit(1);
  for (int i = 0; i < n; ++i) {
    char id[40], p[96];
    float v[4] = {(float)i, (float)(i % 3), -1.f, 0.5f * (float)i};
    snprintf(id, sizeof id, "00000000-0000-4000-8000-%012x", i);
    snprintf(p, sizeof p, "{\"a\":%d,\"b\":%d.5,\"t\":[\"x\",\"y\"],\"n\":{\"k\":\"v%d\"}}", i % 3,
             i, i);
    aidb_collection_upsert(c, id, v, 4, i % 4 == 3 ? NULL : p, (size_t)-1, NULL);
    if (with_deletes && i % 5 == 4) {
      snprintf(id, sizeof id, "00000000-0000-4000-8000-%012x", i - 2);
      aidb_collection_delete(c, id, NULL);
    }
  }
  if (n > 2) {
    const char* ids[2] = {"00000000-0000-4000-8000-0000000000aa",
                          "00000000-0000-4000-8000-0000000000bb"};
    float v[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    const char* ps[2] = {"{\"a\":1}", NULL};
    aidb_collection_upsert_batch(c, 2, ids, v, 4, ps, NULL);
  }
  if (hnsw) aidb_collection_set_ef_search(c, 32, NULL);
  return c;
}

int main(int argc, char** argv) {
  const char* out = argc > 1 ? argv[1] : "fuzz/corpus";
  char tmp[] = "/tmp/aidb-seeds-XXXXXX";
  if (!mkdtemp(tmp)) return 1;
  char d[4096], p[4096], w[4096];
  snprintf(d, sizeof d, "%s/wal", out);
  mkdir(out, 0755);
  mkdir(d, 0755);
  snprintf(d, sizeof d, "%s/snapshot", out);
  mkdir(d, 0755);
  int sizes[] = {1, 3, 12};
  for (int h = 0; h < 2; ++h) {
    for (int s = 0; s < 3; ++s) {
      snprintf(w, sizeof w, "%s/wal-%d-%d.log", tmp, h, s);
      aidb_collection* c = fill(w, h, sizes[s], s == 2);
      aidb_collection_close(c);
      for (int mode = 0; mode < 8; mode += 3) {
        snprintf(p, sizeof p, "%s/wal/seed-%s-%d-m%d", out, h ? "hnsw" : "flat", sizes[s],
                 mode | (h ? 4 : 0));
        emit(w, p, (unsigned char)(mode | (h ? 4 : 0)));
      }
      c = fill(w, h, sizes[s] * 2, s == 2);
      snprintf(p, sizeof p, "%s/snap-%d-%d", tmp, h, s);
      if (aidb_collection_snapshot_to(c, p, NULL) != AIDB_OK) return 1;
      aidb_collection_close(c);
      char dst[4096];
      for (int mode = 0; mode < 2; ++mode) {
        snprintf(dst, sizeof dst, "%s/snapshot/seed-%s-%d-m%d", out, h ? "hnsw" : "flat",
                 sizes[s] * 2, mode);
        emit(p, dst, (unsigned char)mode);
      }
    }
  }
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
  return system(cmd);
}
