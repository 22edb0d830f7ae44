// Request counters and latency histograms for /metrics (Prometheus text
// format 0.0.4). Updated on the loop thread, rendered on a pool thread: one
// mutex guards them.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

namespace aidbd {

class HttpMetrics {
 public:
  static constexpr std::array<double, 14> kBuckets = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5};

  void Observe(const std::string& route, const std::string& method, int status, double seconds);
  // A connection closed unanswered (Handler::ConnectionRefused).
  void ConnectionRefused(const char* reason);
  // Appends the aidb_http_* families.
  void Render(std::string* out) const;

 private:
  struct Histogram {
    std::array<uint64_t, kBuckets.size()> buckets{};  // non-cumulative
    uint64_t count = 0;
    double sum = 0;
  };
  mutable std::mutex mu_;
  std::map<std::tuple<std::string, std::string, int>, uint64_t> requests_;
  std::map<std::string, Histogram> durations_;
  std::atomic<uint64_t> refused_max_connections_{0};
  std::atomic<uint64_t> refused_per_ip_{0};
  std::atomic<uint64_t> refused_accept_failed_{0};
};

// Escapes a Prometheus label value (backslash, quote, newline).
std::string PromLabel(const std::string& v);
// A sample value: integers plainly, others with enough digits; never NaN/Inf.
std::string PromValue(double v);

}  // namespace aidbd
