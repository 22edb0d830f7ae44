#include "storage/wal_reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <new>

#include "core/coding.h"
#include "storage/crc32c.h"
#include "storage/file.h"

namespace aidb::storage {
namespace {

bool AllZero(const uint8_t* p, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    if (DecodeFixed64(p + i) != 0) return false;
  }
  for (; i < n; ++i) {
    if (p[i] != 0) return false;
  }
  return true;
}

// Whether a record with a valid checksum and an LSN above prev_lsn starts at
// some offset in [from, size). Used when a record's length runs past end of
// file: a true torn tail is a prefix of the last write, so nothing valid can
// follow; if something does, the length field itself is damaged. Cheap
// filters (op, reserved bytes, length, LSN range) keep CRCs rare.
bool ValidRecordAfter(const uint8_t* data, uint64_t from, uint64_t size, uint64_t prev_lsn,
                      uint64_t* found_at) {
  if (size < kWalHeaderSize) return false;
  for (uint64_t q = from; q + kWalHeaderSize <= size; ++q) {
    const uint8_t* h = data + q;
    if (h[24] == 0 || h[25] != 0 || h[26] != 0 || h[27] != 0) continue;
    const uint32_t len = DecodeFixed32(h + 4);
    if (len > size - q - kWalHeaderSize) continue;
    const uint64_t lsn = DecodeFixed64(h + 8);
    if (lsn <= prev_lsn || lsn - prev_lsn > (uint64_t{1} << 32)) continue;
    if (crc32c::Unmask(DecodeFixed32(h)) == crc32c::Value(h + 4, kWalHeaderSize - 4 + len)) {
      *found_at = q;
      return true;
    }
  }
  return false;
}

// Parses records in data[0, size) (the whole file, or a committed prefix of it).
Status ParseRecords(const uint8_t* data, uint64_t size, const std::string& path,
                    const std::function<Status(const WalRecord&)>& fn, WalReadStats* st) {
  uint64_t pos = 0;
  uint64_t prev_lsn = 0;
  auto torn = [&]() {
    st->torn_tail = true;
    st->torn_tail_bytes = size - pos;
    return Status::OK();
  };
  auto corrupt = [&](const std::string& what) {
    return Status::Corruption("WAL " + path + ": " + what);
  };
  while (pos < size) {
    const uint64_t remaining = size - pos;
    const uint8_t* h = data + pos;
    // Zeros from a record boundary to the end: preallocated space (wal.h) or
    // appends that never reached the disk whole. A real header has a nonzero
    // CRC or length or LSN, so the full check runs only at the end. Fewer
    // zeros than a header could be a record cut short whose first bytes are
    // zero: a clean end only where preallocated space ends (a multiple of
    // 4 KiB), else torn.
    if ((remaining < 8 || DecodeFixed64(h) == 0) &&
        (remaining >= kWalHeaderSize || size % 4096 == 0) && AllZero(h, remaining)) {
      st->zero_tail_bytes = remaining;
      return Status::OK();
    }
    if (remaining < kWalHeaderSize) return torn();  // header cut short
    const uint32_t len = DecodeFixed32(h + 4);
    if (len > kMaxRecordBody) {
      return corrupt("impossible length " + std::to_string(len) + " in record at offset " +
                     std::to_string(pos) + "; " + std::to_string(remaining) +
                     " bytes from it to end of file");
    }
    const uint64_t extent = uint64_t{kWalHeaderSize} + len;
    const uint64_t lsn = DecodeFixed64(h + 8);
    if (extent > remaining) {  // body cut short, unless the length is damaged
      uint64_t at = 0;
      if (!ValidRecordAfter(data, pos + 1, size, prev_lsn, &at)) return torn();
      return corrupt("length " + std::to_string(len) + " of record at offset " +
                     std::to_string(pos) + " (lsn " + std::to_string(lsn) +
                     ") runs past end of file, but a valid record starts at offset " +
                     std::to_string(at) + "; " + std::to_string(remaining) +
                     " bytes from it to end of file");
    }
    const uint64_t after = remaining - extent;
    const uint32_t want = crc32c::Unmask(DecodeFixed32(h));
    const uint32_t got = crc32c::Value(h + 4, extent - 4);
    if (want != got) {
      // Torn if nothing follows it, or only zeros do: a power cut can persist
      // a file's new size but not all of its data, which then reads as zeros
      // from some sector on (XFS, ext4 data=writeback).
      if (after == 0 || AllZero(h + extent, after)) return torn();
      return corrupt("checksum mismatch in record at offset " + std::to_string(pos) + " (lsn " +
                     std::to_string(lsn) + "); " + std::to_string(after) + " bytes after it");
    }
    const uint8_t op = h[24];
    if (op == 0) {
      return corrupt("zero op in record at offset " + std::to_string(pos) + " (lsn " +
                     std::to_string(lsn) + "); " + std::to_string(after) + " bytes after it");
    }
    if (lsn <= prev_lsn) {
      return corrupt("non-increasing lsn " + std::to_string(lsn) + " after " +
                     std::to_string(prev_lsn) + " in record at offset " + std::to_string(pos) +
                     "; " + std::to_string(after) + " bytes after it");
    }
    WalRecord rec;
    rec.lsn = lsn;
    rec.timestamp_ns = static_cast<int64_t>(DecodeFixed64(h + 16));
    rec.op = op;
    rec.body = std::string_view(reinterpret_cast<const char*>(h + kWalHeaderSize), len);
    rec.offset = pos;
    AIDB_RETURN_IF_ERROR(fn(rec));
    prev_lsn = lsn;
    pos += extent;
    st->records++;
    st->valid_bytes = pos;
    st->last_lsn = lsn;
    st->last_timestamp_ns = rec.timestamp_ns;
  }
  return Status::OK();
}

}  // namespace

Status ReadWalFd(int fd, const std::string& path, uint64_t limit, uint64_t mmap_threshold,
                 const std::function<Status(const WalRecord&)>& fn, WalReadStats* st) {
  struct stat sb;
  if (::fstat(fd, &sb) != 0) return Status::IOErrorFromErrno("fstat " + path, errno);
  uint64_t size = std::min<uint64_t>(static_cast<uint64_t>(sb.st_size), limit);
  st->file_bytes = size;
  if (size == 0) return Status::OK();
  if (size >= mmap_threshold) {
    st->used_mmap = true;
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) return Status::IOErrorFromErrno("mmap " + path, errno);
    ::madvise(p, size, MADV_SEQUENTIAL);
    ::madvise(p, size, MADV_WILLNEED);
    Status s = ParseRecords(static_cast<const uint8_t*>(p), size, path, fn, st);
    ::munmap(p, size);
    return s;
  }
  std::unique_ptr<uint8_t[]> buf(new (std::nothrow) uint8_t[size]);
  if (!buf) return Status::NoMemory("WAL " + path + ": no memory for a read buffer");
  AIDB_RETURN_IF_ERROR(PReadAll(fd, buf.get(), size, 0, path));
  return ParseRecords(buf.get(), size, path, fn, st);
}

Status ReadWal(const std::string& path, uint64_t mmap_threshold,
               const std::function<Status(const WalRecord&)>& fn, WalReadStats* stats) {
  WalReadStats local;
  WalReadStats* st = stats ? stats : &local;
  *st = WalReadStats();
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::OK();
    return Status::IOErrorFromErrno("open " + path, errno);
  }
  Status s = ReadWalFd(fd, path, UINT64_MAX, mmap_threshold, fn, st);
  ::close(fd);
  return s;
}

}  // namespace aidb::storage
