// A reader-writer lock that prefers writers. std::shared_mutex on glibc prefers
// readers, so a steady stream of overlapping searches can starve an upsert
// forever; here a waiting writer stops new readers. Not recursive: a thread
// must not take the shared side twice.
#pragma once

#include <pthread.h>

namespace aidb {

class RwLock {
 public:
  RwLock() {
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&lock_, &attr);
    pthread_rwlockattr_destroy(&attr);
  }
  ~RwLock() { pthread_rwlock_destroy(&lock_); }
  RwLock(const RwLock&) = delete;
  RwLock& operator=(const RwLock&) = delete;

  void lock() { pthread_rwlock_wrlock(&lock_); }
  void unlock() { pthread_rwlock_unlock(&lock_); }
  void lock_shared() { pthread_rwlock_rdlock(&lock_); }
  // False, at once, if a writer holds or waits for the lock.
  bool try_lock_shared() { return pthread_rwlock_tryrdlock(&lock_) == 0; }
  void unlock_shared() { pthread_rwlock_unlock(&lock_); }

 private:
  pthread_rwlock_t lock_;
};

// Takes the shared side of a deferred std::shared_lock<RwLock>. With
// `nonblocking` it only tries (false if a writer holds or waits for the lock);
// otherwise it waits and returns true.
template <class SharedLock>
bool LockShared(SharedLock& lock, bool nonblocking) {
  if (nonblocking) return lock.try_lock();
  lock.lock();
  return true;
}

}  // namespace aidb
