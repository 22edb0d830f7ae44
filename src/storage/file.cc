#include "storage/file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <vector>

namespace aidb::storage {
namespace {

Status Err(const std::string& op, const std::string& path, int err) {
  return Status::IOErrorFromErrno(op + " " + path, err);
}

// Closes an fd on scope exit.
struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
};

// Opens `path` read-only and returns its size; NotFound if it is missing.
// The caller closes *fd.
Status OpenForRead(const std::string& path, int* fd, uint64_t* size) {
  *fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (*fd < 0) {
    if (errno == ENOENT) return Status::NotFound("file not found: " + path);
    return Err("open", path, errno);
  }
  struct stat st;
  if (::fstat(*fd, &st) != 0) {
    Status s = Err("fstat", path, errno);
    ::close(*fd);
    return s;
  }
  *size = static_cast<uint64_t>(st.st_size);
  return Status::OK();
}

}  // namespace

Status WriteAll(int fd, const void* data, size_t n, const std::string& path_for_errors) {
  auto* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t r = ::write(fd, p, n);
    if (r < 0) {
      if (errno == EINTR) continue;
      return Err("write", path_for_errors, errno);
    }
    if (r == 0) return Status::IOError("write " + path_for_errors + ": wrote 0 bytes");
    p += r;
    n -= static_cast<size_t>(r);
  }
  return Status::OK();
}

Status PWriteAll(int fd, const void* data, size_t n, uint64_t offset,
                 const std::string& path_for_errors) {
  auto* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t r = ::pwrite(fd, p, n, static_cast<off_t>(offset));
    if (r < 0) {
      if (errno == EINTR) continue;
      return Err("pwrite", path_for_errors, errno);
    }
    if (r == 0) return Status::IOError("pwrite " + path_for_errors + ": wrote 0 bytes");
    p += r;
    n -= static_cast<size_t>(r);
    offset += static_cast<uint64_t>(r);
  }
  return Status::OK();
}

Status PReadAll(int fd, void* data, size_t n, uint64_t offset, const std::string& path_for_errors) {
  auto* p = static_cast<char*>(data);
  while (n > 0) {
    ssize_t r = ::pread(fd, p, n, static_cast<off_t>(offset));
    if (r < 0) {
      if (errno == EINTR) continue;
      return Err("pread", path_for_errors, errno);
    }
    if (r == 0) {
      return Status::Corruption("read " + path_for_errors + ": file ends at offset " +
                                std::to_string(offset) + ", " + std::to_string(n) +
                                " more bytes expected");
    }
    p += r;
    n -= static_cast<size_t>(r);
    offset += static_cast<uint64_t>(r);
  }
  return Status::OK();
}

Status Fsync(int fd, const std::string& path_for_errors) {
  if (::fsync(fd) != 0) return Err("fsync", path_for_errors, errno);
  return Status::OK();
}

Status Fdatasync(int fd, const std::string& path_for_errors) {
  if (::fdatasync(fd) != 0) return Err("fdatasync", path_for_errors, errno);
  return Status::OK();
}

Status FsyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Err("open directory", dir, errno);
  FdCloser closer{fd};
  if (::fsync(fd) != 0) return Err("fsync directory", dir, errno);
  return Status::OK();
}

std::string DirName(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

Status AtomicWriteFile(const std::string& path, std::string_view data) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Err("create", tmp, errno);
  Status s = WriteAll(fd, data.data(), data.size(), tmp);
  if (s.ok()) s = Fsync(fd, tmp);
  if (::close(fd) != 0 && s.ok()) s = Err("close", tmp, errno);
  if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0)
    s = Err("rename " + tmp + " to", path, errno);
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  return FsyncDir(DirName(path));
}

Status RenameDurable(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) return Err("rename " + from + " to", to, errno);
  return FsyncDir(DirName(to));
}

Status ReadFile(const std::string& path, std::string* out) {
  int fd;
  uint64_t size;
  AIDB_RETURN_IF_ERROR(OpenForRead(path, &fd, &size));
  FdCloser closer{fd};
  out->clear();
  out->resize(static_cast<size_t>(size));
  size_t got = 0;
  while (true) {
    if (got == out->size()) out->resize(out->size() + 4096);  // file grew, or /proc-like
    ssize_t r = ::read(fd, out->data() + got, out->size() - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      return Err("read", path, errno);
    }
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  out->resize(got);
  return Status::OK();
}

bool FileExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

Status FileSize(const std::string& path, uint64_t* size) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::NotFound("file not found: " + path);
    return Err("stat", path, errno);
  }
  *size = static_cast<uint64_t>(st.st_size);
  return Status::OK();
}

Status CreateDirs(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return Status::IOError("mkdir -p " + path + ": " + ec.message());
  return Status::OK();
}

Status CreateDirsDurable(const std::string& path) {
  std::vector<std::string> made;
  for (std::string p = path; !p.empty() && p != "." && p != "/" && !FileExists(p); p = DirName(p)) {
    made.push_back(p);
  }
  AIDB_RETURN_IF_ERROR(CreateDirs(path));
  for (auto it = made.rbegin(); it != made.rend(); ++it)
    AIDB_RETURN_IF_ERROR(FsyncDir(DirName(*it)));
  return Status::OK();
}

Status RemoveAll(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec && ec != std::errc::no_such_file_or_directory) {
    return Status::IOError("rm -rf " + path + ": " + ec.message());
  }
  return Status::OK();
}

Status MappedFile::Open(const std::string& path, bool private_writable,
                        std::shared_ptr<MappedFile>* out) {
  int fd;
  uint64_t size;
  AIDB_RETURN_IF_ERROR(OpenForRead(path, &fd, &size));
  FdCloser closer{fd};
  std::shared_ptr<MappedFile> m(new MappedFile());
  m->size_ = static_cast<size_t>(size);
  if (m->size_ > 0) {
    int prot = private_writable ? (PROT_READ | PROT_WRITE) : PROT_READ;
    int flags = private_writable ? MAP_PRIVATE : MAP_SHARED;
    void* p = ::mmap(nullptr, m->size_, prot, flags, fd, 0);
    if (p == MAP_FAILED) return Err("mmap", path, errno);
    m->data_ = static_cast<uint8_t*>(p);
  }
  *out = std::move(m);
  return Status::OK();
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(data_, size_);
}

void MappedFile::AdviseSequential() const {
  if (data_ == nullptr) return;
  ::madvise(data_, size_, MADV_SEQUENTIAL);
  ::madvise(data_, size_, MADV_WILLNEED);
}

}  // namespace aidb::storage
