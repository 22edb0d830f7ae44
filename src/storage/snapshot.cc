#include "storage/snapshot.h"

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <capnp/serialize.h>
#include <kj/exception.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "storage/crc32c.h"

namespace aidb::storage {
namespace {

void PutU32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }
void PutU64(uint8_t* p, uint64_t v) { std::memcpy(p, &v, 8); }
uint32_t GetU32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
uint64_t GetU64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

uint32_t HeaderCrc(const uint8_t* h) {
  uint32_t crc = crc32c::Extend(0, h, 12);
  return crc32c::Extend(crc, h + 16, 16);
}

// Buffers small pieces and writes large ones straight through, keeping a
// running CRC32C of everything written after the header.
class CrcWriter {
 public:
  CrcWriter(int fd, const std::string& path) : fd_(fd), path_(path) { buf_.reserve(kBuf); }
  Status Write(const void* data, size_t n) {
    crc_ = crc32c::Extend(crc_, data, n);
    bytes_ += n;
    if (n >= kBuf) {
      AIDB_RETURN_IF_ERROR(Flush());
      return WriteAll(fd_, data, n, path_);
    }
    if (buf_.size() + n > kBuf) AIDB_RETURN_IF_ERROR(Flush());
    const auto* p = static_cast<const uint8_t*>(data);
    buf_.insert(buf_.end(), p, p + n);
    return Status::OK();
  }
  Status Flush() {
    if (buf_.empty()) return Status::OK();
    Status s = WriteAll(fd_, buf_.data(), buf_.size(), path_);
    buf_.clear();
    return s;
  }
  uint32_t crc() const { return crc_; }
  uint64_t bytes() const { return bytes_; }

 private:
  static constexpr size_t kBuf = 1 << 20;
  int fd_;
  const std::string& path_;
  std::vector<uint8_t> buf_;
  uint32_t crc_ = 0;
  uint64_t bytes_ = 0;
};

}  // namespace

uint32_t VectorChunkShift(uint32_t dim) {
  const uint64_t bytes_per_vec = std::max<uint64_t>(1, dim) * sizeof(float);
  const uint64_t budget = 64ull << 20;
  uint32_t shift = 0;
  while (shift < 24 && (bytes_per_vec << (shift + 1)) <= budget) ++shift;
  return shift;
}

Status WriteSnapshotFile(const std::string& path, capnp::MessageBuilder& message) {
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IOErrorFromErrno("snapshot: cannot create " + tmp, errno);

  auto fail = [&](Status s) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return s;
  };

  // Header placeholder; filled in once the message size and CRC are known.
  uint8_t header[kSnapshotHeaderSize] = {};
  Status s = WriteAll(fd, header, sizeof(header), tmp);
  if (!s.ok()) return fail(s);

  // Standard Cap'n Proto stream framing: segment count - 1, segment sizes
  // (words), padding to a word, then the segments.
  kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments = message.getSegmentsForOutput();
  std::vector<uint32_t> table;
  table.push_back(static_cast<uint32_t>(segments.size() - 1));
  for (const auto& seg : segments) table.push_back(static_cast<uint32_t>(seg.size()));
  if (table.size() % 2 != 0) table.push_back(0);

  CrcWriter w(fd, tmp);
  s = w.Write(table.data(), table.size() * sizeof(uint32_t));
  for (size_t i = 0; s.ok() && i < segments.size(); ++i) {
    s = w.Write(segments[i].begin(), segments[i].size() * sizeof(capnp::word));
  }
  if (s.ok()) s = w.Flush();
  if (!s.ok()) return fail(s.WithContext("snapshot: write failed"));

  std::memcpy(header, kSnapshotMagic, 8);
  PutU32(header + 8, kSnapshotFileVersion);
  PutU64(header + 16, w.bytes());
  PutU32(header + 24, w.crc());
  PutU32(header + 28, 0);
  PutU32(header + 12, HeaderCrc(header));
  s = PWriteAll(fd, header, sizeof(header), 0, tmp);
  if (s.ok()) s = Fsync(fd, tmp);
  if (!s.ok()) return fail(s.WithContext("snapshot: write failed"));
  if (::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Status::IOErrorFromErrno("snapshot: close " + tmp, err);
  }
  s = RenameDurable(tmp, path);
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s.WithContext("snapshot: publish failed");
  }
  return Status::OK();
}

