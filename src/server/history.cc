#include "history.h"

#include <pthread.h>

#include <algorithm>
#include <utility>

namespace aidbd {

uint64_t History::Epoch() const {
  std::lock_guard<std::mutex> lock(mu_);
  return epoch_;
}

void History::Record(const std::string& collection, const Sample& s, uint64_t epoch) {
  std::lock_guard<std::mutex> lock(mu_);
  if (epoch != epoch_) return;
  std::deque<Sample>& ring = rings_[collection];
  ring.push_back(s);
  while (ring.size() > capacity_) ring.pop_front();
}

void History::Forget(const std::string& collection) {
  std::lock_guard<std::mutex> lock(mu_);
  rings_.erase(collection);
  ++epoch_;
}

void History::Retain(const std::vector<std::string>& names) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = rings_.begin(); it != rings_.end();) {
    if (std::binary_search(names.begin(), names.end(), it->first)) {
      ++it;
    } else {
      it = rings_.erase(it);
    }
  }
}

std::vector<History::Sample> History::Get(const std::string& collection) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = rings_.find(collection);
  if (it == rings_.end()) return {};
  return std::vector<Sample>(it->second.begin(), it->second.end());
}

void History::Start(std::function<void()> sample_all) {
  if (thread_.joinable()) return;
  sample_all_ = std::move(sample_all);
  {
    std::lock_guard<std::mutex> lock(run_mu_);
    stop_ = false;
  }
  thread_ = std::thread([this] { Run(); });
}

void History::Stop() {
  {
    std::lock_guard<std::mutex> lock(run_mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void History::Run() {
  pthread_setname_np(pthread_self(), "aidbd-history");
  std::unique_lock<std::mutex> lock(run_mu_);
  while (!stop_) {
    lock.unlock();
    sample_all_();
    lock.lock();
    wake_.wait_for(lock, interval_, [this] { return stop_; });
  }
}

}  // namespace aidbd
