// Generated data sets for the index and engine tests.
#pragma once

#include <algorithm>
#include <cstdint>
#include <random>
#include <set>
#include <vector>

#include "index/index.h"

namespace aidb::index::testing {

// An HNSW index config with the given parameters (ef_search 0: adaptive).
inline IndexConfig Hnsw(uint32_t dim, Metric metric, uint32_t m = 16, uint32_t efc = 200) {
  IndexConfig c;
  c.dim = dim;
  c.metric = metric;
  c.kind = IndexKind::kHnsw;
  c.hnsw.m = m;
  c.hnsw.ef_construction = efc;
  c.hnsw.ef_search = 0;
  return c;
}

// n points around `clusters` random centres (typical embedding data: a few
// hundred dims, clustered), row-major.
inline std::vector<float> Clustered(size_t n, uint32_t dim, uint32_t clusters, uint32_t seed,
                                    float spread = 0.35f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> centres(static_cast<size_t>(clusters) * dim);
  for (auto& c : centres) c = nd(rng);
  std::vector<float> out(n * dim);
  std::uniform_int_distribution<uint32_t> pick(0, clusters - 1);
  for (size_t i = 0; i < n; ++i) {
    const float* c = centres.data() + static_cast<size_t>(pick(rng)) * dim;
    for (uint32_t j = 0; j < dim; ++j) out[i * dim + j] = c[j] + spread * nd(rng);
  }
  return out;
}

// recall@k of `got` against `truth` (slots).
inline double Recall(const std::vector<Hit>& got, const std::vector<Hit>& truth) {
  if (truth.empty()) return got.empty() ? 1.0 : 0.0;
  std::set<uint32_t> t;
  for (const Hit& h : truth) t.insert(h.slot);
  size_t hit = 0;
  for (const Hit& h : got) hit += t.count(h.slot);
  return static_cast<double>(hit) / static_cast<double>(truth.size());
}

}  // namespace aidb::index::testing
