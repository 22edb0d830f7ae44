// Opening files confined below a directory, with no window between checking a
// path and opening it: openat2(2) with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS
// resolves every component relative to a directory descriptor and refuses a
// symlink anywhere on the way (the last component included), so a symlink
// swapped in after a check cannot lead out. What is opened is then handed to
// the library by FdPath(), which reaches exactly that file or directory
// whatever happens to its name meanwhile.
#pragma once

#include <sys/types.h>

#include <string>

namespace aidbd {

// An owned file descriptor (closed on destruction), or -1.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { Reset(); }
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  UniqueFd& operator=(UniqueFd&& o) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void Reset();
  // Gives up ownership: returns the descriptor, leaves -1.
  int Release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_ = -1;
};

// openat2(dirfd, rel, flags | O_CLOEXEC, mode) with RESOLVE_BENEATH |
// RESOLVE_NO_SYMLINKS. `rel` is relative ("a/b/c"). Returns the descriptor,
// or -errno: ELOOP for a symlink on the way, EXDEV for a path leading out,
// ENOSYS where the kernel (or a seccomp filter) has no openat2 (Linux < 5.6).
int OpenBeneath(int dirfd, const std::string& rel, int flags, mode_t mode = 0);

// Opens the folder `rel` (components separated by '/', none "." or "..")
// below `dirfd` as O_DIRECTORY, one component at a time, each by
// OpenBeneath(). With `create`, missing folders are made (mode 0755) and
// each new one's parent fsynced, so they survive a power cut. Returns the
// descriptor or -errno; *failed_at receives the component that failed.
int OpenDirsBeneath(int dirfd, const std::string& rel, bool create, std::string* failed_at);

// "/proc/self/fd/N": a path by which a path-based API reaches the file or
// folder open as `fd` itself (for a folder, FdPath(fd) + "/name" names an
// entry of it), not whatever its name leads to now.
std::string FdPath(int fd);

// Human-readable message for a -errno of the functions above.
std::string ConfinedError(int neg_errno);

}  // namespace aidbd
