#include "engine/collection.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <thread>
#include <unordered_set>

#include "core/payload.h"
#include "storage/file.h"
#include "storage/snapshot.h"
#include "storage/wal_codec.h"

namespace aidb::engine {

using storage::WalOp;

// Payload indexes: for a payload key, the slots holding each scalar value
// (canonical JSON text, see filter::CollectKeyValues). An index on a key is
// built the first time a filter constrains that key to equal something, then
// kept exact by every upsert and delete. Guarded by its own mutex so that
// searches (which hold the collection lock shared) can build one lazily.
class PayloadIndexes {
 public:
  static constexpr size_t kMaxKeys = 32;

  // The hint with the fewest candidate slots, building missing indexes;
  // nullptr if the filter has no usable hint. *estimate = its candidates.
  const filter::EqualityHint* BestHint(const filter::Filter& f,
                                       const std::vector<std::string>& payloads,
                                       int64_t* estimate) {
    std::lock_guard<std::mutex> lock(mu_);
    const filter::EqualityHint* best = nullptr;
    for (const filter::EqualityHint& h : f.equality_hints()) {
      auto it = keys_.find(h.key);
      if (it == keys_.end()) {
        if (keys_.size() >= kMaxKeys) continue;
        it = keys_.emplace(h.key, Build(h.key, payloads)).first;
      }
      int64_t n = 0;
      for (const std::string& v : h.values_json) {
        auto p = it->second.find(v);
        if (p != it->second.end()) n += static_cast<int64_t>(p->second.size());
      }
      if (best == nullptr || n < *estimate) {
        best = &h;
        *estimate = n;
      }
    }
    return best;
  }

  void List(const filter::EqualityHint& h, std::vector<uint32_t>* out) {
    std::lock_guard<std::mutex> lock(mu_);
    out->clear();
    auto it = keys_.find(h.key);
    if (it == keys_.end()) return;
    for (const std::string& v : h.values_json) {
      auto p = it->second.find(v);
      if (p != it->second.end()) out->insert(out->end(), p->second.begin(), p->second.end());
    }
    std::sort(out->begin(), out->end());
    out->erase(std::unique(out->begin(), out->end()), out->end());
  }

  void Add(uint32_t slot, std::string_view payload) { Update(slot, payload, true); }
  void Remove(uint32_t slot, std::string_view payload) { Update(slot, payload, false); }

 private:
  using Postings = std::unordered_map<std::string, std::unordered_set<uint32_t>>;

  static Postings Build(const std::string& key, const std::vector<std::string>& payloads) {
    Postings p;
    std::vector<std::string> values;
    for (uint32_t slot = 0; slot < payloads.size(); ++slot) {
      if (payloads[slot].empty()) continue;
      filter::CollectKeyValues(payloads[slot], key, &values);
      for (std::string& v : values) p[std::move(v)].insert(slot);
    }
    return p;
  }

  void Update(uint32_t slot, std::string_view payload, bool add) {
    if (payload.empty()) return;
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> values;
    for (auto& [key, postings] : keys_) {
      filter::CollectKeyValues(payload, key, &values);
      for (std::string& v : values) {
        if (add) {
          postings[std::move(v)].insert(slot);
        } else if (auto it = postings.find(v); it != postings.end()) {
          it->second.erase(slot);
          if (it->second.empty()) postings.erase(it);
        }
      }
    }
  }

  std::mutex mu_;
  std::unordered_map<std::string, Postings> keys_;
};

struct Collection::State {
  CollectionConfig config;
  std::unique_ptr<index::VectorIndex> index;
  std::unordered_map<Uuid, uint32_t, UuidHash> id_to_slot;
  std::vector<Uuid> slot_ids;         // nil: slot not mapped to a point
  std::vector<std::string> payloads;  // per slot; empty: none
  uint64_t applied_lsn = 0;
  PayloadIndexes payload_index;

