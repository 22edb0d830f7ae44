// Library logging: events go to a process-wide callback the host sets through
// aidb_set_log_callback(). Without a callback nothing is printed.
#pragma once

#include <string>
#include <string_view>

namespace aidb::log {

enum class Level : int { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kOff = 4 };

using Callback = void (*)(void* user, int level, const char* target, const char* event,
                          const char* fields);

void SetCallback(Callback fn, void* user, Level min_level);
bool Enabled(Level level);
// `fields` is a line of key=value pairs; build it with Fields.
void Emit(Level level, const char* target, const char* event, const std::string& fields);

// Builds "k1=v1 k2=v2"; values containing spaces, quotes or '=' are quoted.
class Fields {
 public:
  Fields& Add(std::string_view key, std::string_view value);
  Fields& Add(std::string_view key, long long value);
  Fields& Add(std::string_view key, unsigned long long value);
  Fields& Add(std::string_view key, unsigned long value) {
    return Add(key, static_cast<unsigned long long>(value));
  }
  Fields& Add(std::string_view key, int value) { return Add(key, static_cast<long long>(value)); }
  Fields& Add(std::string_view key, long value) { return Add(key, static_cast<long long>(value)); }
  Fields& Add(std::string_view key, unsigned value) {
    return Add(key, static_cast<unsigned long long>(value));
  }
  const std::string& str() const { return s_; }

 private:
  std::string s_;
};

inline constexpr const char* kStorageTarget = "aidb::storage";

}  // namespace aidb::log
