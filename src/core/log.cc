#include "core/log.h"

#include <atomic>
#include <mutex>

namespace aidb::log {
namespace {

struct Sink {
  Callback fn = nullptr;
  void* user = nullptr;
};

std::mutex g_mu;
Sink g_sink;
std::atomic<int> g_min_level{static_cast<int>(Level::kInfo)};
std::atomic<bool> g_has_sink{false};

}  // namespace

void SetCallback(Callback fn, void* user, Level min_level) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_sink.fn = fn;
  g_sink.user = user;
  g_min_level.store(static_cast<int>(min_level));
  g_has_sink.store(fn != nullptr);
}

bool Enabled(Level level) {
  return g_has_sink.load(std::memory_order_relaxed) &&
         static_cast<int>(level) >= g_min_level.load(std::memory_order_relaxed);
}

void Emit(Level level, const char* target, const char* event, const std::string& fields) {
  if (!Enabled(level)) return;
  Sink sink;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    sink = g_sink;
  }
  if (sink.fn) sink.fn(sink.user, static_cast<int>(level), target, event, fields.c_str());
}

Fields& Fields::Add(std::string_view key, std::string_view value) {
  if (!s_.empty()) s_ += ' ';
  s_.append(key);
  s_ += '=';
  bool quote = value.empty() || value.find_first_of(" \"=\t\n") != std::string_view::npos;
  if (!quote) {
    s_.append(value);
    return *this;
  }
  s_ += '"';
  for (char c : value) {
    if (c == '"' || c == '\\') s_ += '\\';
    if (c == '\n') {
      s_ += "\\n";
      continue;
    }
    s_ += c;
  }
  s_ += '"';
  return *this;
}

Fields& Fields::Add(std::string_view key, long long value) {
  return Add(key, std::string_view(std::to_string(value)));
}
Fields& Fields::Add(std::string_view key, unsigned long long value) {
  return Add(key, std::string_view(std::to_string(value)));
}

}  // namespace aidb::log