Status SnapshotFile::Open(const std::string& path, std::unique_ptr<SnapshotFile>* out) {
  std::unique_ptr<SnapshotFile> f(new SnapshotFile());
  f->path_ = path;
  Status s = MappedFile::Open(path, /*private_writable=*/true, &f->map_);
  if (!s.ok()) {
    if (s.IsNotFound()) return Status::NotFound("snapshot file not found: " + path);
    return s;
  }
  const uint8_t* p = f->map_->data();
  const uint64_t size = f->map_->size();
  auto corrupt = [&](const std::string& why) {
    return Status::Corruption("snapshot " + path + ": " + why);
  };
  if (size < kSnapshotHeaderSize) {
    return corrupt("file too short (" + std::to_string(size) + " bytes) for a snapshot header");
  }
  if (std::memcmp(p, kSnapshotMagic, 8) != 0) return corrupt("not an AIDB snapshot (bad magic)");
  if (GetU32(p + 12) != HeaderCrc(p)) return corrupt("header checksum mismatch at offset 0");
  const uint32_t version = GetU32(p + 8);
  if (version != kSnapshotFileVersion) {
    return corrupt("unsupported snapshot file version " + std::to_string(version));
  }
  const uint64_t msg_bytes = GetU64(p + 16);
  if (msg_bytes % 8 != 0 || msg_bytes == 0) return corrupt("invalid message size in header");
  if (kSnapshotHeaderSize + msg_bytes > size) {
    return corrupt("truncated: header announces " + std::to_string(msg_bytes) +
                   " message bytes, file holds " + std::to_string(size - kSnapshotHeaderSize));
  }
  if (kSnapshotHeaderSize + msg_bytes < size) {
    return corrupt("trailing bytes after the message at offset " +
                   std::to_string(kSnapshotHeaderSize + msg_bytes));
  }
  f->map_->AdviseSequential();
  const uint32_t crc = crc32c::Value(p + kSnapshotHeaderSize, msg_bytes);
  if (crc != GetU32(p + 24)) {
    return corrupt("message checksum mismatch (bytes " + std::to_string(kSnapshotHeaderSize) +
                   ".." + std::to_string(kSnapshotHeaderSize + msg_bytes) + ")");
  }
  try {
    kj::ArrayPtr<const capnp::word> words(
        reinterpret_cast<const capnp::word*>(p + kSnapshotHeaderSize), msg_bytes / 8);
    capnp::ReaderOptions opts;
    opts.traversalLimitInWords = msg_bytes / 8 * 4 + 1024;
    opts.nestingLimit = 64;
    f->reader_ = std::make_unique<capnp::FlatArrayMessageReader>(words, opts);
    f->root_ = f->reader_->getRoot<schema::Snapshot>();
    if (f->root_.getFormatVersion() != kSnapshotFormatVersion) {
      return corrupt("unsupported snapshot format version " +
                     std::to_string(f->root_.getFormatVersion()));
    }
  } catch (const kj::Exception& e) {
    return corrupt(std::string("invalid message: ") + e.getDescription().cStr());
  }
  *out = std::move(f);
  return Status::OK();
}

void SnapshotIndexWriter::WriteVectors(
    uint32_t slot_limit, const std::function<void(uint32_t, uint32_t, float*)>& fill) {
  const uint32_t per_chunk = 1u << VectorChunkShift(dim_);
  const uint32_t nchunks = (slot_limit + per_chunk - 1) / per_chunk;
  auto chunks = root_.initVectors(nchunks);
  for (uint32_t c = 0; c < nchunks; ++c) {
    const uint32_t first = c * per_chunk;
    const uint32_t n = std::min(per_chunk, slot_limit - first);
    auto chunk = chunks[c];
    chunk.setFirstSlot(first);
    chunk.setCount(n);
    auto data = chunk.initData(static_cast<size_t>(n) * dim_ * sizeof(float));
    fill(first, n, reinterpret_cast<float*>(data.begin()));
  }
}

float* SnapshotIndexReader::VectorData(schema::VectorChunk::Reader chunk, uint32_t dim) const {
  auto data = chunk.getData();
  if (data.size() != static_cast<size_t>(chunk.getCount()) * dim * sizeof(float)) return nullptr;
  if (data.size() == 0) return nullptr;
  // The mapping is MAP_PRIVATE and writable: writes are private copies.
  return reinterpret_cast<float*>(const_cast<capnp::byte*>(data.begin()));
}

}  // namespace aidb::storage
