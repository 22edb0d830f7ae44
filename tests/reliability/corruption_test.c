/* corruption_test: damaged WAL and snapshot files, through the public C API
 * and the `aidb verify` CLI.
 *
 *   aidb_corruption_test DIR [AIDB_CLI]
 *
 * WAL (both read paths, read(2) and mmap): a flipped byte in every field of
 * the first, a middle, the second-to-last and the last record (CRC, length,
 * LSN, timestamp, op, reserved, body start/middle/end), a cut at every byte
 * offset, and foreign files (text, zeros, random bytes, a snapshot, garbage
 * appended). Each must give, as src/storage/wal.h documents, either
 *   - AIDB_CORRUPTION whose message names the damaged record's byte offset,
 *     with nothing applied, and aidb_wal_verify failing too; or
 *   - a torn tail (damage confined to the last record, or a cut): recovery
 *     succeeds and the collection holds exactly the records before it.
 * Never a crash, never other data.
 * Snapshot: a flipped byte in each header field, the segment table, the
 * message start/middle/end and the last byte; cuts at every offset class; foreign
 * files: AIDB_CORRUPTION from load_snapshot and aidb_snapshot_verify, and
 * the collection keeps its state.
 * `aidb verify DIR` (when AIDB_CLI is given) exits non-zero and names the file
 * for each damaged WAL and snapshot of a database directory, and exits 0 on
 * the intact one.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "aidb.h"

#define DIM 6
#define NREC 12

static int failures, cases;
static char g_case[512];

static void fail(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("FAIL [%s] ", g_case);
  vprintf(fmt, ap);
  putchar('\n');
  va_end(ap);
  ++failures;
}

static char* read_file(const char* path, size_t* len) {
  FILE* f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char* b = malloc((size_t)n + 1);
  if (fread(b, 1, (size_t)n, f) != (size_t)n) n = 0;
  fclose(f);
  *len = (size_t)n;
  return b;
}

static void write_file(const char* path, const void* data, size_t len) {
  FILE* f = fopen(path, "wb");
  if (len) fwrite(data, 1, len, f);
  fclose(f);
}

static void make_id(int i, char out[40]) { snprintf(out, 40, "00000000-0000-4000-8000-%012x", i); }
static void make_vec(int i, float* v) {
  for (int d = 0; d < DIM; ++d) v[d] = (float)((i * 37 + d * 11) % 29) / 4.f - 3.f;
}

/* Record k of the test WAL: op k%4==3 deletes id k-2; k%4==2 a
 * batch of 3 (ids 100k..100k+2); else one upsert (id k). The expected state
 * after the first m records is computed by applying the same ops to a fresh
 * in-memory collection (no WAL). */
static int apply_record(aidb_collection* c, int k) {
  char id[40], p[64];
  float v[3 * DIM];
  if (k % 4 == 3) {
    make_id(k - 2, id);
    return aidb_collection_delete(c, id, NULL);
  }
  if (k % 4 == 2) {
    char ib[3][40];
    const char* ids[3];
    const char* ps[3] = {"{\"b\":1}", NULL, "{\"b\":[1,2,{\"c\":\"x\"}]}"};
    for (int j = 0; j < 3; ++j) {
      make_id(100 * k + j, ib[j]);
      ids[j] = ib[j];
      make_vec(100 * k + j, v + j * DIM);
    }
    return aidb_collection_upsert_batch(c, 3, ids, v, DIM, ps, NULL);
  }
  make_id(k, id);
  make_vec(k, v);
  snprintf(p, sizeof p, "{\"k\":%d,\"s\":\"%.*s\"}", k, k * 3,
           "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz");
  return aidb_collection_upsert(c, id, v, DIM, p, (size_t)-1, NULL);
}

static aidb_collection* open_coll(const char* wal, uint64_t mmap_threshold) {
  aidb_collection_options o;
  aidb_collection_options_init(&o);
  o.name = "corrupt";
  o.dim = DIM;
  o.metric = AIDB_METRIC_DOT;
  o.wal_path = wal;
  o.wal_mmap_threshold = mmap_threshold;
  aidb_collection* c = NULL;
  if (aidb_collection_open(&o, &c, NULL) != AIDB_OK) return NULL;
  return c;
}

