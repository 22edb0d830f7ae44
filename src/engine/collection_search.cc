// Collection: searches, and SearchBatch's worker threads.
#include "engine/collection.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/thread_pool.h"
#include "engine/collection_state.h"

namespace aidb::engine {
namespace {

// Restricts a search to mapped slots matching an optional payload filter.
// With a payload index on a key the filter requires to equal some values, it
// can count and list the candidate slots (the index decides between a graph
// walk and an exact scan of those).
class PointFilter final : public index::SlotFilter {
 public:
  PointFilter(const std::vector<Uuid>& ids, uint32_t nil_slot,
              const std::vector<PayloadSlot>& payloads, const filter::Filter* f,
              PayloadIndexes* pidx)
      : ids_(ids), nil_slot_(nil_slot), payloads_(payloads), filter_(f), pidx_(pidx) {
    if (filter_ != nullptr && pidx_ != nullptr) {
      best_hint_ = pidx_->BestHint(*filter_, payloads_, &estimate_);
    }
  }
  bool Allowed(uint32_t slot) const override {
    if (!SlotMapped(ids_, nil_slot_, slot)) return false;
    return filter_ == nullptr || filter_->Matches(ids_[slot], payloads_[slot]);
  }
  int64_t EstimatedMatches() const override { return estimate_; }
  bool ListMatches(std::vector<uint32_t>* out) const override {
    if (best_hint_ == nullptr) return false;
    pidx_->List(*best_hint_, out);
    return true;
  }

