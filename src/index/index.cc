#include "index/index.h"

#include "index/flat.h"
#include "index/ivf.h"
#include "index/vector_file.h"
#if __has_include("index/hnsw.h")
#include "index/hnsw.h"
#define AIDB_HAVE_HNSW 1
#endif

namespace aidb::index {

Status VectorIndex::SearchBatch(const float* queries, size_t nq, const SearchParams& params,
                                std::vector<std::vector<Hit>>* out) const {
  out->resize(nq);
  const size_t dim = config().dim;
  for (size_t i = 0; i < nq; ++i)
    AIDB_RETURN_IF_ERROR(Search(queries + i * dim, params, &(*out)[i]));
  return Status::OK();
}

Status CreateIndex(const IndexConfig& config, const std::string& vectors_path,
                   std::unique_ptr<VectorIndex>* out) {
  std::unique_ptr<VectorFile> vectors;
  if (config.vectors_on_disk) {
    if (vectors_path.empty()) {
      return Status::InvalidArgument(
          "vectors_on_disk needs a file for the vectors: give the collection a wal_path");
    }
    AIDB_RETURN_IF_ERROR(VectorFile::Create(vectors_path, &vectors));
  }
  switch (config.kind) {
    case IndexKind::kFlat:
      *out = std::make_unique<FlatIndex>(config, std::move(vectors));
      return Status::OK();
    case IndexKind::kHnsw:
#ifdef AIDB_HAVE_HNSW
      *out = std::make_unique<HnswIndex>(config, HnswTuning(), std::move(vectors));
      return Status::OK();
#else
      return Status::Unsupported("HNSW index is not built in");
#endif
    case IndexKind::kIvf:
      *out = std::make_unique<IvfIndex>(config, IvfTuning(), std::move(vectors));
      return Status::OK();
  }
  return Status::InvalidArgument("unknown index kind");
}

}  // namespace aidb::index
