/* Crash-test child: aidb_crash_writer WAL START SNAP_EVERY SNAPDIR
 * Opens a euclidean collection on WAL (after loading SNAPDIR/latest.aidbsnap
 * if present and replaying the WAL), then upserts ids START, START+1, ...
 * with fsync durability, printing "ack <id>" after each acknowledged upsert.
 * Every SNAP_EVERY upserts (0 = never) it takes a snapshot to
 * SNAPDIR/latest.aidbsnap. Runs until killed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "aidb.h"

#define DIM 16

static void die(const char* what, char* err) {
  fprintf(stderr, "crash_writer: %s: %s\n", what, err ? err : "");
  exit(2);
}

int main(int argc, char** argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s WAL START SNAP_EVERY SNAPDIR\n", argv[0]);
    return 2;
  }
  setvbuf(stdout, NULL, _IONBF, 0);
  unsigned start = (unsigned)strtoul(argv[2], NULL, 10);
  unsigned snap_every = (unsigned)strtoul(argv[3], NULL, 10);
  char latest[4096];
  snprintf(latest, sizeof latest, "%s/latest.aidbsnap", argv[4]);
  mkdir(argv[4], 0755);

  aidb_collection_options o;
  aidb_collection_options_init(&o);
  o.name = "crash";
  o.dim = DIM;
  o.metric = AIDB_METRIC_EUCLIDEAN;
  o.wal_path = argv[1];
  o.durability = AIDB_DURABILITY_FSYNC;
  o.wal_mmap_threshold = 1024;
  aidb_collection* c = NULL;
  char* err = NULL;
  if (aidb_collection_open(&o, &c, &err) != AIDB_OK) die("open", err);
  struct stat sb;
  if (stat(latest, &sb) == 0 && aidb_collection_load_snapshot(c, latest, &err) != AIDB_OK) {
    die("load_snapshot", err);
  }
  if (aidb_recover(c, NULL, NULL, &err) != AIDB_OK) die("recover", err);

  for (unsigned i = start;; ++i) {
    char id[40], payload[64];
    float v[DIM];
    unsigned d;
    snprintf(id, sizeof id, "00000000-0000-4000-8000-%012x", i);
    snprintf(payload, sizeof payload, "{\"i\":%u}", i);
    for (d = 0; d < DIM; ++d) v[d] = (float)((i * 31 + d * 7) % 101) / 10.f - 5.f;
    if (aidb_collection_upsert(c, id, v, DIM, payload, (size_t)-1, &err) != AIDB_OK)
      die("upsert", err);
    printf("ack %u\n", i);
    if (snap_every && (i - start + 1) % snap_every == 0) {
      if (aidb_collection_snapshot_to(c, latest, &err) != AIDB_OK) die("snapshot", err);
    }
  }
}
