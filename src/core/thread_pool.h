// The one way AIDB fans work out over threads: RunOnThreads starts
// `threads - 1` threads, runs `work` on them and on the caller, and joins
// them. Workers pull their items from a shared counter (ParallelFor), so
// uneven items balance out. Used by batch inserts, compaction and batch
// searches; nothing here outlives the call.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

namespace aidb {

// All cores (at least 1): what a `threads` argument of 0 means.
inline uint32_t DefaultThreads() { return std::max(1u, std::thread::hardware_concurrency()); }

// Runs work(t) for t in [0, threads) concurrently, t == 0 on the caller.
inline void RunOnThreads(uint32_t threads, const std::function<void(uint32_t)>& work) {
  std::vector<std::thread> pool;
  if (threads > 1) pool.reserve(threads - 1);
  for (uint32_t t = 1; t < threads; ++t) pool.emplace_back(work, t);
  work(0);
  for (std::thread& th : pool) th.join();
}

// Calls fn(i, t) for every i in [0, n) on up to `threads` threads (0 = all
// cores; never more threads than items); t is the worker's index. fn returns
// false to make its worker stop taking items.
inline void ParallelFor(size_t n, uint32_t threads,
                        const std::function<bool(size_t i, uint32_t t)>& fn) {
  if (n == 0) return;
  if (threads == 0) threads = DefaultThreads();
  threads = static_cast<uint32_t>(std::min<size_t>(threads, n));
  std::atomic<size_t> next{0};
  RunOnThreads(threads, [&](uint32_t t) {
    for (size_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < n;) {
      if (!fn(i, t)) return;
    }
  });
}

}  // namespace aidb
