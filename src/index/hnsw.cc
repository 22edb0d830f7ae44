#include "index/hnsw.h"

#include "core/thread_pool.h"
#include "index/hnsw_internal.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <string>
#include <thread>

#include <sys/mman.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace aidb::index {

using namespace hnsw_internal;

namespace {

constexpr size_t kChunkTargetBytes = 8u << 20;

inline uint32_t LoadId(const uint32_t* p) {
  return std::atomic_ref<uint32_t>(*const_cast<uint32_t*>(p)).load(std::memory_order_acquire);
}
inline void StoreId(uint32_t* p, uint32_t v) {
  std::atomic_ref<uint32_t>(*p).store(v, std::memory_order_release);
}

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#endif
}

inline uint64_t SplitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

struct MinFirst {  // for a min-heap with std::*_heap
  template <class C>
  bool operator()(const C& a, const C& b) const {
    return a.d > b.d;
  }
};
struct MaxFirst {
  template <class C>
  bool operator()(const C& a, const C& b) const {
    return a.d < b.d;
  }
};

}  // namespace

// Per-thread search state: visited tags (an epoch per search, so nothing is
// cleared between searches) and the two heaps of the base-layer search.
struct HnswIndex::Ctx {
  // Visited slots: one bit each (128 KiB for 1M slots, so the walk's test of
  // a neighbour hits the L2 cache), cleared after a search through the list
  // of the words it set.
  std::vector<uint64_t> seen;
  std::vector<uint32_t> seen_words;
  std::vector<Cand> cand;  // min-heap: nodes to expand
  std::vector<Cand> res;   // max-heap: best ef results so far
  std::vector<float> query;
  std::vector<int16_t> sq_query;
  std::vector<Cand> scratch;
  // Distance computations a walk may still make (SIZE_MAX: no limit). A walk
  // that would need more stops early and sets over_budget.
  size_t visit_budget = SIZE_MAX;
  bool over_budget = false;

  void Reset(uint32_t limit) {
    for (uint32_t w : seen_words) seen[w] = 0;
    seen_words.clear();
    const size_t words = (static_cast<size_t>(limit) + 63) / 64;
    if (seen.size() < words) seen.resize(words + words / 4 + 16, 0);
    cand.clear();
    res.clear();
  }
  // True the first time `id` is seen in this search.
  bool Visit(uint32_t id) {
    const size_t w = id >> 6;
    if (w >= seen.size()) seen.resize(w + w / 4 + 16, 0);
    const uint64_t bit = uint64_t{1} << (id & 63), old = seen[w];
    if (old & bit) return false;
    if (old == 0) seen_words.push_back(static_cast<uint32_t>(w));
    seen[w] = old | bit;
    return true;
  }
  // Asks for the word of id (read by Visit soon).
  void PrefetchTag(uint32_t id) const {
    if ((id >> 6) < seen.size()) __builtin_prefetch(seen.data() + (id >> 6), 1, 3);
  }
};

HnswIndex::HnswIndex(const IndexConfig& config) : HnswIndex(config, HnswTuning()) {}

HnswIndex::HnswIndex(const IndexConfig& config, const HnswTuning& tuning)
    : HnswIndex(config, tuning, nullptr) {}

HnswIndex::HnswIndex(const IndexConfig& config, const HnswTuning& tuning,
                     std::unique_ptr<VectorFile> vectors)
    : config_(config),
      dim_(config.dim),
      l2_(config.metric == Metric::kEuclidean),
      m_(std::clamp<uint32_t>(config.hnsw.m, 2, kMaxM)),
      m0_(2 * m_),
      ef_construction_(std::max<uint32_t>(config.hnsw.ef_construction, m_)),
      ef_search_(config.hnsw.ef_search) {
  config_.hnsw.m = m_;
  config_.hnsw.ef_construction = ef_construction_;
  level_mult_ = 1.0 / std::log(static_cast<double>(m_));
  kernel_ = l2_ ? distance::L2Squared() : distance::Dot();
  if (l2_) bounded_ = distance::L2SquaredBounded();
  sq8_ = tuning.sq8 && config.quantization == Quantization::kSq8 && dim_ >= tuning.sq8_min_dim &&
         dim_ <= 8192;
  vfile_ = config.vectors_on_disk ? std::move(vectors) : nullptr;
  split_ = sq8_ || vfile_ != nullptr;
  // The chunk size is computed as when the level-0 lists sat at the head of
  // the node blocks (the vectors file's segments have that size).
  size_t head = sizeof(uint32_t) * m0_;
  head = (head + 63) & ~size_t{63};
  legacy_head_ = head;
  vstride_ = (sizeof(float) * static_cast<size_t>(dim_) + 63) & ~size_t{63};
  stride_ = sq8_ ? ((dim_ + 63) & ~size_t{63}) : (split_ ? 0 : vstride_);
  narrow_slots_ = std::min<uint32_t>(tuning.narrow_link_slots, kNarrowSlots);
  narrow_ = narrow_slots_ != 0;
  lstride_ = LinkStride(narrow_);
  if (sq8_) sq_ = Sq8Quantizer(dim_, l2_);
  uint32_t shift = 6;
  while (shift < 16 &&
         ((head + stride_ + (split_ ? vstride_ : 0)) << (shift + 1)) <= kChunkTargetBytes)
    ++shift;
  chunk_shift_ = shift;
  chunk_mask_ = (1u << shift) - 1;
  max_chunks_ = static_cast<uint32_t>((uint64_t{1} << 32) >> shift);
  chunks_ =
      static_cast<std::atomic<Chunk*>*>(std::calloc(max_chunks_, sizeof(std::atomic<Chunk*>)));
  if (chunks_ == nullptr) throw std::bad_alloc();
  // Float walk: the head of the vector; the early-abandoning L2 often stops
  // before the rest, which the hardware prefetcher streams.
  prefetch_bytes_ = std::min<size_t>(stride_, 256);
  // Segments of the vectors file hold the float vectors of one chunk (a
  // multiple of the page size: vstride_ and 1 << shift are multiples of 64).
  if (vfile_ != nullptr) vfile_->SetSegmentBytes(vstride_ << chunk_shift_);
}

HnswIndex::~HnswIndex() {
  ResetLocked(/*truncate_file=*/false);
  std::free(chunks_);
}

void HnswIndex::ResetLocked(bool truncate_file) {
  for (uint32_t c = 0; c < max_chunks_; ++c) {
    Chunk* ch = chunks_[c].load(std::memory_order_relaxed);
    if (ch == nullptr) break;  // chunks are allocated in order
    for (uint32_t i = 0; i <= chunk_mask_; ++i)
      delete[] ch->upper[i].load(std::memory_order_relaxed);
    if (ch->nodes != nullptr) munmap(ch->nodes, ChunkBytes());
    munmap(ch->links, lstride_ << chunk_shift_);
    delete ch;
    chunks_[c].store(nullptr, std::memory_order_relaxed);
  }
  free_slots_.clear();
  slot_limit_.store(0);
  live_.store(0);
  deleted_.store(0);
  upper_bytes_.store(0);
  num_chunks_ = 0;
  entry_.store(kNoEntry);
  sq_ready_.store(false);
  narrow_ = narrow_slots_ != 0;
  lstride_ = LinkStride(narrow_);
  if (vfile_ != nullptr && truncate_file) vfile_->Reset();
}