/* Whether c holds exactly the state after records [0, m). */
static int same_as_prefix(aidb_collection* c, int m) {
  aidb_collection* ref = open_coll(NULL, 1024);
  for (int k = 0; k < m; ++k) apply_record(ref, k);
  uint64_t n1 = 0, n2 = 0;
  aidb_collection_count(c, &n1, NULL);
  aidb_collection_count(ref, &n2, NULL);
  int ok = n1 == n2;
  for (int k = 0; ok && k < NREC; ++k) {
    for (int j = 0; ok && j < 3; ++j) {
      int i = j == 0 ? k : 100 * k + j - 1;
      if (j > 0 && k % 4 != 2) break;
      char id[40];
      make_id(i, id);
      float a[DIM], b[DIM];
      char *pa = NULL, *pb = NULL;
      int ra = aidb_collection_get(c, id, a, DIM, &pa, NULL);
      int rb = aidb_collection_get(ref, id, b, DIM, &pb, NULL);
      if (ra != rb) ok = 0;
      else if (ra == AIDB_OK) {
        if (memcmp(a, b, sizeof a) != 0) ok = 0;
        if ((pa == NULL) != (pb == NULL) || (pa && strcmp(pa, pb) != 0)) ok = 0;
      }
      aidb_free(pa);
      aidb_free(pb);
    }
  }
  aidb_collection_close(ref);
  return ok;
}

/* Record offsets of a WAL image. */
static int record_offsets(const char* b, size_t len, size_t* offs) {
  size_t pos = 0;
  int n = 0;
  while (pos + 28 <= len) {
    uint32_t l;
    memcpy(&l, b + pos + 4, 4);
    offs[n++] = pos;
    pos += 28 + l;
  }
  offs[n] = pos;
  return n;
}

/* Recovers a damaged WAL image; checks the documented outcome. `damaged_rec`
 * is the index of the first damaged record (NREC: none, a cut), `offs` the
 * record offsets of the intact file. Returns 1 if it reported corruption. */
static int check_wal_image(const char* wal, const char* img, size_t len, int damaged_rec,
                           const size_t* offs, uint64_t thr) {
  write_file(wal, img, len);
  ++cases;
  aidb_collection* c = open_coll(wal, thr);
  if (!c) {
    fail("open failed");
    return 0;
  }
  aidb_recover_stats st;
  aidb_recover_stats_init(&st);
  char* err = NULL;
  int rc = aidb_recover(c, NULL, &st, &err);
  int corrupt = 0;
  if (rc == AIDB_CORRUPTION) {
    corrupt = 1;
    char want[64];
    snprintf(want, sizeof want, "offset %zu", offs[damaged_rec < NREC ? damaged_rec : 0]);
    if (damaged_rec < NREC && (!err || !strstr(err, want)))
      fail("corruption message lacks '%s': %s", want, err ? err : "");
    if (!same_as_prefix(c, 0)) fail("state changed by a failed recovery");
    uint64_t recs = 0;
    if (aidb_wal_verify(wal, &recs, NULL, NULL) != AIDB_CORRUPTION)
      fail("aidb_wal_verify missed the corruption");
  } else if (rc == AIDB_OK) {
    /* Torn tail: the state is a prefix, exactly the records before the damage. */
    int m = (int)st.records_applied;
    if (damaged_rec < NREC && m != damaged_rec)
      fail("recovered %d records, damage is in record %d", m, damaged_rec);
    if (damaged_rec < NREC && damaged_rec != NREC - 1) {
      fail("damage in record %d of %d recovered as a torn tail (only the last record may be)",
           damaged_rec, NREC);
    }
    if (!same_as_prefix(c, m)) fail("recovered state is not the first %d records", m);
  } else {
    fail("recover returned %s: %s", aidb_status_name(rc), err ? err : "");
  }
  aidb_free(err);
  aidb_collection_close(c);
  return corrupt;
}

/* CRC32C (Castagnoli), bitwise, and LevelDB's mask, as src/storage/wal.h uses. */
static uint32_t crc32c(const void* data, size_t n) {
  const unsigned char* p = data;
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1u)));
  }
  return ~c;
}
static uint32_t crc_mask(uint32_t c) { return ((c >> 15) | (c << 17)) + 0xa282ead8u; }

