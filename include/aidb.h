/*
 * aidb.h -- the public C API of AIDB, an embedded vector database engine.
 *
 * Only what is declared in this header is API. Everything else in the library
 * (C++ classes, the Cap'n Proto snapshot schema, internal symbols) may change in
 * any release.
 *
 * Conventions
 *  1. Objects are opaque handles (aidb_db, aidb_collection, aidb_search_result,
 *     aidb_wal_iterator). Each has exactly one destructor; destructors accept NULL.
 *  2. Every fallible function returns an int status: AIDB_OK (0) on success, or one
 *     of the AIDB_* codes below. More codes may be added in later versions; callers
 *     must treat unknown non-zero codes as errors (aidb_status_name() names them).
 *  3. The last parameter of a fallible function is `char** errmsg`. It may be NULL.
 *     When it is not NULL and the call fails, *errmsg receives a NUL-terminated
 *     message allocated by the library, which the caller frees with aidb_free().
 *     On success *errmsg is left untouched. There is no thread-local "last error".
 *  4. Strings are NUL-terminated UTF-8 unless a length is passed beside them.
 *     Point ids are textual UUIDs ("8-4-4-4-12" hex digits, either case, optionally
 *     wrapped in braces or prefixed with "urn:uuid:"); the library always answers
 *     with the canonical lower-case 36-character form.
 *  5. Options structs start with `struct_size` and are initialised by their
 *     aidb_*_init() function, so fields can be appended without breaking callers
 *     compiled against an older header. Pass NULL for defaults where documented.
 *  6. Memory returned by the library is freed with the documented function
 *     (aidb_free, aidb_free_string_array, aidb_search_result_free, ...); the
 *     library never frees memory the caller allocated.
 *  7. All functions are thread-safe: any number of threads may use one database
 *     or collection at once. Handles must not be used after their destructor ran.
 *  8. NULL where a handle or required pointer is expected returns AIDB_MISUSE.
 *  9. No function throws, aborts on bad input or touches process-wide signals.
 *
 * Linking: `pkg-config --cflags --libs aidb`, CMake `find_package(aidb)` with target
 * `aidb::aidb`, or dlopen("libaidb.so.<AIDB_ABI_VERSION>") and dlsym.
 */
#ifndef AIDB_H
#define AIDB_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define AIDB_EXPORT __declspec(dllimport)
#elif defined(__GNUC__)
#define AIDB_EXPORT __attribute__((visibility("default")))
#else
#define AIDB_EXPORT
#endif

/* ------------------------------------------------------------------------- */
/* Versions                                                                  */
/* ------------------------------------------------------------------------- */

#define AIDB_VERSION_MAJOR 0
#define AIDB_VERSION_MINOR 1
#define AIDB_VERSION_PATCH 0
#define AIDB_VERSION "0.1.0"
/* X*1000000 + Y*1000 + Z */
#define AIDB_VERSION_NUMBER \
  (AIDB_VERSION_MAJOR * 1000000 + AIDB_VERSION_MINOR * 1000 + AIDB_VERSION_PATCH)
/* The ABI major version; the shared library's SONAME is libaidb.so.<this>. */
#define AIDB_ABI_VERSION 0

/* The version of the loaded library, e.g. "0.1.0". Static storage. */
AIDB_EXPORT const char* aidb_version(void);
/* The version of the loaded library as X*1000000 + Y*1000 + Z. */
AIDB_EXPORT int aidb_version_number(void);

/* ------------------------------------------------------------------------- */
/* Status codes                                                              */
/* ------------------------------------------------------------------------- */