void HnswIndex::EnsureChunk(uint32_t c) {
  if (chunks_[c].load(std::memory_order_acquire) != nullptr) return;
  auto ch = std::make_unique<Chunk>();
  size_t bytes = ChunkBytes();
  // Anonymous mappings: zero, page aligned, and only the pages of slots in
  // use cost memory (the tail of the last chunk stays untouched).
  const size_t lbytes = lstride_ << chunk_shift_;
  void* links = mmap(nullptr, lbytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (links == MAP_FAILED) throw std::bad_alloc();
  void* mem = nullptr;
  if (bytes != 0) {
    mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
      munmap(links, lbytes);
      throw std::bad_alloc();
    }
  }
  ch->links = static_cast<char*>(links);
  ch->nodes = static_cast<char*>(mem);
  ch->vecs = split_ && mem != nullptr ? ch->nodes + (stride_ << chunk_shift_) : nullptr;
  if (vfile_ != nullptr) {
    if (!vfile_->Segment(c, &ch->vecs).ok()) {
      if (mem != nullptr) munmap(mem, bytes);
      munmap(links, lbytes);
      throw std::bad_alloc();
    }
  }
  ch->flags = std::make_unique<Flags[]>(size_t{1} << chunk_shift_);
  ch->parent0 = std::make_unique<uint32_t[]>(size_t{1} << chunk_shift_);
  std::fill(ch->parent0.get(), ch->parent0.get() + (size_t{1} << chunk_shift_), kNoSlot);
  ch->upper = std::make_unique<std::atomic<uint32_t*>[]>(size_t{1} << chunk_shift_);
  for (uint32_t i = 0; i <= chunk_mask_; ++i)
    ch->upper[i].store(nullptr, std::memory_order_relaxed);
  chunks_[c].store(ch.release(), std::memory_order_release);
  ++num_chunks_;
}

Status HnswIndex::AllocSlot(uint32_t* slot, bool* widen) {
  std::lock_guard<std::mutex> g(alloc_mu_);
  *widen = false;
  if (!free_slots_.empty()) {
    *slot = free_slots_.back();
    free_slots_.pop_back();
    return Status::OK();
  }
  uint32_t s = slot_limit_.load(std::memory_order_relaxed);
  if (s >= kNoSlot - 1) return Status::NoMemory("hnsw: slot space exhausted");
  if (narrow_ && s >= narrow_slots_) {
    *widen = true;
    return Status::OK();
  }
  try {
    EnsureChunk(s >> chunk_shift_);
  } catch (const std::bad_alloc&) {
    return Status::NoMemory(vfile_ != nullptr
                                ? "hnsw: cannot grow the node storage or map the vectors file " +
                                      vfile_->path()
                                : std::string("hnsw: cannot grow the node storage"));
  }
  AIDB_RETURN_IF_ERROR(ReserveVectors(s));
  slot_limit_.store(s + 1, std::memory_order_release);
  *slot = s;
  return Status::OK();
}

Status HnswIndex::WidenLinks() {
  std::unique_lock<RwLock> g(struct_mu_);
  if (!narrow_) return Status::OK();
  const size_t wide = LinkStride(false), bytes = wide << chunk_shift_;
  std::vector<char*> fresh;
  for (uint32_t c = 0; c < num_chunks_; ++c) {
    void* mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
      for (char* p : fresh) munmap(p, bytes);
      return Status::NoMemory("hnsw: cannot allocate 4-byte neighbour lists");
    }
    fresh.push_back(static_cast<char*>(mem));
  }
  uint32_t ids[2 * kMaxM];
  for (uint32_t c = 0; c < num_chunks_; ++c) {
    Chunk* ch = chunks_[c].load(std::memory_order_relaxed);
    for (uint32_t i = 0; i <= chunk_mask_; ++i) {
      uint32_t n = ReadRec0(ch->links + static_cast<size_t>(i) * lstride_, true, ids);
      WriteRec0(fresh[c] + static_cast<size_t>(i) * wide, false, ids, n);
    }
    munmap(ch->links, lstride_ << chunk_shift_);
    ch->links = fresh[c];
  }
  narrow_ = false;
  lstride_ = wide;
  return Status::OK();
}

Status HnswIndex::ReserveVectors(uint32_t s) {
  if (vfile_ == nullptr) return Status::OK();
  // Disk blocks for the vectors up to slot s before they are written
  // through the mapping.
  return vfile_->Reserve(uint64_t{s >> chunk_shift_} * vfile_->segment_bytes() +
                         ((s & chunk_mask_) + 1) * vstride_);
}

int HnswIndex::RandomLevel() {
  uint64_t r = SplitMix64(level_counter_.fetch_add(1, std::memory_order_relaxed) ^ 0x5EEDull);
  double u = (static_cast<double>(r >> 11) + 0.5) * (1.0 / 9007199254740992.0);  // (0, 1)
  int l = static_cast<int>(-std::log(u) * level_mult_);
  return std::min(l, kMaxLevel);
}

void HnswIndex::PrepareVector(const float* in, float* out) const {
  if (in != out) std::memcpy(out, in, sizeof(float) * dim_);
  if (config_.metric == Metric::kCosine) distance::Normalize(out, dim_);
}

float HnswIndex::Score(float d) const { return l2_ ? distance::ScoreFromL2Squared(d) : -d; }

size_t HnswIndex::UpperBytes(int level) const {
  // What the allocator takes for it (glibc: 8 bytes of header, 16-byte steps).
  return level == 0 ? 0
                    : ((1 + static_cast<size_t>(level) * (m_ + 2)) * sizeof(uint32_t) + 8 + 15) &
                          ~size_t{15};
}

uint32_t* HnswIndex::NewUpper(int level) {
  size_t n = 1 + static_cast<size_t>(level) * (m_ + 2);  // lists, then in-degrees
  uint32_t* up = new (std::nothrow) uint32_t[n]();
  if (up == nullptr) return nullptr;
  up[0] = static_cast<uint32_t>(level);
  std::fill(up + 1 + static_cast<size_t>(level) * (m_ + 1), up + n, kNoSlot);  // parents
  upper_bytes_.fetch_add(UpperBytes(level), std::memory_order_relaxed);
  return up;
}

// ---- links -----------------------------------------------------------------

