// The WAL's on-disk format, shared by the reader (wal_reader.h) and the
// group-commit writer (wal.h), as LevelDB's log_format.h is.
//
// File format (little-endian). The file is a sequence of records with no file
// header, so a WAL truncated by a checkpoint is a valid empty log (0 bytes):
//
//   offset size  field
//   0      4     masked CRC32C of bytes [4, 28 + length)  (LevelDB's mask)
//   4      4     length of the body in bytes (<= kMaxRecordBody)
//   8      8     LSN (> 0, strictly increasing within a file)
//   16     8     wall-clock timestamp, Unix nanoseconds
//   24     1     op (!= 0; the record codec's WalOp, wal_codec.h)
//   25     3     reserved, zero
//   28     len   body (the operation, encoded by wal_codec.h)
//
// Why not LevelDB's 32 KiB block framing: we never resynchronise after damage
// (the replay stops at the first corrupt record and reports its offset), so
// blocks buy nothing, while unfragmented records let the mmap replay hand every
// body to the decoder straight from the mapping, without reassembly copies.
//
// A file may end in zero bytes after its last record: space the writer
// preallocated (wal.h, WalOptions::prealloc_bytes), or appends of which only
// the new file size reached the disk. Zeros from a record boundary to end of
// file are a clean end (WalReadStats::zero_tail_bytes), not damage, if there
// are at least 28 of them or the file ends at a multiple of 4 KiB (as
// preallocated space does; fewer zeros elsewhere may be a record cut short
// whose first bytes are zero: torn). No record starts with 8 zero bytes (its masked CRC, or else
// its length, is nonzero for all practical purposes; a record whose first 8 bytes are zero and
// whose other bytes are not is read normally).
//
// Damage classes when reading (see ReadWal):
//   - torn tail: the last record is cut short by end of file (header or body
//     incomplete), or the last record (its extent reaches end of file
//     exactly, or only zeros follow it) fails its checksum. Dropped, reported
//     in stats; Replay cuts the file back.
//     A record whose length runs past end of file counts as "the last record"
//     only if no record with a valid checksum (and a higher LSN) starts after
//     its offset; otherwise its length field is damaged: corruption.
//   - corruption: a record that fails its checksum, has a zero op, a length
//     above kMaxRecordBody, or a non-increasing LSN, and is followed by more
//     bytes: Status::Corruption naming the byte offset, e.g.
//     "WAL /x/wal.log: checksum mismatch in record at offset 1234 (lsn 17);
//     5678 bytes after it". A length above kMaxRecordBody, a zero op or a
//     non-increasing LSN under a valid checksum are corruption even at the end.
//
// Sidecar: "<path>.lsn" holds the last LSN before the latest truncation (8 bytes
// LE + CRC32C), written atomically before the truncation, so LSNs are never
// reused across truncation and restart.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/coding.h"
#include "storage/crc32c.h"

namespace aidb::storage {

inline constexpr uint32_t kWalHeaderSize = 28;
inline constexpr uint32_t kMaxRecordBody = 1u << 30;  // 1 GiB

// Field offsets in a record header.
inline constexpr uint32_t kWalCrcOffset = 0;
inline constexpr uint32_t kWalLengthOffset = 4;
inline constexpr uint32_t kWalLsnOffset = 8;
inline constexpr uint32_t kWalTimestampOffset = 16;
inline constexpr uint32_t kWalOpOffset = 24;

// The ".lsn" sidecar: 8 bytes LE + CRC32C of them.
inline constexpr size_t kWalSidecarSize = 12;

// Fills the 28-byte header of a record (CRC included; body contiguous or not).
inline void EncodeRecordHeader(uint8_t* h, uint64_t lsn, int64_t ts, uint8_t op,
                               std::string_view body) {
  EncodeFixed32(h + kWalLengthOffset, static_cast<uint32_t>(body.size()));
  EncodeFixed64(h + kWalLsnOffset, lsn);
  EncodeFixed64(h + kWalTimestampOffset, static_cast<uint64_t>(ts));
  h[kWalOpOffset] = op;
  h[25] = h[26] = h[27] = 0;
  uint32_t crc = crc32c::Extend(0, h + 4, kWalHeaderSize - 4);
  crc = crc32c::Extend(crc, body.data(), body.size());
  EncodeFixed32(h + kWalCrcOffset, crc32c::Mask(crc));
}

// The same for a body in parts (concatenated, they are the body).
inline void EncodeRecordHeaderParts(uint8_t* h, uint64_t lsn, int64_t ts, uint8_t op,
                                    const std::string_view* parts, size_t nparts) {
  uint64_t len = 0;
  for (size_t i = 0; i < nparts; ++i) len += parts[i].size();
  EncodeFixed32(h + kWalLengthOffset, static_cast<uint32_t>(len));
  EncodeFixed64(h + kWalLsnOffset, lsn);
  EncodeFixed64(h + kWalTimestampOffset, static_cast<uint64_t>(ts));
  h[kWalOpOffset] = op;
  h[25] = h[26] = h[27] = 0;
  uint32_t crc = crc32c::Extend(0, h + 4, kWalHeaderSize - 4);
  for (size_t i = 0; i < nparts; ++i) crc = crc32c::Extend(crc, parts[i].data(), parts[i].size());
  EncodeFixed32(h + kWalCrcOffset, crc32c::Mask(crc));
}

}  // namespace aidb::storage