enum {
  AIDB_OK = 0,
  AIDB_INVALID_ARGUMENT = 1,   /* malformed input: bad id, NaN, bad JSON, bad name */
  AIDB_NOT_FOUND = 2,          /* no such point, collection or file */
  AIDB_ALREADY_EXISTS = 3,     /* a collection with that name exists */
  AIDB_DIMENSION_MISMATCH = 4, /* vector length differs from the collection's dim */
  AIDB_IO_ERROR = 5,           /* a read, write, fsync, rename or truncate failed */
  AIDB_CORRUPTION = 6,         /* a checksum or format check failed on stored data */
  AIDB_MISUSE = 7,             /* NULL handle/pointer, wrong struct_size, closed */
  AIDB_NO_MEMORY = 8,          /* allocation failed */
  AIDB_UNSUPPORTED = 9,        /* valid request the build or index cannot serve */
  AIDB_INTERNAL = 10,          /* a bug: please report it */
  AIDB_BUSY = 11               /* nonblocking call found a lock taken: retry (see
                                * aidb_search_options.nonblocking); nothing changed */
};

/* A static name for a status code ("OK", "INVALID_ARGUMENT", ...; "UNKNOWN"). */
AIDB_EXPORT const char* aidb_status_name(int status);

/* Frees memory the library handed out (error messages, payload strings). NULL ok. */
AIDB_EXPORT void aidb_free(void* ptr);

/* Frees an array of `count` strings and the array itself. NULL ok. */
AIDB_EXPORT void aidb_free_string_array(char** strings, size_t count);

/* ------------------------------------------------------------------------- */
/* Enumerations                                                              */
/* ------------------------------------------------------------------------- */

/* Metrics. Scores are "higher is better": cosine similarity, negative L2
 * distance (-||a-b||, not squared), dot product. */
enum { AIDB_METRIC_COSINE = 0, AIDB_METRIC_EUCLIDEAN = 1, AIDB_METRIC_DOT = 2 };

/* Index kinds. FLAT is exact; HNSW is approximate (m, ef_construction, ef_search). */
enum { AIDB_INDEX_FLAT = 0, AIDB_INDEX_HNSW = 1 };

/* When a mutating call returns:
 *  FSYNC - after its WAL record is on disk (fdatasync; default). Concurrent
 *          writers share one sync (group commit).
 *  BATCH - after the record is written to the page cache; a sync runs at most
 *          every `batch_interval_ms`. A crash may lose the last interval.
 *  NONE  - after the record is written to the page cache; never synced by AIDB. */
enum { AIDB_DURABILITY_FSYNC = 0, AIDB_DURABILITY_BATCH = 1, AIDB_DURABILITY_NONE = 2 };

/* Parses "cosine", "euclidean" (also "l2"), "dot"; "flat", "hnsw"; "fsync",
 * "batch", "none". Return AIDB_INVALID_ARGUMENT for anything else. */
AIDB_EXPORT int aidb_metric_from_string(const char* name, int* metric, char** errmsg);
AIDB_EXPORT int aidb_index_kind_from_string(const char* name, int* kind, char** errmsg);
AIDB_EXPORT int aidb_durability_from_string(const char* name, int* mode, char** errmsg);
/* Static names: "cosine", "euclidean", "dot"; "flat", "hnsw"; "fsync", ... */
AIDB_EXPORT const char* aidb_metric_name(int metric);
AIDB_EXPORT const char* aidb_index_kind_name(int kind);
AIDB_EXPORT const char* aidb_durability_name(int mode);

/* ------------------------------------------------------------------------- */
/* Logging                                                                   */
/* ------------------------------------------------------------------------- */

enum {
  AIDB_LOG_DEBUG = 0,
  AIDB_LOG_INFO = 1,
  AIDB_LOG_WARN = 2,
  AIDB_LOG_ERROR = 3,
  AIDB_LOG_OFF = 4
};

/* A log event. `target` is e.g. "aidb::storage", `event` e.g. "wal_growth" or
 * "wal_truncated", `fields` a line of space-separated key=value pairs (values
 * with spaces are double-quoted), e.g. `collection=docs size_bytes=67108864`.
 * All strings are valid only during the call. The callback may be called from
 * any thread, concurrently; it must not call back into AIDB. */