/* A WAL record with a valid checksum around an arbitrary body. */
static size_t craft_record(unsigned char* out, uint64_t lsn, uint8_t op, const void* body,
                           uint32_t len) {
  memset(out, 0, 28);
  memcpy(out + 4, &len, 4);
  memcpy(out + 8, &lsn, 8);
  uint64_t ts = 1700000000000000000ull + lsn;
  memcpy(out + 16, &ts, 8);
  out[24] = op;
  memcpy(out + 28, body, len);
  uint32_t c = crc_mask(crc32c(out + 4, 24 + len));
  memcpy(out, &c, 4);
  return 28 + len;
}

/* Records whose checksum is valid but whose body lies (the engine never
 * writes them; a bug or a crafted file could): recovery must report
 * corruption, not allocate what the count field claims. Each case runs in a
 * child with a 1 GiB address-space limit, so an allocation sized from the
 * lying count fails (NO_MEMORY) instead of exhausting the machine. The
 * message must name the record's offset. */
static void crafted_record_tests(const char* root) {
  struct {
    const char* name;
    uint8_t op;
    uint32_t words[6];
    uint32_t len;
  } cases_[] = {
      {"upsert claiming 2^30 points", 1, {1u << 30, DIM, 0, 0, 0, 0}, 24},
      {"upsert claiming 2^32-1 points", 1, {0xffffffffu, DIM, 0, 0, 0, 0}, 16},
      {"upsert of another dimension", 1, {1, 1000, 0, 0, 0, 0}, 24},
      {"delete claiming 2^31 ids", 2, {1u << 31, 0, 0, 0, 0, 0}, 8},
      {"unknown op 77", 77, {0, 0, 0, 0, 0, 0}, 8},
  };
  char wal[4200];
  snprintf(wal, sizeof wal, "%s/crafted.log", root);
  for (size_t k = 0; k < sizeof cases_ / sizeof cases_[0]; ++k) {
    snprintf(g_case, sizeof g_case, "WAL with a checksummed %s", cases_[k].name);
    unsigned char rec[128];
    size_t n = craft_record(rec, 1, cases_[k].op, cases_[k].words, cases_[k].len);
    write_file(wal, rec, n);
    char lsn[4300];
    snprintf(lsn, sizeof lsn, "%s.lsn", wal);
    unlink(lsn);
    ++cases;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
      struct rlimit rl = {1ul << 30, 1ul << 30};
      setrlimit(RLIMIT_AS, &rl);
      aidb_collection* c = open_coll(wal, 1024);
      char* err = NULL;
      int rc = c ? aidb_recover(c, NULL, NULL, &err) : -1;
      printf("WAL %-32s -> %s: %s\n", cases_[k].name, aidb_status_name(rc), err ? err : "");
      fflush(stdout);
      /* Corruption names the record's offset, as checksum failures do. */
      _exit(rc == AIDB_CORRUPTION && err && strstr(err, "offset 0") ? 0 : 1);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
      fail("recovery did not report CORRUPTION (child status %d)", st);
  }
}

