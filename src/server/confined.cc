#include "confined.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

namespace aidbd {

UniqueFd& UniqueFd::operator=(UniqueFd&& o) noexcept {
  if (this != &o) {
    Reset();
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

void UniqueFd::Reset() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

int OpenBeneath(int dirfd, const std::string& rel, int flags, mode_t mode) {
  if (rel.empty() || rel[0] == '/') return -EXDEV;
  struct open_how how;
  std::memset(&how, 0, sizeof how);
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS;
  for (;;) {
    long fd = ::syscall(SYS_openat2, dirfd, rel.c_str(), &how, sizeof how);
    if (fd >= 0) return static_cast<int>(fd);
    // EAGAIN: a rename raced with the lookup (RESOLVE_BENEATH retries).
    if (errno != EINTR && errno != EAGAIN) return -errno;
  }
}

int OpenDirsBeneath(int dirfd, const std::string& rel, bool create, std::string* failed_at) {
  UniqueFd cur(OpenBeneath(dirfd, ".", O_RDONLY | O_DIRECTORY));
  if (!cur.valid()) return cur.get();
  for (size_t i = 0; i < rel.size();) {
    size_t j = rel.find('/', i);
    if (j == std::string::npos) j = rel.size();
    std::string part = rel.substr(i, j - i);
    i = j + 1;
    if (part.empty()) continue;
    if (failed_at != nullptr) *failed_at = part;
    if (part == "." || part == "..") return -EXDEV;
    int fd = OpenBeneath(cur.get(), part, O_RDONLY | O_DIRECTORY);
    if (fd == -ENOENT && create) {
      if (::mkdirat(cur.get(), part.c_str(), 0755) != 0 && errno != EEXIST) return -errno;
      // The new entry is durable once its parent is synced.
      if (::fsync(cur.get()) != 0) return -errno;
      fd = OpenBeneath(cur.get(), part, O_RDONLY | O_DIRECTORY);
    }
    if (fd < 0) return fd;
    cur = UniqueFd(fd);
  }
  if (failed_at != nullptr) failed_at->clear();
  return cur.Release();
}

std::string FdPath(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

std::string ConfinedError(int neg_errno) {
  switch (-neg_errno) {
    case ELOOP: return "a symlink on the way (snapshot paths must not contain symlinks)";
    case EXDEV: return "the path leads out of the data directory";
    case ENOSYS:
      return "this kernel has no openat2(2) (Linux 5.6 or later is needed to confine snapshot "
             "paths safely)";
    default: return std::strerror(-neg_errno);
  }
}

}  // namespace aidbd
