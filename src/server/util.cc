#include "util.h"

#include <aidb.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace aidbd {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};

bool NeedsQuotes(std::string_view v) {
  if (v.empty()) return true;
  for (unsigned char c : v) {
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f) return true;
  }
  return false;
}

void AppendValue(std::string* s, std::string_view v) {
  if (!NeedsQuotes(v)) {
    s->append(v);
    return;
  }
  s->push_back('"');
  for (unsigned char c : v) {
    switch (c) {
      case '"': s->append("\\\""); break;
      case '\\': s->append("\\\\"); break;
      case '\n': s->append("\\n"); break;
      case '\r': s->append("\\r"); break;
      case '\t': s->append("\\t"); break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\x%02x", c);
          s->append(buf);
        } else {
          s->push_back(static_cast<char>(c));
        }
    }
  }
  s->push_back('"');
}

void LibraryLog(void*, int level, const char* target, const char* event, const char* fields) {
  LogLine(level, target ? target : "aidb", event ? event : "event", fields ? fields : "");
}

}  // namespace

bool ParseLogLevel(std::string_view s, LogLevel* out) {
  if (s == "debug" || s == "trace") *out = LogLevel::kDebug;
  else if (s == "info") *out = LogLevel::kInfo;
  else if (s == "warn" || s == "warning") *out = LogLevel::kWarn;
  else if (s == "error") *out = LogLevel::kError;
  else if (s == "off" || s == "none") *out = LogLevel::kOff;
  else return false;
  return true;
}

const char* LogLevelName(int level) {
  switch (level) {
    case 0: return "debug";
    case 1: return "info";
    case 2: return "warn";
    case 3: return "error";
    default: return "off";
  }
}

void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }
bool LogEnabled(LogLevel level) {
  return level != LogLevel::kOff && static_cast<int>(level) >= g_level.load();
}

KV& KV::Add(std::string_view key, std::string_view value) {
  if (!s_.empty()) s_.push_back(' ');
  s_.append(key);
  s_.push_back('=');
  AppendValue(&s_, value);
  return *this;
}
KV& KV::Add(std::string_view key, long long value) { return Add(key, std::to_string(value)); }
KV& KV::Add(std::string_view key, unsigned long long value) {
  return Add(key, std::to_string(value));
}
KV& KV::Add(std::string_view key, double value) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, value);
  return Add(key, std::string_view(buf, r.ptr - buf));
}

void LogLine(int level, std::string_view target, std::string_view event, std::string_view fields) {
  std::string line;
  line.reserve(96 + fields.size());
  line.append("ts=").append(FormatRfc3339(NowUnixNs()));
  line.append(" level=").append(LogLevelName(level));
  line.append(" target=").append(target);
  line.append(" event=").append(event);
  if (!fields.empty()) line.push_back(' '), line.append(fields);
  line.push_back('\n');
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n <= 0) break;  // nothing sensible to do when stderr is gone
    p += n;
    left -= static_cast<size_t>(n);
  }
}

void InstallLibraryLogger(LogLevel level) {
  SetLogLevel(level);
  if (level == LogLevel::kOff) {
    aidb_set_log_callback(nullptr, nullptr, AIDB_LOG_OFF);
  } else {
    aidb_set_log_callback(&LibraryLog, nullptr, static_cast<int>(level));
  }
}

std::string FormatRfc3339(int64_t unix_ns) {
  int64_t secs = unix_ns / 1000000000;
  int64_t rem = unix_ns % 1000000000;
  if (rem < 0) rem += 1000000000, secs -= 1;
  time_t t = static_cast<time_t>(secs);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(rem / 1000000));
  return buf;
}

int64_t NowUnixNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double FloatForJson(float f) {
  // A float widened to double prints as 0.10000000149011612; going through the
  // float's shortest decimal form gives the double that prints as 0.1.
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, f);
  double d = f;
  std::from_chars(buf, r.ptr, d);
  return d;
}

bool ConstantTimeEquals(std::string_view given, std::string_view expected) {
  unsigned char diff = given.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < expected.size(); ++i) {
    unsigned char g = i < given.size() ? static_cast<unsigned char>(given[i]) : 0;
    diff |= static_cast<unsigned char>(g ^ static_cast<unsigned char>(expected[i]));
  }
  return diff == 0;
}

}  // namespace aidbd