namespace {

inline std::atomic_ref<uint16_t> RecVersion(const char* rec) {
  return std::atomic_ref<uint16_t>(*reinterpret_cast<uint16_t*>(const_cast<char*>(rec)));
}
inline std::atomic_ref<uint16_t> RecCount(const char* rec) {
  return std::atomic_ref<uint16_t>(*reinterpret_cast<uint16_t*>(const_cast<char*>(rec) + 2));
}
inline std::atomic_ref<uint32_t> RecWord(const char* rec, uint32_t i) {
  return std::atomic_ref<uint32_t>(reinterpret_cast<uint32_t*>(const_cast<char*>(rec) + 4)[i]);
}
// Words of n 3-byte slot numbers.
inline uint32_t NarrowWords(uint32_t n) { return (3 * n + 3) / 4; }

}  // namespace

uint32_t HnswIndex::ReadRec0(const char* rec, bool narrow, uint32_t* out) const {
  auto ver = RecVersion(rec);
  uint32_t words[3 * kMaxM / 2 + 1];
  for (uint32_t spins = 0;; ++spins) {
    const uint16_t v = ver.load(std::memory_order_acquire);
    if (v & 1) {  // a writer is in the middle of the list
      CpuRelax();
      if ((spins & 1023) == 1023) std::this_thread::yield();
      continue;
    }
    const uint32_t n = std::min<uint32_t>(RecCount(rec).load(std::memory_order_relaxed), m0_);
    const uint32_t nw = narrow ? NarrowWords(n) : n;
    uint32_t* dst = narrow ? words : out;
    for (uint32_t i = 0; i < nw; ++i) dst[i] = RecWord(rec, i).load(std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (ver.load(std::memory_order_relaxed) != v) continue;
    if (narrow) {
      words[nw] = 0;
      const unsigned char* b = reinterpret_cast<const unsigned char*>(words);
      for (uint32_t i = 0; i < n; ++i) {
        if constexpr (std::endian::native == std::endian::little) {
          uint32_t x;
          std::memcpy(&x, b + 3 * i, sizeof x);
          out[i] = x & 0xFFFFFFu;
        } else {
          out[i] = b[3 * i] | (uint32_t{b[3 * i + 1]} << 8) | (uint32_t{b[3 * i + 2]} << 16);
        }
      }
    }
    return n;
  }
}

void HnswIndex::WriteRec0(char* rec, bool narrow, const uint32_t* ids, uint32_t n) {
  auto ver = RecVersion(rec);
  const uint16_t v = ver.load(std::memory_order_relaxed);
  ver.store(static_cast<uint16_t>(v + 1), std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  if (narrow) {
    uint32_t words[3 * kMaxM / 2 + 1];
    const uint32_t nw = NarrowWords(n);
    if (nw != 0) words[nw - 1] = 0;
    unsigned char* b = reinterpret_cast<unsigned char*>(words);
    for (uint32_t i = 0; i < n; ++i) {
      b[3 * i] = static_cast<unsigned char>(ids[i]);
      b[3 * i + 1] = static_cast<unsigned char>(ids[i] >> 8);
      b[3 * i + 2] = static_cast<unsigned char>(ids[i] >> 16);
    }
    for (uint32_t i = 0; i < nw; ++i) RecWord(rec, i).store(words[i], std::memory_order_relaxed);
  } else {
    for (uint32_t i = 0; i < n; ++i) RecWord(rec, i).store(ids[i], std::memory_order_relaxed);
  }
  RecCount(rec).store(static_cast<uint16_t>(n), std::memory_order_relaxed);
  ver.store(static_cast<uint16_t>(v + 2), std::memory_order_release);
}

uint32_t HnswIndex::ReadLinks(uint32_t s, int level, uint32_t* out) const {
  if (level == 0) return ReadRec0(Rec(s), narrow_, out);
  Chunk* ch = ChunkOf(s);
  const uint32_t* up = ch->upper[s & chunk_mask_].load(std::memory_order_acquire);
  if (up == nullptr || static_cast<uint32_t>(level) > up[0]) return 0;
  const uint32_t* l = up + 1 + static_cast<size_t>(level - 1) * (m_ + 1);
  uint32_t n = std::atomic_ref<uint32_t>(*const_cast<uint32_t*>(l)).load(std::memory_order_acquire);
  if (n > m_) n = m_;
  for (uint32_t i = 0; i < n; ++i) out[i] = LoadId(l + 1 + i);
  return n;
}

void HnswIndex::WriteLinks(uint32_t s, int level, const uint32_t* ids, uint32_t n) {
  if (level == 0) {
    WriteRec0(Rec(s), narrow_, ids, n);
    return;
  }
  uint32_t* l = ChunkOf(s)->upper[s & chunk_mask_].load(std::memory_order_acquire) + 1 +
                static_cast<size_t>(level - 1) * (m_ + 1);
  for (uint32_t i = 0; i < n; ++i) StoreId(l + 1 + i, ids[i]);
  std::atomic_ref<uint32_t>(*l).store(n, std::memory_order_release);
}

void HnswIndex::LockNode(uint32_t s) const {
  auto& lk = FlagsOf(s).lock;
  while (lk.exchange(1, std::memory_order_acquire) != 0) {
    while (lk.load(std::memory_order_relaxed) != 0) CpuRelax();
  }
}

void HnswIndex::UnlockNode(uint32_t s) const {
  FlagsOf(s).lock.store(0, std::memory_order_release);
}

std::atomic_ref<uint32_t> HnswIndex::Parent(uint32_t s, int level) const {
  Chunk* ch = ChunkOf(s);
  if (level == 0) return std::atomic_ref<uint32_t>(ch->parent0[s & chunk_mask_]);
  uint32_t* up = ch->upper[s & chunk_mask_].load(std::memory_order_acquire);
  return std::atomic_ref<uint32_t>(up[1 + static_cast<size_t>(up[0]) * (m_ + 1) + (level - 1)]);
}

void HnswIndex::CommitLinks(uint32_t s, int level, const uint32_t* chosen, uint32_t n) {
  uint32_t old[2 * kMaxM], ids[2 * kMaxM];
  const uint32_t nold = ReadLinks(s, level, old);
  auto has = [](const uint32_t* a, uint32_t na, uint32_t x) {
    return std::find(a, a + na, x) != a + na;
  };
  std::copy(chosen, chosen + n, ids);
  const uint32_t max_deg = MaxDegree(level);
  uint32_t j = n;  // chosen entries at >= j are settled
  for (uint32_t i = 0; i < nold; ++i) {
    const uint32_t x = old[i];
    if (Parent(x, level).load(std::memory_order_relaxed) != s || has(ids, n, x)) continue;
    if (n < max_deg) {
      ids[n++] = x;
      continue;
    }
    // At most nold <= max_deg children: a non-child is always there.
    while (j > 0) {
      --j;
      if (Parent(ids[j], level).load(std::memory_order_relaxed) != s) {
        ids[j] = x;
        break;
      }
    }
  }
  for (uint32_t i = 0; i < n; ++i) {
    if (has(old, nold, ids[i])) continue;
    uint32_t none = kNoSlot;
    Parent(ids[i], level).compare_exchange_strong(none, s, std::memory_order_relaxed);
  }
  WriteLinks(s, level, ids, n);
}

bool HnswIndex::ForceLink(uint32_t n, uint32_t s, int level) {
  uint32_t buf[2 * kMaxM];
  const uint32_t max_deg = MaxDegree(level);
  LockNode(n);
  uint32_t cnt = ReadLinks(n, level, buf);
  bool ok = true;
  if (std::find(buf, buf + cnt, s) != buf + cnt) {
    Parent(s, level).store(n, std::memory_order_relaxed);
  } else if (cnt < max_deg) {
    buf[cnt] = s;
    Parent(s, level).store(n, std::memory_order_relaxed);
    WriteLinks(n, level, buf, cnt + 1);
  } else {
    // In place of the farthest neighbour that is not a child of n.
    const float* v = Vec(n);
    float worst = -std::numeric_limits<float>::infinity();
    uint32_t at = kNoSlot;
    for (uint32_t i = 0; i < cnt; ++i) {
      if (Parent(buf[i], level).load(std::memory_order_relaxed) == n) continue;
      float d = Dist(v, Vec(buf[i]));
      if (d > worst) {
        worst = d;
        at = i;
      }
    }
    ok = at != kNoSlot;
    if (ok) {
      buf[at] = s;
      Parent(s, level).store(n, std::memory_order_relaxed);
      WriteLinks(n, level, buf, cnt);
    }
  }
  UnlockNode(n);
  return ok;
}

uint8_t HnswIndex::StateOf(uint32_t s) const {
  return FlagsOf(s).state.load(std::memory_order_acquire);
}

int HnswIndex::LevelOf(uint32_t s) const {
  const uint32_t* up = ChunkOf(s)->upper[s & chunk_mask_].load(std::memory_order_acquire);
  return up == nullptr ? 0 : static_cast<int>(up[0]);
}

// ---- search primitives -------------------------------------------------------

template <class DistFn, class PrefetchFn>
uint32_t HnswIndex::DescendT(DistFn dist, PrefetchFn prefetch, uint32_t ep, int from_level,
                             int to_level) const {
  uint32_t cur = ep;
  float cur_d = dist(cur, std::numeric_limits<float>::infinity());
  uint32_t buf[kMaxM];
  for (int lev = from_level; lev > to_level; --lev) {
    bool changed = true;
    while (changed) {
      changed = false;
      uint32_t n = ReadLinks(cur, lev, buf);
      if (n != 0) prefetch(buf[0]);
      for (uint32_t i = 0; i < n; ++i) {
        if (i + 1 < n) prefetch(buf[i + 1]);
        float d = dist(buf[i], cur_d);
        if (d < cur_d) {
          cur_d = d;
          cur = buf[i];
          changed = true;
        }
      }
    }
  }
  return cur;
}

uint32_t HnswIndex::GreedyDescend(const float* q, uint32_t ep, int from_level, int to_level) const {
  return DescendT([&](uint32_t s, float bound) { return DistBounded(q, Vec(s), bound); },
                  [&](uint32_t s) { distance::Prefetch(Vec(s), 64); }, ep, from_level, to_level);
}

void HnswIndex::SearchLayer(Ctx& ctx, const float* q, uint32_t ep, size_t ef, int level,
                            const SlotFilter* filter, uint32_t exclude) const {
  SearchLayerT<false, float>(ctx, q, ep, ef, level, filter, exclude);
}

// kSq: score with the 8-bit codes (q is the prepared query, see
// Sq8Quantizer::PrepareQuery);
// otherwise with the float vectors (L2 with early abandoning once ef results
// are held).
// Neighbours whose codes or vectors are requested ahead of scoring.
constexpr uint32_t kPrefetchAhead = 3;

template <bool kSq, class Q>
void HnswIndex::SearchLayerT(Ctx& ctx, const Q* q, uint32_t ep, size_t ef, int level,
                             const SlotFilter* filter, uint32_t exclude) const {
  ctx.Reset(SlotLimit());
  // Without tombstones every linked node is live (free slots have no
  // in-links; a new node is live before it is linked): the state, a cold
  // cache line of a separate array, need not be read. A point removed while
  // this walk runs may still be returned, as if the search ran first.
  const bool check_state = deleted_.load(std::memory_order_acquire) != 0;
  auto accept = [&](uint32_t id) {
    return id != exclude && (!check_state || StateOf(id) == kLive) &&
           (filter == nullptr || filter->Allowed(id));
  };
  auto dist = [&](uint32_t id, bool bounded, float bound) {
    if constexpr (kSq) {
      return sq_.Dist(q, Codes(id));
    } else {
      return bounded ? DistBounded(q, Vec(id), bound) : Dist(q, Vec(id));
    }
  };
  // What scoring a candidate reads: its codes (the links are read only if it
  // is expanded later), or the links and the head of its float vector.
  auto prefetch = [&](uint32_t id) {
    if constexpr (kSq) {
      distance::Prefetch(Codes(id), dim_);
    } else if (split_) {
      distance::Prefetch(Vec(id), std::min<size_t>(vstride_, 256));
    } else {
      distance::Prefetch(Node(id), prefetch_bytes_);
    }
  };
  std::vector<Cand>& cand = ctx.cand;
  std::vector<Cand>& res = ctx.res;
  ctx.Visit(ep);
  float d0 = dist(ep, false, 0.f);
  cand.push_back({d0, ep});
  if (accept(ep)) res.push_back({d0, ep});
  float worst = res.empty() ? std::numeric_limits<float>::infinity() : d0;

  uint32_t buf[2 * kMaxM];
  while (!cand.empty()) {
    Cand c = cand.front();
    if (c.d > worst && res.size() >= ef) break;
    std::pop_heap(cand.begin(), cand.end(), MinFirst());
    cand.pop_back();
    // The list of the likely next node to expand (the best candidate left)
    // arrives while this one's neighbours are scored.
    if (level == 0 && !cand.empty()) distance::Prefetch(Rec(cand.front().id), lstride_);
    uint32_t n = ReadLinks(c.id, level, buf);
    // The visited bits are a random access per neighbour: ask for all of
    // them, then for what scoring the new ones reads (codes: all of them,
    // scored in one batch; float vectors: a few ahead).
    for (uint32_t i = 0; i < n; ++i) ctx.PrefetchTag(buf[i]);
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; ++i) {
      if (ctx.Visit(buf[i])) {
        if (kSq || k < kPrefetchAhead) prefetch(buf[i]);
        buf[k++] = buf[i];
      }
    }
    if (k == 0) continue;
    if (k > ctx.visit_budget) {
      ctx.over_budget = true;
      return;
    }
    ctx.visit_budget -= k;
    float dk[2 * kMaxM];
    if constexpr (kSq) {
      const uint8_t* codes[2 * kMaxM];
      for (uint32_t i = 0; i < k; ++i) codes[i] = Codes(buf[i]);
      sq_.DistBatch(q, codes, k, dk);
    }
    for (uint32_t i = 0; i < k; ++i) {
      if (!kSq && i + kPrefetchAhead < k) prefetch(buf[i + kPrefetchAhead]);
      uint32_t id = buf[i];
      bool full = res.size() >= ef;
      float d = kSq ? dk[i] : dist(id, full, worst);
      if (!full || d < worst) {
        cand.push_back({d, id});
        std::push_heap(cand.begin(), cand.end(), MinFirst());
        if (accept(id)) {
          res.push_back({d, id});
          std::push_heap(res.begin(), res.end(), MaxFirst());
          if (res.size() > ef) {
            std::pop_heap(res.begin(), res.end(), MaxFirst());
            res.pop_back();
          }
          worst = res.front().d;
        }
      }
    }
  }
}

void HnswIndex::TrainQuantizerLocked(const float* rows, size_t n) {
  // Values outside the trained range are clamped; the exact re-ranking of
  // the final candidates keeps results exact in order.
  sq_.Train(rows, n);
  EncodeAllLocked();
}

void HnswIndex::EncodeAllLocked() {
  const uint32_t limit = SlotLimit();
  for (uint32_t s = 0; s < limit; ++s)
    if (StateOf(s) != kFree) sq_.Encode(Vec(s), Codes(s));
  sq_ready_.store(true, std::memory_order_release);
}

void HnswIndex::MaybeTrain(const float* batch, size_t n) {
  if (!sq8_ || sq_ready_.load(std::memory_order_acquire)) return;
  if (static_cast<size_t>(SlotLimit()) + n < kSqTrainMin) return;
  std::unique_lock<RwLock> g(struct_mu_);
  if (sq_ready_.load()) return;
  // Sample: the live vectors and the incoming batch (prepared), up to
  // kSqTrainMax rows.
  std::vector<float> rows;
  const uint32_t limit = SlotLimit();
  size_t have = 0;
  for (uint32_t s = 0; s < limit && have < kSqTrainMax; ++s) {
    if (StateOf(s) != kLive) continue;
    rows.insert(rows.end(), Vec(s), Vec(s) + dim_);
    ++have;
  }
  size_t step = std::max<size_t>(1, n / kSqTrainMax);
  for (size_t i = 0; i < n && have < 2 * kSqTrainMax; i += step) {
    size_t off = rows.size();
    rows.resize(off + dim_);
    PrepareVector(batch + i * dim_, rows.data() + off);
    ++have;
  }
  TrainQuantizerLocked(rows.data(), have);
}

void HnswIndex::SelectNeighbors(std::vector<Cand>* cands, uint32_t max_m) const {
  if (cands->size() <= max_m) return;
  std::vector<Cand> out;
  out.reserve(max_m);
  for (const Cand& c : *cands) {
    if (out.size() >= max_m) break;
    const float* v = Vec(c.id);
    bool good = true;
    for (const Cand& r : out) {
      if (DistBounded(v, Vec(r.id), c.d) < c.d) {
        good = false;
        break;
      }
    }
    if (good) out.push_back(c);
  }
  cands->swap(out);
}

void HnswIndex::AddReverseLink(uint32_t n, uint32_t s, int level) {
  uint32_t buf[2 * kMaxM + 1];
  uint32_t max_deg = MaxDegree(level);
  LockNode(n);
  uint32_t cnt = ReadLinks(n, level, buf);
  for (uint32_t i = 0; i < cnt; ++i) {
    if (buf[i] == s) {
      UnlockNode(n);
      return;
    }
  }
  if (cnt < max_deg) {
    buf[cnt] = s;
    CommitLinks(n, level, buf, cnt + 1);
  } else {
    std::vector<Cand> cands;
    cands.reserve(cnt + 1);
    const float* v = Vec(n);
    for (uint32_t i = 0; i < cnt; ++i) cands.push_back({Dist(v, Vec(buf[i])), buf[i]});
    cands.push_back({Dist(v, Vec(s)), s});
    std::sort(cands.begin(), cands.end(), [](const Cand& a, const Cand& b) { return a.d < b.d; });
    SelectNeighbors(&cands, max_deg);
    uint32_t k = 0;
    for (const Cand& c : cands) buf[k++] = c.id;
    CommitLinks(n, level, buf, k);
  }
  UnlockNode(n);
}

void HnswIndex::LinkLevels(uint32_t s, int level, uint32_t ep, int top) {
  Ctx& ctx = ThreadCtx();
  const float* q = Vec(s);
  if (top > level) ep = GreedyDescend(q, ep, top, level);
  // Three phases: choose s's neighbours on every level, publish all of s's
  // own lists, and only then link back to s. s becomes reachable (gets an
  // in-link) only once every list of its own exists. Linking level by level
  // made s reachable on an upper level while its level-0 list was still
  // empty: a concurrent insert descending onto s walked into that empty list
  // and linked only to s and nodes like it (an island no search could
  // enter), and s's late level-0 write then dropped the reverse links those
  // inserts had added to s.
  const int from = std::min(level, top);
  std::vector<uint32_t> chosen(static_cast<size_t>(from + 1) * m_);
  std::vector<uint32_t> count(static_cast<size_t>(from + 1), 0);
  std::vector<uint32_t> start(static_cast<size_t>(from + 1), kNoSlot);  // search start per level
  for (int lev = from; lev >= 0; --lev) {
    start[lev] = ep;
    SearchLayer(ctx, q, ep, ef_construction_, lev, nullptr, s);
    std::vector<Cand>& cands = ctx.scratch;
    cands.assign(ctx.res.begin(), ctx.res.end());
    std::sort(cands.begin(), cands.end(), [](const Cand& a, const Cand& b) { return a.d < b.d; });
    if (cands.empty()) continue;
    ep = cands.front().id;
    SelectNeighbors(&cands, m_);
    uint32_t* ids = chosen.data() + static_cast<size_t>(lev) * m_;
    for (const Cand& c : cands) ids[count[lev]++] = c.id;
  }
  LockNode(s);
  for (int lev = from; lev >= 0; --lev) {
    if (count[lev] != 0)
      CommitLinks(s, lev, chosen.data() + static_cast<size_t>(lev) * m_, count[lev]);
  }
  UnlockNode(s);
  for (int lev = from; lev >= 0; --lev) {
    const uint32_t* ids = chosen.data() + static_cast<size_t>(lev) * m_;
    for (uint32_t i = 0; i < count[lev]; ++i) AddReverseLink(ids[i], s, lev);
    // Every neighbour's selection may have pruned s away again: then s has
    // no way in. Make the nearest neighbour that can take it link to s.
    for (uint32_t i = 0; i < count[lev] && Parent(s, lev).load() == kNoSlot; ++i)
      ForceLink(ids[i], s, lev);
    // All of them may be full of their own children (a near-duplicate keeps
    // the selection at one neighbour), or the search found no live node on
    // this level (all tombstones): try the nodes they link to and the node
    // the search started from, nearest region first.
    if (Parent(s, lev).load() == kNoSlot) {
      std::vector<uint32_t> tried(ids, ids + count[lev]);
      if (start[lev] != s && std::find(tried.begin(), tried.end(), start[lev]) == tried.end()) {
        tried.push_back(start[lev]);
        ForceLink(start[lev], s, lev);
      }
      uint32_t nb[2 * kMaxM];
      for (size_t t = 0; t < tried.size() && tried.size() < 1024; ++t) {
        uint32_t nn = ReadLinks(tried[t], lev, nb);
        for (uint32_t i = 0; i < nn && Parent(s, lev).load() == kNoSlot; ++i) {
          if (nb[i] == s || std::find(tried.begin(), tried.end(), nb[i]) != tried.end()) continue;
          tried.push_back(nb[i]);
          ForceLink(nb[i], s, lev);
        }
        if (Parent(s, lev).load() != kNoSlot) break;
      }
    }
  }
}

void HnswIndex::Insert(uint32_t s, int level) {
  uint64_t e = entry_.load(std::memory_order_acquire);
  std::unique_lock<std::mutex> lk(entry_mu_, std::defer_lock);
  if (e == kNoEntry || level > EntryLevel(e)) {
    lk.lock();
    e = entry_.load(std::memory_order_acquire);
    if (e == kNoEntry) {
      for (int lev = 0; lev <= level; ++lev) Parent(s, lev).store(s);
      entry_.store(PackEntry(s, level), std::memory_order_release);
      return;
    }
    if (level <= EntryLevel(e)) lk.unlock();
  }
  LinkLevels(s, level, EntrySlot(e), EntryLevel(e));
  if (lk.owns_lock()) {
    // s becomes the root of every level's tree: the old root hangs below it.
    const uint32_t old = EntrySlot(e);
    for (int lev = 0; lev <= EntryLevel(e); ++lev) ForceLink(s, old, lev);
    for (int lev = 0; lev <= level; ++lev) Parent(s, lev).store(s);
    entry_.store(PackEntry(s, level), std::memory_order_release);
  }
}

// ---- mutations -----------------------------------------------------------------

Status HnswIndex::InitNode(uint32_t s, const float* vec) {
  int level = RandomLevel();
  Flags& h = FlagsOf(s);
  WriteRec0(Rec(s), narrow_, nullptr, 0);
  Parent(s, 0).store(kNoSlot, std::memory_order_relaxed);
  uint32_t* up = nullptr;
  if (level > 0) {
    up = NewUpper(level);
    if (up == nullptr) return Status::NoMemory("hnsw: cannot allocate links");
  }
  ChunkOf(s)->upper[s & chunk_mask_].store(up, std::memory_order_release);
  PrepareVector(vec, MutVec(s));
  if (sq_ready_.load(std::memory_order_acquire)) sq_.Encode(Vec(s), Codes(s));
  h.state.store(kLive, std::memory_order_release);
  Insert(s, level);
  live_.fetch_add(1, std::memory_order_relaxed);
  return Status::OK();
}

void HnswIndex::ReleaseSlot(uint32_t s) {
  std::lock_guard<std::mutex> g(alloc_mu_);
  free_slots_.push_back(s);
}

Status HnswIndex::Add(const float* vec, uint32_t* slot) {
  if (vec == nullptr || slot == nullptr) return Status::InvalidArgument("hnsw: null argument");
  std::shared_lock<RwLock> g(struct_mu_);
  uint32_t s;
  bool widen = false;
  Status st = AllocSlot(&s, &widen);
  while (st.ok() && widen) {
    g.unlock();
    AIDB_RETURN_IF_ERROR(WidenLinks());
    g.lock();
    st = AllocSlot(&s, &widen);
  }
  if (!st.ok()) return st;
  st = InitNode(s, vec);
  if (!st.ok()) {
    ReleaseSlot(s);
    return st;
  }
  *slot = s;
  g.unlock();
  MaybeTrain(nullptr, 0);
  return Status::OK();
}

Status HnswIndex::AddBatch(const float* vecs, size_t n, uint32_t* slots, uint32_t threads) {
  if (n == 0) return Status::OK();
  if (vecs == nullptr || slots == nullptr) return Status::InvalidArgument("hnsw: null argument");
  MaybeTrain(vecs, n);
  std::shared_lock<RwLock> g(struct_mu_);
  if (narrow_ && uint64_t{SlotLimit()} + n > narrow_slots_) {
    // The batch may need slot numbers past 3 bytes: widen first.
    g.unlock();
    AIDB_RETURN_IF_ERROR(WidenLinks());
    g.lock();
  }
  for (size_t i = 0; i < n; ++i) {
    bool widen = false;
    Status st = AllocSlot(&slots[i], &widen);
    if (st.ok() && widen) {
      // Past the 3-byte slot numbers (concurrent adds): widen the lists,
      // then allocate again (released in reverse: handed out again in order).
      for (size_t j = i; j-- > 0;) ReleaseSlot(slots[j]);
      g.unlock();
      AIDB_RETURN_IF_ERROR(WidenLinks());
      g.lock();
      i = static_cast<size_t>(-1);
      continue;
    }
    if (!st.ok()) {
      for (size_t j = 0; j < i; ++j) ReleaseSlot(slots[j]);
      return st;
    }
  }
  std::atomic<bool> failed{false};
  std::mutex err_mu;
  Status err;
  ParallelFor(n, threads, [&](size_t i, uint32_t) {
    Status st = InitNode(slots[i], vecs + i * dim_);
    if (!st.ok()) {
      // Only allocation failures: the slot stays unused.
      ReleaseSlot(slots[i]);
      slots[i] = kNoSlot;
      std::lock_guard<std::mutex> l(err_mu);
      if (!failed.exchange(true)) err = st;
    }
    return true;
  });
  return err;
}

Status HnswIndex::Update(uint32_t slot, const float* vec) {
  if (vec == nullptr) return Status::InvalidArgument("hnsw: null argument");
  std::shared_lock<RwLock> g(struct_mu_);
  if (slot >= SlotLimit() || StateOf(slot) != kLive)
    return Status::NotFound("hnsw: slot " + std::to_string(slot) + " is not live");
  Ctx& ctx = ThreadCtx();
  ctx.query.resize(dim_);
  PrepareVector(vec, ctx.query.data());
  std::memcpy(MutVec(slot), ctx.query.data(), sizeof(float) * dim_);
  if (sq_ready_.load(std::memory_order_acquire)) sq_.Encode(Vec(slot), Codes(slot));
  uint64_t e = entry_.load(std::memory_order_acquire);
  if (e == kNoEntry) return Status::OK();
  uint32_t ep = EntrySlot(e);
  int top = EntryLevel(e);
  if (ep == slot) {
    // Start from any neighbour of the entry point (it is the only node at
    // its top level); with none, the node is alone in the graph.
    uint32_t buf[2 * kMaxM];
    uint32_t n = 0;
    int lev = top;
    for (; lev >= 0 && n == 0; --lev) n = ReadLinks(slot, lev, buf);
    if (n == 0) return Status::OK();
    ep = buf[0];
    top = lev + 1;
  }
  LinkLevels(slot, LevelOf(slot), ep, top);
  return Status::OK();
}

void HnswIndex::Remove(uint32_t slot) {
  std::shared_lock<RwLock> g(struct_mu_);
  if (slot >= SlotLimit()) return;
  uint8_t expected = kLive;
  if (FlagsOf(slot).state.compare_exchange_strong(expected, kDeleted, std::memory_order_acq_rel)) {
    live_.fetch_sub(1, std::memory_order_relaxed);
    deleted_.fetch_add(1, std::memory_order_relaxed);
  }
}

void HnswIndex::GetVector(uint32_t slot, float* out) const {
  std::shared_lock<RwLock> g(struct_mu_);
  if (slot >= SlotLimit()) {
    std::memset(out, 0, sizeof(float) * dim_);
    return;
  }
  std::memcpy(out, Vec(slot), sizeof(float) * dim_);
}

bool HnswIndex::IsLive(uint32_t slot) const {
  std::shared_lock<RwLock> g(struct_mu_);
  return slot < SlotLimit() && StateOf(slot) == kLive;
}

Status HnswIndex::SetEfSearch(uint32_t ef) {
  ef_search_.store(ef, std::memory_order_relaxed);
  config_.hnsw.ef_search = ef;
  return Status::OK();
}

uint32_t HnswIndex::EffectiveEf(uint32_t k, uint32_t ef) const {
  uint32_t e = ef != 0 ? ef : ef_search_.load(std::memory_order_relaxed);
  if (e == 0) e = std::max<uint32_t>(kAdaptiveEfMin, kAdaptiveEfPerK * k);
  return std::max(e, k);
}

int HnswIndex::MaxLevel() const {
  uint64_t e = entry_.load(std::memory_order_acquire);
  return e == kNoEntry ? -1 : EntryLevel(e);
}

uint32_t HnswIndex::Degree0(uint32_t slot) const {
  std::shared_lock<RwLock> g(struct_mu_);
  if (slot >= SlotLimit()) return 0;
  return RecCount(Rec(slot)).load(std::memory_order_acquire);
}

void HnswIndex::MarkReachable(int level, std::vector<uint8_t>* reach) const {
  const_cast<HnswIndex*>(this)->MarkReachable(level, reach, false);
}

void HnswIndex::MarkReachable(int level, std::vector<uint8_t>* reach, bool set_parents) {
  const uint32_t limit = SlotLimit();
  reach->assign(limit, 0);
  uint64_t e = entry_.load(std::memory_order_acquire);
  if (e == kNoEntry || EntryLevel(e) < level) return;
  std::vector<uint32_t> queue{EntrySlot(e)};
  (*reach)[EntrySlot(e)] = 1;
  uint32_t buf[2 * kMaxM];
  for (size_t qi = 0; qi < queue.size(); ++qi) {
    uint32_t n = ReadLinks(queue[qi], level, buf);
    for (uint32_t i = 0; i < n; ++i) {
      uint32_t x = buf[i];
      if (x >= limit || (*reach)[x] || StateOf(x) == kFree) continue;
      (*reach)[x] = 1;
      if (set_parents) Parent(x, level).store(queue[qi]);
      queue.push_back(x);
    }
  }
}

std::vector<uint32_t> HnswIndex::UnreachableSlots() const {
  std::shared_lock<RwLock> g(struct_mu_);
  const uint32_t limit = SlotLimit();
  std::vector<uint8_t> bad(limit, 0), reach;
  for (int lev = MaxLevel(); lev >= 0; --lev) {
    MarkReachable(lev, &reach);
    for (uint32_t s = 0; s < limit; ++s)
      if (!reach[s] && StateOf(s) == kLive && LevelOf(s) >= lev) bad[s] = 1;
  }
  std::vector<uint32_t> out;
  for (uint32_t s = 0; s < limit; ++s)
    if (bad[s]) out.push_back(s);
  return out;
}

void HnswIndex::RebuildTreeLocked() {
  uint64_t e = entry_.load();
  if (e == kNoEntry) return;
  const uint32_t limit = SlotLimit();
  const uint32_t root = EntrySlot(e);
  Ctx& ctx = ThreadCtx();
  std::vector<uint8_t> reach;
  uint32_t buf[2 * kMaxM];
  for (int lev = EntryLevel(e); lev >= 0; --lev) {
    for (uint32_t s = 0; s < limit; ++s)
      if (StateOf(s) != kFree && LevelOf(s) >= lev) Parent(s, lev).store(kNoSlot);
    Parent(root, lev).store(root);
    MarkReachable(lev, &reach, /*set_parents=*/true);
    for (uint32_t u = 0; u < limit; ++u) {
      if (reach[u] || StateOf(u) != kLive || LevelOf(u) < lev) continue;
      // Cut off (by Compact's relinking, or in an older snapshot): link it
      // from the nearest reachable node that can take it, else the root.
      SearchLayer(ctx, Vec(u), root, ef_construction_, lev, nullptr, u);
      std::vector<Cand> cands;
      for (const Cand& c : ctx.res)
        if (reach[c.id]) cands.push_back(c);
      std::sort(cands.begin(), cands.end(), [](const Cand& a, const Cand& b) { return a.d < b.d; });
      cands.push_back({0.f, root});
      bool linked = false;
      for (size_t i = 0; i < cands.size() && !linked; ++i) linked = ForceLink(cands[i].id, u, lev);
      if (!linked) continue;
      // u and what it leads to are in the tree now.
      std::vector<uint32_t> queue{u};
      reach[u] = 1;
      for (size_t qi = 0; qi < queue.size(); ++qi) {
        uint32_t n = ReadLinks(queue[qi], lev, buf);
        for (uint32_t i = 0; i < n; ++i) {
          uint32_t x = buf[i];
          if (reach[x] || StateOf(x) == kFree) continue;
          reach[x] = 1;
          Parent(x, lev).store(queue[qi]);
          queue.push_back(x);
        }
      }
    }
  }
}

size_t HnswIndex::MemoryBytes() const { return Memory().Total(); }

HnswIndex::MemoryParts HnswIndex::Memory() const {
  // Node blocks count for the slots handed out (untouched pages of the last
  // chunk cost nothing); per-node metadata and upper pointers per chunk.
  MemoryParts m;
  const size_t limit = SlotLimit(), slots = num_chunks_ << chunk_shift_;
  m.codes_or_vectors = (stride_ + (split_ && vfile_ == nullptr ? vstride_ : 0)) * limit;
  m.links0 = lstride_ * limit;
  m.node_state = (sizeof(Flags) + sizeof(uint32_t)) * slots;
  m.upper_pointers = sizeof(std::atomic<uint32_t*>) * slots;
  m.upper_lists = upper_bytes_.load();
  m.other = sizeof(Chunk) * num_chunks_ +
            sizeof(std::atomic<Chunk*>) * static_cast<size_t>(max_chunks_) +
            free_slots_.capacity() * sizeof(uint32_t) + sizeof(float) * sq_.offset().size();
  return m;
}

// ---- search --------------------------------------------------------------------

void HnswIndex::ExactSearch(Ctx& ctx, const float* q, size_t k, const SlotFilter* filter,
                            bool use_list) const {
  std::vector<Cand>& res = ctx.res;
  res.clear();
  uint32_t limit = SlotLimit();
  float worst = std::numeric_limits<float>::infinity();
  auto consider = [&](uint32_t s) {
    if (StateOf(s) != kLive) return;
    if (filter != nullptr && !filter->Allowed(s)) return;
    float d = Dist(q, Vec(s));
    if (res.size() < k) {
      res.push_back({d, s});
      std::push_heap(res.begin(), res.end(), MaxFirst());
      if (res.size() == k) worst = res.front().d;
    } else if (d < worst) {
      std::pop_heap(res.begin(), res.end(), MaxFirst());
      res.back() = {d, s};
      std::push_heap(res.begin(), res.end(), MaxFirst());
      worst = res.front().d;
    }
  };
  if (use_list && filter != nullptr) {
    std::vector<uint32_t> list;
    if (filter->ListMatches(&list)) {
      std::sort(list.begin(), list.end());
      list.erase(std::unique(list.begin(), list.end()), list.end());
      for (uint32_t s : list)
        if (s < limit) consider(s);
      return;
    }
  }
  for (uint32_t s = 0; s < limit; ++s) consider(s);
}

Status HnswIndex::Search(const float* query, const SearchParams& params,
                         std::vector<Hit>* out) const {
  if (query == nullptr || out == nullptr) return Status::InvalidArgument("hnsw: null argument");
  out->clear();
  if (params.k == 0) return Status::OK();
  std::shared_lock<RwLock> g(struct_mu_, std::defer_lock);
  if (!LockShared(g, params.nonblocking)) {
    return Status::Busy(
        "hnsw: the index is being restructured (compaction, load or training); retry, or "
        "search without nonblocking");
  }
  Ctx& ctx = ThreadCtx();
  const float* q = query;
  if (config_.metric == Metric::kCosine) {
    ctx.query.resize(dim_);
    PrepareVector(query, ctx.query.data());
    q = ctx.query.data();
  }
  uint64_t live = Size();
  if (live == 0) return Status::OK();
  const size_t k = params.k;
  const SlotFilter* filter = params.filter;
  int64_t est = filter != nullptr ? filter->EstimatedMatches() : -1;
  bool exact = params.exact;
  if (!exact && filter != nullptr && est >= 0 && PrefersExactScan(est, params.k, params.ef))
    exact = true;
  if (!exact) {
    uint64_t e = entry_.load(std::memory_order_acquire);
    if (e == kNoEntry) {
      exact = true;
    } else {
      const bool sq = sq_ready_.load(std::memory_order_acquire);
      uint32_t ep;
      if (sq) {
        // Descend with the 8-bit codes too: they sit in the node blocks (the
        // float vectors of the upper-level nodes would be one more cold
        // array to read).
        ctx.sq_query.resize(dim_);
        sq_.PrepareQuery(q, ctx.sq_query.data());
        const int16_t* sq_q = ctx.sq_query.data();
        ep = DescendT([&](uint32_t s, float) { return sq_.Dist(sq_q, Codes(s)); },
                      [&](uint32_t s) { distance::Prefetch(Node(s), stride_); }, EntrySlot(e),
                      EntryLevel(e), 0);
      } else {
        ep = GreedyDescend(q, EntrySlot(e), EntryLevel(e), 0);
      }
      const uint32_t ef = EffectiveEf(params.k, params.ef);
      // Nonblocking: a walk that strays far beyond what ef predicts (a graph
      // mostly of tombstones, a filter few points pass) is cut short.
      ctx.visit_budget = params.nonblocking ? size_t{kNonblockingVisitsPerEf} * ef : SIZE_MAX;
      ctx.over_budget = false;
      if (sq) {
        // Walk with the 8-bit codes, then re-rank the ef candidates exactly
        // (the float vectors are a separate, mostly cold array: fetch a few
        // ahead).
        SearchLayerT<true, int16_t>(ctx, ctx.sq_query.data(), ep, ef, 0, filter, kNoSlot);
        std::vector<Cand>& res = ctx.res;
        constexpr size_t kAhead = 8;
        const size_t vbytes = sizeof(float) * dim_;
        for (size_t i = 0; i < std::min(kAhead, res.size()); ++i)
          distance::Prefetch(Vec(res[i].id), vbytes);
        for (size_t i = 0; i < res.size(); ++i) {
          if (i + kAhead < res.size()) distance::Prefetch(Vec(res[i + kAhead].id), vbytes);
          res[i].d = Dist(q, Vec(res[i].id));
        }
      } else {
        SearchLayerT<false, float>(ctx, q, ep, ef, 0, filter, kNoSlot);
      }
      ctx.visit_budget = SIZE_MAX;
      if (ctx.over_budget) {
        return Status::Busy("hnsw: the graph walk needs more than " +
                            std::to_string(size_t{kNonblockingVisitsPerEf} * ef) +
                            " distance computations (many deleted points, or a filter few "
                            "points pass); search without nonblocking, or compact");
      }
      // Fewer results than there can be (a very selective filter, or many
      // tombstones): the exact scan guarantees min(k, matches).
      uint64_t possible = filter == nullptr ? live : (est >= 0 ? static_cast<uint64_t>(est) : k);
      if (ctx.res.size() < std::min<uint64_t>(k, possible)) exact = true;
    }
  }
  if (exact) ExactSearch(ctx, q, k, filter, /*use_list=*/true);
  std::vector<Cand>& res = ctx.res;
  std::sort(res.begin(), res.end(),
            [](const Cand& a, const Cand& b) { return a.d < b.d || (a.d == b.d && a.id < b.id); });
  if (res.size() > k) res.resize(k);
  out->reserve(res.size());
  for (const Cand& c : res) out->push_back({Score(c.d), c.id});
  return Status::OK();
}

bool HnswIndex::PrefersExactScan(int64_t est, uint32_t k, uint32_t ef) const {
  if (est <= kExactScanMinMatches) return true;
  double e = static_cast<double>(est);
  return e * e <= kWalkCostPerVisit * EffectiveEf(k, ef) * static_cast<double>(Size());
}

HnswIndex::Ctx& HnswIndex::ThreadCtx() {
  thread_local Ctx ctx;
  return ctx;
}

}  // namespace aidb::index
