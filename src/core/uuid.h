// Point ids: UUIDs, 16 bytes inside, canonical lower-case text outside.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace aidb {

struct Uuid {
  std::array<uint8_t, 16> bytes{};

  // Accepts "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (either case), the same in
  // braces, with a "urn:uuid:" prefix, or 32 hex digits without dashes.
  static Status Parse(std::string_view text, Uuid* out);
  static Uuid Random();  // version 4
  // Canonical form: 36 lower-case characters.
  std::string ToString() const;
  void ToChars(char out[37]) const;  // NUL-terminated
  bool IsNil() const;

  bool operator==(const Uuid& o) const { return bytes == o.bytes; }
  bool operator!=(const Uuid& o) const { return bytes != o.bytes; }
  bool operator<(const Uuid& o) const { return bytes < o.bytes; }
};

struct UuidHash {
  size_t operator()(const Uuid& u) const noexcept {
    uint64_t a, b;
    std::memcpy(&a, u.bytes.data(), 8);
    std::memcpy(&b, u.bytes.data() + 8, 8);
    return static_cast<size_t>(a ^ (b * 0x9E3779B97F4A7C15ull));
  }
};

}  // namespace aidb
