#include "core/memory.h"

#include <pthread.h>
#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <new>
#include <thread>
#include <utility>

namespace aidb {
namespace {

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14
#endif

// One thread for the whole process, started on first use and never stopped
// (it owns no resources; the object is leaked so that no static destructor
// races a populate at exit). Jobs are keyed by the buffer's base address,
// which a move does not change.
class Populator {
 public:
  static Populator& Get() {
    static Populator* p = [] {
      auto* q = new Populator;
      // fork(): the child has no populate thread, and mu_ must not be held
      // by one there. Held across the fork, released on both sides; the
      // child starts with no jobs and starts its own thread when it needs
      // one.
      ::pthread_atfork([] { Get().mu_.lock(); }, [] { Get().mu_.unlock(); },
                       [] {
                         Populator& c = Get();
                         // The parent's thread may have been waiting on
                         // them: start the child with fresh ones.
                         new (&c.cv_) std::condition_variable;
                         new (&c.idle_cv_) std::condition_variable;
                         c.jobs_.clear();
                         c.running_ = nullptr;
                         c.started_ = false;
                         c.mu_.unlock();
                       });
      return q;
    }();
    return *p;
  }

  // A hint: when the thread or the queue entry cannot be had, the range is
  // simply not populated ahead.
  void Add(char* base, char* from, size_t len) {
    std::lock_guard lock(mu_);
    if (unsupported_) return;
    try {
      jobs_.push_back({base, from, len});
      if (!started_) {
        std::thread([this] { Run(); }).detach();
        started_ = true;
      }
    } catch (...) {
      jobs_.clear();
      return;
    }
    cv_.notify_one();
  }

  // No job for `base` is queued or running when this returns.
  void Forget(const char* base) {
    std::unique_lock lock(mu_);
    std::erase_if(jobs_, [&](const Job& j) { return j.base == base; });
    if (running_ == base) cancel_ = true;
    idle_cv_.wait(lock, [&] { return running_ != base; });
  }

  void Wait(const char* base) {
    std::unique_lock lock(mu_);
    idle_cv_.wait(lock, [&] {
      return running_ != base &&
             std::none_of(jobs_.begin(), jobs_.end(), [&](const Job& j) { return j.base == base; });
    });
  }

 private:
  struct Job {
    const char* base;
    char* from;
    size_t len;
  };
  static constexpr size_t kStep = size_t{2} << 20;

  void Run() {
    std::unique_lock lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return !jobs_.empty(); });
      Job j = jobs_.front();
      jobs_.pop_front();
      running_ = j.base;
      cancel_ = false;
      for (size_t done = 0; done < j.len && !cancel_;) {
        const size_t n = std::min(kStep, j.len - done);
        lock.unlock();
        const int rc = ::madvise(j.from + done, n, MADV_POPULATE_WRITE);
        const int err = rc == 0 ? 0 : errno;
        lock.lock();
        done += n;
        // EINVAL: the kernel has no MADV_POPULATE_WRITE; give up for good.
        // Anything else (ENOMEM, EFAULT): drop this job.
        if (err == EINVAL) {
          unsupported_ = true;
          jobs_.clear();
        }
        if (err != 0) break;
      }
      running_ = nullptr;
      idle_cv_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;       // a job was queued
  std::condition_variable idle_cv_;  // a job finished
  std::deque<Job> jobs_;
  const char* running_ = nullptr;  // base of the job in progress
  bool cancel_ = false;            // its buffer is going away
  bool started_ = false;
  bool unsupported_ = false;
};

}  // namespace

HugeBuffer::HugeBuffer(size_t bytes) : size_(bytes) {
  if (bytes == 0) return;
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  if (bytes >= (2u << 20)) ::madvise(p, bytes, MADV_HUGEPAGE);
  data_ = p;
}

HugeBuffer::~HugeBuffer() {
  if (data_) {
    Populator::Get().Forget(static_cast<const char*>(data_));
    ::munmap(data_, size_);
  }
}

HugeBuffer& HugeBuffer::operator=(HugeBuffer&& o) noexcept {
  if (this != &o) {
    if (data_) {
      Populator::Get().Forget(static_cast<const char*>(data_));
      ::munmap(data_, size_);
    }
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

void HugeBuffer::PopulateAsync(size_t offset, size_t len) {
  if (data_ == nullptr || offset >= size_) return;
  len = std::min(len, size_ - offset);
  // madvise wants a page-aligned start; widen down to the page.
  const size_t page = 4096;
  const size_t start = offset / page * page;
  len += offset - start;
  if (len == 0) return;
  char* base = static_cast<char*>(data_);
  Populator::Get().Add(base, base + start, len);
}

void HugeBuffer::WaitPopulated() const {
  if (data_ != nullptr) Populator::Get().Wait(static_cast<const char*>(data_));
}

}  // namespace aidb
