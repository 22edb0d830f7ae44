// A point's payload as the collection keeps it: one owning pointer (8 bytes)
// per slot, null when the point has no payload, else a heap block holding a
// 4-byte length and the bytes (canonical JSON, no terminator). A slot
// without a payload costs its 8 bytes only (a std::string costs 32), and one
// with a payload one allocation of 4 + size bytes.
//
// It reads like the std::string it replaces (empty, size, data, and a
// conversion to std::string_view), so readers need not change.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <string_view>

namespace aidb {

class PayloadSlot {
 public:
  PayloadSlot() = default;
  // A copy of `bytes`; none if it is empty.
  explicit PayloadSlot(std::string_view bytes) { Assign(bytes); }
  PayloadSlot(PayloadSlot&& o) noexcept : p_(o.p_) { o.p_ = nullptr; }
  PayloadSlot& operator=(PayloadSlot&& o) noexcept {
    if (this != &o) {
      Free();
      p_ = o.p_;
      o.p_ = nullptr;
    }
    return *this;
  }
  PayloadSlot(const PayloadSlot&) = delete;
  PayloadSlot& operator=(const PayloadSlot&) = delete;
  ~PayloadSlot() { Free(); }

  void Assign(std::string_view bytes) {
    Free();
    if (bytes.empty()) return;
    const uint32_t n = static_cast<uint32_t>(bytes.size());
    p_ = static_cast<char*>(::operator new(sizeof(n) + n));
    std::memcpy(p_, &n, sizeof(n));
    std::memcpy(p_ + sizeof(n), bytes.data(), n);
  }
  void reset() { Free(); }

  bool empty() const { return p_ == nullptr; }
  size_t size() const {
    if (p_ == nullptr) return 0;
    uint32_t n;
    std::memcpy(&n, p_, sizeof(n));
    return n;
  }
  const char* data() const { return p_ == nullptr ? "" : p_ + sizeof(uint32_t); }
  std::string_view view() const { return {data(), size()}; }
  operator std::string_view() const { return view(); }

 private:
  void Free() {
    ::operator delete(p_);
    p_ = nullptr;
  }

  char* p_ = nullptr;
};

static_assert(sizeof(PayloadSlot) == sizeof(void*));

}  // namespace aidb