typedef void (*aidb_log_fn)(void* user_data, int level, const char* target,
                            const char* event, const char* fields);

/* Sets the process-wide log callback and minimum level (default: no callback,
 * level INFO). Pass fn = NULL to silence the library. */
AIDB_EXPORT void aidb_set_log_callback(aidb_log_fn fn, void* user_data, int min_level);

/* ------------------------------------------------------------------------- */
/* Ids                                                                       */
/* ------------------------------------------------------------------------- */

/* Writes a new random (version 4) UUID in canonical form into out[37]. */
AIDB_EXPORT void aidb_uuid_generate(char out[37]);

/* Checks and canonicalises a textual UUID into out[37]. */
AIDB_EXPORT int aidb_uuid_canonical(const char* id, char out[37], char** errmsg);

/* ------------------------------------------------------------------------- */
/* Collections                                                               */
/* ------------------------------------------------------------------------- */

typedef struct aidb_collection aidb_collection;

typedef struct aidb_collection_options {
  size_t struct_size;          /* sizeof(aidb_collection_options) */
  const char* name;            /* [A-Za-z0-9_-]{1,64}; required */
  uint32_t dim;                /* 1..65536; required */
  int metric;                  /* AIDB_METRIC_*; default COSINE */
  int index_kind;              /* AIDB_INDEX_*; default FLAT */
  uint32_t hnsw_m;             /* HNSW links per node; default 16 */
  uint32_t hnsw_ef_construction; /* default 200 */
  uint32_t hnsw_ef_search;     /* default search breadth; 0 = adapt to k (default) */
  /* Path of the write-ahead log file (created if missing). NULL: the collection
   * is in memory only and mutations are not logged. Ignored by
   * aidb_db_create_collection, which places the WAL in the database directory. */
  const char* wal_path;
  int durability;              /* AIDB_DURABILITY_*; default FSYNC */
  uint32_t batch_interval_ms;  /* for BATCH; default 10 */
  /* WAL files of at least this many bytes are read through mmap during
   * recovery; smaller ones with read(2). Default 1 MiB. */
  uint64_t wal_mmap_threshold;
} aidb_collection_options;

AIDB_EXPORT void aidb_collection_options_init(aidb_collection_options* opts);

/* Opens a standalone collection. If opts->wal_path names an existing WAL, its
 * records are NOT applied yet: call aidb_collection_load_snapshot() and/or
 * aidb_recover() (the runbook's restore workflow). Writes made before
 * aidb_recover() get LSNs after the WAL's last record. */
AIDB_EXPORT int aidb_collection_open(const aidb_collection_options* opts,
                                     aidb_collection** out, char** errmsg);

/* Releases the handle (flushing the WAL in BATCH/NONE modes). NULL ok. A
 * collection owned by a database stays open in it until the database closes.
 * Every call on a handle to a collection that was dropped from its database
 * returns AIDB_NOT_FOUND. */
AIDB_EXPORT void aidb_collection_close(aidb_collection* coll);

typedef struct aidb_collection_info {
  size_t struct_size;
  char name[72];               /* NUL-terminated */
  uint32_t dim;
  int metric;
  int index_kind;
  uint32_t hnsw_m;
  uint32_t hnsw_ef_construction;
  uint32_t hnsw_ef_search;     /* 0 = adapts to k */
  int durability;
  uint64_t count;              /* live points */
} aidb_collection_info;

AIDB_EXPORT void aidb_collection_info_init(aidb_collection_info* info);
AIDB_EXPORT int aidb_collection_get_info(aidb_collection* coll, aidb_collection_info* out,
                                         char** errmsg);
/* The number of live points. */
AIDB_EXPORT int aidb_collection_count(aidb_collection* coll, uint64_t* count, char** errmsg);

/* Changes the default ef_search of an HNSW collection (0 = adapt to k). Logged
 * in the WAL and kept in snapshots. AIDB_UNSUPPORTED for FLAT collections. */
