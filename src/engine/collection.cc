#include "engine/collection.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "core/distance.h"
#include "core/payload.h"
#include "engine/collection_state.h"
#include "storage/wal_codec.h"

namespace aidb::engine {

using storage::WalOp;

Status Collection::Open(const CollectionOptions& opts, std::shared_ptr<Collection>* out) {
  AIDB_RETURN_IF_ERROR(ValidateConfig(opts.config));
  std::shared_ptr<Collection> c(new Collection());
  c->name_ = opts.config.name;
  c->wal_path_ = opts.wal_path;
  c->vectors_path_ = !opts.vectors_path.empty() ? opts.vectors_path
                     : opts.wal_path.empty()    ? std::string()
                                                : opts.wal_path + ".vectors";
  if (opts.config.index.vectors_on_disk && c->vectors_path_.empty()) {
    return Status::InvalidArgument("collection '" + opts.config.name +
                                   "': vectors_on_disk needs a wal_path (the vectors file is "
                                   "placed beside the WAL)");
  }
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
  AIDB_RETURN_IF_ERROR(index::CreateIndex(config.index, vectors_path_, &st->index));
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

namespace {

// Upserts bringing at least this many bytes of vectors are bulk loads.
constexpr size_t kBulkUpsertBytes = size_t{64} << 20;

// Returns the malloc heap's free pages to the kernel (glibc only).
void ReleaseFreeHeap() {
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

}  // namespace

Status Collection::Upsert(size_t n, const char* const* ids, const float* vectors, size_t dim,
                          const std::string_view* payloads) {
  Status s = UpsertPoints(n, ids, vectors, dim, payloads);
  // A bulk load's temporaries (its own per-point arrays, the index build's
  // buffers) are freed by now. glibc serves blocks of up to 32 MiB from
  // the heap once a freed mapping has raised its mmap threshold, and the
  // holes they leave stay resident: about 60 MiB after an IVF build of 1M
  // x 128 (bench/README.md, "Engine memory per point"). Hand the free
  // pages back (one heap walk, no locks of ours held).
  if (n * dim * sizeof(float) >= kBulkUpsertBytes) ReleaseFreeHeap();
  return s;
}

Status Collection::UpsertPoints(size_t n, const char* const* ids, const float* vectors, size_t dim,
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
  // Canonical payloads go straight into the blocks the state keeps (the
  // scratch string is reused across points).
  std::vector<PayloadSlot> canon(n);
  std::string scratch;
  // The error text names the point only in a batch (built on failure only).
  auto where = [n](size_t i) {
    return n > 1 ? " (point " + std::to_string(i) + ")" : std::string();
  };
  // All components are checked in one vectorisable pass; only when it finds
  // NaN or Inf does the per-point loop look for the first offending one.
  const bool finite = distance::AllFinite()(vectors, n * dim);
  for (size_t i = 0; i < n; ++i) {
    if (ids[i] == nullptr) return Status::InvalidArgument("point id is NULL" + where(i));
    Status s = Uuid::Parse(ids[i], &uuids[i]);
    if (!s.ok()) return Status::InvalidArgument(s.message() + where(i));
    const float* v = vectors + i * dim;
    for (size_t d = 0; !finite && d < dim; ++d) {
      if (!std::isfinite(v[d])) {
        return Status::InvalidArgument("vector component " + std::to_string(d) +
                                       " is not finite (NaN or Inf)" + where(i));
      }
    }
    if (payloads != nullptr && payloads[i].data() != nullptr) {
      s = payload::Canonicalize(payloads[i], &scratch);
      if (!s.ok()) return Status::InvalidArgument(s.message() + where(i));
      canon[i].Assign(scratch);
    }
  }
  const uint32_t count = static_cast<uint32_t>(n);
  std::vector<uint32_t> slots(n);
  Status added;
  bool prepared = false;
  // The canonical payloads move into the state (their copy is in the log).
  const std::function<void(uint64_t)> apply = [&](uint64_t lsn) {
    if (prepared) {
      MapUpsert(*state_, true, added, count, uuids.data(), slots.data(), nullptr, lsn,
                canon.data());
    } else {
      ApplyUpsert(*state_, true, count, uuids.data(), vectors, nullptr, lsn, canon.data());
    }
  };
  if (!wal_) return Commit(static_cast<uint8_t>(WalOp::kUpsert), {}, apply);
  // The vectors go to the log straight from the caller's memory, and the
  // index insert runs while the disk writes the record (Wal::Commit).
  std::string head, tail;
  std::string_view parts[3];
  storage::EncodeUpsertParts(uuids, vectors, cdim, canon, &head, &parts[1], &tail);
  parts[0] = head;
  parts[2] = tail;
  return wal_->Commit(
      static_cast<uint8_t>(WalOp::kUpsert), parts, apply,
      [&](uint64_t) {
        added = AddUpsert(*state_, true, count, vectors, slots.data());
        prepared = true;
      },
      [&] { UnaddUpsert(*state_, added, count, slots.data()); });
}

Status Collection::Delete(std::string_view id_text) {
  AIDB_RETURN_IF_ERROR(CheckUsable());
  Uuid id;
  AIDB_RETURN_IF_ERROR(Uuid::Parse(id_text, &id));
  {
    std::shared_lock lock(mu_);
    if (!state_->id_to_slot.Contains(id)) {
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
    const index::IndexKind kind = state_->config.index.kind;
    if (kind != index::IndexKind::kHnsw && kind != index::IndexKind::kIvf) {
      return Status::Unsupported("ef_search applies to HNSW and IVF collections only");
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
                             const float* vectors, const std::string_view* payloads, uint64_t lsn,
                             PayloadSlot* owned) {
  std::vector<uint32_t> slots(n);
  Status added = AddUpsert(st, live, n, vectors, slots.data());
  MapUpsert(st, live, added, n, ids, slots.data(), payloads, lsn, owned);
}

Status Collection::AddUpsert(State& st, bool live, uint32_t n, const float* vectors,
                             uint32_t* slots) {
  if (live) adds_in_flight_.fetch_add(1, std::memory_order_acq_rel);
  // Index insertion (the expensive part) runs under no collection lock: new
  // slots stay invisible to searches until they are mapped (MapUpsert).
  Status s = n == 1 ? st.index->Add(vectors, &slots[0]) : st.index->AddBatch(vectors, n, slots, 0);
  if (!s.ok() && live) adds_in_flight_.fetch_sub(1, std::memory_order_acq_rel);
  return s;
}

void Collection::UnaddUpsert(State& st, const Status& added, uint32_t n, const uint32_t* slots) {
  if (!added.ok()) return;
  {
    std::unique_lock<RwLock> lock(mu_);
    for (uint32_t i = 0; i < n; ++i) st.index->Remove(slots[i]);
  }
  adds_in_flight_.fetch_sub(1, std::memory_order_acq_rel);
}

void Collection::MapUpsert(State& st, bool live, const Status& added, uint32_t n, const Uuid* ids,
                           const uint32_t* slots, const std::string_view* payloads, uint64_t lsn,
                           PayloadSlot* owned) {
  if (!added.ok()) {
    // The record is logged but cannot be applied (out of memory): stop
    // accepting work rather than diverge from the log silently.
    std::lock_guard<std::mutex> plock(poison_mu_);
    poisoned_ = added.WithContext("collection '" + name_ +
                                  "' failed to apply a logged record; reopen it to recover");
    return;
  }
  std::unique_lock<RwLock> lock(mu_, std::defer_lock);
  if (live) lock.lock();
  std::vector<uint32_t> replaced;
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t slot = slots[i];
    st.EnsureSlot(slot);
    auto [mapped, inserted] = st.id_to_slot.TryEmplace(ids[i], slot);
    if (!inserted) {
      const uint32_t old = *mapped;
      st.payload_index.Remove(old, st.payloads[old]);
      st.slot_ids[old] = Uuid{};
      st.payloads[old].reset();
      replaced.push_back(old);
      *mapped = slot;
    }
    st.slot_ids[slot] = ids[i];
    if (ids[i].IsNil()) st.nil_slot = slot;
    if (owned != nullptr) {
      st.payloads[slot] = std::move(owned[i]);
    } else {
      st.payloads[slot].Assign(payloads[i]);
    }
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
    const uint32_t slot = st.id_to_slot.Erase(id);
    if (slot == IdMap::kNone) continue;
    if (slot == st.nil_slot) st.nil_slot = IdMap::kNone;
    st.payload_index.Remove(slot, st.payloads[slot]);
    st.slot_ids[slot] = Uuid{};
    st.payloads[slot].reset();
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
      } else if (st.config.index.kind == index::IndexKind::kIvf) {
        // For IVF, ef_search is the default number of lists probed.
        AIDB_RETURN_IF_ERROR(st.index->SetEfSearch(ef));
        st.config.index.ivf.nprobe = ef;
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
  const uint32_t slot = st.id_to_slot.Find(id);
  if (slot == IdMap::kNone) {
    return Status::NotFound("point " + id.ToString() + " not found in collection '" + name_ + "'");
  }
  if (vector_out != nullptr) st.index->GetVector(slot, vector_out);
  if (payload != nullptr) *payload = st.payloads[slot].view();
  if (has_payload != nullptr) *has_payload = !st.payloads[slot].empty();
  return Status::OK();
}

}  // namespace aidb::engine
