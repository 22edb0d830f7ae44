#include "index/ivf.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <shared_mutex>
#include <string>

#include "core/thread_pool.h"
#include "index/ivf_kernels.h"
#include "index/topk.h"

namespace aidb::index {

namespace {

constexpr uint32_t kNone = 0xFFFFFFFFu;
constexpr uint32_t kMaxNlist = 65536;
constexpr size_t kRebuildBatch = 8192;
constexpr size_t kCodebookSample = 16384;
constexpr uint32_t kMinRerank = 100;
constexpr uint32_t kRerankPerK = 10;
constexpr int64_t kExactMinMatches = 1000;

float L2Sq(const float* a, const float* b, size_t n) {
  static const distance::Kernel k = distance::L2Squared();
  return k(a, b, n);
}
float DotP(const float* a, const float* b, size_t n) {
  static const distance::Kernel k = distance::Dot();
  return k(a, b, n);
}

// Vectors per task of the parallel nearest-centroid searches: the blocked
// kernel scores a register block of them against the packed centroids.
constexpr size_t kAssignTask = 256;

// Lloyd's k-means on n rows of d floats into k centroids (k <= n not
// required: missing centroids repeat rows). Empty clusters take a perturbed
// copy of the largest cluster's centroid (both halves nudged apart).
std::vector<float> KMeans(const float* x, size_t n, uint32_t d, uint32_t k, uint32_t iters,
                          std::mt19937_64& rng, uint32_t threads,
                          std::vector<uint32_t>* assign_out) {
  std::vector<float> c(static_cast<size_t>(k) * d);
  std::vector<size_t> perm(n);
  std::iota(perm.begin(), perm.end(), size_t{0});
  for (size_t i = 0; i < std::min<size_t>(k, n); ++i) {
    std::uniform_int_distribution<size_t> u(i, n - 1);
    std::swap(perm[i], perm[u(rng)]);
  }
  for (uint32_t j = 0; j < k; ++j)
    std::memcpy(&c[static_cast<size_t>(j) * d], x + perm[j % n] * d, sizeof(float) * d);
  std::vector<uint32_t> assign(n, 0);
  std::vector<double> sum(static_cast<size_t>(k) * d);
  std::vector<size_t> cnt(k);
  std::vector<float> cnorm(k);
  std::vector<float> packed;
  static const pq4::NearestBlockFn nearest_block = pq4::NearestBlock();
  for (uint32_t it = 0; it <= iters; ++it) {
    // Assignment: blocks of rows against the packed centroids (as
    // Model::Nearest does).
    for (uint32_t j = 0; j < k; ++j)
      cnorm[j] = DotP(&c[static_cast<size_t>(j) * d], &c[static_cast<size_t>(j) * d], d);
    packed.resize(pq4::PackedFloats(k, d));
    pq4::PackRows(c.data(), k, d, packed.data());
    const size_t chunk = kAssignTask;
    ParallelFor((n + chunk - 1) / chunk, n < 4096 ? 1 : threads, [&](size_t b, uint32_t) {
      const size_t end = std::min(n, (b + 1) * chunk);
      nearest_block(x + b * chunk * d, end - b * chunk, packed.data(), cnorm.data(), k, d,
                    &assign[b * chunk]);
      return true;
    });
    if (it == iters) break;
    std::fill(sum.begin(), sum.end(), 0.0);
    std::fill(cnt.begin(), cnt.end(), 0);
    for (size_t i = 0; i < n; ++i) {
      double* s = &sum[static_cast<size_t>(assign[i]) * d];
      const float* v = x + i * d;
      for (uint32_t t = 0; t < d; ++t) s[t] += v[t];
      ++cnt[assign[i]];
    }
    for (uint32_t j = 0; j < k; ++j) {
      if (cnt[j] == 0) continue;
      for (uint32_t t = 0; t < d; ++t)
        c[static_cast<size_t>(j) * d + t] =
            static_cast<float>(sum[static_cast<size_t>(j) * d + t] / static_cast<double>(cnt[j]));
    }
    for (uint32_t j = 0; j < k; ++j) {
      if (cnt[j] != 0) continue;
      uint32_t big = static_cast<uint32_t>(std::max_element(cnt.begin(), cnt.end()) - cnt.begin());
      if (cnt[big] < 2) break;
      float* cj = &c[static_cast<size_t>(j) * d];
      float* cb = &c[static_cast<size_t>(big) * d];
      std::memcpy(cj, cb, sizeof(float) * d);
      for (uint32_t t = 0; t < d; ++t) {
        float eps = (t % 2 == 0 ? 1.f : -1.f) * (std::fabs(cb[t]) * 1e-3f + 1e-6f);
        cj[t] += eps;
        cb[t] -= eps;
      }
      cnt[j] = cnt[big] / 2;
      cnt[big] -= cnt[j];
    }
  }
  if (assign_out) *assign_out = std::move(assign);
  return c;
}

// Dimensions per PQ subspace: finer codes for small vectors, where a code
// of dim/2 bytes is still small against the float vector.
uint32_t DefaultSubDim(uint32_t dim) { return dim <= 64 ? 1 : dim <= 256 ? 2 : 4; }

// Lists a search probes by default: 1.25 sqrt(nlist), at least 8 (recall@10
// 0.99+ on the bench sets, which reach 0.95 at a fifth of that).
uint32_t DefaultNprobe(uint32_t nlist) {
  return std::max<uint32_t>(8, static_cast<uint32_t>(std::ceil(1.25 * std::sqrt(nlist))));
}

}  // namespace

// The trained quantiser: centroids and PQ codebooks. Immutable once built.
struct IvfIndex::Model {
  uint32_t dim = 0, nlist = 0, m = 0, npairs = 0, ds = 0;
  uint64_t trained_count = 0;
  std::vector<float> centroids;  // nlist * dim
  std::vector<float> cnorm;      // ||c||^2 per list
  std::vector<float> packed;     // the centroids packed for the blocked kernels
  std::vector<float> codebooks;  // m * 16 * ds (short last subspace zero-padded)
  std::vector<float> cbt;        // the same transposed: (s * ds + t) * 16 + j

  // Derived arrays (after centroids and codebooks are set).
  void Finish() {
    SetNorms();
    cbt.assign(codebooks.size(), 0.f);
    for (uint32_t s = 0; s < m; ++s)
      for (uint32_t j = 0; j < 16; ++j)
        for (uint32_t t = 0; t < ds; ++t)
          cbt[(static_cast<size_t>(s) * ds + t) * 16 + j] =
              codebooks[(static_cast<size_t>(s) * 16 + j) * ds + t];
  }

  size_t BlockBytes() const { return pq4::BlockBytes(npairs); }
  uint32_t SubLen(uint32_t s) const { return std::min(ds, dim - s * ds); }
  const float* Centroid(uint32_t l) const { return &centroids[static_cast<size_t>(l) * dim]; }

  // Needs cnorm and packed (Finish, or SetNorms during training).
  uint32_t Nearest(const float* v) const {
    uint32_t best;
    NearestMany(v, 1, &best);
    return best;
  }
  // The nearest list of each of n row-major vectors.
  void NearestMany(const float* v, size_t n, uint32_t* best) const {
    static const pq4::NearestBlockFn nearest_block = pq4::NearestBlock();
    nearest_block(v, n, packed.data(), cnorm.data(), nlist, dim, best);
  }
  void SetNorms() {
    cnorm.resize(nlist);
    for (uint32_t l = 0; l < nlist; ++l) cnorm[l] = DotP(Centroid(l), Centroid(l), dim);
    packed.resize(pq4::PackedFloats(nlist, dim));
    pq4::PackRows(centroids.data(), nlist, dim, packed.data());
  }
  // 4-bit codes of v's residual to centroid `list`; returns the Euclidean
  // correction ||r||^2 + 2 c.r of the quantised residual r.
  float Encode(const float* v, uint32_t list, uint8_t* code) const {
    static const pq4::EncodeFn encode = pq4::Encode();
    const float* c = Centroid(list);
    thread_local std::vector<float> r;
    r.resize(dim);
    for (uint32_t t = 0; t < dim; ++t) r[t] = v[t] - c[t];
    encode(r.data(), dim, ds, cbt.data(), code);
    float extra = 0.f;
    for (uint32_t s = 0; s < m; ++s) {
      const uint32_t len = SubLen(s), off = s * ds;
      const float* w = &codebooks[(static_cast<size_t>(s) * 16 + code[s]) * ds];
      for (uint32_t t = 0; t < len; ++t) extra += w[t] * w[t] + 2.f * c[off + t] * w[t];
    }
    return extra;
  }
  size_t Bytes() const {
    return (centroids.size() + cnorm.size() + packed.size() + codebooks.size() + cbt.size()) *
           sizeof(float);
  }
};

namespace {
// The nearest list of each of n row-major vectors, in parallel tasks (M:
// IvfIndex::Model).
template <class M>
void NearestParallel(const M& m, const float* x, size_t n, uint32_t* out, uint32_t threads) {
  ParallelFor((n + kAssignTask - 1) / kAssignTask, n >= 2 * kAssignTask ? threads : 1,
              [&](size_t t, uint32_t) {
                const size_t b = t * kAssignTask, e = std::min(n, b + kAssignTask);
                m.NearestMany(x + b * m.dim, e - b, out + b);
                return true;
              });
}
}  // namespace

struct IvfIndex::List {
  std::vector<uint32_t> slots;
  std::vector<float> extra;  // Euclidean only
  // A lower bound of extra (kept through erasures): a list whose base plus
  // this cannot beat a search's threshold is skipped unscanned.
  float min_extra = std::numeric_limits<float>::infinity();
  std::vector<uint8_t> codes;  // ceil(slots / 32) blocks
};

struct IvfIndex::Structure {
  Model model;
  std::vector<List> lists;
  std::vector<uint32_t> where;  // per slot: list, or kNone
  std::vector<uint32_t> pos;    // per slot: position in its list

