// Snapshot files: a 32-byte header of our own followed by one Cap'n Proto
// message (schema in snapshot.capnp).
//
// Header (little-endian):
//   0   8  magic "AIDBSNAP"
//   8   4  file format version (1)
//   12  4  CRC32C of header bytes [0, 12) and [16, 32)
//   16  8  message size in bytes (a multiple of 8)
//   24  4  CRC32C of the message bytes
//   28  4  reserved, zero
// Cap'n Proto has no checksum of its own; the header's CRC catches flipped
// bytes, and the size catches truncation. Readers mmap the file privately
// (copy-on-write), so indexes can serve vectors straight from the mapping.
#pragma once

#include <capnp/message.h>
#include <capnp/serialize.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/status.h"
#include "storage/file.h"
#include "storage/snapshot.capnp.h"

namespace aidb::storage {

inline constexpr char kSnapshotMagic[8] = {'A', 'I', 'D', 'B', 'S', 'N', 'A', 'P'};
inline constexpr uint32_t kSnapshotFileVersion = 1;
inline constexpr uint32_t kSnapshotFormatVersion = 1;  // Snapshot.formatVersion
inline constexpr size_t kSnapshotHeaderSize = 32;

// Vectors are kept in chunks of 2^VectorChunkShift(dim) slots (<= 64 MiB per
// chunk, < 2^29 bytes as Cap'n Proto requires), by indexes and snapshots alike.
uint32_t VectorChunkShift(uint32_t dim);

// Writes `message` to `path` atomically: "<path>.tmp" written and fsynced,
// renamed over `path`, directory fsynced. On failure `path` is untouched and
// the temp file removed.
Status WriteSnapshotFile(const std::string& path, capnp::MessageBuilder& message);

// An open, verified snapshot file.
class SnapshotFile {
 public:
  // NotFound if missing; Corruption for a short, foreign or damaged file.
  static Status Open(const std::string& path, std::unique_ptr<SnapshotFile>* out);
  SnapshotFile(const SnapshotFile&) = delete;
  SnapshotFile& operator=(const SnapshotFile&) = delete;

  schema::Snapshot::Reader root() const { return root_; }
  const std::shared_ptr<MappedFile>& mapping() const { return map_; }
  uint64_t file_size() const { return map_ ? map_->size() : 0; }
  const std::string& path() const { return path_; }

 private:
  SnapshotFile() = default;
  std::string path_;
  std::shared_ptr<MappedFile> map_;
  std::unique_ptr<capnp::FlatArrayMessageReader> reader_;
  schema::Snapshot::Reader root_;
};

// What an index sees when it saves itself into a snapshot.
class SnapshotIndexWriter {
 public:
  SnapshotIndexWriter(schema::Snapshot::Builder root, uint32_t dim) : root_(root), dim_(dim) {}
  schema::Snapshot::Builder& root() { return root_; }
  uint32_t dim() const { return dim_; }
  // Fills Snapshot.vectors for slots [0, slot_limit): `fill(first, n, out)`
  // must copy the n vectors of slots first.. into out (n * dim floats).
  void WriteVectors(uint32_t slot_limit,
                    const std::function<void(uint32_t first, uint32_t n, float* out)>& fill);

 private:
  schema::Snapshot::Builder root_;
  uint32_t dim_;
};

// What an index sees when it loads itself from a snapshot.
class SnapshotIndexReader {
 public:
  explicit SnapshotIndexReader(const SnapshotFile& file) : file_(file) {}
  schema::Snapshot::Reader root() const { return file_.root(); }
  // Keeps the mapping alive; hold it as long as pointers into it are used.
  std::shared_ptr<MappedFile> keepalive() const { return file_.mapping(); }
  // The floats of a vector chunk inside the private (copy-on-write) mapping:
  // writable without touching the file. Returns nullptr if the chunk's size
  // does not match count * dim (callers report Corruption).
  float* VectorData(schema::VectorChunk::Reader chunk, uint32_t dim) const;

 private:
  const SnapshotFile& file_;
};

}  // namespace aidb::storage
