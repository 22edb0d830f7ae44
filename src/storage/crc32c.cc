#include "storage/crc32c.h"

#include <isa-l/crc.h>

#include <climits>

namespace aidb::crc32c {

// ISA-L's crc32_iscsi neither inverts the initial value nor the result, so the
// standard CRC32C (init ~0, final xor ~0) is ~crc32_iscsi(buf, n, ~crc); this
// form also chains: Extend(Extend(0, a), b) == Value(a || b).
// Its length argument is an int: feed large inputs in chunks.
uint32_t Extend(uint32_t crc, const void* data, size_t n) {
  constexpr size_t kChunk = size_t{1} << 30;
  auto* p = static_cast<unsigned char*>(const_cast<void*>(data));
  uint32_t c = ~crc;
  while (n > 0) {
    size_t step = n < kChunk ? n : kChunk;
    c = crc32_iscsi(p, static_cast<int>(step), c);
    p += step;
    n -= step;
  }
  return ~c;
}

}  // namespace aidb::crc32c