  void Append(uint32_t slot, uint32_t list, const uint8_t* code, float extra, bool l2) {
    List& L = lists[list];
    const size_t p = L.slots.size(), bb = model.BlockBytes();
    if (p % pq4::kBlock == 0) L.codes.resize(L.codes.size() + bb, 0);
    uint8_t* block = L.codes.data() + (p / pq4::kBlock) * bb;
    for (uint32_t s = 0; s < model.m; ++s) pq4::SetCode(block, p % pq4::kBlock, s, code[s]);
    L.slots.push_back(slot);
    if (l2) {
      L.extra.push_back(extra);
      L.min_extra = std::min(L.min_extra, extra);
    }
    if (slot >= where.size()) {
      where.resize(slot + 1, kNone);
      pos.resize(slot + 1, 0);
    }
    where[slot] = list;
    pos[slot] = static_cast<uint32_t>(p);
  }
  // Room for n entries in list l (no reallocation while they are appended).
  void Reserve(uint32_t l, size_t n, bool l2) {
    List& L = lists[l];
    L.slots.reserve(n);
    L.codes.reserve((n + pq4::kBlock - 1) / pq4::kBlock * model.BlockBytes());
    if (l2) L.extra.reserve(n);
  }
  void Erase(uint32_t slot) {
    if (slot >= where.size() || where[slot] == kNone) return;
    List& L = lists[where[slot]];
    const size_t p = pos[slot], last = L.slots.size() - 1, bb = model.BlockBytes();
    if (p != last) {
      const uint8_t* from = L.codes.data() + (last / pq4::kBlock) * bb;
      uint8_t* to = L.codes.data() + (p / pq4::kBlock) * bb;
      for (uint32_t s = 0; s < model.m; ++s)
        pq4::SetCode(to, p % pq4::kBlock, s, pq4::GetCode(from, last % pq4::kBlock, s));
      L.slots[p] = L.slots[last];
      if (!L.extra.empty()) L.extra[p] = L.extra[last];
      pos[L.slots[p]] = static_cast<uint32_t>(p);
    }
    L.slots.pop_back();
    if (!L.extra.empty()) L.extra.pop_back();
    L.codes.resize((L.slots.size() + pq4::kBlock - 1) / pq4::kBlock * bb);
    where[slot] = kNone;
  }
  size_t Bytes() const {
    size_t b = model.Bytes() + (where.size() + pos.size()) * sizeof(uint32_t);
    for (const List& L : lists)
      b += L.slots.capacity() * 4 + L.extra.capacity() * 4 + L.codes.capacity();
    return b;
  }
};

IvfIndex::IvfIndex(const IndexConfig& config) : IvfIndex(config, IvfTuning()) {}

IvfIndex::IvfIndex(const IndexConfig& config, const IvfTuning& tuning)
    : IvfIndex(config, tuning, nullptr) {}

IvfIndex::IvfIndex(const IndexConfig& config, const IvfTuning& tuning,
                   std::unique_ptr<VectorFile> vectors)
    : config_(config),
      tuning_(tuning),
      l2_(config.metric == Metric::kEuclidean),
      shift_(VectorChunkShift(config.dim)),
      mask_((1u << VectorChunkShift(config.dim)) - 1),
      vfile_(config.vectors_on_disk ? std::move(vectors) : nullptr),
      nprobe_(config.ivf.nprobe) {
  if (vfile_ != nullptr)
    vfile_->SetSegmentBytes((size_t{1} << shift_) * config_.dim * sizeof(float));
}

IvfIndex::~IvfIndex() {
  stop_.store(true);
  std::lock_guard g(thread_mu_);
  if (worker_.joinable()) worker_.join();
}

// ---- vector storage ---------------------------------------------------------

Status IvfIndex::AllocateSlotLocked(uint32_t* out) {
  if (!free_.empty()) {
    *out = free_.back();
    free_.pop_back();
    return Status::OK();
  }
  const uint32_t slot = slot_limit_;
  const uint32_t c = slot >> shift_;
  const uint32_t per_chunk = 1u << shift_;
  const size_t vec_bytes = static_cast<size_t>(config_.dim) * sizeof(float);
  if (vfile_ != nullptr) {
    // A whole segment per chunk, mapped once (pointers into it stay valid);
    // disk blocks reserved ahead of the vector written through the mapping.
    if (c == chunks_.size()) {
      char* data = nullptr;
      AIDB_RETURN_IF_ERROR(vfile_->Segment(c, &data));
      chunks_.emplace_back();
      chunks_[c].data = reinterpret_cast<float*>(data);
      chunks_[c].capacity_slots = per_chunk;
    }
    AIDB_RETURN_IF_ERROR(
        vfile_->Reserve(uint64_t{c} * vfile_->segment_bytes() + ((slot & mask_) + 1) * vec_bytes));
    ++slot_limit_;
    live_.push_back(0);
    *out = slot;
    return Status::OK();
  }
  if (c == chunks_.size()) chunks_.emplace_back();
  Chunk& chunk = chunks_[c];
  if ((slot & mask_) + 1 > chunk.capacity_slots) {
    // Whole chunks at once: untouched pages of the anonymous mapping cost
    // nothing. A chunk loaded from a snapshot is copied out of the mapping.
    HugeBuffer buf(static_cast<size_t>(per_chunk) * vec_bytes);
    if (chunk.capacity_slots > 0)
      std::memcpy(buf.data(), chunk.data, static_cast<size_t>(chunk.capacity_slots) * vec_bytes);
    chunk.owned = std::move(buf);
    chunk.data = static_cast<float*>(chunk.owned.data());
    chunk.capacity_slots = per_chunk;
  }
  ++slot_limit_;
  live_.push_back(0);
  *out = slot;
  return Status::OK();
}

void IvfIndex::StoreLocked(uint32_t slot, const float* vec) {
  float* dst = SlotPtr(slot);
  std::memcpy(dst, vec, static_cast<size_t>(config_.dim) * sizeof(float));
  if (config_.metric == Metric::kCosine) distance::Normalize(dst, config_.dim);
}

void IvfIndex::InsertLocked(Structure* st, uint32_t slot) {
  std::vector<uint8_t> code(st->model.m);
  const float* v = SlotPtr(slot);
  const uint32_t list = st->model.Nearest(v);
  const float extra = st->model.Encode(v, list, code.data());
  st->Append(slot, list, code.data(), extra, l2_);
}

void IvfIndex::EraseLocked(Structure* st, uint32_t slot) { st->Erase(slot); }

size_t IvfIndex::NearestSlotsLocked(const Model& m, const uint32_t* slots, size_t n, uint32_t* out,
                                    uint32_t threads, const uint32_t* known) const {
  const uint32_t dim = config_.dim;
  std::atomic<size_t> searched{0};
  ParallelFor((n + kAssignTask - 1) / kAssignTask, n >= 2 * kAssignTask ? threads : 1,
              [&](size_t t, uint32_t) {
                // The task's vectors gathered into one block for the kernel.
                thread_local std::vector<float> buf;
                buf.resize(kAssignTask * dim);
                uint32_t at[kAssignTask], near[kAssignTask];
                const size_t b = t * kAssignTask, e = std::min(n, b + kAssignTask);
                size_t cnt = 0;
                for (size_t i = b; i < e; ++i) {
                  const uint32_t s = slots[i];
                  // (known may be out itself: read before writing.)
                  const uint32_t k = known != nullptr ? known[i] : kNone;
                  out[i] = kNone;
                  if (s >= slot_limit_ || !live_[s]) continue;
                  if (k != kNone) {
                    out[i] = k;
                    continue;
                  }
                  std::memcpy(&buf[cnt * dim], SlotPtr(s), sizeof(float) * dim);
                  at[cnt++] = static_cast<uint32_t>(i);
                }
                m.NearestMany(buf.data(), cnt, near);
                for (size_t j = 0; j < cnt; ++j) out[at[j]] = near[j];
                searched.fetch_add(cnt, std::memory_order_relaxed);
                return true;
              });
  return searched.load();
}

void IvfIndex::NoteDirtyLocked(uint32_t slot) {
  if (rebuilding_) dirty_.push_back(slot);
}

Status IvfIndex::Add(const float* vec, uint32_t* slot) {
  std::unique_lock lock(mu_);
  uint32_t s;
  AIDB_RETURN_IF_ERROR(AllocateSlotLocked(&s));
  StoreLocked(s, vec);
  live_[s] = 1;
  ++size_;
  if (st_) InsertLocked(st_.get(), s);
  NoteDirtyLocked(s);
  *slot = s;
  MaybeRebuild(lock);
  return Status::OK();
}

Status IvfIndex::AddBatch(const float* vecs, size_t n, uint32_t* slots, uint32_t threads) {
  std::unique_lock lock(mu_);
  for (size_t i = 0; i < n; ++i) {
    uint32_t s;
    if (Status st = AllocateSlotLocked(&s); !st.ok()) {
      // No space for the vectors file: the batch adds nothing (its slots are
      // not in the structure yet; a rebuild skips slots no longer live).
      for (size_t j = 0; j < i; ++j) {
        live_[slots[j]] = 0;
        --size_;
        free_.push_back(slots[j]);
      }
      return st;
    }
    StoreLocked(s, vecs + i * config_.dim);
    live_[s] = 1;
    ++size_;
    slots[i] = s;
    NoteDirtyLocked(s);
  }
  if (st_) {
    // Assign and encode in parallel, append in order.
    const Model& model = st_->model;
    std::vector<uint32_t> lists(n);
    std::vector<float> extra(n);
    std::vector<uint8_t> codes(n * model.m);
    NearestSlotsLocked(model, slots, n, lists.data(), threads);
    ParallelFor(n, n >= 256 ? threads : 1, [&](size_t i, uint32_t) {
      extra[i] = model.Encode(SlotPtr(slots[i]), lists[i], &codes[i * model.m]);
      return true;
    });
    for (size_t i = 0; i < n; ++i)
      st_->Append(slots[i], lists[i], &codes[i * model.m], extra[i], l2_);
  }
  MaybeRebuild(lock);
  return Status::OK();
}

Status IvfIndex::Update(uint32_t slot, const float* vec) {
  std::unique_lock lock(mu_);
  if (slot >= slot_limit_ || !live_[slot]) return Status::NotFound("ivf index: slot not live");
  StoreLocked(slot, vec);
  if (st_) {
    EraseLocked(st_.get(), slot);
    InsertLocked(st_.get(), slot);
  }
  NoteDirtyLocked(slot);
  return Status::OK();
}

void IvfIndex::Remove(uint32_t slot) {
  std::unique_lock lock(mu_);
  if (slot >= slot_limit_ || !live_[slot]) return;
  live_[slot] = 0;
  --size_;
  if (st_) EraseLocked(st_.get(), slot);
  NoteDirtyLocked(slot);
  free_.push_back(slot);
}

void IvfIndex::GetVector(uint32_t slot, float* out) const {
  std::shared_lock lock(mu_);
  if (slot >= slot_limit_) return;
  std::memcpy(out, SlotPtr(slot), static_cast<size_t>(config_.dim) * sizeof(float));
}

uint64_t IvfIndex::Size() const {
  std::shared_lock lock(mu_);
  return size_;
}

uint32_t IvfIndex::SlotLimit() const {
  std::shared_lock lock(mu_);
  return slot_limit_;
}

bool IvfIndex::IsLive(uint32_t slot) const {
  std::shared_lock lock(mu_);
  return slot < slot_limit_ && live_[slot];
}

bool IvfIndex::Trained() const {
  std::shared_lock lock(mu_);
  return st_ != nullptr;
}

uint32_t IvfIndex::Nlist() const {
  std::shared_lock lock(mu_);
  return st_ ? st_->model.nlist : 0;
}

uint32_t IvfIndex::Subspaces() const {
  std::shared_lock lock(mu_);
  return st_ ? st_->model.m : 0;
}

size_t IvfIndex::MemoryBytes() const {
  std::shared_lock lock(mu_);
  size_t b = live_.size() + free_.size() * 4;
  if (vfile_ == nullptr) b += static_cast<size_t>(slot_limit_) * config_.dim * sizeof(float);
  if (st_) b += st_->Bytes();
  return b;
}

IvfIndex::MemoryParts IvfIndex::MemoryBreakdown() const {
  std::shared_lock lock(mu_);
  MemoryParts p;
  p.slot_maps = live_.size() + free_.size() * 4;
  if (vfile_ == nullptr) p.vectors = static_cast<size_t>(slot_limit_) * config_.dim * sizeof(float);
  if (st_) {
    p.slot_maps += (st_->where.size() + st_->pos.size()) * sizeof(uint32_t);
    p.model = st_->model.Bytes();
    for (const List& L : st_->lists) {
      p.codes += L.codes.size();
      p.list_slots += L.slots.size() * 4;
      p.extra += L.extra.size() * 4;
      p.spare += (L.slots.capacity() - L.slots.size()) * 4 +
                 (L.extra.capacity() - L.extra.size()) * 4 + L.codes.capacity() - L.codes.size();
    }
  }
  return p;
}

Status IvfIndex::SetEfSearch(uint32_t ef) {
  nprobe_.store(ef, std::memory_order_relaxed);
  return Status::OK();
}

Status IvfIndex::Compact() { return Status::OK(); }

// ---- rebuilds ---------------------------------------------------------------

bool IvfIndex::WantsRebuildLocked() const {
  if (rebuilding_ || size_ == 0) return false;
  if (!st_) return size_ >= tuning_.min_train;
  return static_cast<double>(size_) >=
         tuning_.regrow * static_cast<double>(std::max<uint64_t>(st_->model.trained_count, 1));
}

void IvfIndex::MaybeRebuild(std::unique_lock<RwLock>& lock) {
  if (!WantsRebuildLocked()) return;
  rebuilding_ = true;
  dirty_.clear();
  const uint64_t gen = generation_;
  // The first training runs in the writer's thread (lock released): it is
  // small when points arrive one by one (min_train of them), and a bulk
  // load gets a trained index when its batch returns. Retraining runs in
  // the background.
  if (!tuning_.background || !st_) {
    lock.unlock();
    RunRebuild(gen);
    return;
  }
  // A previous worker has set rebuilding_ = false and no longer needs mu_.
  std::lock_guard g(thread_mu_);
  if (worker_.joinable()) worker_.join();
  worker_ = std::thread([this, gen] { RunRebuild(gen); });
}

Status IvfIndex::Train() {
  WaitIdle();
  std::unique_lock lock(mu_);
  if (size_ == 0) return Status::InvalidArgument("ivf: nothing to train on");
  if (rebuilding_) return Status::Busy("ivf: a rebuild is running");
  rebuilding_ = true;
  dirty_.clear();
  const uint64_t gen = generation_;
  lock.unlock();
  RunRebuild(gen);
  return Status::OK();
}

void IvfIndex::WaitIdle() const {
  for (;;) {
    {
      std::lock_guard g(thread_mu_);
      if (worker_.joinable()) const_cast<std::thread&>(worker_).join();
    }
    std::shared_lock lock(mu_);
    if (!rebuilding_) return;
  }
}

void IvfIndex::RunRebuild(uint64_t gen) {
  const uint32_t dim = config_.dim;
  const uint32_t threads = DefaultThreads();
  auto finish = [&](std::unique_ptr<Structure> ns) {
    std::unique_lock lock(mu_);
    if (ns && generation_ == gen && !stop_.load()) {
      std::sort(dirty_.begin(), dirty_.end());
      dirty_.erase(std::unique(dirty_.begin(), dirty_.end()), dirty_.end());
      for (uint32_t s : dirty_) {
        ns->Erase(s);
        if (s < slot_limit_ && live_[s]) InsertLocked(ns.get(), s);
      }
      st_ = std::move(ns);
    }
    dirty_.clear();
    rebuilding_ = false;
  };

  // 1. The live slots and a sample of their vectors.
  std::vector<uint32_t> slots, pick;
  std::vector<float> sample;
  uint32_t nlist = 0;
  size_t ns = 0;
  std::mt19937_64 rng(tuning_.seed ^ (gen * 0x9e3779b97f4a7c15ull));
  {
    std::shared_lock lock(mu_);
    if (generation_ != gen || stop_.load()) {
      lock.unlock();
      return finish(nullptr);
    }
    slots.reserve(size_);
    for (uint32_t s = 0; s < slot_limit_; ++s)
      if (live_[s]) slots.push_back(s);
    const uint64_t n = slots.size();
    if (n == 0) {
      lock.unlock();
      return finish(nullptr);
    }
    uint64_t want = config_.ivf.nlist ? config_.ivf.nlist
                                      : static_cast<uint64_t>(std::llround(std::sqrt(double(n))));
    nlist = static_cast<uint32_t>(std::clamp<uint64_t>(want, 1, std::min<uint64_t>(n, kMaxNlist)));
    ns = std::min<size_t>(n, std::max<size_t>(8192, size_t{nlist} * tuning_.sample_per_list));
    // Positions in `slots`, the first ns of them picked.
    pick.resize(n);
    std::iota(pick.begin(), pick.end(), 0u);
    for (size_t i = 0; i < ns; ++i) {
      std::uniform_int_distribution<size_t> u(i, pick.size() - 1);
      std::swap(pick[i], pick[u(rng)]);
    }
    pick.resize(ns);
    sample.resize(ns * dim);
    for (size_t i = 0; i < ns; ++i)
      std::memcpy(&sample[i * dim], SlotPtr(slots[pick[i]]), sizeof(float) * dim);
  }

  // 2. Train with no lock held: coarse k-means, then the PQ codebooks on the
  // sample's residuals.
  auto st = std::make_unique<Structure>();
  Model& m = st->model;
  m.dim = dim;
  m.nlist = nlist;
  m.ds = std::min(dim, tuning_.sub_dim ? tuning_.sub_dim : DefaultSubDim(dim));
  m.m = (dim + m.ds - 1) / m.ds;
  m.npairs = (m.m + 1) / 2;
  m.trained_count = slots.size();
  // Runs fn(b, nb) on slots[b, b + nb), a batch at a time under the shared
  // lock (writers get in between batches and are logged in dirty_); false
  // when the rebuild was superseded or the index stops.
  auto batches = [&](auto&& fn) {
    for (size_t b = 0; b < slots.size(); b += kRebuildBatch) {
      std::shared_lock lock(mu_);
      if (generation_ != gen || stop_.load()) return false;
      fn(b, std::min(kRebuildBatch, slots.size() - b));
    }
    return true;
  };
  std::vector<uint32_t> assign;
  m.centroids = KMeans(sample.data(), ns, dim, nlist, tuning_.kmeans_iters, rng, threads, &assign);
  // Lloyd passes over every vector (not just the sample), a batch at a time
  // under the shared lock: a sample of a few dozen points per list leaves
  // the centroids noisy, full k-means costs a pass per iteration.
  if (ns < slots.size() && tuning_.refine_passes > 0) {
    std::vector<double> sum(static_cast<size_t>(nlist) * dim);
    std::vector<uint64_t> cnt(nlist);
    std::vector<uint32_t> near(kRebuildBatch);
    for (uint32_t pass = 0; pass < tuning_.refine_passes; ++pass) {
      m.SetNorms();
      std::fill(sum.begin(), sum.end(), 0.0);
      std::fill(cnt.begin(), cnt.end(), 0);
      const bool done = batches([&](size_t b, size_t nb) {
        NearestSlotsLocked(m, &slots[b], nb, near.data(), threads);
        for (size_t i = 0; i < nb; ++i) {
          if (near[i] == kNone) continue;
          const float* v = SlotPtr(slots[b + i]);
          double* acc = &sum[static_cast<size_t>(near[i]) * dim];
          for (uint32_t t = 0; t < dim; ++t) acc[t] += v[t];
          ++cnt[near[i]];
        }
      });
      if (!done) return finish(nullptr);
      for (uint32_t l = 0; l < nlist; ++l) {
        if (cnt[l] == 0) continue;
        for (uint32_t t = 0; t < dim; ++t)
          m.centroids[static_cast<size_t>(l) * dim + t] = static_cast<float>(
              sum[static_cast<size_t>(l) * dim + t] / static_cast<double>(cnt[l]));
      }
    }
    m.SetNorms();
    NearestParallel(m, sample.data(), ns, assign.data(), threads);
  }
  m.codebooks.assign(static_cast<size_t>(m.m) * 16 * m.ds, 0.f);
  {
    // 16 codewords of 1-4 dimensions: a few thousand residuals train them
    // as well as the whole sample.
    const size_t nc = std::min<size_t>(ns, kCodebookSample);
    std::vector<float> sub(nc * m.ds);
    for (uint32_t s = 0; s < m.m; ++s) {
      const uint32_t len = m.SubLen(s), off = s * m.ds;
      for (size_t i = 0; i < nc; ++i)
        for (uint32_t t = 0; t < len; ++t)
          sub[i * len + t] = sample[i * dim + off + t] - m.Centroid(assign[i])[off + t];
      std::vector<float> cb =
          KMeans(sub.data(), nc, len, 16, tuning_.kmeans_iters, rng, 1, nullptr);
      for (uint32_t j = 0; j < 16; ++j)
        for (uint32_t t = 0; t < len; ++t)
          m.codebooks[(static_cast<size_t>(s) * 16 + j) * m.ds + t] = cb[j * len + t];
    }
  }
  m.Finish();
  sample.clear();
  sample.shrink_to_fit();
  st->lists.resize(nlist);
  // The sample's vectors keep the list k-means gave them (its last
  // assignment, against the final centroids: what Nearest gives); the
  // others are assigned below. (A sampled slot rewritten since is dirty and
  // re-inserted when the structure is swapped in.)
  std::vector<uint32_t> known(slots.size(), kNone);
  for (size_t i = 0; i < ns; ++i) known[pick[i]] = assign[i];
  pick = std::vector<uint32_t>();
  assign = std::vector<uint32_t>();

  // 3. Assign every slot, then encode and append it, a batch at a time
  // (batches above). The lists are sized exactly from the assignment: growing
  // them by doubling left ~3% of the index as spare capacity and freed
  // buffers. (A slot rewritten between the two passes is dirty: re-inserted
  // at the swap.)
  std::vector<uint32_t>& lists = known;
  uint64_t searched = 0;
  if (!batches([&](size_t b, size_t nb) {
        searched += NearestSlotsLocked(m, &slots[b], nb, &lists[b], threads, &known[b]);
      }))
    return finish(nullptr);
  last_searched_.store(searched, std::memory_order_relaxed);
  {
    std::vector<uint32_t> count(nlist, 0);
    for (uint32_t l : lists)
      if (l != kNone) ++count[l];
    for (uint32_t l = 0; l < nlist; ++l) st->Reserve(l, count[l], l2_);
    if (!slots.empty()) {
      st->where.assign(size_t{slots.back()} + 1, kNone);
      st->pos.assign(size_t{slots.back()} + 1, 0);
    }
  }
  std::vector<float> extra(kRebuildBatch);
  std::vector<uint8_t> codes(kRebuildBatch * m.m);
  if (!batches([&](size_t b, size_t nb) {
        ParallelFor(nb, threads, [&](size_t i, uint32_t) {
          const uint32_t s = slots[b + i];
          if (lists[b + i] != kNone && !(s < slot_limit_ && live_[s])) lists[b + i] = kNone;
          if (lists[b + i] != kNone) extra[i] = m.Encode(SlotPtr(s), lists[b + i], &codes[i * m.m]);
          return true;
        });
        for (size_t i = 0; i < nb; ++i)
          if (lists[b + i] != kNone)
            st->Append(slots[b + i], lists[b + i], &codes[i * m.m], extra[i], l2_);
      }))
    return finish(nullptr);

  // 4. Catch up with the writes made meanwhile and swap.
  finish(std::move(st));
}

// ---- search -----------------------------------------------------------------

uint32_t IvfIndex::EffectiveNprobe(uint32_t ef) const {
  std::shared_lock lock(mu_);
  if (!st_) return 0;
  const uint32_t nlist = st_->model.nlist;
  uint32_t p = ef ? ef : nprobe_.load(std::memory_order_relaxed);
  if (p == 0) p = DefaultNprobe(nlist);
  return std::min(p, nlist);
}

uint32_t IvfIndex::EffectiveRerank(uint32_t k, uint32_t rerank) const {
  uint32_t r = rerank ? rerank : config_.ivf.rerank;
  if (r == 0) r = std::max(kMinRerank, kRerankPerK * k);
  return std::max(r, k);
}

float IvfIndex::ExactDist(const float* q, uint32_t slot) const {
  return l2_ ? L2Sq(q, SlotPtr(slot), config_.dim) : -DotP(q, SlotPtr(slot), config_.dim);
}

float IvfIndex::ToScore(float d) const {
  return l2_ ? distance::ScoreFromL2Squared(d) : distance::ScoreFromDot(-d);
}

void IvfIndex::ExactSearch(const float* q, const SearchParams& params, std::vector<Hit>* out,
                           const std::vector<uint32_t>* listed_matches) const {
  TopK top(params.k);
  const SlotFilter* filter = params.filter;
  auto consider = [&](uint32_t slot) {
    float score = -ExactDist(q, slot);
    if (!top.WouldKeep(score)) return;
    if (filter && !filter->Allowed(slot)) return;
    top.Push(score, slot);
  };
  std::vector<uint32_t> listed;
  if (listed_matches == nullptr && filter && filter->ListMatches(&listed)) listed_matches = &listed;
  if (listed_matches) {
    for (uint32_t slot : *listed_matches)
      if (slot < slot_limit_ && live_[slot]) consider(slot);
  } else {
    for (uint32_t slot = 0; slot < slot_limit_; ++slot)
      if (live_[slot]) consider(slot);
  }
  top.Take(out);
  for (Hit& h : *out) h.score = ToScore(-h.score);
}

// A candidate of the approximate scan. Candidates are ranked by (d, slot):
// the slot breaks ties of the approximate distance, so the re-ranked set is
// the `rerank` smallest keys of the probed lists whatever order the lists are
// scanned in (a batch scans them grouped by list, not in each query's probe
// order) and whatever the reservoir's history.
namespace {
struct Cand {
  float d;
  uint32_t slot;
};
inline bool KeyLess(const Cand& a, const Cand& b) {
  return a.d < b.d || (a.d == b.d && a.slot < b.slot);
}

// Best `k` exact hits, higher score first, ties to the lower slot, whatever
// order they are pushed in (TopK keeps the first of equal scores).
class RerankTop {
 public:
  explicit RerankTop(size_t k) : k_(k) { heap_.reserve(k); }
  void Push(float score, uint32_t slot) {
    if (k_ == 0) return;
    const Hit h{score, slot};
    if (heap_.size() < k_) {
      heap_.push_back(h);
      std::push_heap(heap_.begin(), heap_.end(), Better);
    } else if (Better(h, heap_.front())) {
      std::pop_heap(heap_.begin(), heap_.end(), Better);
      heap_.back() = h;
      std::push_heap(heap_.begin(), heap_.end(), Better);
    }
  }
  void Take(std::vector<Hit>* out) {
    std::sort(heap_.begin(), heap_.end(), Better);
    out->swap(heap_);
    heap_.clear();
  }

