#include "core/uuid.h"

#include <pthread.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <mutex>
#include <random>

namespace aidb {
namespace {

// Value of each byte as a hex digit, or 0xff.
constexpr std::array<uint8_t, 256> kHexValue = [] {
  std::array<uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    t[c] = c >= '0' && c <= '9'   ? static_cast<uint8_t>(c - '0')
           : c >= 'a' && c <= 'f' ? static_cast<uint8_t>(c - 'a' + 10)
           : c >= 'A' && c <= 'F' ? static_cast<uint8_t>(c - 'A' + 10)
                                  : uint8_t{0xff};
  }
  return t;
}();

// Reads 32 hex digits, with dashes exactly at the 8-4-4-4-12 positions
// (`dashed`, 36 characters) or without (32 characters). Table-driven, one
// validity test for the whole id (a per-character range test was 2% of a
// batch upsert's CPU).
bool ParseHex(std::string_view s, bool dashed, Uuid* out) {
  static constexpr uint8_t kDashedAt[16] = {0,  2,  4,  6,  9,  11, 14, 16,
                                            19, 21, 24, 26, 28, 30, 32, 34};
  if (s.size() != (dashed ? 36u : 32u)) return false;
  if (dashed && (s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-')) return false;
  unsigned bad = 0;
  for (int i = 0; i < 16; ++i) {
    const size_t pos = dashed ? kDashedAt[i] : static_cast<size_t>(2 * i);
    const unsigned hi = kHexValue[static_cast<uint8_t>(s[pos])];
    const unsigned lo = kHexValue[static_cast<uint8_t>(s[pos + 1])];
    bad |= hi | lo;
    out->bytes[i] = static_cast<uint8_t>((hi << 4) | (lo & 15u));
  }
  return (bad & 0xf0u) == 0;
}

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != prefix[i]) return false;
  }
  return true;
}

// The input quoted for an error message: at most 64 bytes, control and
// non-ASCII bytes as \xNN.
std::string QuoteInput(std::string_view text) {
  static const char kHex[] = "0123456789abcdef";
  constexpr size_t kMaxShown = 64;
  std::string q;
  q.reserve(std::min(text.size(), kMaxShown) + 8);
  for (size_t i = 0; i < text.size() && i < kMaxShown; ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c >= 0x7f || c == '\\' || c == '\'') {
      q += "\\x";
      q += kHex[c >> 4];
      q += kHex[c & 15];
    } else {
      q += static_cast<char>(c);
    }
  }
  if (text.size() > kMaxShown) q += "...";
  return q;
}

// Per-thread generators are reseeded in a forked child (which would otherwise
// repeat the parent's sequence).
std::atomic<uint64_t> g_fork_generation{0};

void OnForkChild() { g_fork_generation.fetch_add(1, std::memory_order_relaxed); }

struct ThreadRng {
  std::mt19937_64 engine;
  uint64_t generation = ~uint64_t{0};

  void Seed() {
    static std::once_flag atfork_once;
    std::call_once(atfork_once, [] { pthread_atfork(nullptr, nullptr, &OnForkChild); });
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
    engine.seed(seq);
    generation = g_fork_generation.load(std::memory_order_relaxed);
  }
};

}  // namespace

Status Uuid::Parse(std::string_view text, Uuid* out) {
  Uuid u;
  bool ok = false;
  std::string_view s = text;
  if (s.size() == 36 + 9 && StartsWithNoCase(s, "urn:uuid:")) {
    ok = ParseHex(s.substr(9), /*dashed=*/true, &u);
  } else if (s.size() == 38 && s.front() == '{' && s.back() == '}') {
    ok = ParseHex(s.substr(1, 36), /*dashed=*/true, &u);
  } else if (s.size() == 36) {
    ok = ParseHex(s, /*dashed=*/true, &u);
  } else if (s.size() == 32) {
    ok = ParseHex(s, /*dashed=*/false, &u);
  }
  if (!ok) {
    std::string m = "invalid point id '";
    m += QuoteInput(text);
    m += "': expected a UUID like 8-4-4-4-12 hex digits";
    return Status::InvalidArgument(m);
  }
  *out = u;
  return Status::OK();
}

Uuid Uuid::Random() {
  thread_local ThreadRng rng;
  if (rng.generation != g_fork_generation.load(std::memory_order_relaxed)) rng.Seed();
  Uuid u;
  uint64_t a = rng.engine();
  uint64_t b = rng.engine();
  std::memcpy(u.bytes.data(), &a, 8);
  std::memcpy(u.bytes.data() + 8, &b, 8);
  u.bytes[6] = static_cast<uint8_t>((u.bytes[6] & 0x0f) | 0x40);  // version 4
  u.bytes[8] = static_cast<uint8_t>((u.bytes[8] & 0x3f) | 0x80);  // RFC 4122 variant
  return u;
}

void Uuid::ToChars(char out[37]) const {
  static const char kHex[] = "0123456789abcdef";
  char* p = out;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) *p++ = '-';
    *p++ = kHex[bytes[i] >> 4];
    *p++ = kHex[bytes[i] & 15];
  }
  *p = '\0';
}

std::string Uuid::ToString() const {
  char buf[37];
  ToChars(buf);
  return std::string(buf, 36);
}

bool Uuid::IsNil() const {
  for (uint8_t b : bytes) {
    if (b != 0) return false;
  }
  return true;
}

}  // namespace aidb