AIDB_EXPORT int aidb_collection_set_ef_search(aidb_collection* coll, uint32_t ef_search,
                                              char** errmsg);

/* ------------------------------------------------------------------------- */
/* Points                                                                    */
/* ------------------------------------------------------------------------- */

/* Inserts or replaces one point. `dim` must equal the collection's dimension;
 * NaN or infinite components are rejected. `payload` is a JSON object or NULL
 * (no payload); `payload_len` is its length in bytes, or (size_t)-1 for
 * NUL-terminated. Returns once durable per the collection's durability mode. */
AIDB_EXPORT int aidb_collection_upsert(aidb_collection* coll, const char* id,
                                       const float* vector, size_t dim,
                                       const char* payload, size_t payload_len,
                                       char** errmsg);

/* Inserts or replaces `n` points atomically: either every point is validated,
 * logged as one WAL record and applied, or nothing changes. `ids` holds n
 * strings; `vectors` n*dim floats, row-major; `payloads` is NULL (no payloads)
 * or holds n NUL-terminated JSON objects, each of which may be NULL. If an id
 * occurs twice, the later point wins. */
AIDB_EXPORT int aidb_collection_upsert_batch(aidb_collection* coll, size_t n,
                                             const char* const* ids, const float* vectors,
                                             size_t dim, const char* const* payloads,
                                             char** errmsg);

/* Deletes a point. AIDB_NOT_FOUND if there is none with that id. */
AIDB_EXPORT int aidb_collection_delete(aidb_collection* coll, const char* id, char** errmsg);

/* Reads a point. `vector_out` (may be NULL) receives `dim` floats: the stored
 * vector (normalised for cosine collections). `payload_out` (may be NULL)
 * receives a malloc'd JSON string to free with aidb_free, or NULL when the
 * point has no payload. AIDB_NOT_FOUND if there is no such point. */
AIDB_EXPORT int aidb_collection_get(aidb_collection* coll, const char* id, float* vector_out,
                                    size_t dim, char** payload_out, char** errmsg);

/* ------------------------------------------------------------------------- */
/* Search                                                                    */
/* ------------------------------------------------------------------------- */

/* Filters are JSON. Short form: {"key": value, ...} (every key equals its value).
 * Full form: {"must": [...], "should": [...], "must_not": [...]} with conditions
 *   {"key": "a.b", "match": {"value": v}}     v a string, number or bool
 *   {"key": "a.b", "match": {"any": [v, ...]}}
 *   {"key": "a.b", "range": {"gt": n, "gte": n, "lt": n, "lte": n}}
 *   {"is_null": {"key": "a.b"}}  (missing or null)
 *   {"is_empty": {"key": "a.b"}} (missing, null or [])
 *   {"has_id": ["uuid", ...]}
 *   and nested {"must"/"should"/"must_not": [...]} clauses.
 * Keys are dotted paths into the payload; a condition on an array matches when
 * any element matches. */
typedef struct aidb_search_options {
  size_t struct_size;
  uint32_t top_k;              /* default 10; 0 returns no hits */
  uint32_t ef_search;          /* HNSW breadth for this query; 0 = collection default */
  const char* filter;          /* JSON filter or NULL */
  int with_payload;            /* non-zero: hits carry payloads (default 1) */
  uint32_t threads;            /* batch search worker threads; 0 = all cores */
  int exact;                   /* non-zero: exact scan even on HNSW collections */
  int nonblocking;             /* non-zero: never wait for a lock; AIDB_BUSY instead
                                * when a writer holds or waits for the collection
                                * (an upsert being applied, snapshot load, restore,
                                * recovery, HNSW compaction), and instead of an
                                * HNSW walk far longer than ef predicts (more than
                                * 64 x ef distance computations: a graph mostly of
                                * deleted points, a filter few points pass). For
                                * event loops: try inline, hand the query to a
                                * worker on AIDB_BUSY.
                                * Default 0 (wait). Since 0.1.0. */
} aidb_search_options;