static void wal_tests(const char* root) {
  char wal[4200], wal2[4300];
  snprintf(wal, sizeof wal, "%s/wal.log", root);
  snprintf(wal2, sizeof wal2, "%s/damaged.log", root);
  unlink(wal);
  char lsn[4300];
  snprintf(lsn, sizeof lsn, "%s.lsn", wal);
  unlink(lsn);
  aidb_collection* c = open_coll(wal, 1024);
  for (int k = 0; k < NREC; ++k) {
    if (apply_record(c, k) != AIDB_OK) fail("building the WAL: record %d", k);
  }
  aidb_collection_close(c);
  size_t len = 0;
  char* good = read_file(wal, &len);
  size_t offs[NREC + 2];
  int n = record_offsets(good, len, offs);
  if (n != NREC || offs[n] != len) {
    fail("unexpected WAL layout: %d records, %zu of %zu bytes", n, offs[n], len);
    return;
  }
  char* img = malloc(len + 4096);
  int flips = 0, corrupt_reports = 0, torn = 0;
  /* Field offsets inside a record: CRC, length (low and high byte), LSN, timestamp, op, reserved,
   * body. */
  const int recs[] = {0, 1, NREC / 2, NREC - 2, NREC - 1};
  for (int t = 0; t < 2; ++t) {
    uint64_t thr = t ? 1024 : (uint64_t)1 << 40;
    for (size_t ri = 0; ri < sizeof recs / sizeof recs[0]; ++ri) {
      int r = recs[ri];
      size_t body = offs[r + 1] - offs[r] - 28;
      size_t fields[] = {
          0, 3, 4, 5, 7, 8, 15, 16, 23, 24, 25, 27, 28, 28 + body / 2, 28 + body - 1};
      for (size_t fi = 0; fi < sizeof fields / sizeof fields[0]; ++fi) {
        for (int x = 0; x < 2; ++x) {
          const unsigned char mask = x ? 0x80 : 0x01;
          memcpy(img, good, len);
          img[offs[r] + fields[fi]] ^= (char)mask;
          snprintf(g_case, sizeof g_case, "WAL %s: record %d byte %zu ^0x%02x", t ? "mmap" : "read",
                   r, fields[fi], mask);
          int cr = check_wal_image(wal2, img, len, r, offs, thr);
          ++flips;
          corrupt_reports += cr;
          torn += !cr;
        }
      }
    }
  }
  printf("WAL flips: %d cases, %d corruption reports, %d torn tails (last record only)\n", flips,
         corrupt_reports, torn);
  /* A cut at every byte offset: a torn tail, the state of the whole records before it. */
  int cuts = 0;
  for (size_t cut = 0; cut < len; ++cut) {
    int whole = 0;
    while (whole < NREC && offs[whole + 1] <= cut) ++whole;
    snprintf(g_case, sizeof g_case, "WAL cut at %zu", cut);
    write_file(wal2, good, cut);
    aidb_collection* cc = open_coll(wal2, cut % 2 ? 1024 : (uint64_t)1 << 40);
    aidb_recover_stats st;
    aidb_recover_stats_init(&st);
    char* err = NULL;
    int rc = aidb_recover(cc, NULL, &st, &err);
    ++cases;
    ++cuts;
    if (rc != AIDB_OK) fail("recover: %s %s", aidb_status_name(rc), err ? err : "");
    else {
      if ((int)st.records_applied != whole)
        fail("applied %llu records, want %d", (unsigned long long)st.records_applied, whole);
      if (st.torn_tail != (cut != offs[whole])) fail("torn_tail %d", st.torn_tail);
      if (!same_as_prefix(cc, whole)) fail("state is not the first %d records", whole);
      /* And the file was cut back to the whole records, so appends continue. */
      struct stat sb;
      stat(wal2, &sb);
      if ((size_t)sb.st_size != offs[whole])
        fail("file is %lld bytes after recovery, want %zu", (long long)sb.st_size, offs[whole]);
    }
    aidb_free(err);
    aidb_collection_close(cc);
  }
  printf("WAL cuts: %d offsets, each a torn tail with the whole records before it\n", cuts);
  /* Foreign files and appended garbage. */
  struct {
    const char* name;
    size_t len;
    int kind;
  } foreign[] = {{"text", 300, 0},          {"zeros", 4096, 1},
                 {"random", 2000, 2},       {"garbage appended", 500, 3},
                 {"record repeated", 0, 4}, {"0xff", 64, 5}};
  for (size_t f = 0; f < sizeof foreign / sizeof foreign[0]; ++f) {
    size_t fl = foreign[f].len;
    int first_bad = 0;
    srand(7);
    switch (foreign[f].kind) {
      case 0:
        for (size_t i = 0; i < fl; ++i)
          img[i] = "The quick brown fox jumps over the lazy dog. "[i % 45];
        break;
      case 1: memset(img, 0, fl); break;
      case 2:
        for (size_t i = 0; i < fl; ++i) img[i] = (char)rand();
        break;
      case 3:
        memcpy(img, good, len);
        for (size_t i = 0; i < fl; ++i) img[len + i] = (char)rand();
        fl += len;
        first_bad = NREC;
        break;
      case 4: /* the last record twice: LSN does not increase */
        memcpy(img, good, len);
        memcpy(img + len, good + offs[NREC - 1], len - offs[NREC - 1]);
        fl = len + (len - offs[NREC - 1]);
        first_bad = NREC;
        break;
      case 5: memset(img, 0xff, fl); break;
    }
    snprintf(g_case, sizeof g_case, "WAL foreign file: %s", foreign[f].name);
    write_file(wal2, img, fl);
    aidb_collection* cc = open_coll(wal2, 1024);
    aidb_recover_stats st;
    aidb_recover_stats_init(&st);
    char* err = NULL;
    int rc = aidb_recover(cc, NULL, &st, &err);
    ++cases;
    if (rc == AIDB_CORRUPTION) {
      if (!err || !strstr(err, "offset")) fail("corruption without an offset: %s", err ? err : "");
      if (!same_as_prefix(cc, 0)) fail("state changed by a failed recovery");
    } else if (rc == AIDB_OK) {
      /* Zeros only read as preallocated space (src/storage/log_format.h): a
       * clean, empty log. Anything else foreign is damage. */
      const int zeros = foreign[f].kind == 1;
      if (!st.torn_tail && fl > 0 && !zeros) fail("accepted as a clean WAL");
      if (zeros && st.torn_tail) fail("zeros reported as a torn tail");
      if (!same_as_prefix(cc, first_bad ? (int)st.records_applied : 0) ||
          (int)st.records_applied != first_bad) {
        fail("recovered %llu records, want %d", (unsigned long long)st.records_applied, first_bad);
      }
    } else {
      fail("recover returned %s", aidb_status_name(rc));
    }
    printf("WAL %-18s -> %s%s%s\n", foreign[f].name, aidb_status_name(rc),
           rc == AIDB_OK ? (st.torn_tail ? " (torn tail)" : " (clean end)") : ": ",
           rc == AIDB_OK ? "" : (err ? err : ""));
    aidb_free(err);
    aidb_collection_close(cc);
  }
  free(img);
  free(good);
}

