// Snapshot files: a 32-byte header of our own followed by one Cap'n Proto
// message (schema in snapshot.capnp). Storage is the only owner of this
// format: the engine and the indexes hand it plain data (core/snapshot_image.h)
// and get plain data back.
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

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "core/payload_slot.h"
#include "core/snapshot_image.h"
#include "core/status.h"
#include "core/uuid.h"

namespace aidb::storage {

inline constexpr char kSnapshotMagic[8] = {'A', 'I', 'D', 'B', 'S', 'N', 'A', 'P'};
inline constexpr uint32_t kSnapshotFileVersion = 1;
inline constexpr uint32_t kSnapshotFormatVersion = 1;  // Snapshot.formatVersion
inline constexpr size_t kSnapshotHeaderSize = 32;

// Builds one snapshot in memory, then publishes it as a file. Not
// thread-safe; one use.
class SnapshotWriter {
 public:
  SnapshotWriter();
  ~SnapshotWriter();
  SnapshotWriter(const SnapshotWriter&) = delete;
  SnapshotWriter& operator=(const SnapshotWriter&) = delete;

  // The summary, and the points of slots [0, meta.slot_limit): ids[s] (nil =
  // free slot) and payloads[s] (empty = none); slots past the end of the
  // spans are free. Copied: the spans may go once this returns.
  [[nodiscard]] Status SetCollection(const SnapshotMeta& meta, std::span<const Uuid> ids,
                                     std::span<const PayloadSlot> payloads);
  // The index part (call after SetCollection: the dimension comes from it).
  // Calls the image's fill functions before it returns.
  [[nodiscard]] Status SetIndex(const IndexImage& index);
  // Writes the file atomically: "<path>.tmp" written and fsynced, renamed
  // over `path`, directory fsynced. On failure `path` is untouched and the
  // temp file removed.
  [[nodiscard]] Status WriteFile(const std::string& path);

 private:
  struct Rep;  // the Cap'n Proto message
  std::unique_ptr<Rep> rep_;
};

// An open, verified, decoded snapshot file.
class SnapshotFile {
 public:
  // NotFound if missing; Corruption for a short, foreign or damaged file
  // (checksums, and a message whose structure cannot be read).
  [[nodiscard]] static Status Open(const std::string& path, std::unique_ptr<SnapshotFile>* out);
  ~SnapshotFile();
  SnapshotFile(const SnapshotFile&) = delete;
  SnapshotFile& operator=(const SnapshotFile&) = delete;

  // Spans into the mapping: valid while this file or keepalive() lives.
  const SnapshotImage& image() const { return image_; }
  const SnapshotMeta& meta() const { return image_.meta; }
  // Keeps the mapping alive; hold it as long as pointers into it are used.
  KeepAlive keepalive() const;
  uint64_t file_size() const;
  const std::string& path() const { return path_; }

 private:
  struct Rep;  // the mapping and the message reader
  SnapshotFile() = default;
  std::string path_;
  std::shared_ptr<Rep> rep_;
  SnapshotImage image_;
};

}  // namespace aidb::storage
