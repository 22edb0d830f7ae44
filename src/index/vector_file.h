// VectorFile: the float vectors of an index with vectors_on_disk, in a file of
// the collection's folder shared-mapped (MAP_SHARED) in fixed-size segments,
// so the page cache holds them and may evict them: they cost no anonymous
// memory. A segment is mapped once and never moved, so pointers into it stay
// valid while the index grows.
//
// The file is a cache derived from the snapshot and the WAL: it is created
// afresh by every index that opens it (the collection rebuilds it at open),
// never fsynced and never read back across a restart. Creating it unlinks an
// existing file of that name first, so an index that still maps the old one
// (a collection loading a snapshot beside its published state) keeps its own
// inode.
//
// Disk blocks are allocated (fallocate) ahead of the slots written through
// the mapping, so a full disk is an error of the write that needs the space,
// not a SIGBUS.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/status.h"

namespace aidb::index {

class VectorFile {
 public:
  // Creates `path` (empty). The owner sets the segment size before use.
  static Status Create(const std::string& path, std::unique_ptr<VectorFile>* out);
  ~VectorFile();  // unmaps; the file stays
  VectorFile(const VectorFile&) = delete;
  VectorFile& operator=(const VectorFile&) = delete;

  // Segments of `bytes` (rounded up to whole pages); before the first Segment.
  void SetSegmentBytes(size_t bytes);
  // The mapping of segment i (the file grows, sparse, to cover it on first
  // use). Thread-safe.
  Status Segment(uint32_t i, char** out);
  // Allocates disk blocks for the first `end` bytes of the file (in steps of
  // kReserveStep, within the mapped segments). Thread-safe.
  Status Reserve(uint64_t end);
  // Unmaps every segment and truncates the file to 0 bytes.
  void Reset();

  size_t segment_bytes() const { return segment_bytes_; }
  const std::string& path() const { return path_; }
  // Bytes of file mapped (segments * segment_bytes).
  uint64_t MappedBytes() const;

  // Benchmarks: writes the file's dirty pages back (fdatasync; the index
  // never does), madvise(advice) on the mapped pages of file bytes
  // [from, to), and how many of those bytes are resident (mincore).
  Status Sync() const;
  Status Advise(uint64_t from, uint64_t to, int advice) const;
  uint64_t ResidentBytes(uint64_t from, uint64_t to) const;

  static constexpr uint64_t kReserveStep = 4u << 20;

 private:
  VectorFile() = default;
  void UnmapAllLocked();
  // Calls fn(address, length) for the mapped parts of file bytes [from, to).
  template <class Fn>
  void ForEachMapped(uint64_t from, uint64_t to, Fn fn) const;

  std::string path_;
  int fd_ = -1;
  size_t segment_bytes_ = 0;
  mutable std::mutex mu_;
  std::vector<char*> segments_;  // nullptr: not mapped yet
  uint64_t file_size_ = 0;
  uint64_t reserved_ = 0;
  bool fallocate_works_ = true;
};

}  // namespace aidb::index