static void snapshot_tests(const char* root, int hnsw) {
  char wal[4200], snap[4200], bad[4200];
  snprintf(wal, sizeof wal, "%s/snapwal-%d.log", root, hnsw);
  snprintf(snap, sizeof snap, "%s/good-%d.aidbsnap", root, hnsw);
  snprintf(bad, sizeof bad, "%s/bad.aidbsnap", root);
  unlink(wal);
  aidb_collection_options o;
  aidb_collection_options_init(&o);
  o.name = "snaps";
  o.dim = DIM;
  o.index_kind = hnsw ? AIDB_INDEX_HNSW : AIDB_INDEX_FLAT;
  o.wal_path = wal;
  aidb_collection* c = NULL;
  if (aidb_collection_open(&o, &c, NULL) != AIDB_OK) {
    fail("open");
    return;
  }
  for (int k = 0; k < NREC; ++k) apply_record(c, k);
  for (int i = 0; i < 300; ++i) {
    char id[40];
    float v[DIM];
    make_id(5000 + i, id);
    make_vec(5000 + i, v);
    aidb_collection_upsert(c, id, v, DIM, i % 3 ? "{\"x\":1}" : NULL, (size_t)-1, NULL);
  }
  if (aidb_collection_snapshot_to(c, snap, NULL) != AIDB_OK) fail("snapshot_to");
  char id[40];
  float v[DIM];
  make_id(99999, id);
  make_vec(1, v);
  aidb_collection_upsert(c, id, v, DIM, NULL, 0, NULL); /* the state we must keep */
  uint64_t before = 0;
  aidb_collection_count(c, &before, NULL);
  size_t len = 0;
  char* good = read_file(snap, &len);
  char* img = malloc(len + 64);
  size_t spots[] = {0,  7,  8,  11, 12, 15, 16,  20,      23,      24,          27,      28,     31,
                    32, 36, 39, 40, 48, 64, 100, len / 4, len / 2, 3 * len / 4, len - 9, len - 1};
  int n_flip = 0, n_cut = 0, n_foreign = 0;
  for (size_t s = 0; s < sizeof spots / sizeof spots[0] * 3 + 6; ++s) {
    size_t il = len;
    const char* what;
    char desc[128];
    memcpy(img, good, len);
    size_t ns = sizeof spots / sizeof spots[0];
    if (s < ns * 2) {
      size_t at = spots[s % ns];
      unsigned char mask = s < ns ? 0x01 : 0x80;
      img[at] ^= (char)mask;
      snprintf(desc, sizeof desc, "byte %zu ^0x%02x", at, mask);
      ++n_flip;
    } else if (s < ns * 3) {
      il = spots[s - 2 * ns];
      snprintf(desc, sizeof desc, "cut at %zu", il);
      ++n_cut;
    } else {
      int k = (int)(s - ns * 3);
      ++n_foreign;
      switch (k) {
        case 0:
          il = 0;
          what = "empty";
          break;
        case 1:
          memset(img, 0, len);
          what = "zeros";
          break;
        case 2:
          for (size_t i = 0; i < len; ++i) img[i] = (char)rand();
          what = "random";
          break;
        case 3:
          memcpy(img + 8, "\x02\0\0\0", 4);
          what = "version 2";
          break;
        case 4:
          il = len + 8;
          memset(img + len, 0, 8);
          what = "8 bytes appended";
          break;
        default: {
          size_t wl = 0;
          char* w = read_file(wal, &wl);
          memcpy(img, w, wl < len ? wl : len);
          il = wl < len ? wl : len;
          free(w);
          what = "a WAL file";
        }
      }
      snprintf(desc, sizeof desc, "foreign: %s", what);
    }
    snprintf(g_case, sizeof g_case, "%s snapshot %s", hnsw ? "hnsw" : "flat", desc);
    write_file(bad, img, il);
    ++cases;
    char* err = NULL;
    int rc = aidb_collection_load_snapshot(c, bad, &err);
    if (rc != AIDB_CORRUPTION)
      fail("load_snapshot returned %s: %s", aidb_status_name(rc), err ? err : "");
    aidb_free(err);
    err = NULL;
    aidb_snapshot_info info;
    rc = aidb_snapshot_verify(bad, &info, &err);
    if (rc != AIDB_CORRUPTION)
      fail("aidb_snapshot_verify returned %s: %s", aidb_status_name(rc), err ? err : "");
    aidb_free(err);
    uint64_t now = 0;
    aidb_collection_count(c, &now, NULL);
    if (now != before)
      fail("state changed: %llu points, had %llu", (unsigned long long)now,
           (unsigned long long)before);
  }
  /* The intact file still loads. */
  snprintf(g_case, sizeof g_case, "%s snapshot intact", hnsw ? "hnsw" : "flat");
  if (aidb_collection_load_snapshot(c, snap, NULL) != AIDB_OK)
    fail("intact snapshot does not load");
  printf("%s snapshot: %d flips, %d cuts, %d foreign files: all CORRUPTION, state kept\n",
         hnsw ? "hnsw" : "flat", n_flip, n_cut, n_foreign);
  aidb_collection_close(c);
  free(img);
  free(good);
}

