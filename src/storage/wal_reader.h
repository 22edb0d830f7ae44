// Reading a WAL file (format: log_format.h): every record in order, with the
// damage classes of the format told apart.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "core/status.h"
#include "storage/log_format.h"

namespace aidb::storage {

// A record as read back. `body` points into the reader's buffer or mapping and
// is valid only during the callback.
struct WalRecord {
  uint64_t lsn = 0;
  int64_t timestamp_ns = 0;
  uint8_t op = 0;
  std::string_view body;
  uint64_t offset = 0;  // byte offset of the record header in the file
};

struct WalReadStats {
  uint64_t records = 0;          // valid records seen
  uint64_t valid_bytes = 0;      // offset just past the last valid record
  uint64_t file_bytes = 0;       // file size when read
  uint64_t torn_tail_bytes = 0;  // bytes after valid_bytes dropped as a torn tail
  bool torn_tail = false;
  // Bytes after valid_bytes that are all zero (preallocated space, or
  // appends whose data never reached the disk): a clean end, not torn.
  uint64_t zero_tail_bytes = 0;
  bool used_mmap = false;
  uint64_t last_lsn = 0;          // LSN of the last valid record (0 if none)
  int64_t last_timestamp_ns = 0;  // timestamp of the last valid record (0 if none)
};

// Reads every record of the WAL file at `path` in order and calls fn for each.
// A missing file reads as empty. Stops with fn's status if fn fails. Zeros
// from a record boundary to end of file: a clean end, reported in
// stats.zero_tail_bytes. Torn tail: OK, reported in stats. Corruption: Status::Corruption("... at
// offset N ..."). Files of at least mmap_threshold bytes are read through mmap, others with read(2)
// into one buffer.
Status ReadWal(const std::string& path, uint64_t mmap_threshold,
               const std::function<Status(const WalRecord&)>& fn, WalReadStats* stats);

// ReadWal on an open file `fd`, reading at most its first `limit` bytes (the
// group-commit writer reads its committed prefix this way).
Status ReadWalFd(int fd, const std::string& path, uint64_t limit, uint64_t mmap_threshold,
                 const std::function<Status(const WalRecord&)>& fn, WalReadStats* st);

}  // namespace aidb::storage
