// File helpers: whole writes, syncs, atomic publication, memory maps.
// Every function reports failures as Status::IOError naming the path and errno.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"

namespace aidb::storage {

// write(2) until all bytes are written (retries EINTR and short writes).
Status WriteAll(int fd, const void* data, size_t n, const std::string& path_for_errors);
// pwrite(2) until all bytes are written.
Status PWriteAll(int fd, const void* data, size_t n, uint64_t offset,
                 const std::string& path_for_errors);
// read(2) exactly n bytes at offset (pread); Corruption if the file is shorter.
Status PReadAll(int fd, void* data, size_t n, uint64_t offset, const std::string& path_for_errors);

Status Fsync(int fd, const std::string& path_for_errors);      // fsync(2)
Status Fdatasync(int fd, const std::string& path_for_errors);  // fdatasync(2)
// Opens the directory and fsyncs it, making renames/creations in it durable.
Status FsyncDir(const std::string& dir);
// The directory part of `path` ("." if none).
std::string DirName(const std::string& path);

// Publishes `data` at `path` atomically: "<path>.tmp.<pid>" written, fsynced,
// renamed over `path`, directory fsynced. On failure the temp file is removed
// and `path` is unchanged.
Status AtomicWriteFile(const std::string& path, std::string_view data);
// Renames `from` to `to` and fsyncs the directory of `to`.
Status RenameDurable(const std::string& from, const std::string& to);

// Reads a whole file. NotFound if it does not exist.
Status ReadFile(const std::string& path, std::string* out);
bool FileExists(const std::string& path);
// Size in bytes; NotFound if missing.
Status FileSize(const std::string& path, uint64_t* size);
// mkdir -p.
Status CreateDirs(const std::string& path);
// mkdir -p whose new entries survive a power cut: the parent of each directory
// made is fsynced, from the deepest that existed down.
Status CreateDirsDurable(const std::string& path);
// rm -rf (ignores a missing path).
Status RemoveAll(const std::string& path);

// A read-only or private-writable memory map of a whole file. Private mode maps
// with MAP_PRIVATE and PROT_READ|PROT_WRITE: writes go to private copies of the
// pages (copy-on-write), never to the file. Unmapped when the last reference
// goes. An empty file maps to data() == nullptr, size() == 0.
class MappedFile {
 public:
  static Status Open(const std::string& path, bool private_writable,
                     std::shared_ptr<MappedFile>* out);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  // madvise(MADV_SEQUENTIAL / WILLNEED) hints; errors ignored.
  void AdviseSequential() const;

 private:
  MappedFile() = default;
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace aidb::storage
