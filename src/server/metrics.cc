#include "metrics.h"

#include <charconv>
#include <cmath>
#include <string_view>

namespace aidbd {

std::string PromLabel(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string PromValue(double v) {
  if (!std::isfinite(v)) return "0";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

void HttpMetrics::Observe(const std::string& route, const std::string& method, int status,
                          double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  requests_[{route, method, status}]++;
  Histogram& h = durations_[route];
  size_t i = 0;
  while (i < kBuckets.size() && seconds > kBuckets[i]) ++i;
  if (i < kBuckets.size()) h.buckets[i]++;
  h.count++;
  h.sum += seconds;
}

void HttpMetrics::ConnectionRefused(const char* reason) {
  std::string_view r = reason;
  if (r == "per_ip") refused_per_ip_++;
  else if (r == "accept_failed") refused_accept_failed_++;
  else refused_max_connections_++;
}

void HttpMetrics::Render(std::string* out) const {
  out->append(
      "# HELP aidb_http_connections_refused_total Connections closed unanswered: "
      "reason=max_connections (--max-connections), per_ip (--max-connections-per-ip) or "
      "accept_failed (accepting failed, e.g. out of file descriptors).\n");
  out->append("# TYPE aidb_http_connections_refused_total counter\n");
  out->append("aidb_http_connections_refused_total{reason=\"max_connections\"} ")
      .append(std::to_string(refused_max_connections_.load()))
      .append("\n");
  out->append("aidb_http_connections_refused_total{reason=\"per_ip\"} ")
      .append(std::to_string(refused_per_ip_.load()))
      .append("\n");
  out->append("aidb_http_connections_refused_total{reason=\"accept_failed\"} ")
      .append(std::to_string(refused_accept_failed_.load()))
      .append("\n");
  std::lock_guard<std::mutex> lock(mu_);
  out->append(
      "# HELP aidb_http_requests_total HTTP requests answered, by route, method and status.\n");
  out->append("# TYPE aidb_http_requests_total counter\n");
  for (const auto& [key, n] : requests_) {
    const auto& [route, method, status] = key;
    out->append("aidb_http_requests_total{route=\"").append(PromLabel(route));
    out->append("\",method=\"").append(PromLabel(method));
    out->append("\",status=\"").append(std::to_string(status)).append("\"} ");
    out->append(std::to_string(n)).append("\n");
  }
  out->append(
      "# HELP aidb_http_request_duration_seconds Time from a request's dispatch to the end of its response, by route.\n");
  out->append("# TYPE aidb_http_request_duration_seconds histogram\n");
  for (const auto& [route, h] : durations_) {
    std::string label = PromLabel(route);
    uint64_t cum = 0;
    for (size_t i = 0; i < kBuckets.size(); ++i) {
      cum += h.buckets[i];
      out->append("aidb_http_request_duration_seconds_bucket{route=\"").append(label);
      out->append("\",le=\"").append(PromValue(kBuckets[i])).append("\"} ");
      out->append(std::to_string(cum)).append("\n");
    }
    out->append("aidb_http_request_duration_seconds_bucket{route=\"").append(label);
    out->append("\",le=\"+Inf\"} ").append(std::to_string(h.count)).append("\n");
    out->append("aidb_http_request_duration_seconds_sum{route=\"").append(label);
    out->append("\"} ").append(PromValue(h.sum)).append("\n");
    out->append("aidb_http_request_duration_seconds_count{route=\"").append(label);
    out->append("\"} ").append(std::to_string(h.count)).append("\n");
  }
}

}  // namespace aidbd
