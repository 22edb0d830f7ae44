// Small helpers shared by aidbd and the aidb CLI: key=value logging to stderr,
// RFC 3339 time formatting, and the bridge from the library's log callback.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace aidbd {

enum class LogLevel : int { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kOff = 4 };

// Parses "debug", "info", "warn"/"warning", "error", "off". False if unknown.
bool ParseLogLevel(std::string_view s, LogLevel* out);
const char* LogLevelName(int level);

void SetLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);

// Builds "k1=v1 k2=v2"; values with spaces, quotes, '=' or control characters
// are double-quoted with escapes.
class KV {
 public:
  KV& Add(std::string_view key, std::string_view value);
  KV& Add(std::string_view key, const char* value) { return Add(key, std::string_view(value)); }
  KV& Add(std::string_view key, const std::string& value) {
    return Add(key, std::string_view(value));
  }
  KV& Add(std::string_view key, long long value);
  KV& Add(std::string_view key, unsigned long long value);
  KV& Add(std::string_view key, int value) { return Add(key, static_cast<long long>(value)); }
  KV& Add(std::string_view key, long value) { return Add(key, static_cast<long long>(value)); }
  KV& Add(std::string_view key, unsigned value) {
    return Add(key, static_cast<unsigned long long>(value));
  }
  KV& Add(std::string_view key, unsigned long value) {
    return Add(key, static_cast<unsigned long long>(value));
  }
  KV& Add(std::string_view key, double value);
  const std::string& str() const { return s_; }

 private:
  std::string s_;
};

// Writes one line `ts=.. level=.. target=.. event=.. <fields>` to stderr with a
// single write(2), so concurrent lines from several threads never interleave.
void LogLine(int level, std::string_view target, std::string_view event, std::string_view fields);
inline void Log(LogLevel level, std::string_view event, const KV& kv = KV()) {
  if (LogEnabled(level)) LogLine(static_cast<int>(level), "aidbd", event, kv.str());
}

// Routes the library's log events (aidb_set_log_callback) to LogLine.
void InstallLibraryLogger(LogLevel level);

// Compares an API key a client gave with the configured one in time that
// depends on the configured key's length only (never on where they differ).
bool ConstantTimeEquals(std::string_view given, std::string_view expected);

// "2026-11-25T10:00:00.123Z" (UTC, milliseconds).
std::string FormatRfc3339(int64_t unix_ns);
int64_t NowUnixNs();

// Appends the shortest decimal text that reads back as `f` (std::to_chars).
double FloatForJson(float f);

}  // namespace aidbd
