// HugeBuffer: zero-filled storage, and PopulateAsync, which faults pages in
// on a background thread without changing a byte.
#include "core/memory.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "sanitizers.h"

namespace aidb {
namespace {

using aidbtest::kThreadSanitizer;

// Pages of [p, p + len) resident in memory, per mincore.
size_t ResidentPages(const void* p, size_t len) {
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> v((len + page - 1) / page);
  EXPECT_EQ(::mincore(const_cast<void*>(p), len, v.data()), 0);
  size_t n = 0;
  for (unsigned char c : v) n += c & 1;
  return n;
}

constexpr size_t kMiB = size_t{1} << 20;

TEST(HugeBufferTest, PopulateAsyncFaultsInOnlyTheRangeAskedFor) {
  HugeBuffer b(16 * kMiB);
  char* p = static_cast<char*>(b.data());
  ASSERT_EQ(ResidentPages(p, b.size()), 0u);
  b.PopulateAsync(4 * kMiB, 4 * kMiB);
  b.WaitPopulated();
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  if (ResidentPages(p + 4 * kMiB, 4 * kMiB) == 0) {
    GTEST_SKIP() << "this kernel has no MADV_POPULATE_WRITE (Linux < 5.14)";
  }
  EXPECT_EQ(ResidentPages(p + 4 * kMiB, 4 * kMiB), 4 * kMiB / page);
  // Huge pages may bring in the rest of a 2 MiB-aligned block, no more.
  EXPECT_EQ(ResidentPages(p + 10 * kMiB, 6 * kMiB), 0u);
  for (size_t i = 0; i < b.size(); i += 4096) ASSERT_EQ(p[i], 0) << i;
}

TEST(HugeBufferTest, PopulateKeepsWhatWritersStoreMeanwhile) {
  // A writer fills the buffer front to back while the populate thread runs
  // ahead of it and over what it has written: every byte stays the writer's.
  HugeBuffer b(32 * kMiB);
  auto* w = static_cast<uint32_t*>(b.data());
  const size_t n = b.size() / sizeof(uint32_t);
  const size_t step = kMiB / sizeof(uint32_t);
  for (size_t at = 0; at < n; at += step) {
    b.PopulateAsync(0, b.size());  // again over the written part too
    for (size_t i = at; i < at + step; ++i) w[i] = static_cast<uint32_t>(i * 2654435761u);
  }
  b.WaitPopulated();
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(w[i], static_cast<uint32_t>(i * 2654435761u)) << i;
}

TEST(HugeBufferTest, GoingAwayWithPopulatesQueuedIsSafe) {
  // Buffers destroyed or moved over while their populates are queued or
  // running: the work is dropped or waited for, never done on freed memory
  // (ASan and TSan runs of this test check it).
  for (int round = 0; round < 20; ++round) {
    std::vector<HugeBuffer> bufs;
    for (int i = 0; i < 4; ++i) {
      bufs.emplace_back(8 * kMiB);
      bufs.back().PopulateAsync(0, 8 * kMiB);
    }
    bufs[1] = HugeBuffer(4 * kMiB);
    bufs[1].PopulateAsync(kMiB, 2 * kMiB);
    HugeBuffer moved = std::move(bufs[2]);
    bufs.clear();
    moved.WaitPopulated();
  }
  // Out-of-range and empty requests are ignored.
  HugeBuffer b(4 * kMiB);
  b.PopulateAsync(4 * kMiB, kMiB);
  b.PopulateAsync(0, 0);
  HugeBuffer empty;
  empty.PopulateAsync(0, kMiB);
  empty.WaitPopulated();
  b.WaitPopulated();
  EXPECT_EQ(ResidentPages(b.data(), b.size()), 0u);
}

TEST(HugeBufferTest, AForkedChildPopulatesWithItsOwnThread) {
  // The parent's populate thread is busy (or at least started) at the
  // fork; the child must neither deadlock on its lock nor wait for work
  // no thread of its own will do.
  if (kThreadSanitizer) {
    GTEST_SKIP() << "TSan does not support starting threads after a multi-threaded fork";
  }
  // Twice: with the parent's thread busy at the fork, then idle (waiting
  // for work, which a child's condition variables must not inherit).
  for (bool idle : {false, true}) {
    HugeBuffer parent(64 * kMiB);
    parent.PopulateAsync(0, parent.size());
    if (idle) parent.WaitPopulated();
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::alarm(30);  // a hang fails the test instead of stalling it
      const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
      int bad = 0;
      for (int i = 0; i < 2; ++i) {  // the second needs the child's thread woken
        HugeBuffer b(8 * kMiB);
        b.PopulateAsync(0, b.size());
        b.WaitPopulated();
        const size_t resident = ResidentPages(b.data(), b.size());
        bad += resident != 0 && resident != b.size() / page;
      }
      parent.WaitPopulated();
      ::_exit(bad == 0 ? 0 : 3);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status)) << "child killed by signal " << WTERMSIG(status);
    EXPECT_EQ(WEXITSTATUS(status), 0) << (idle ? "idle" : "busy");
    parent.WaitPopulated();
  }
}

}  // namespace
}  // namespace aidb
