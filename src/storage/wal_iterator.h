// Iterates the committed records of a WAL from an LSN on (the change feed),
// one record at a time, without holding the log: Open reads the committed
// part once (Wal::Read: every checksum checked) and remembers where each
// record is; Peek re-reads one record from the file. A snapshot may truncate
// the WAL meanwhile: Peek notices (the record's LSN is no longer where it
// was) and fails NotFound, and the caller reopens from that LSN.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "storage/wal.h"

namespace aidb::storage {

class WalIterator {
 public:
  // `wal` may be null (an in-memory collection): no records.
  [[nodiscard]] static Status Open(Wal* wal, uint64_t from_lsn, std::unique_ptr<WalIterator>* out);
  ~WalIterator();  // closes the file
  WalIterator(const WalIterator&) = delete;
  WalIterator& operator=(const WalIterator&) = delete;

  // Reads the current record into *rec (its body valid until the next Peek
  // or the iterator's end) without moving past it; *has_record false once
  // past the last one.
  [[nodiscard]] Status Peek(WalRecord* rec, bool* has_record);
  // Moves past the current record.
  void Advance() {
    if (next_ < records_.size()) ++next_;
  }

 private:
  WalIterator() = default;
  std::string path_;
  std::vector<WalRecord> records_;  // bodies not kept: re-read by Peek
  size_t next_ = 0;
  int fd_ = -1;
  std::string buf_;  // header + body of the current record
};

}  // namespace aidb::storage