AIDB_EXPORT void aidb_search_options_init(aidb_search_options* opts);

typedef struct aidb_search_result aidb_search_result;

/* One hit. Pointers are valid until the result is freed. */
typedef struct aidb_hit {
  char id[40];                 /* canonical textual UUID, NUL-terminated */
  float score;                 /* higher is better */
  uint32_t reserved;
  const char* payload;         /* JSON object, NUL-terminated; NULL if none/not asked */
  size_t payload_len;
} aidb_hit;

/* Top-k search for one query of `dim` floats. *out receives a result with one
 * query; free it with aidb_search_result_free. */
AIDB_EXPORT int aidb_collection_search(aidb_collection* coll, const float* query, size_t dim,
                                       const aidb_search_options* opts,
                                       aidb_search_result** out, char** errmsg);

/* Top-k search for `nq` queries (nq*dim floats, row-major), spread over threads. */
AIDB_EXPORT int aidb_collection_search_batch(aidb_collection* coll, const float* queries,
                                             size_t nq, size_t dim,
                                             const aidb_search_options* opts,
                                             aidb_search_result** out, char** errmsg);

/* The number of queries in a result. */
AIDB_EXPORT size_t aidb_search_result_query_count(const aidb_search_result* result);
/* The hits of query `query`, best first: *hits points into the result. */
AIDB_EXPORT int aidb_search_result_hits(const aidb_search_result* result, size_t query,
                                        const aidb_hit** hits, size_t* count);
AIDB_EXPORT void aidb_search_result_free(aidb_search_result* result);

/* ------------------------------------------------------------------------- */
/* Write-ahead log, snapshots and recovery                                   */
/* ------------------------------------------------------------------------- */

/* Writes a Cap'n Proto snapshot of the whole collection (config, ids, vectors,
 * payloads, index graph, last LSN) to `path`, under the write lock: temporary
 * file, fsync, rename, directory fsync, then the WAL is truncated to zero bytes
 * (ftruncate + fsync). Searches keep running; writers wait. On failure at any
 * step returns AIDB_IO_ERROR and the previous state stays recoverable. */
AIDB_EXPORT int aidb_collection_snapshot_to(aidb_collection* coll, const char* path,
                                            char** errmsg);

/* Replaces the in-memory state with the snapshot at `path`. The WAL is left
 * intact: call aidb_recover() to apply records newer than the snapshot, or
 * aidb_collection_snapshot_to() to make the snapshot the new baseline.
 * AIDB_NOT_FOUND (missing file), AIDB_CORRUPTION (bad checksum, truncated or
 * foreign file), AIDB_DIMENSION_MISMATCH (snapshot of another dimension). */
AIDB_EXPORT int aidb_collection_load_snapshot(aidb_collection* coll, const char* path,
                                              char** errmsg);

/* Recovery targets. */
enum { AIDB_RECOVER_LATEST = 0, AIDB_RECOVER_TO_LSN = 1, AIDB_RECOVER_TO_TIME = 2 };

typedef struct aidb_recover_options {
  size_t struct_size;
  int target;                  /* AIDB_RECOVER_*; default LATEST */
  uint64_t lsn;                /* TO_LSN: apply records with LSN <= lsn */
  int64_t timestamp_ns;        /* TO_TIME: apply records written at or before (Unix ns) */
} aidb_recover_options;

AIDB_EXPORT void aidb_recover_options_init(aidb_recover_options* opts);

typedef struct aidb_recover_stats {
  size_t struct_size;
  uint64_t records_applied;    /* records newer than the in-memory state, applied */
  uint64_t records_skipped;    /* already covered by the snapshot, or past the target */
  uint64_t bytes_read;         /* valid WAL bytes scanned */
  uint64_t torn_tail_bytes;    /* bytes of a cut-short last record, dropped */
  uint64_t last_lsn;           /* LSN of the state after recovery */
  int torn_tail;               /* non-zero if a torn tail was dropped */
  int used_mmap;               /* non-zero if the WAL was read through mmap */
} aidb_recover_stats;

