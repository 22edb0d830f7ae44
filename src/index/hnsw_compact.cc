// HnswIndex::Compact: relinks around tombstones and frees their slots.
#include <algorithm>
#include <atomic>
#include <functional>
#include <mutex>
#include <vector>

#include "core/thread_pool.h"
#include "index/hnsw.h"
#include "index/hnsw_internal.h"

namespace aidb::index {

using namespace hnsw_internal;

Status HnswIndex::Compact() {
  std::unique_lock<RwLock> g(struct_mu_);
  if (deleted_.load() == 0) return Status::OK();
  const uint32_t limit = SlotLimit();
  std::vector<uint8_t> state(limit);
  for (uint32_t s = 0; s < limit; ++s) state[s] = StateOf(s);

  // Phase 1: every live node that links to a tombstone picks new neighbours
  // among its live neighbours and the live neighbours of those tombstones.
  // Only live nodes' lists are written, only tombstones' lists are read
  // besides one's own: nodes can be repaired in parallel.
  std::atomic<uint32_t> next{0};
  auto work = [&] {
    std::vector<Cand> cands;
    std::vector<uint32_t> seen;
    uint32_t buf[2 * kMaxM], buf2[2 * kMaxM], ids[2 * kMaxM];
    for (;;) {
      uint32_t s = next.fetch_add(1, std::memory_order_relaxed);
      if (s >= limit) return;
      if (state[s] != kLive) continue;
      for (int lev = 0; lev <= LevelOf(s); ++lev) {
        uint32_t n = ReadLinks(s, lev, buf);
        bool touched = false;
        for (uint32_t i = 0; i < n && !touched; ++i) touched = state[buf[i]] != kLive;
        if (!touched) continue;
        seen.clear();
        for (uint32_t i = 0; i < n; ++i) {
          if (state[buf[i]] == kLive) {
            seen.push_back(buf[i]);
          } else if (state[buf[i]] == kDeleted) {
            uint32_t n2 = ReadLinks(buf[i], lev, buf2);
            for (uint32_t j = 0; j < n2; ++j)
              if (buf2[j] != s && state[buf2[j]] == kLive) seen.push_back(buf2[j]);
          }
        }
        std::sort(seen.begin(), seen.end());
        seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
        cands.clear();
        const float* v = Vec(s);
        for (uint32_t x : seen) cands.push_back({Dist(v, Vec(x)), x});
        std::sort(cands.begin(), cands.end(),
                  [](const Cand& a, const Cand& b) { return a.d < b.d; });
        SelectNeighbors(&cands, MaxDegree(lev));
        uint32_t k = 0;
        for (const Cand& c : cands) ids[k++] = c.id;
        WriteLinks(s, lev, ids, k);
      }
    }
  };
  RunOnThreads(std::min(DefaultThreads(), limit / 1024 + 1), [&](uint32_t) { work(); });

  // Entry point: keep it if live, else the live node with the highest level.
  uint64_t e = entry_.load();
  if (e != kNoEntry && state[EntrySlot(e)] != kLive) {
    uint64_t best = kNoEntry;
    int best_level = -1;
    for (uint32_t s = 0; s < limit; ++s) {
      if (state[s] == kLive && LevelOf(s) > best_level) {
        best_level = LevelOf(s);
        best = PackEntry(s, best_level);
      }
    }
    entry_.store(best);
  }

  // Phase 2: tombstones become free slots.
  std::lock_guard<std::mutex> al(alloc_mu_);
  for (uint32_t s = 0; s < limit; ++s) {
    if (state[s] != kDeleted) continue;
    WriteRec0(Rec(s), narrow_, nullptr, 0);
    FlagsOf(s).state.store(kFree);
    delete[] ChunkOf(s)->upper[s & chunk_mask_].exchange(nullptr);
    free_slots_.push_back(s);
  }
  // Recount the upper-level bytes (freed arrays).
  size_t ub = 0;
  for (uint32_t s = 0; s < limit; ++s)
    if (state[s] == kLive) ub += UpperBytes(LevelOf(s));
  upper_bytes_.store(ub);
  // The relinking above used the selection heuristic alone, which can cut
  // nodes off: rebuild the reachability tree and link back every live node
  // the entry point no longer reaches.
  RebuildTreeLocked();
  // Hand out low slots first.
  std::sort(free_slots_.begin(), free_slots_.end(), std::greater<uint32_t>());
  deleted_.store(0);
  return Status::OK();
}

}  // namespace aidb::index
