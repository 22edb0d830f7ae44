// Large anonymous allocations for vector storage, backed by transparent huge
// pages where the kernel allows (MADV_HUGEPAGE): first-touching 4 KiB pages
// costs far more than copying into them, 2 MiB pages cut that cost ~500-fold.
//
// Even so, the first touch of a fresh page (the kernel zeroing it, and on a
// VM often the host backing it) is the largest cost of storing a batch of
// vectors. PopulateAsync moves it off the writer: a background thread faults
// in the pages a writer is about to fill (MADV_POPULATE_WRITE), while the
// writer does its other work (the WAL, the disk).
#pragma once

#include <cstddef>

namespace aidb {

class HugeBuffer {
 public:
  HugeBuffer() = default;
  // Zero-filled; throws std::bad_alloc on failure.
  explicit HugeBuffer(size_t bytes);
  // Waits for a populate of this buffer that is running (cancels queued ones).
  ~HugeBuffer();
  HugeBuffer(HugeBuffer&& o) noexcept : data_(o.data_), size_(o.size_) {
    o.data_ = nullptr;
    o.size_ = 0;
  }
  HugeBuffer& operator=(HugeBuffer&& o) noexcept;
  HugeBuffer(const HugeBuffer&) = delete;
  HugeBuffer& operator=(const HugeBuffer&) = delete;

  void* data() const { return data_; }
  size_t size() const { return size_; }

  // Asks the process's populate thread to fault in [offset, offset + len)
  // (clipped to the buffer) as writable pages, in 2 MiB steps, without
  // changing a byte: writers and readers may use the range meanwhile. A
  // hint: does nothing where the kernel lacks MADV_POPULATE_WRITE (before
  // Linux 5.14) or memory is short, and queued work for a buffer is dropped
  // when the buffer goes away.
  void PopulateAsync(size_t offset, size_t len);
  // Blocks until no populate of this buffer is queued or running.
  void WaitPopulated() const;

 private:
  void* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace aidb