AIDB_EXPORT void aidb_recover_stats_init(aidb_recover_stats* stats);

/* Replays the collection's WAL: records with an LSN above the in-memory state's
 * (the loaded snapshot's, or 0) are applied, up to the target. A torn tail (the
 * last record cut short by a crash) is dropped and reported in `stats`, and
 * the file is cut back to its last whole record. A checksum failure before the
 * tail stops the replay with AIDB_CORRUPTION and a message naming the byte
 * offset; the in-memory state is then left as it was before the call.
 * `opts` and `stats` may be NULL. */
AIDB_EXPORT int aidb_recover(aidb_collection* coll, const aidb_recover_options* opts,
                             aidb_recover_stats* stats, char** errmsg);

typedef struct aidb_wal_info {
  size_t struct_size;
  uint64_t size_bytes;           /* current WAL file size */
  int has_last_truncate;         /* 0 until a snapshot truncated the WAL in this process */
  int64_t last_truncate_unix_ns; /* when, if has_last_truncate */
  uint64_t bytes_since_truncate; /* appended since the last truncation or the open */
  uint64_t last_lsn;             /* LSN of the last record written or applied */
} aidb_wal_info;

AIDB_EXPORT void aidb_wal_info_init(aidb_wal_info* info);

/* WAL statistics of a collection (zeros for an in-memory collection). */
AIDB_EXPORT int aidb_wal_stats(aidb_collection* coll, aidb_wal_info* out, char** errmsg);

/* WAL operations as reported by the change feed. */
enum {
  AIDB_WAL_OP_UPSERT = 1,
  AIDB_WAL_OP_DELETE = 2,
  AIDB_WAL_OP_SET_PARAMS = 3
};

typedef struct aidb_wal_entry {
  size_t struct_size;
  uint64_t lsn;
  int64_t timestamp_ns;        /* wall clock at append, Unix ns */
  int op;                      /* AIDB_WAL_OP_* */
  /* The record as a JSON object, e.g. {"lsn":7,"timestamp":"2026-...Z",
   * "op":"upsert","points":[{"id":..,"vector":[..],"payload":{..}}]}.
   * Valid until the next call on the iterator. */
  const char* json;
  size_t json_len;
} aidb_wal_entry;

AIDB_EXPORT void aidb_wal_entry_init(aidb_wal_entry* entry);

typedef struct aidb_wal_iterator aidb_wal_iterator;

/* Iterates the records in the collection's WAL file with LSN >= from_lsn, as of
 * the call (later appends are not seen). Records before the last truncation are
 * gone: they live in the snapshot. */
AIDB_EXPORT int aidb_wal_iterator_open(aidb_collection* coll, uint64_t from_lsn,
                                       aidb_wal_iterator** out, char** errmsg);
/* Fills `entry` and sets *has_entry = 1, or sets *has_entry = 0 at the end.
 * AIDB_CORRUPTION names the offset of a damaged record. */
AIDB_EXPORT int aidb_wal_iterator_next(aidb_wal_iterator* it, aidb_wal_entry* entry,
                                       int* has_entry, char** errmsg);
AIDB_EXPORT void aidb_wal_iterator_close(aidb_wal_iterator* it);

/* Rebuilds index structures to drop deleted points' traces (HNSW tombstones).
 * Cheap no-op for FLAT collections. */
AIDB_EXPORT int aidb_collection_compact(aidb_collection* coll, char** errmsg);

/* ------------------------------------------------------------------------- */
/* Databases: a directory of collections                                     */
/* ------------------------------------------------------------------------- */

/* A database directory holds one folder per collection:
 *   <dir>/<name>/collection.json   configuration
 *   <dir>/<name>/wal.log           write-ahead log
 *   <dir>/<name>/MANIFEST          the snapshot the WAL continues from
 *   <dir>/<name>/snapshots/        snapshots taken with aidb_db_snapshot
 * Opening the database brings every collection back: latest snapshot, then WAL
 * replay. */
