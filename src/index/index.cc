#include "index/index.h"

#include "index/flat.h"
#include "index/ivf.h"
#if __has_include("index/hnsw.h")
#include "index/hnsw.h"
#define AIDB_HAVE_HNSW 1
#endif

namespace aidb::index {

Status CreateIndex(const IndexConfig& config, std::unique_ptr<VectorIndex>* out) {
  switch (config.kind) {
    case IndexKind::kFlat: *out = std::make_unique<FlatIndex>(config); return Status::OK();
    case IndexKind::kHnsw:
#ifdef AIDB_HAVE_HNSW
      *out = std::make_unique<HnswIndex>(config);
      return Status::OK();
#else
      return Status::Unsupported("HNSW index is not built in");
#endif
    case IndexKind::kIvf: *out = std::make_unique<IvfIndex>(config); return Status::OK();
  }
  return Status::InvalidArgument("unknown index kind");
}

}  // namespace aidb::index
