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

// A hash of all 16 bytes of a UUID, good in its low bits too (the id map,
// core/id_map.h, masks it to a power of two): ids may be sequential (UUIDv7:
// the high bytes a millisecond clock, low bytes random; or test ids counting
// up in one byte), so no part of them can be trusted to be uniform alone.
// Each half goes through a full 64-bit finaliser (MurmurHash3's fmix64), so
// every input bit reaches every output bit.
struct UuidHash {
  static uint64_t Fmix64(uint64_t k) noexcept {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ull;
    k ^= k >> 33;
    return k;
  }
  size_t operator()(const Uuid& u) const noexcept {
    uint64_t a, b;
    std::memcpy(&a, u.bytes.data(), 8);
    std::memcpy(&b, u.bytes.data() + 8, 8);
    return static_cast<size_t>(Fmix64(a ^ Fmix64(b + 0x9E3779B97F4A7C15ull)));
  }
};

}  // namespace aidb
