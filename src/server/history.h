// The recent history of every collection's size and WAL, for the console's
// charts (GET /collections/:name/history, see docs/http-api.md): a ring of the
// last `capacity` samples per collection, taken every `interval` by a thread
// of its own and right after each operation that changes the WAL at once
// (snapshot, restore, compact), so a chart shows the WAL drop to 0 as soon as
// the snapshot's answer arrives. Kept in memory only: a restart starts empty.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace aidbd {

class History {
 public:
  struct Sample {
    int64_t unix_ms = 0;
    uint64_t points = 0;
    uint64_t wal_size_bytes = 0;
    uint64_t wal_bytes_since_truncate = 0;
    uint64_t wal_last_lsn = 0;
  };

  History(size_t capacity, std::chrono::milliseconds interval)
      : capacity_(capacity == 0 ? 1 : capacity), interval_(interval) {}
  ~History() { Stop(); }
  History(const History&) = delete;
  History& operator=(const History&) = delete;

  size_t capacity() const { return capacity_; }
  std::chrono::milliseconds interval() const { return interval_; }

  // Counts the calls of Forget(): read it before reading a collection's
  // state and hand it to Record().
  uint64_t Epoch() const;
  // Appends a sample of `collection`, dropping the oldest past capacity;
  // drops the sample instead if Forget() ran since `epoch` was read (it may
  // be of a dropped collection whose name lives on in a new one).
  void Record(const std::string& collection, const Sample& s, uint64_t epoch);
  // Forgets a collection (dropped): a new one of the same name starts empty.
  void Forget(const std::string& collection);
  // Forgets every collection not in `names` (sorted).
  void Retain(const std::vector<std::string>& names);
  // The samples of `collection`, oldest first (empty if none).
  std::vector<Sample> Get(const std::string& collection) const;

  // Starts the sampler thread: it calls `sample_all` at once and then every
  // interval, until Stop(). `sample_all` records through Record().
  void Start(std::function<void()> sample_all);
  // Stops and joins the sampler thread (idempotent).
  void Stop();

 private:
  void Run();

  const size_t capacity_;
  const std::chrono::milliseconds interval_;

  mutable std::mutex mu_;  // guards rings_ and epoch_
  std::map<std::string, std::deque<Sample>> rings_;
  uint64_t epoch_ = 0;

  std::mutex run_mu_;  // guards stop_
  std::condition_variable wake_;
  bool stop_ = false;
  std::function<void()> sample_all_;
  std::thread thread_;
};

}  // namespace aidbd