  void EnsureSlot(uint32_t slot) {
    if (slot >= slot_ids.size()) {
      size_t n = std::max<size_t>(slot + 1, slot_ids.size() * 3 / 2);
      slot_ids.resize(n);
      payloads.resize(n);
    }
  }
};

namespace {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Restricts a search to mapped slots matching an optional payload filter.
// With a payload index on a key the filter requires to equal some values, it
// can count and list the candidate slots (the index decides between a graph
// walk and an exact scan of those).
class PointFilter final : public index::SlotFilter {
 public:
  PointFilter(const std::vector<Uuid>& ids, const std::vector<std::string>& payloads,
              const filter::Filter* f, PayloadIndexes* pidx)
      : ids_(ids), payloads_(payloads), filter_(f), pidx_(pidx) {
    if (filter_ != nullptr && pidx_ != nullptr) {
      best_hint_ = pidx_->BestHint(*filter_, payloads_, &estimate_);
    }
  }
  bool Allowed(uint32_t slot) const override {
    if (slot >= ids_.size() || ids_[slot].IsNil()) return false;
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
  const std::vector<std::string>& payloads_;
  const filter::Filter* filter_;
  PayloadIndexes* pidx_;
  const filter::EqualityHint* best_hint_ = nullptr;
  int64_t estimate_ = -1;
};

}  // namespace

Status ValidateCollectionName(std::string_view name) {
  if (name.empty() || name.size() > 64) {
    return Status::InvalidArgument("invalid collection name '" + std::string(name) +
                                   "': must be 1 to 64 characters of [A-Za-z0-9_-]");
  }
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-';
    if (!ok) {
      return Status::InvalidArgument("invalid collection name '" + std::string(name) +
                                     "': only [A-Za-z0-9_-] are allowed");
    }
  }
  return Status::OK();
}

Status ValidateConfig(const CollectionConfig& c) {
  AIDB_RETURN_IF_ERROR(ValidateCollectionName(c.name));
  if (c.index.dim == 0 || c.index.dim > 65536) {
    return Status::InvalidArgument("invalid dimension " + std::to_string(c.index.dim) +
                                   ": must be 1..65536");
  }
  int m = static_cast<int>(c.index.metric);
  if (m < 0 || m > 2) return Status::InvalidArgument("unknown metric " + std::to_string(m));
  int k = static_cast<int>(c.index.kind);
  if (k < 0 || k > 1) return Status::InvalidArgument("unknown index kind " + std::to_string(k));
  if (c.index.kind == index::IndexKind::kHnsw) {
    if (c.index.hnsw.m < 2 || c.index.hnsw.m > 256) {
      return Status::InvalidArgument("hnsw m must be 2..256");
    }
    if (c.index.hnsw.ef_construction < 1 || c.index.hnsw.ef_construction > 65536) {
      return Status::InvalidArgument("hnsw ef_construction must be 1..65536");
    }
    if (c.index.hnsw.ef_search > 65536) {
      return Status::InvalidArgument("hnsw ef_search must be 0..65536");
    }
  }
  return Status::OK();
}

Status Collection::Open(const CollectionOptions& opts, std::shared_ptr<Collection>* out) {
  AIDB_RETURN_IF_ERROR(ValidateConfig(opts.config));
  std::shared_ptr<Collection> c(new Collection());
  c->name_ = opts.config.name;
  c->wal_path_ = opts.wal_path;
  c->wal_opts_ = opts.wal;
  c->wal_opts_.collection = opts.config.name;
  AIDB_RETURN_IF_ERROR(c->NewState(opts.config, &c->state_));
  if (!opts.wal_path.empty()) {
    AIDB_RETURN_IF_ERROR(storage::Wal::Open(opts.wal_path, c->wal_opts_, &c->wal_));
  }
  *out = std::move(c);
  return Status::OK();
}

Collection::~Collection() = default;

Status Collection::NewState(const CollectionConfig& config, std::unique_ptr<State>* out) const {
  auto st = std::make_unique<State>();
  st->config = config;
  AIDB_RETURN_IF_ERROR(index::CreateIndex(config.index, &st->index));
  *out = std::move(st);
  return Status::OK();
}

Status Collection::Busy() const {
  return Status::Busy("collection '" + name_ +
                      "' is locked by a writer (an upsert being applied, a snapshot load, "
                      "restore, recovery or compaction); retry, or search without "
                      "nonblocking");
}

Status Collection::CheckUsable() const {
  if (dropped_.load(std::memory_order_acquire)) {
    return Status::NotFound("collection '" + name_ + "' was dropped");
  }
  std::lock_guard<std::mutex> lock(poison_mu_);
  return poisoned_;
}

void Collection::MarkDropped() { dropped_.store(true, std::memory_order_release); }

void Collection::SetCheckpointHook(CheckpointHook hook) {
  std::lock_guard<std::mutex> lock(hook_mu_);
  hook_ = std::move(hook);
}

CollectionConfig Collection::config() const {
  std::shared_lock lock(mu_);
  return state_->config;
}

uint64_t Collection::Count() const {
  std::shared_lock lock(mu_);
  return state_->id_to_slot.size();
}

storage::WalStats Collection::WalStats() const {
  if (!wal_) return storage::WalStats{};
  return wal_->Stats();
}

Status Collection::OpenWalIterator(uint64_t from_lsn,
                                   std::unique_ptr<storage::WalIterator>* out) const {
  AIDB_RETURN_IF_ERROR(CheckUsable());
  return storage::WalIterator::Open(wal_.get(), from_lsn, out);
}

Status Collection::Flush() { return wal_ ? wal_->Sync() : Status::OK(); }

Status Collection::Commit(uint8_t op, std::string_view body,
                          const std::function<void(uint64_t)>& apply) {
  if (wal_) return wal_->Commit(op, body, apply);
  std::lock_guard<std::mutex> lock(write_mu_);
  apply(++mem_lsn_);
  return Status::OK();
}

Status Collection::Exclusive(const std::function<Status()>& fn) {
  if (wal_) return wal_->Exclusive(fn);
  std::lock_guard<std::mutex> lock(write_mu_);
  return fn();
}

// ---------------------------------------------------------------------------
// Mutations

Status Collection::Upsert(size_t n, const char* const* ids, const float* vectors, size_t dim,
                          const std::string_view* payloads) {
  AIDB_RETURN_IF_ERROR(CheckUsable());
  uint32_t cdim;
  {
    std::shared_lock lock(mu_);
    cdim = state_->config.index.dim;
  }
  if (n == 0) return Status::OK();
  if (dim != cdim) {
    return Status::DimensionMismatch("vector has " + std::to_string(dim) +
                                     " dimensions, collection '" + name_ + "' expects " +
                                     std::to_string(cdim));
  }
  if (n > (1u << 24)) return Status::InvalidArgument("too many points in one batch");
  std::vector<Uuid> uuids(n);
  std::vector<std::string> canon(n);
  for (size_t i = 0; i < n; ++i) {
    const std::string where = n > 1 ? " (point " + std::to_string(i) + ")" : "";
    if (ids[i] == nullptr) return Status::InvalidArgument("point id is NULL" + where);
    Status s = Uuid::Parse(ids[i], &uuids[i]);
    if (!s.ok()) return Status::InvalidArgument(s.message() + where);
    const float* v = vectors + i * dim;
    for (size_t d = 0; d < dim; ++d) {
      if (!std::isfinite(v[d])) {
        return Status::InvalidArgument("vector component " + std::to_string(d) +
                                       " is not finite (NaN or Inf)" + where);
      }
    }
    if (payloads != nullptr && payloads[i].data() != nullptr) {
      s = payload::Canonicalize(payloads[i], &canon[i]);
      if (!s.ok()) return Status::InvalidArgument(s.message() + where);
    }
  }
  std::string body;
  storage::EncodeUpsert(uuids, vectors, cdim, canon, &body);
  return Commit(static_cast<uint8_t>(WalOp::kUpsert), body, [&](uint64_t lsn) {
    std::vector<std::string_view> views(canon.begin(), canon.end());
    ApplyUpsert(*state_, true, static_cast<uint32_t>(n), uuids.data(), vectors, views.data(),
                lsn);
  });
}

Status Collection::Delete(std::string_view id_text) {
  AIDB_RETURN_IF_ERROR(CheckUsable());
  Uuid id;
  AIDB_RETURN_IF_ERROR(Uuid::Parse(id_text, &id));
  {
    std::shared_lock lock(mu_);
    if (!state_->id_to_slot.count(id)) {
      return Status::NotFound("point " + id.ToString() + " not found in collection '" + name_ +
                              "'");
    }
  }
  std::vector<Uuid> ids{id};
  std::string body;
  storage::EncodeDelete(ids, &body);
  return Commit(static_cast<uint8_t>(WalOp::kDelete), body,
                [&](uint64_t lsn) { ApplyDelete(*state_, true, ids, lsn); });
}

Status Collection::SetEfSearch(uint32_t ef) {
  AIDB_RETURN_IF_ERROR(CheckUsable());
  {
    std::shared_lock lock(mu_);
    if (state_->config.index.kind != index::IndexKind::kHnsw) {
      return Status::Unsupported("ef_search applies to HNSW collections only");
    }
  }
  if (ef > 65536) return Status::InvalidArgument("ef_search must be 0..65536");
  std::string body;
  storage::EncodeSetParams(ef, &body);
  Status applied;
  Status s = Commit(static_cast<uint8_t>(WalOp::kSetParams), body, [&](uint64_t lsn) {
    applied = ApplyRecord(*state_, true, static_cast<uint8_t>(WalOp::kSetParams), body, lsn);
  });
  AIDB_RETURN_IF_ERROR(s);
  return applied;
}

Status Collection::Compact() {
  AIDB_RETURN_IF_ERROR(CheckUsable());
  return Exclusive([&] {
    std::shared_lock lock(mu_);
    return state_->index->Compact();
  });
}

void Collection::ApplyUpsert(State& st, bool live, uint32_t n, const Uuid* ids,
                             const float* vectors, const std::string_view* payloads,
                             uint64_t lsn) {
  std::vector<uint32_t> slots(n);
  if (live) adds_in_flight_.fetch_add(1, std::memory_order_acq_rel);
  // Index insertion (the expensive part) runs under no collection lock: new
  // slots stay invisible to searches until they are mapped below.
  Status s = n == 1 ? st.index->Add(vectors, &slots[0])
                    : st.index->AddBatch(vectors, n, slots.data(), 0);
  if (!s.ok()) {
    if (live) adds_in_flight_.fetch_sub(1, std::memory_order_acq_rel);
    // The record is logged but cannot be applied (out of memory): stop
    // accepting work rather than diverge from the log silently.
    std::lock_guard<std::mutex> plock(poison_mu_);
    poisoned_ = s.WithContext("collection '" + name_ +
                              "' failed to apply a logged record; reopen it to recover");
    return;
  }
  std::unique_lock<RwLock> lock(mu_, std::defer_lock);
  if (live) lock.lock();
  std::vector<uint32_t> replaced;
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t slot = slots[i];
    st.EnsureSlot(slot);
    auto [it, inserted] = st.id_to_slot.try_emplace(ids[i], slot);
    if (!inserted) {
      const uint32_t old = it->second;
      st.payload_index.Remove(old, st.payloads[old]);
      st.slot_ids[old] = Uuid{};
      std::string().swap(st.payloads[old]);
      replaced.push_back(old);
      it->second = slot;
    }
    st.slot_ids[slot] = ids[i];
    st.payloads[slot].assign(payloads[i].data(), payloads[i].size());
    st.payload_index.Add(slot, st.payloads[slot]);
  }
  for (uint32_t old : replaced) st.index->Remove(old);
  st.applied_lsn = std::max(st.applied_lsn, lsn);
  if (live) {
    lock.unlock();
    adds_in_flight_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void Collection::ApplyDelete(State& st, bool live, const std::vector<Uuid>& ids, uint64_t lsn) {
  std::unique_lock<RwLock> lock(mu_, std::defer_lock);
  if (live) lock.lock();
  for (const Uuid& id : ids) {
    auto it = st.id_to_slot.find(id);
    if (it == st.id_to_slot.end()) continue;
    const uint32_t slot = it->second;
    st.id_to_slot.erase(it);
    st.payload_index.Remove(slot, st.payloads[slot]);
    st.slot_ids[slot] = Uuid{};
    std::string().swap(st.payloads[slot]);
    st.index->Remove(slot);
  }
  st.applied_lsn = std::max(st.applied_lsn, lsn);
}

Status Collection::ApplyRecord(State& st, bool live, uint8_t op, std::string_view body,
                               uint64_t lsn) {
  switch (static_cast<WalOp>(op)) {
    case WalOp::kUpsert: {
      storage::UpsertView v;
      AIDB_RETURN_IF_ERROR(storage::DecodeUpsert(body, &v));
      if (v.dim != st.config.index.dim) {
        return Status::Corruption("WAL record at LSN " + std::to_string(lsn) + " has dimension " +
                                  std::to_string(v.dim) + ", collection has " +
                                  std::to_string(st.config.index.dim));
      }
      std::vector<Uuid> ids(v.count);
      for (uint32_t i = 0; i < v.count; ++i) ids[i] = v.id(i);
      const float* vecs = v.vectors;
      std::vector<float> aligned;
      if (reinterpret_cast<uintptr_t>(vecs) % alignof(float) != 0) {
        aligned.resize(static_cast<size_t>(v.count) * v.dim);
        std::memcpy(aligned.data(), vecs, aligned.size() * sizeof(float));
        vecs = aligned.data();
      }
      ApplyUpsert(st, live, v.count, ids.data(), vecs, v.payloads.data(), lsn);
      return Status::OK();
    }
    case WalOp::kDelete: {
      std::vector<Uuid> ids;
      AIDB_RETURN_IF_ERROR(storage::DecodeDelete(body, &ids));
      ApplyDelete(st, live, ids, lsn);
      return Status::OK();
    }
    case WalOp::kSetParams: {
      uint32_t ef = 0;
      AIDB_RETURN_IF_ERROR(storage::DecodeSetParams(body, &ef));
      std::unique_lock<RwLock> lock(mu_, std::defer_lock);
      if (live) lock.lock();
      if (st.config.index.kind == index::IndexKind::kHnsw) {
        AIDB_RETURN_IF_ERROR(st.index->SetEfSearch(ef));
        st.config.index.hnsw.ef_search = ef;
      }
      st.applied_lsn = std::max(st.applied_lsn, lsn);
      return Status::OK();
    }
  }
  return Status::Corruption("WAL record at LSN " + std::to_string(lsn) + " has unknown op " +
                            std::to_string(op));
}

// ---------------------------------------------------------------------------
// Reads

Status Collection::Get(std::string_view id_text, float* vector_out, size_t dim,
                       std::string* payload, bool* has_payload) const {
  AIDB_RETURN_IF_ERROR(CheckUsable());
  Uuid id;
  AIDB_RETURN_IF_ERROR(Uuid::Parse(id_text, &id));
  std::shared_lock lock(mu_);
  const State& st = *state_;
  if (vector_out != nullptr && dim != st.config.index.dim) {
    return Status::DimensionMismatch("output buffer has " + std::to_string(dim) +
                                     " dimensions, collection '" + name_ + "' has " +
                                     std::to_string(st.config.index.dim));
  }
  auto it = st.id_to_slot.find(id);
  if (it == st.id_to_slot.end()) {
    return Status::NotFound("point " + id.ToString() + " not found in collection '" + name_ +
                            "'");
  }
  if (vector_out != nullptr) st.index->GetVector(it->second, vector_out);
  if (payload != nullptr) *payload = st.payloads[it->second];
  if (has_payload != nullptr) *has_payload = !st.payloads[it->second].empty();
  return Status::OK();
}

Status Collection::SearchLocked(const State& st, const float* query, const SearchRequest& req,
                                std::vector<SearchHit>* out) const {
  out->clear();
  if (req.top_k == 0) return Status::OK();
  const bool need_filter = (req.filter != nullptr && !req.filter->MatchesAll()) ||
                           adds_in_flight_.load(std::memory_order_acquire) > 0;
  const filter::Filter* f = req.filter && !req.filter->MatchesAll() ? req.filter : nullptr;
  PointFilter pf(st.slot_ids, st.payloads, f, &const_cast<State&>(st).payload_index);
  index::SearchParams params;
  params.k = req.top_k;
  params.ef = req.ef_search;
  params.filter = need_filter ? &pf : nullptr;
  params.exact = req.exact;
  params.nonblocking = req.nonblocking;
  std::vector<index::Hit> hits;
  Status s = st.index->Search(query, params, &hits);
  if (!s.ok()) return s.WithContext("collection '" + name_ + "'");
  out->reserve(hits.size());
  for (const index::Hit& h : hits) {
    if (h.slot >= st.slot_ids.size() || st.slot_ids[h.slot].IsNil()) continue;
    SearchHit sh;
    sh.id = st.slot_ids[h.slot];
    sh.score = h.score;
    if (req.with_payload) sh.payload = st.payloads[h.slot];
    out->push_back(std::move(sh));
  }
  return Status::OK();
}

Status Collection::Search(const float* query, size_t dim, const SearchRequest& req,
                          std::vector<SearchHit>* out) const {
  AIDB_RETURN_IF_ERROR(CheckUsable());
  std::shared_lock<RwLock> lock(mu_, std::defer_lock);
  if (!LockShared(lock, req.nonblocking)) return Busy();
  const State& st = *state_;
  if (dim != st.config.index.dim) {
    return Status::DimensionMismatch("query has " + std::to_string(dim) +
                                     " dimensions, collection '" + name_ + "' expects " +
                                     std::to_string(st.config.index.dim));
  }
  for (size_t d = 0; d < dim; ++d) {
    if (!std::isfinite(query[d])) {
      return Status::InvalidArgument("query component " + std::to_string(d) +
                                     " is not finite (NaN or Inf)");
    }
  }
  return SearchLocked(st, query, req, out);
}

Status Collection::SearchBatch(const float* queries, size_t nq, size_t dim,
                               const SearchRequest& req, uint32_t threads,
                               std::vector<std::vector<SearchHit>>* out) const {
  AIDB_RETURN_IF_ERROR(CheckUsable());
  std::shared_lock<RwLock> lock(mu_, std::defer_lock);
  if (!LockShared(lock, req.nonblocking)) return Busy();
  const State& st = *state_;
  if (dim != st.config.index.dim) {
    return Status::DimensionMismatch("queries have " + std::to_string(dim) +
                                     " dimensions, collection '" + name_ + "' expects " +
                                     std::to_string(st.config.index.dim));
  }
  for (size_t i = 0; i < nq * dim; ++i) {
    if (!std::isfinite(queries[i])) {
      return Status::InvalidArgument("query " + std::to_string(i / dim) + " component " +
                                     std::to_string(i % dim) + " is not finite (NaN or Inf)");
    }
  }
  out->assign(nq, {});
  uint32_t nthreads = threads ? threads : std::max(1u, std::thread::hardware_concurrency());
  nthreads = static_cast<uint32_t>(std::min<size_t>(nthreads, nq));
  if (nthreads <= 1) {
    for (size_t q = 0; q < nq; ++q) {
      AIDB_RETURN_IF_ERROR(SearchLocked(st, queries + q * dim, req, &(*out)[q]));
    }
    return Status::OK();
  }
  // The shared lock is held by this thread for all workers: writers wait.
  std::vector<Status> errors(nthreads);
  std::atomic<size_t> next{0};
  std::vector<std::thread> pool;
  for (uint32_t t = 0; t < nthreads; ++t) {
    pool.emplace_back([&, t] {
      for (size_t q; (q = next.fetch_add(1)) < nq;) {
        Status s = SearchLocked(st, queries + q * dim, req, &(*out)[q]);
        if (!s.ok()) {
          errors[t] = s;
          return;
        }
      }
    });
  }
  for (auto& th : pool) th.join();
  for (auto& e : errors) AIDB_RETURN_IF_ERROR(e);
  return Status::OK();
}

// ---------------------------------------------------------------------------
// Snapshots and recovery

Status Collection::SnapshotLocked(const std::string& path) {
  // Runs inside the exclusive section: no writer can append or apply.
  uint64_t lsn;
  storage::SnapshotWriter writer;
  {
    std::shared_lock lock(mu_);
    const State& st = *state_;
    lsn = std::max(st.applied_lsn, wal_ ? wal_->last_lsn() : mem_lsn_);
    SnapshotMeta meta;
    meta.last_lsn = lsn;
    meta.created_unix_ns = NowNs();
    meta.config = st.config;
    meta.count = st.id_to_slot.size();
    meta.slot_limit = st.index->SlotLimit();
    AIDB_RETURN_IF_ERROR(writer.SetCollection(meta, st.slot_ids, st.payloads));
    AIDB_RETURN_IF_ERROR(
        st.index->Save([&](const IndexImage& image) { return writer.SetIndex(image); }));
  }
  AIDB_RETURN_IF_ERROR(writer.WriteFile(path));
  CheckpointHook hook;
  {
    std::lock_guard<std::mutex> lock(hook_mu_);
    hook = hook_;
  }
  if (hook) AIDB_RETURN_IF_ERROR(hook(path, lsn));
  if (wal_) AIDB_RETURN_IF_ERROR(wal_->Truncate());
  return Status::OK();
}

Status Collection::SnapshotTo(const std::string& path) {
  AIDB_RETURN_IF_ERROR(CheckUsable());
  if (path.empty()) return Status::InvalidArgument("snapshot path is empty");
  return Exclusive([&] { return SnapshotLocked(path); });
}

Status Collection::BuildStateFromSnapshot(const std::string& path,
                                          std::unique_ptr<State>* out) const {
  std::unique_ptr<storage::SnapshotFile> file;
  AIDB_RETURN_IF_ERROR(storage::SnapshotFile::Open(path, &file));
  const SnapshotImage& image = file->image();
  CollectionConfig cfg = image.meta.config;
  {
    std::shared_lock lock(mu_);
    if (cfg.index.dim != state_->config.index.dim) {
      return Status::DimensionMismatch("snapshot " + path + " has dimension " +
                                       std::to_string(cfg.index.dim) + ", collection '" +
                                       name_ + "' has " +
                                       std::to_string(state_->config.index.dim));
    }
  }
  cfg.name = name_;
  Status s = ValidateConfig(cfg);
  if (!s.ok()) return Status::Corruption("snapshot " + path + ": " + s.message());
  std::unique_ptr<State> st;
  AIDB_RETURN_IF_ERROR(NewState(cfg, &st));
  AIDB_RETURN_IF_ERROR(
      st->index->Load(image, file->keepalive()).WithContext("snapshot " + path));
  const uint32_t limit = image.meta.slot_limit;
  // The index validated its own slot limit against the data it loaded; the
  // root's must agree before it sizes anything.
  if (limit != st->index->SlotLimit()) {
    return Status::Corruption("snapshot " + path + ": slot limit " + std::to_string(limit) +
                              " but the index holds " + std::to_string(st->index->SlotLimit()));
  }
  st->slot_ids.resize(limit);
  st->payloads.resize(limit);
  // The header's count is checked against the ids at the end; as a sizing
  // hint it cannot exceed the slots the index just loaded.
  st->id_to_slot.reserve(std::min<uint64_t>(image.meta.count, limit));
  for (const PointChunkImage& pc : image.points) {
    const uint32_t first = pc.first_slot, n = pc.count;
    if (pc.ids.size() != static_cast<size_t>(n) * 16 || pc.payload_ends.size() != n ||
        static_cast<uint64_t>(first) + n > limit) {
      return Status::Corruption("snapshot " + path + ": malformed point chunk");
    }
    uint32_t pos = 0;
    for (uint32_t i = 0; i < n; ++i) {
      const uint32_t end = pc.payload_ends[i];
      if (end < pos || end > pc.payloads.size()) {
        return Status::Corruption("snapshot " + path + ": bad payload offsets");
      }
      Uuid id;
      std::memcpy(id.bytes.data(), pc.ids.data() + static_cast<size_t>(i) * 16, 16);
      if (!id.IsNil()) {
        const uint32_t slot = first + i;
        if (!st->id_to_slot.emplace(id, slot).second) {
          return Status::Corruption("snapshot " + path + ": duplicate id " + id.ToString());
        }
        st->slot_ids[slot] = id;
        st->payloads[slot].assign(pc.payloads.data() + pos, end - pos);
      }
      pos = end;
    }
  }
  if (st->id_to_slot.size() != image.meta.count) {
    return Status::Corruption("snapshot " + path + ": point count mismatch");
  }
  st->applied_lsn = image.meta.last_lsn;
  *out = std::move(st);
  return Status::OK();
}

Status Collection::LoadSnapshot(const std::string& path) {
  AIDB_RETURN_IF_ERROR(CheckUsable());
  return Exclusive([&] {
    std::unique_ptr<State> st;
    AIDB_RETURN_IF_ERROR(BuildStateFromSnapshot(path, &st));
    const uint64_t lsn = st->applied_lsn;
    {
      std::unique_lock lock(mu_);
      state_.swap(st);
    }
    if (wal_) wal_->AdvanceLsn(lsn);
    mem_lsn_ = std::max(mem_lsn_, lsn);
    return Status::OK();
  });
}

Status Collection::ReplayInto(State& st, bool live, const RecoverOptions& opts,
                              RecoverStats* stats) {
  // Pass 1 checks every checksum without applying anything, so a corrupt
  // record leaves the state as it was.
  // It also counts the upserted points, so the id map and slot arrays are
  // sized once instead of rehashing and regrowing all through the replay.
  storage::WalReadStats verify;
  uint64_t upserted = 0;
  AIDB_RETURN_IF_ERROR(storage::ReadWal(
      wal_path_, wal_opts_.mmap_threshold,
      [&](const storage::WalRecord& r) {
        if (r.op == static_cast<uint8_t>(WalOp::kUpsert) && r.lsn > st.applied_lsn) {
          upserted += storage::UpsertCountHint(r.body);  // a sizing hint only
        }
        return Status::OK();
      },
      &verify));
  if (upserted > 0) {
    std::unique_lock<RwLock> lock(mu_, std::defer_lock);
    if (live) lock.lock();
    const size_t want = st.id_to_slot.size() + std::min<uint64_t>(upserted, 1u << 30);
    st.id_to_slot.reserve(want);
    st.slot_ids.reserve(want);
    st.payloads.reserve(want);
  }
  bool stopped = false;
  storage::WalReadStats rs;
  Status s = wal_->Replay(
      [&](const storage::WalRecord& r) -> Status {
        bool skip = r.lsn <= st.applied_lsn;
        if (!skip && opts.target == RecoverTarget::kToLsn && r.lsn > opts.lsn) skip = true;
        if (!skip && opts.target == RecoverTarget::kToTime &&
            (stopped || r.timestamp_ns > opts.timestamp_ns)) {
          stopped = true;
          skip = true;
        }
        if (skip) {
          ++stats->records_skipped;
          return Status::OK();
        }
        Status applied = ApplyRecord(st, live, r.op, r.body, r.lsn);
        if (!applied.ok()) {
          // Name the record's place in the file, as checksum errors do.
          return applied.WithContext("WAL " + wal_path_ + ": record at offset " +
                                     std::to_string(r.offset) + " (lsn " + std::to_string(r.lsn) +
                                     ")");
        }
        ++stats->records_applied;
        return Status::OK();
      },
      &rs);
  stats->bytes_read = rs.valid_bytes;
  stats->torn_tail = rs.torn_tail;
  stats->torn_tail_bytes = rs.torn_tail_bytes;
  stats->used_mmap = rs.used_mmap;
  stats->last_lsn = st.applied_lsn;
  return s;
}

Status Collection::Recover(const RecoverOptions& opts, RecoverStats* stats) {
  AIDB_RETURN_IF_ERROR(CheckUsable());
  RecoverStats local;
  if (stats == nullptr) stats = &local;
  *stats = RecoverStats{};
  if (!wal_) {
    std::shared_lock lock(mu_);
    stats->last_lsn = state_->applied_lsn;
    return Status::OK();
  }
  return Exclusive([&] { return ReplayInto(*state_, true, opts, stats); });
}

Status Collection::Restore(const std::string& snapshot_path, const std::string& baseline) {
  AIDB_RETURN_IF_ERROR(CheckUsable());
  return Exclusive([&] {
    std::unique_ptr<State> st;
    AIDB_RETURN_IF_ERROR(BuildStateFromSnapshot(snapshot_path, &st));
    if (wal_) {
      RecoverStats rstats;
      AIDB_RETURN_IF_ERROR(ReplayInto(*st, false, RecoverOptions{}, &rstats));
      wal_->AdvanceLsn(st->applied_lsn);
    }
    {
      std::unique_lock lock(mu_);
      state_.swap(st);
    }
    Status s = SnapshotLocked(baseline);
    if (!s.ok()) {
      // Put the previous state back: the WAL and the old baseline still
      // describe it (the failed snapshot did not truncate anything), unless
      // the failure came after the new baseline was recorded.
      if (!storage::FileExists(baseline)) {
        std::unique_lock lock(mu_);
        state_.swap(st);
      }
      return s;
    }
    return Status::OK();
  });
}

Status ReadSnapshotInfo(const std::string& path, SnapshotInfo* info) {
  std::unique_ptr<storage::SnapshotFile> file;
  AIDB_RETURN_IF_ERROR(storage::SnapshotFile::Open(path, &file));
  const SnapshotMeta& m = file->meta();
  info->path = path;
  info->lsn = m.last_lsn;
  info->size_bytes = file->file_size();
  info->created_unix_ns = m.created_unix_ns;
  info->count = m.count;
  info->config = m.config;
  return Status::OK();
}

}  // namespace aidb::engine