 private:
  const std::vector<Uuid>& ids_;
  const uint32_t nil_slot_;
  const std::vector<PayloadSlot>& payloads_;
  const filter::Filter* filter_;
  PayloadIndexes* pidx_;
  const filter::EqualityHint* best_hint_ = nullptr;
  int64_t estimate_ = -1;
};

// The index ranks by a score, higher better (cosine similarity, -||a-b||, the
// dot product); every interface answers a distance, lower better: 1 - cosine
// similarity (an exact match is 0), ||a-b||, the negated dot product. The
// conversion is decreasing, so the index's best-first order becomes
// ascending. Cosine is clamped to [0, 2] (rounding may leave a normalised
// self-match a hair above 1); "+ 0.f" turns -0 into 0.
float DistanceFromScore(Metric metric, float score) {
  switch (metric) {
    case Metric::kCosine: return std::clamp(1.f - score, 0.f, 2.f);
    case Metric::kEuclidean:
    case Metric::kDot: break;
  }
  return -score + 0.f;
}

// The payload filter of req, null when it matches everything.
const filter::Filter* ActiveFilter(const SearchRequest& req) {
  return req.filter != nullptr && !req.filter->MatchesAll() ? req.filter : nullptr;
}

// The index's parameters for req; `slots` (null: none) restricts the search.
index::SearchParams IndexParams(const SearchRequest& req, const index::SlotFilter* slots) {
  index::SearchParams params;
  params.k = req.top_k;
  params.ef = req.ef_search;
  params.rerank = req.ivf_rerank;
  params.filter = slots;
  params.exact = req.exact;
  params.nonblocking = req.nonblocking;
  return params;
}

// Cosine hits closer than this are scored again from the vectors (below).
constexpr float kCosineRescoreBelow = 1e-3f;

struct HitSource {  // what AppendHits reads of the collection's state
  const std::vector<Uuid>& slot_ids;
  uint32_t nil_slot;
  const std::vector<PayloadSlot>& payloads;
  const index::VectorIndex& index;
  Metric metric;
  size_t dim;
};

// (A template: Collection::State is private, but its type may be deduced.)
template <class State>
HitSource HitsOf(const State& st) {
  return {st.slot_ids,        st.nil_slot, st.payloads, *st.index, st.config.index.metric,
          st.config.index.dim};
}

// Appends an index's hits for `query` to out as ids, distances and (if
// asked) payloads, skipping slots no point maps to any more.
// Cosine: the index ranks by the dot product of unit vectors, and 1 - dot
// keeps only the error of that sum, so the same vector scored about 6e-8
// (more at high dimensions) where the API promises 0. Hits closer than
// kCosineRescoreBelow are scored again as ||q^ - x^||^2 / 2 (equal to
// 1 - cos for unit vectors): exactly 0 for the same vector, and accurate
// for near-duplicates. Those hits are then put in order again (stably), so
// results still ascend.
void AppendHits(const std::vector<index::Hit>& hits, const HitSource& st, const float* query,
                bool with_payload, std::vector<SearchHit>* out) {
  const Metric metric = st.metric;
  const size_t first = out->size();
  out->reserve(first + hits.size());
  // Slots of the hits at the front of this query's results to score again.
  std::vector<uint32_t> rescore;
  for (const index::Hit& h : hits) {
    if (!SlotMapped(st.slot_ids, st.nil_slot, h.slot)) continue;
    SearchHit sh;
    sh.id = st.slot_ids[h.slot];
    sh.score = DistanceFromScore(metric, h.score);
    if (with_payload) sh.payload = st.payloads[h.slot].view();
    if (metric == Metric::kCosine && sh.score < kCosineRescoreBelow &&
        out->size() - first == rescore.size()) {
      rescore.push_back(h.slot);
    }
    out->push_back(std::move(sh));
  }
  if (rescore.empty()) return;
  const size_t dim = st.dim;
  std::vector<float> qn(query, query + dim), v(dim);
  distance::Normalize(qn.data(), dim);
  const distance::Kernel l2 = distance::L2Squared();
  for (size_t i = 0; i < rescore.size(); ++i) {
    st.index.GetVector(rescore[i], v.data());
    (*out)[first + i].score = std::clamp(0.5f * l2(qn.data(), v.data(), dim), 0.f, 2.f);
  }
  // Only the rescored hits can move, and none past a later hit by more than
  // the dot product's error: sorting the front with the next hit suffices.
  const size_t end = first + std::min(rescore.size() + 1, out->size() - first);
  std::stable_sort(out->begin() + static_cast<ptrdiff_t>(first),
                   out->begin() + static_cast<ptrdiff_t>(end),
                   [](const SearchHit& a, const SearchHit& b) { return a.score < b.score; });
}

}  // namespace

Status Collection::SearchLocked(const State& st, const float* query, const SearchRequest& req,
                                std::vector<SearchHit>* out) const {
  out->clear();
  if (req.top_k == 0) return Status::OK();
  const filter::Filter* f = ActiveFilter(req);
  const bool need_filter = f != nullptr || adds_in_flight_.load(std::memory_order_acquire) > 0;
  PointFilter pf(st.slot_ids, st.nil_slot, st.payloads, f, &const_cast<State&>(st).payload_index);
  std::vector<index::Hit> hits;
  Status s = st.index->Search(query, IndexParams(req, need_filter ? &pf : nullptr), &hits);
  if (!s.ok()) return s.WithContext("collection '" + name_ + "'");
  AppendHits(hits, HitsOf(st), query, req.with_payload, out);
  return Status::OK();
}

Status Collection::CheckQueries(const State& st, const float* queries, size_t nq, size_t dim,
                                bool batch) const {
  const bool one = !batch;
  if (dim != st.config.index.dim) {
    return Status::DimensionMismatch(std::string(one ? "query has " : "queries have ") +
                                     std::to_string(dim) + " dimensions, collection '" + name_ +
                                     "' expects " + std::to_string(st.config.index.dim));
  }
  for (size_t i = 0; i < nq * dim; ++i) {
    if (!std::isfinite(queries[i])) {
      return Status::InvalidArgument((one ? "query" : "query " + std::to_string(i / dim)) +
                                     " component " + std::to_string(i % dim) +
                                     " is not finite (NaN or Inf)");
    }
  }
  return Status::OK();
}

Status Collection::Search(const float* query, size_t dim, const SearchRequest& req,
                          std::vector<SearchHit>* out) const {
  AIDB_RETURN_IF_ERROR(CheckUsable());
  std::shared_lock<RwLock> lock(mu_, std::defer_lock);
  if (!LockShared(lock, req.nonblocking)) return Busy();
  const State& st = *state_;
  AIDB_RETURN_IF_ERROR(CheckQueries(st, query, 1, dim, /*batch=*/false));
  return SearchLocked(st, query, req, out);
}

Status Collection::SearchBatch(const float* queries, size_t nq, size_t dim,
                               const SearchRequest& req, uint32_t threads,
                               std::vector<std::vector<SearchHit>>* out) const {
  AIDB_RETURN_IF_ERROR(CheckUsable());
  std::shared_lock<RwLock> lock(mu_, std::defer_lock);
  if (!LockShared(lock, req.nonblocking)) return Busy();
  const State& st = *state_;
  AIDB_RETURN_IF_ERROR(CheckQueries(st, queries, nq, dim, /*batch=*/true));
  out->assign(nq, {});
  uint32_t nthreads = threads ? threads : DefaultThreads();
  nthreads = static_cast<uint32_t>(std::min<size_t>(nthreads, nq));
  if (st.config.index.kind == IndexKind::kIvf && !req.exact && req.top_k > 0) {
    // IVF: each worker hands runs of up to kIvfRun queries to the index's
    // batch search, which scans each list once for all the queries of the
    // run probing it (its codes stay in cache) instead of once per query.
    // The hits are those of SearchLocked, query by query.
    constexpr size_t kIvfRun = 256;
    const size_t run = std::min(kIvfRun, (nq + nthreads - 1) / nthreads);
    const size_t runs = (nq + run - 1) / run;
    const filter::Filter* f = ActiveFilter(req);
    const bool need_filter = f != nullptr || adds_in_flight_.load(std::memory_order_acquire) > 0;
    auto search_run = [&](size_t r) {
      const size_t first = r * run, count = std::min(run, nq - first);
      PointFilter pf(st.slot_ids, st.nil_slot, st.payloads, f,
                     &const_cast<State&>(st).payload_index);
      std::vector<std::vector<index::Hit>> hits;
      Status s = st.index->SearchBatch(queries + first * dim, count,
                                       IndexParams(req, need_filter ? &pf : nullptr), &hits);
      if (!s.ok()) return s.WithContext("collection '" + name_ + "'");
      for (size_t i = 0; i < count; ++i) {
        AppendHits(hits[i], HitsOf(st), queries + (first + i) * dim, req.with_payload,
                   &(*out)[first + i]);
      }
      return Status::OK();
    };
    if (nthreads <= 1 || runs <= 1) {
      for (size_t r = 0; r < runs; ++r) AIDB_RETURN_IF_ERROR(search_run(r));
      return Status::OK();
    }
    std::vector<Status> errors(nthreads);
    ParallelFor(runs, nthreads, [&](size_t r, uint32_t t) {
      errors[t] = search_run(r);
      return errors[t].ok();
    });
    for (auto& e : errors) AIDB_RETURN_IF_ERROR(e);
    return Status::OK();
  }
  if (nthreads <= 1) {
    for (size_t q = 0; q < nq; ++q) {
      AIDB_RETURN_IF_ERROR(SearchLocked(st, queries + q * dim, req, &(*out)[q]));
    }
    return Status::OK();
  }
  // The shared lock is held by this thread for all workers: writers wait.
  std::vector<Status> errors(nthreads);
  ParallelFor(nq, nthreads, [&](size_t q, uint32_t t) {
    errors[t] = SearchLocked(st, queries + q * dim, req, &(*out)[q]);
    return errors[t].ok();
  });
  for (auto& e : errors) AIDB_RETURN_IF_ERROR(e);
  return Status::OK();
}

}  // namespace aidb::engine
