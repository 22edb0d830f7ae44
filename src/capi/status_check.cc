// Compile-time ties between the internal enums and their C API values: the
// shim converts with static_cast (aidb_c.cc), so the numbers must agree. A
// code added on one side without the other fails the build here.
#include "aidb.h"
#include "core/config.h"
#include "core/defaults.h"
#include "core/distance.h"
#include "core/log.h"
#include "core/status.h"

namespace aidb {
namespace {

template <typename E>
constexpr int V(E e) {
  return static_cast<int>(e);
}
using C = Status::Code;

static_assert(V(C::kOk) == AIDB_OK);
static_assert(V(C::kInvalidArgument) == AIDB_INVALID_ARGUMENT);
static_assert(V(C::kNotFound) == AIDB_NOT_FOUND);
static_assert(V(C::kAlreadyExists) == AIDB_ALREADY_EXISTS);
static_assert(V(C::kDimensionMismatch) == AIDB_DIMENSION_MISMATCH);
static_assert(V(C::kIOError) == AIDB_IO_ERROR);
static_assert(V(C::kCorruption) == AIDB_CORRUPTION);
static_assert(V(C::kMisuse) == AIDB_MISUSE);
static_assert(V(C::kNoMemory) == AIDB_NO_MEMORY);
static_assert(V(C::kUnsupported) == AIDB_UNSUPPORTED);
static_assert(V(C::kInternal) == AIDB_INTERNAL);
static_assert(V(C::kBusy) == AIDB_BUSY);

static_assert(V(Metric::kCosine) == AIDB_METRIC_COSINE);
static_assert(V(Metric::kEuclidean) == AIDB_METRIC_EUCLIDEAN);
static_assert(V(Metric::kDot) == AIDB_METRIC_DOT);

static_assert(V(IndexKind::kFlat) == AIDB_INDEX_FLAT);
static_assert(V(IndexKind::kHnsw) == AIDB_INDEX_HNSW);
static_assert(V(IndexKind::kIvf) == AIDB_INDEX_IVF);

static_assert(V(Durability::kFsync) == AIDB_DURABILITY_FSYNC);
static_assert(V(Durability::kBatch) == AIDB_DURABILITY_BATCH);
static_assert(V(Durability::kNone) == AIDB_DURABILITY_NONE);

static_assert(V(log::Level::kDebug) == AIDB_LOG_DEBUG);
static_assert(V(log::Level::kInfo) == AIDB_LOG_INFO);
static_assert(V(log::Level::kWarn) == AIDB_LOG_WARN);
static_assert(V(log::Level::kError) == AIDB_LOG_ERROR);
static_assert(V(log::Level::kOff) == AIDB_LOG_OFF);

// The defaults: core/defaults.h is what the engine uses, AIDB_DEFAULT_* what
// the header promises and the *_init functions set.
static_assert(kDefaultHnswM == AIDB_DEFAULT_HNSW_M);
static_assert(kDefaultHnswEfConstruction == AIDB_DEFAULT_HNSW_EF_CONSTRUCTION);
static_assert(kDefaultHnswEfSearch == AIDB_DEFAULT_HNSW_EF_SEARCH);
static_assert(kDefaultTopK == AIDB_DEFAULT_TOP_K);
static_assert(kDefaultBatchIntervalMs == AIDB_DEFAULT_BATCH_INTERVAL_MS);
static_assert(kDefaultWalMmapThreshold == AIDB_DEFAULT_WAL_MMAP_THRESHOLD);

}  // namespace
}  // namespace aidb
