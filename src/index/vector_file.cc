#include "index/vector_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace aidb::index {

Status VectorFile::Create(const std::string& path, std::unique_ptr<VectorFile>* out) {
  if (path.empty()) return Status::InvalidArgument("vectors_on_disk: no path for the vectors file");
  // A new inode: whoever maps the old file keeps it until they unmap.
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return Status::IOErrorFromErrno("cannot replace vectors file " + path, errno);
  }
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IOErrorFromErrno("cannot create vectors file " + path, errno);
  std::unique_ptr<VectorFile> f(new VectorFile());
  f->path_ = path;
  f->fd_ = fd;
  f->SetSegmentBytes(0);
  *out = std::move(f);
  return Status::OK();
}

void VectorFile::SetSegmentBytes(size_t bytes) {
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  if (bytes == 0) bytes = page;
  segment_bytes_ = (bytes + page - 1) / page * page;
}

VectorFile::~VectorFile() {
  std::lock_guard<std::mutex> g(mu_);
  UnmapAllLocked();
  if (fd_ >= 0) ::close(fd_);
}

void VectorFile::UnmapAllLocked() {
  for (char* p : segments_) {
    if (p != nullptr) ::munmap(p, segment_bytes_);
  }
  segments_.clear();
}

Status VectorFile::Segment(uint32_t i, char** out) {
  std::lock_guard<std::mutex> g(mu_);
  if (i < segments_.size() && segments_[i] != nullptr) {
    *out = segments_[i];
    return Status::OK();
  }
  const uint64_t end = (uint64_t{i} + 1) * segment_bytes_;
  if (end > file_size_) {
    if (::ftruncate(fd_, static_cast<off_t>(end)) != 0) {
      return Status::IOErrorFromErrno("cannot grow vectors file " + path_, errno);
    }
    file_size_ = end;
  }
  void* p = ::mmap(nullptr, segment_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_,
                   static_cast<off_t>(uint64_t{i} * segment_bytes_));
  if (p == MAP_FAILED) return Status::IOErrorFromErrno("cannot map vectors file " + path_, errno);
  // Re-ranking reads a few scattered vectors: read-ahead would only fetch
  // (and keep cached) vectors nobody asked for.
  (void)::madvise(p, segment_bytes_, MADV_RANDOM);
  if (segments_.size() <= i) segments_.resize(i + 1, nullptr);
  segments_[i] = static_cast<char*>(p);
  *out = segments_[i];
  return Status::OK();
}

Status VectorFile::Reserve(uint64_t end) {
  std::lock_guard<std::mutex> g(mu_);
  if (end <= reserved_ || !fallocate_works_) return Status::OK();
  uint64_t to = (end + kReserveStep - 1) / kReserveStep * kReserveStep;
  if (to > file_size_) to = file_size_;
  if (to < end) to = end;
  int rc =
      ::posix_fallocate(fd_, static_cast<off_t>(reserved_), static_cast<off_t>(to - reserved_));
  if (rc == EOPNOTSUPP || rc == ENOSYS || rc == EINVAL) {
    fallocate_works_ = false;  // the file system cannot reserve: writes may still fail
    return Status::OK();
  }
  if (rc != 0) return Status::IOErrorFromErrno("no space for vectors file " + path_, rc);
  reserved_ = to;
  if (to > file_size_) file_size_ = to;
  return Status::OK();
}

void VectorFile::Reset() {
  std::lock_guard<std::mutex> g(mu_);
  UnmapAllLocked();
  (void)::ftruncate(fd_, 0);
  file_size_ = 0;
  reserved_ = 0;
}

Status VectorFile::Sync() const {
  if (::fdatasync(fd_) != 0) return Status::IOErrorFromErrno("fdatasync " + path_, errno);
  return Status::OK();
}

template <class Fn>
void VectorFile::ForEachMapped(uint64_t from, uint64_t to, Fn fn) const {
  std::lock_guard<std::mutex> g(mu_);
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  for (size_t i = 0; i < segments_.size(); ++i) {
    if (segments_[i] == nullptr) continue;
    uint64_t b = std::max<uint64_t>(from, i * segment_bytes_);
    uint64_t e = std::min<uint64_t>(to, (i + 1) * segment_bytes_);
    b = b / page * page;
    if (b >= e) continue;
    fn(segments_[i] + (b - i * segment_bytes_), e - b);
  }
}

Status VectorFile::Advise(uint64_t from, uint64_t to, int advice) const {
  int err = 0;
  ForEachMapped(from, to, [&](char* p, uint64_t len) {
    if (::madvise(p, len, advice) != 0 && err == 0) err = errno;
  });
  return err == 0 ? Status::OK() : Status::IOErrorFromErrno("madvise " + path_, err);
}

uint64_t VectorFile::ResidentBytes(uint64_t from, uint64_t to) const {
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  uint64_t resident = 0;
  ForEachMapped(from, to, [&](char* p, uint64_t len) {
    std::vector<unsigned char> vec((len + page - 1) / page);
    if (::mincore(p, len, vec.data()) != 0) return;
    for (unsigned char c : vec) resident += (c & 1) ? page : 0;
  });
  return resident;
}

uint64_t VectorFile::MappedBytes() const {
  std::lock_guard<std::mutex> g(mu_);
  uint64_t n = 0;
  for (char* p : segments_) n += p != nullptr ? segment_bytes_ : 0;
  return n;
}

}  // namespace aidb::index