typedef struct aidb_db aidb_db;

typedef struct aidb_db_options {
  size_t struct_size;
  int create_if_missing;       /* default 1 */
  int durability;              /* for every collection; default FSYNC */
  uint32_t batch_interval_ms;  /* default 10 */
  uint64_t wal_mmap_threshold; /* default 1 MiB */
} aidb_db_options;

AIDB_EXPORT void aidb_db_options_init(aidb_db_options* opts);

/* Opens (and recovers) a database directory. A collection that cannot be
 * recovered fails the open with its status and a message naming it. */
AIDB_EXPORT int aidb_db_open(const char* dir, const aidb_db_options* opts, aidb_db** out,
                             char** errmsg);
/* Flushes every WAL and closes. Collection handles from this database must be
 * closed first or not used afterwards. NULL ok. */
AIDB_EXPORT void aidb_db_close(aidb_db* db);

/* Creates a collection (opts->wal_path is ignored). `out` may be NULL; when
 * not, it receives a handle to close with aidb_collection_close. */
AIDB_EXPORT int aidb_db_create_collection(aidb_db* db, const aidb_collection_options* opts,
                                          aidb_collection** out, char** errmsg);
/* A new handle to an existing collection. AIDB_NOT_FOUND if there is none. */
AIDB_EXPORT int aidb_db_open_collection(aidb_db* db, const char* name, aidb_collection** out,
                                        char** errmsg);
/* Deletes a collection and its files. Outstanding handles then fail with
 * AIDB_NOT_FOUND. */
AIDB_EXPORT int aidb_db_drop_collection(aidb_db* db, const char* name, char** errmsg);
/* The names of all collections, sorted; free with aidb_free_string_array. */
AIDB_EXPORT int aidb_db_list_collections(aidb_db* db, char*** names, size_t* count,
                                         char** errmsg);

/* Takes a snapshot of a collection into <dir>/<name>/snapshots/ and truncates
 * its WAL. *path_out (may be NULL) receives the file's path (aidb_free). */
AIDB_EXPORT int aidb_db_snapshot(aidb_db* db, const char* name, char** path_out,
                                 char** errmsg);

/* A fixed-layout struct (it is returned in arrays): new fields will come with
 * a new struct and new functions, never by changing this one. */
typedef struct aidb_snapshot_info {
  char path[4096];             /* absolute path, NUL-terminated */
  uint64_t lsn;                /* last LSN the snapshot covers */
  uint64_t size_bytes;
  int64_t created_unix_ns;
  uint64_t count;              /* points in the snapshot */
} aidb_snapshot_info;

/* Lists the snapshots in <dir>/<name>/snapshots/, oldest first. Free *infos
 * with aidb_free. */
AIDB_EXPORT int aidb_db_list_snapshots(aidb_db* db, const char* name,
                                       aidb_snapshot_info** infos, size_t* count,
                                       char** errmsg);

/* The runbook's restore workflow in one call: load the snapshot at `path`
 * (absolute, or relative to <dir>/<name>/snapshots/), replay the WAL records
 * newer than it, then take a new snapshot as the baseline (which truncates the
 * WAL). On failure the collection keeps its previous state. */
AIDB_EXPORT int aidb_db_restore(aidb_db* db, const char* name, const char* path,
                                char** errmsg);

/* Checks a snapshot file (header, checksum, schema) without loading it into a
 * collection. Fills `info` if not NULL. */
AIDB_EXPORT int aidb_snapshot_verify(const char* path, aidb_snapshot_info* info,
                                     char** errmsg);

/* Checks every record checksum in a WAL file without applying it. *records
 * and *valid_bytes (may be NULL) receive the counts. A torn tail is not an error. */
AIDB_EXPORT int aidb_wal_verify(const char* path, uint64_t* records, uint64_t* valid_bytes,
                                char** errmsg);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* AIDB_H */