 private:
  // As a heap comparator: the front is the worst kept hit.
  static bool Better(const Hit& a, const Hit& b) {
    return a.score > b.score || (a.score == b.score && a.slot < b.slot);
  }
  size_t k_;
  std::vector<Hit> heap_;
};

// Per-thread buffers of the list scan.
struct ScanScratch {
  std::vector<float> lutf, lo, hi;
  std::vector<uint16_t> acc;
  std::vector<float> dists;
};
ScanScratch& Scratch() {
  thread_local ScanScratch s;
  return s;
}
}  // namespace

// One query's search state: probe order, lookup table, reservoir.
struct IvfIndex::Query {
  const float* q = nullptr;  // the query (normalised for cosine: qn)
  std::vector<float> qn;
  bool answered = false;  // by an exact scan (filter), into the output
  uint32_t nprobe = 0, rerank = 0, sorted = 0;
  float qq = 0.f, scale = 1.f, inv = 1.f, bias = 0.f;
  std::vector<float> qdot;                                  // q . centroid, per list
  std::vector<float> key;                                   // probe order key, per list
  std::vector<uint32_t> order;                              // lists, best first (a sorted prefix)
  std::vector<uint8_t> lut;                                 // 8-bit lookup table
  std::vector<Cand> res;                                    // reservoir
  Cand thr{std::numeric_limits<float>::infinity(), kNone};  // keys >= thr cannot enter
};

bool IvfIndex::PrepareLocked(const float* query, const SearchParams& params, Query* qs,
                             std::vector<Hit>* out, const float* qdot) const {
  const uint32_t dim = config_.dim;
  qs->answered = false;
  qs->res.clear();
  qs->thr = {std::numeric_limits<float>::infinity(), kNone};
  qs->q = query;
  if (config_.metric == Metric::kCosine) {
    qs->qn.assign(query, query + dim);
    distance::Normalize(qs->qn.data(), dim);
    qs->q = query = qs->qn.data();
  }
  if (!st_ || params.exact) {
    ExactSearch(query, params, out, nullptr);
    qs->answered = true;
    return false;
  }
  const Structure& st = *st_;
  const Model& m = st.model;
  const uint32_t nlist = m.nlist;
  uint32_t nprobe = params.ef ? params.ef : nprobe_.load(std::memory_order_relaxed);
  if (nprobe == 0) nprobe = DefaultNprobe(nlist);
  nprobe = std::min(nprobe, nlist);
  const uint32_t rerank = EffectiveRerank(params.k, params.rerank);
  const SlotFilter* filter = params.filter;
  if (filter) {
    const int64_t est = filter->EstimatedMatches();
    if (est >= 0 && size_ > 0) {
      // The filtered top-k lies about as far out as the unfiltered
      // (k / selectivity)-th neighbour: probe sqrt(1 / selectivity) times
      // more lists. An exact scan of the listed matches wins when it reads
      // fewer bytes than that probe; without a list, only tiny match counts
      // are scanned exactly (the full scan reads every vector).
      const double sel = std::max(1e-6, static_cast<double>(est) / static_cast<double>(size_));
      const uint32_t widened = static_cast<uint32_t>(
          std::min<double>(nlist, std::ceil(nprobe * std::sqrt(1.0 / std::min(1.0, sel)))));
      // A code byte costs ~3x a streamed float byte once the per-candidate
      // work (threshold, filter, heap) is counted (bench: 5% selectivity).
      const double probe_bytes =
          3.0 * static_cast<double>(widened) / nlist * static_cast<double>(size_) * (m.npairs + 8);
      const double exact_bytes = static_cast<double>(est) * dim * sizeof(float);
      if (est <= kExactMinMatches || exact_bytes <= probe_bytes) {
        std::vector<uint32_t> listed;
        if (filter->ListMatches(&listed)) {
          ExactSearch(query, params, out, &listed);
          qs->answered = true;
          return false;
        }
        if (est <= kExactMinMatches) {
          ExactSearch(query, params, out, nullptr);
          qs->answered = true;
          return false;
        }
      }
      nprobe = std::max(nprobe, widened);
    }
  }
  qs->nprobe = nprobe;
  qs->rerank = rerank;

  // Centroid scores: probe order (L2 for Euclidean and cosine, -q.c for dot)
  // and the base of each list's approximate distance.
  ScanScratch& sc = Scratch();
  qs->qdot.resize(nlist);
  qs->key.resize(nlist);
  qs->qq = l2_ ? DotP(query, query, dim) : 0.f;
  // From the blocked kernel, alone or (qdot) for a run of queries: the same
  // bits either way.
  static const pq4::DotBlockFn dot_block = pq4::DotBlock();
  if (qdot != nullptr) {
    std::copy(qdot, qdot + nlist, qs->qdot.begin());
  } else {
    dot_block(query, 1, m.packed.data(), nlist, dim, qs->qdot.data(), nlist);
  }
  for (uint32_t l = 0; l < nlist; ++l) {
    const float d = qs->qdot[l];
    qs->key[l] = config_.metric == Metric::kDot ? -d : m.cnorm[l] - 2.f * d;
  }
  qs->order.resize(nlist);
  std::iota(qs->order.begin(), qs->order.end(), 0u);
  // Filtered searches may probe past nprobe: order a generous prefix, the
  // rest lazily (ProbeFromLocked).
  const float* key = qs->key.data();
  auto by_key = [key](uint32_t a, uint32_t b) { return key[a] < key[b]; };
  qs->sorted = std::min(nlist, filter ? std::max(nprobe * 4, nprobe) : nprobe);
  std::partial_sort(qs->order.begin(), qs->order.begin() + qs->sorted, qs->order.end(), by_key);

  // Lookup table: entry j of subspace s = -alpha * q_s . w_sj (alpha 2 for
  // Euclidean), quantised to 8 bits with one scale for the whole query.
  // Built from the transposed codebooks: 16 consecutive floats per (s, t).
  const float alpha = l2_ ? 2.f : 1.f;
  static const pq4::LutFn lut = pq4::Lut();
  static const pq4::QuantizeFn quantize = pq4::Quantize();
  sc.lutf.resize(static_cast<size_t>(m.m) * 16);
  sc.lo.resize(m.m);
  sc.hi.resize(m.m);
  lut(query, dim, m.ds, m.cbt.data(), alpha, sc.lutf.data(), sc.lo.data(), sc.hi.data());
  float bias = 0.f, maxspan = 0.f, sumspan = 0.f;
  for (uint32_t s = 0; s < m.m; ++s) {
    bias += sc.lo[s];
    maxspan = std::max(maxspan, sc.hi[s] - sc.lo[s]);
    sumspan += sc.hi[s] - sc.lo[s];
  }
  float scale = std::max(maxspan / 255.f, sumspan / 65535.f);
  if (!(scale > 0.f)) scale = 1.f;
  const float inv = 1.f / scale;
  // Entry j of subspace s at s * 16 + j (pairs of subspaces, 32 bytes per
  // pair; an odd last pair padded with zeros). Entries are >= 0:
  // truncation is floor.
  qs->lut.assign(static_cast<size_t>(m.npairs) * pq4::kPairBytes, 0);
  quantize(sc.lutf.data(), static_cast<size_t>(m.m) * 16, inv, qs->lut.data());
  bias += 0.5f * scale * static_cast<float>(m.m);  // floor loses half a step on average
  qs->scale = scale;
  qs->inv = inv;
  qs->bias = bias;
  return true;
}

// Scans list l for one query. Candidates go to a reservoir of 2 * rerank:
// when it fills, the best `rerank` keys are kept (nth_element) and the worst
// of them becomes the threshold; per block of 32 codes the threshold, as a
// 16-bit limit on the code sum (one step of slack for rounding: the float
// test decides), is compared in SIMD, so only codes that can enter are
// looked at. `next` (or null) is prefetched while candidates are sorted.
// Not inlined: the single and the batch search run the same code, so their
// float arithmetic, and so their results, are the same.
float IvfIndex::ListLowerLocked(const Query& qs, uint32_t l, float* base) const {
  const Model& m = st_->model;
  *base = (l2_ ? qs.qq + m.cnorm[l] - 2.f * qs.qdot[l] : -qs.qdot[l]) + qs.bias;
  return *base + (l2_ ? st_->lists[l].min_extra : 0.f);
}

void IvfIndex::ScanListLocked(Query* qs, uint32_t l, const SlotFilter* filter,
                              const List* next) const {
  static const pq4::ScanFn scan = pq4::Scan();
  const Model& m = st_->model;
  const List& L = st_->lists[l];
  const size_t n = L.slots.size();
  if (n == 0) return;
  float base;
  // No code of this list can enter (every d >= lower; equal d may still
  // enter on a lower slot).
  if (ListLowerLocked(*qs, l, &base) > qs->thr.d) return;
  ScanScratch& sc = Scratch();
  const size_t nblocks = (n + pq4::kBlock - 1) / pq4::kBlock;
  sc.acc.resize(nblocks * pq4::kBlock);
  scan(L.codes.data(), nblocks, m.npairs, qs->lut.data(), sc.acc.data());
  if (next != nullptr && !next->codes.empty())
    distance::Prefetch(next->codes.data(), std::min(next->codes.size(), 2 * m.BlockBytes()));
  CollectLocked(qs, l, filter, sc.acc.data());
}

__attribute__((noinline)) void IvfIndex::CollectLocked(Query* qs, uint32_t l,
                                                       const SlotFilter* filter,
                                                       const uint16_t* acc) const {
  static const pq4::BelowFn below = pq4::Below();
  const List& L = st_->lists[l];
  const size_t n = L.slots.size();
  const size_t nblocks = (n + pq4::kBlock - 1) / pq4::kBlock;
  const uint32_t rerank = qs->rerank;
  float base;
  const float lower = ListLowerLocked(*qs, l, &base);
  ScanScratch& sc = Scratch();
  const float* extra = l2_ ? L.extra.data() : nullptr;
  const float scale = qs->scale, inv = qs->inv;
  auto& res = qs->res;
  Cand& thr = qs->thr;
  const size_t cap = 2 * static_cast<size_t>(rerank);
  if (filter == nullptr && res.empty() && n > rerank) {
    // The first list scanned holds more than `rerank` codes: its rerank-th
    // smallest approximate distance bounds the final threshold, so start
    // from it instead of admitting every code until the reservoir fills.
    // The distances are computed as below; that distance and its ties (any
    // slot) still enter.
    sc.dists.resize(n);
    for (size_t j = 0; j < n; ++j) {
      float d = base + scale * static_cast<float>(acc[j]);
      if (extra) d += extra[j];
      sc.dists[j] = d;
    }
    std::nth_element(sc.dists.begin(), sc.dists.begin() + (rerank - 1), sc.dists.end());
    thr = {sc.dists[rerank - 1], kNone};
  }
  for (size_t b = 0; b < nblocks; ++b) {
    const float lim = (thr.d - lower) * inv + 1.f;
    if (!(lim >= 0.f)) break;
    uint32_t mask =
        below(acc + b * pq4::kBlock, lim >= 65535.f ? uint16_t{65535} : static_cast<uint16_t>(lim));
    const size_t left = n - b * pq4::kBlock;
    if (left < pq4::kBlock) mask &= (1u << left) - 1u;
    while (mask != 0) {
      const size_t j = b * pq4::kBlock + static_cast<size_t>(__builtin_ctz(mask));
      mask &= mask - 1;
      float d = base + scale * static_cast<float>(acc[j]);
      if (extra) d += extra[j];
      if (d > thr.d) continue;
      const uint32_t slot = L.slots[j];
      if (d == thr.d && slot >= thr.slot) continue;
      if (filter && !filter->Allowed(slot)) continue;
      res.push_back({d, slot});
      if (res.size() >= cap) {
        std::nth_element(res.begin(), res.begin() + (rerank - 1), res.end(), KeyLess);
        thr = res[rerank - 1];
        res.resize(rerank);
      }
    }
  }
}

// Scans the query's lists in probe order from position `from` on: every
// list up to nprobe, then (filtered searches) more until `rerank` matching
// candidates are held.
void IvfIndex::ProbeFromLocked(Query* qs, uint32_t from, const SlotFilter* filter) const {
  const Structure& st = *st_;
  const uint32_t nlist = st.model.nlist;
  for (uint32_t i = from; i < nlist; ++i) {
    if (i >= qs->nprobe && (filter == nullptr || qs->res.size() >= qs->rerank)) break;
    if (i == qs->sorted) {
      const float* key = qs->key.data();
      std::sort(qs->order.begin() + i, qs->order.end(),
                [key](uint32_t a, uint32_t b) { return key[a] < key[b]; });
      qs->sorted = nlist;
    }
    const List* next = i + 1 < nlist && i + 1 < qs->sorted ? &st.lists[qs->order[i + 1]] : nullptr;
    ScanListLocked(qs, qs->order[i], filter, next);
  }
}

// The final `rerank` candidates re-scored exactly, into the top-k.
void IvfIndex::RerankLocked(Query* qs, uint32_t k, std::vector<Hit>* out) const {
  auto& res = qs->res;
  const uint32_t rerank = qs->rerank;
  if (res.size() > rerank) {
    std::nth_element(res.begin(), res.begin() + (rerank - 1), res.end(), KeyLess);
    res.resize(rerank);
  }
  // Long vectors: four candidates per kernel call, their vectors read as
  // four streams at once (pq4::Dot4: the distance kernel's bits). The first
  // lines of the next four are prefetched; the hardware prefetcher follows
  // each stream from there (at 768 dims, prefetching whole 3 KiB vectors
  // ahead, as before, was no faster than no prefetch). Short vectors (128
  // dims: 2-4% slower that way) keep one at a time with whole vectors
  // prefetched: bench/README.md, "768 dims".
  RerankTop top(k);
  static const pq4::Dist4Fn l2sq4 = pq4::L2Squared4(), dot4 = pq4::Dot4();
  constexpr size_t kGroup = 4, kHeadBytes = 256, kFourRowMinBytes = 2048;
  const size_t vbytes = static_cast<size_t>(config_.dim) * sizeof(float);
  const pq4::Dist4Fn dist4 = vbytes < kFourRowMinBytes ? nullptr : l2_ ? l2sq4 : dot4;
  const size_t head = std::min(kHeadBytes, vbytes);
  const size_t n = res.size();
  size_t i = 0;
  if (dist4 != nullptr) {
    for (size_t j = 0; j < std::min(kGroup, n); ++j) distance::Prefetch(SlotPtr(res[j].slot), head);
    for (; i + kGroup <= n; i += kGroup) {
      for (size_t j = i + kGroup; j < std::min(i + 2 * kGroup, n); ++j)
        distance::Prefetch(SlotPtr(res[j].slot), head);
      const float* rows[kGroup] = {SlotPtr(res[i].slot), SlotPtr(res[i + 1].slot),
                                   SlotPtr(res[i + 2].slot), SlotPtr(res[i + 3].slot)};
      float d[kGroup];
      dist4(qs->q, rows, config_.dim, d);
      // As ExactDist: the squared distance, or the negated dot product.
      for (size_t j = 0; j < kGroup; ++j) top.Push(l2_ ? -d[j] : d[j], res[i + j].slot);
    }
  } else {
    // One at a time, a few whole vectors ahead.
    constexpr size_t kAhead = 4;
    for (size_t j = 0; j < std::min(kAhead, n); ++j)
      distance::Prefetch(SlotPtr(res[j].slot), vbytes);
    for (; i < n; ++i) {
      if (i + kAhead < n) distance::Prefetch(SlotPtr(res[i + kAhead].slot), vbytes);
      top.Push(-ExactDist(qs->q, res[i].slot), res[i].slot);
    }
  }
  for (; i < n; ++i) top.Push(-ExactDist(qs->q, res[i].slot), res[i].slot);
  top.Take(out);
  for (Hit& h : *out) h.score = ToScore(-h.score);
}

Status IvfIndex::Search(const float* query, const SearchParams& params,
                        std::vector<Hit>* out) const {
  out->clear();
  thread_local Query qs;
  std::shared_lock<RwLock> lock(mu_, std::defer_lock);
  if (!LockShared(lock, params.nonblocking)) {
    return Status::Busy("ivf: the index is being written; retry, or search without nonblocking");
  }
  if (params.k == 0) return Status::OK();
  if (!PrepareLocked(query, params, &qs, out)) return Status::OK();
  ProbeFromLocked(&qs, 0, params.filter);
  RerankLocked(&qs, params.k, out);
  return Status::OK();
}

// Queries of a batch prepared and scanned together: a few hundred, so their
// states (lookup tables, reservoirs, probe orders) stay small against the
// cache while each list is shared by several of them. A query's probe
// order and centroid scores take 12 bytes per list: with many lists the
// group shrinks to keep them under kBatchStateBytes (at least 16 queries).
constexpr size_t kBatchGroup = 256;
constexpr size_t kBatchStateBytes = size_t{8} << 20;

Status IvfIndex::SearchBatch(const float* queries, size_t nq, const SearchParams& params,
                             std::vector<std::vector<Hit>>* out) const {
  out->resize(nq);
  for (auto& o : *out) o.clear();
  std::shared_lock<RwLock> lock(mu_, std::defer_lock);
  if (!LockShared(lock, params.nonblocking)) {
    return Status::Busy("ivf: the index is being written; retry, or search without nonblocking");
  }
  if (params.k == 0 || nq == 0) return Status::OK();
  const uint32_t dim = config_.dim;
  thread_local std::vector<Query> qs;
  thread_local std::vector<uint32_t> head, pairs, active;
  thread_local std::vector<uint16_t> accs;
  thread_local std::vector<float> qbuf, qdots;
  thread_local std::vector<const uint8_t*> lut_ptrs;
  thread_local std::vector<uint16_t*> acc_ptrs;
  static const pq4::ScanManyFn scan_many = pq4::ScanMany();
  const size_t lists = st_ ? st_->model.nlist : 1;
  const size_t group = std::clamp<size_t>(kBatchStateBytes / (12 * lists), 16, kBatchGroup);
  for (size_t g0 = 0; g0 < nq; g0 += group) {
    const size_t ng = std::min(group, nq - g0);
    if (qs.size() < ng) qs.resize(ng);
    // The centroid scores of the whole run as one matrix product (the
    // queries normalised as PrepareLocked does for cosine).
    const float* qdot = nullptr;
    if (st_ && !params.exact) {
      const Model& m = st_->model;
      const float* qx = queries + g0 * dim;
      if (config_.metric == Metric::kCosine) {
        qbuf.assign(qx, qx + ng * dim);
        for (size_t i = 0; i < ng; ++i) distance::Normalize(&qbuf[i * dim], dim);
        qx = qbuf.data();
      }
      static const pq4::DotBlockFn dot_block = pq4::DotBlock();
      qdots.resize(ng * m.nlist);
      dot_block(qx, ng, m.packed.data(), m.nlist, dim, qdots.data(), m.nlist);
      qdot = qdots.data();
    }
    bool any = false;
    for (size_t i = 0; i < ng; ++i)
      any |= PrepareLocked(queries + (g0 + i) * dim, params, &qs[i], &(*out)[g0 + i],
                           qdot ? qdot + i * st_->model.nlist : nullptr);
    if (!any) continue;
    // (list, query) pairs of probe ranks [from, to) of every query, grouped
    // by list (counting sort; queries in order within a list), each list
    // scanned for its queries in turn.
    const Structure& st = *st_;
    const uint32_t nlist = st.model.nlist;
    auto scan_ranks = [&](uint32_t from, uint32_t to) {
      head.assign(nlist + 1, 0);
      for (size_t i = 0; i < ng; ++i)
        if (!qs[i].answered)
          for (uint32_t p = from; p < std::min(to, qs[i].nprobe); ++p) ++head[qs[i].order[p] + 1];
      for (uint32_t l = 0; l < nlist; ++l) head[l + 1] += head[l];
      pairs.resize(head[nlist]);
      for (size_t i = 0; i < ng; ++i)
        if (!qs[i].answered)
          for (uint32_t p = from; p < std::min(to, qs[i].nprobe); ++p)
            pairs[head[qs[i].order[p]]++] = static_cast<uint32_t>(i);
      // head[l] is now the end of list l's pairs (the start of l + 1's).
      uint32_t begin = 0;
      for (uint32_t l = 0; l < nlist; ++l) {
        const uint32_t end = head[l];
        if (begin == end) continue;
        // The next list with queries, prefetched during this one's last scan.
        const List* next = nullptr;
        for (uint32_t l2 = l + 1; l2 < nlist; ++l2)
          if (head[l2] != end) {
            next = &st.lists[l2];
            break;
          }
        // The queries whose threshold the list can still beat, their code
        // sums from one pass over the codes (up to four queries per code
        // load), then each query's candidates.
        const List& L = st.lists[l];
        const size_t n = L.slots.size();
        if (n != 0) {
          active.clear();
          for (uint32_t j = begin; j < end; ++j) {
            float base;
            const Query& q = qs[pairs[j]];
            if (!(ListLowerLocked(q, l, &base) > q.thr.d)) active.push_back(pairs[j]);
          }
          const size_t stride = (n + pq4::kBlock - 1) / pq4::kBlock * pq4::kBlock;
          accs.resize(active.size() * stride);
          lut_ptrs.clear();
          acc_ptrs.clear();
          for (size_t a = 0; a < active.size(); ++a) {
            lut_ptrs.push_back(qs[active[a]].lut.data());
            acc_ptrs.push_back(accs.data() + a * stride);
          }
          scan_many(L.codes.data(), stride / pq4::kBlock, st.model.npairs, lut_ptrs.data(),
                    active.size(), acc_ptrs.data());
          if (next != nullptr && !next->codes.empty())
            distance::Prefetch(next->codes.data(),
                               std::min(next->codes.size(), 2 * st.model.BlockBytes()));
          for (size_t a = 0; a < active.size(); ++a)
            CollectLocked(&qs[active[a]], l, params.filter, acc_ptrs[a]);
        }
        begin = end;
      }
    };
    // Every query's nearest list first: its candidates set a tight
    // threshold (as in the single search, which scans in probe order), so
    // the other lists admit few candidates. The results do not depend on
    // the order.
    scan_ranks(0, 1);
    scan_ranks(1, std::numeric_limits<uint32_t>::max());
    for (size_t i = 0; i < ng; ++i) {
      if (qs[i].answered) continue;
      // Filtered searches go on in probe order while too few matched.
      if (params.filter) ProbeFromLocked(&qs[i], qs[i].nprobe, params.filter);
      RerankLocked(&qs[i], params.k, &(*out)[g0 + i]);
    }
  }
  return Status::OK();
}

// ---- snapshots --------------------------------------------------------------

Status IvfIndex::Save(const ImageSink& sink) const {
  std::shared_lock lock(mu_);
  IndexImage image;
  image.kind = IndexKind::kIvf;
  image.vector_slots = slot_limit_;
  const size_t vec_floats = config_.dim;
  image.fill_vectors = [&](uint32_t first, uint32_t n, float* dst) {
    std::memcpy(dst, SlotPtr(first), static_cast<size_t>(n) * vec_floats * sizeof(float));
  };
  if (st_) {
    const Model& m = st_->model;
    IvfImage& iv = image.ivf;
    iv.trained = true;
    iv.nlist = m.nlist;
    iv.subspaces = m.m;
    iv.sub_dim = m.ds;
    iv.trained_count = m.trained_count;
    iv.centroids = m.centroids;
    iv.codebooks = m.codebooks;
    iv.fill_list = [&](uint32_t l, IvfListImage* out) {
      const List& L = st_->lists[l];
      out->slots = L.slots;
      out->codes = L.codes;
      out->extra = L.extra;
    };
  }
  return sink(image);
}

Status IvfIndex::Load(const SnapshotImage& image, KeepAlive keepalive) {
  if (image.index.kind != IndexKind::kIvf) return Status::Corruption("snapshot index is not ivf");
  const uint32_t dim = config_.dim;
  const uint32_t limit = image.meta.slot_limit;
  const uint32_t per_chunk = 1u << shift_;
  const std::vector<VectorChunkImage>& vchunks = image.index.vector_chunks;
  const uint64_t n_chunks = (uint64_t{limit} + per_chunk - 1) / per_chunk;
  if (vchunks.size() != n_chunks) {
    return Status::Corruption("snapshot: " + std::to_string(vchunks.size()) +
                              " vector chunks for " + std::to_string(limit) + " slots");
  }
  std::vector<Chunk> chunks(n_chunks);
  for (uint32_t c = 0; c < vchunks.size(); ++c) {
    const VectorChunkImage& vc = vchunks[c];
    const uint32_t expect = std::min(per_chunk, limit - c * per_chunk);
    if (vc.first_slot != c * per_chunk || vc.count != expect)
      return Status::Corruption("snapshot: vector chunk " + std::to_string(c) + " misplaced");
    if (vc.data.empty() || vc.data.size() != static_cast<size_t>(vc.count) * dim)
      return Status::Corruption("snapshot: vector chunk " + std::to_string(c) + " has wrong size");
    chunks[c].data = vc.data.data();
    chunks[c].capacity_slots = expect;
  }
  // With vectors_on_disk the model and lists are checked (below) before the
  // vectors file is touched; the vectors are then copied into the reset file
  // under the lock, and the image's mapping is not kept.
  std::vector<uint8_t> live(limit, 0);
  uint64_t size = 0;
  for (const PointChunkImage& pc : image.points) {
    const uint32_t first = pc.first_slot, n = pc.count;
    if (pc.ids.size() != static_cast<size_t>(n) * 16 || first + static_cast<uint64_t>(n) > limit)
      return Status::Corruption("snapshot: malformed point chunk");
    for (uint32_t i = 0; i < n; ++i) {
      if (SlotHoldsPoint(pc, i, image.meta)) {
        live[first + i] = 1;
        ++size;
      }
    }
  }

  // The trained structure, as saved (never retrained here).
  std::unique_ptr<Structure> st;
  const IvfImage& iv = image.index.ivf;
  if (iv.trained) {
    auto bad = [](const std::string& why) { return Status::Corruption("ivf snapshot: " + why); };
    if (iv.nlist == 0 || iv.nlist > kMaxNlist || iv.sub_dim == 0 || iv.sub_dim > dim ||
        iv.subspaces != (dim + iv.sub_dim - 1) / iv.sub_dim)
      return bad("bad model shape");
    if (iv.centroids.size() != static_cast<size_t>(iv.nlist) * dim ||
        iv.codebooks.size() != static_cast<size_t>(iv.subspaces) * 16 * iv.sub_dim ||
        iv.lists.size() != iv.nlist)
      return bad("model arrays have the wrong size");
    st = std::make_unique<Structure>();
    Model& m = st->model;
    m.dim = dim;
    m.nlist = iv.nlist;
    m.m = iv.subspaces;
    m.ds = iv.sub_dim;
    m.npairs = (m.m + 1) / 2;
    m.trained_count = iv.trained_count;
    m.centroids.assign(iv.centroids.begin(), iv.centroids.end());
    m.codebooks.assign(iv.codebooks.begin(), iv.codebooks.end());
    for (float f : m.centroids)
      if (!std::isfinite(f)) return bad("non-finite centroid");
    for (float f : m.codebooks)
      if (!std::isfinite(f)) return bad("non-finite codebook");
    m.Finish();
    st->lists.resize(m.nlist);
    st->where.assign(limit, kNone);
    st->pos.assign(limit, 0);
    const size_t bb = m.BlockBytes();
    for (uint32_t l = 0; l < m.nlist; ++l) {
      const IvfListImage& li = iv.lists[l];
      const size_t n = li.slots.size();
      if (li.codes.size() != (n + pq4::kBlock - 1) / pq4::kBlock * bb ||
          li.extra.size() != (l2_ ? n : 0))
        return bad("list " + std::to_string(l) + " has the wrong size");
      List& L = st->lists[l];
      L.slots.assign(li.slots.begin(), li.slots.end());
      L.codes.assign(li.codes.begin(), li.codes.end());
      L.extra.assign(li.extra.begin(), li.extra.end());
      for (float e : L.extra) L.min_extra = std::min(L.min_extra, e);
      for (size_t j = 0; j < n; ++j) {
        const uint32_t s = L.slots[j];
        if (s >= limit || st->where[s] != kNone)
          return bad("slot out of range or listed twice in list " + std::to_string(l));
        st->where[s] = l;
        st->pos[s] = static_cast<uint32_t>(j);
      }
    }
  }

  std::unique_lock lock(mu_);
  ++generation_;  // a rebuild in flight belongs to the old state
  if (vfile_ != nullptr) {
    chunks_.clear();
    vfile_->Reset();
    Status copied = Status::OK();
    for (uint32_t c = 0; c < chunks.size() && copied.ok(); ++c) {
      const size_t bytes = static_cast<size_t>(vchunks[c].count) * dim * sizeof(float);
      char* seg = nullptr;
      copied = vfile_->Segment(c, &seg);
      if (copied.ok()) copied = vfile_->Reserve(uint64_t{c} * vfile_->segment_bytes() + bytes);
      if (!copied.ok()) break;
      std::memcpy(seg, chunks[c].data, bytes);
      chunks[c].data = reinterpret_cast<float*>(seg);
      chunks[c].capacity_slots = per_chunk;
    }
    if (!copied.ok()) {
      // The file was reset: leave an empty index.
      vfile_->Reset();
      live_.clear();
      free_.clear();
      slot_limit_ = 0;
      size_ = 0;
      st_.reset();
      return copied;
    }
    keepalive = nullptr;
  }
  chunks_ = std::move(chunks);
  live_ = std::move(live);
  free_.clear();
  for (uint32_t s = limit; s-- > 0;)
    if (!live_[s]) free_.push_back(s);
  slot_limit_ = limit;
  size_ = size;
  mapping_ = std::move(keepalive);
  st_ = std::move(st);
  if (st_) {
    // Slots listed but not live in the image are dropped; live but unlisted
    // ones (none in a snapshot we wrote) are encoded.
    for (uint32_t s = 0; s < limit; ++s) {
      const bool listed = st_->where[s] != kNone;
      if (listed && !live_[s]) st_->Erase(s);
      if (!listed && live_[s]) InsertLocked(st_.get(), s);
    }
  }
  return Status::OK();
}

}  // namespace aidb::index