/* Runs `aidb verify DIR`; returns its exit code and output. */
static int run_verify(const char* cli, const char* dir, char* out, size_t cap) {
  char cmd[9000];
  snprintf(cmd, sizeof cmd, "'%s' verify '%s' 2>&1", cli, dir);
  FILE* p = popen(cmd, "r");
  size_t n = fread(out, 1, cap - 1, p);
  out[n] = 0;
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void verify_cli_tests(const char* root, const char* cli) {
  char dir[4200];
  snprintf(dir, sizeof dir, "%s/verifydb", root);
  char cmd[4300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) return;
  aidb_db* db = NULL;
  if (aidb_db_open(dir, NULL, &db, NULL) != AIDB_OK) {
    fail("db open");
    return;
  }
  const char* names[] = {"alpha", "beta"};
  for (int n = 0; n < 2; ++n) {
    aidb_collection_options o;
    aidb_collection_options_init(&o);
    o.name = names[n];
    o.dim = DIM;
    aidb_collection* c = NULL;
    aidb_db_create_collection(db, &o, &c, NULL);
    for (int k = 0; k < NREC; ++k) apply_record(c, k);
    aidb_db_snapshot(db, names[n], NULL, NULL);
    for (int k = 0; k < NREC; ++k) apply_record(c, k + 1000);
    aidb_collection_close(c);
  }
  aidb_db_close(db);
  static char out[65536];
  snprintf(g_case, sizeof g_case, "aidb verify, intact");
  ++cases;
  int rc = run_verify(cli, dir, out, sizeof out);
  if (rc != 0) fail("exit %d on an intact directory:\n%s", rc, out);

  char wal[4400], snapdir[4400];
  snprintf(wal, sizeof wal, "%s/beta/wal.log", dir);
  snprintf(snapdir, sizeof snapdir, "%s/alpha/snapshots", dir);
  size_t wl = 0;
  char* wgood = read_file(wal, &wl);
  size_t offs[NREC + 4];
  int nrec = record_offsets(wgood, wl, offs);
  char snap[4600] = "";
  char ls[4500];
  snprintf(ls, sizeof ls, "ls '%s' | grep -v tmp | head -1", snapdir);
  FILE* p = popen(ls, "r");
  char fname[512] = "";
  if (p && fgets(fname, sizeof fname, p)) {
    fname[strcspn(fname, "\n")] = 0;
    snprintf(snap, sizeof snap, "%s/%s", snapdir, fname);
  }
  if (p) pclose(p);
  size_t sl = 0;
  char* sgood = snap[0] ? read_file(snap, &sl) : NULL;
  if (!sgood || nrec < 3) {
    fail("could not find the database's files (%d records, snapshot '%s')", nrec, snap);
    return;
  }
  int found = 0, total = 0;
  /* Damage each in turn: WAL fields of a middle record, snapshot bytes, a cut
   * snapshot, a foreign file among the snapshots. */
  for (int d = 0; d < 12; ++d) {
    char* img = malloc(wl > sl ? wl + 16 : sl + 16);
    const char* target = NULL;
    size_t il = 0;
    char desc[128];
    if (d < 7) {
      size_t fields[] = {0, 4, 8, 16, 24, 26, 40};
      memcpy(img, wgood, wl);
      img[offs[1] + fields[d]] ^= 0x04;
      target = wal;
      il = wl;
      snprintf(desc, sizeof desc, "WAL record 1 byte %zu flipped", fields[d]);
    } else if (d < 10) {
      size_t at[] = {5, 30, sl / 2};
      memcpy(img, sgood, sl);
      img[at[d - 7]] ^= 0x10;
      target = snap;
      il = sl;
      snprintf(desc, sizeof desc, "snapshot byte %zu flipped", at[d - 7]);
    } else if (d == 10) {
      memcpy(img, sgood, sl);
      target = snap;
      il = sl / 3;
      snprintf(desc, sizeof desc, "snapshot cut to %zu bytes", il);
    } else {
      static char foreign[4700];
      snprintf(foreign, sizeof foreign, "%s/snap-99999999999999999999-1.aidbsnap", snapdir);
      target = foreign;
      memcpy(img, "#!/bin/sh\necho not a snapshot\n", 31);
      il = 31;
      snprintf(desc, sizeof desc, "foreign file among the snapshots");
    }
    write_file(target, img, il);
    snprintf(g_case, sizeof g_case, "aidb verify, %s", desc);
    ++cases;
    ++total;
    rc = run_verify(cli, dir, out, sizeof out);
    if (rc == 0 || !strstr(out, "FAIL") || !strstr(out, target)) {
      fail("not found (exit %d):\n%s", rc, out);
    } else {
      ++found;
    }
    /* restore */
    if (d < 7) write_file(wal, wgood, wl);
    else if (d < 11) write_file(snap, sgood, sl);
    else unlink(target);
    free(img);
  }
  snprintf(g_case, sizeof g_case, "aidb verify, restored");
  if (run_verify(cli, dir, out, sizeof out) != 0)
    fail("exit non-zero after restoring the files:\n%s", out);
  printf("aidb verify: found %d of %d damaged files\n", found, total);
  free(wgood);
  free(sgood);
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s DIR [AIDB_CLI]\n", argv[0]);
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  mkdir(argv[1], 0755);
  wal_tests(argv[1]);
  crafted_record_tests(argv[1]);
  snapshot_tests(argv[1], 0);
  snapshot_tests(argv[1], 1);
  if (argc > 2) verify_cli_tests(argv[1], argv[2]);
  else printf("aidb verify: skipped (no CLI path given)\n");
  printf("corruption_test: %d case(s), %d failure(s)\n", cases, failures);
  return failures ? 1 : 0;
}
