#include "storage/crc32c.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <string>
#include <vector>

namespace aidb::crc32c {
namespace {

TEST(Crc32c, StandardCheckValue) {
  EXPECT_EQ(Value("123456789", 9), 0xE3069283u);
  EXPECT_EQ(Value("", 0), 0u);
}

// RFC 3720 B.4 test vectors.
TEST(Crc32c, Rfc3720Vectors) {
  std::vector<uint8_t> buf(32, 0);
  EXPECT_EQ(Value(buf.data(), buf.size()), 0x8a9136aau);
  std::fill(buf.begin(), buf.end(), 0xff);
  EXPECT_EQ(Value(buf.data(), buf.size()), 0x62a8ab43u);
  for (int i = 0; i < 32; ++i) buf[i] = static_cast<uint8_t>(i);
  EXPECT_EQ(Value(buf.data(), buf.size()), 0x46dd794eu);
  for (int i = 0; i < 32; ++i) buf[i] = static_cast<uint8_t>(31 - i);
  EXPECT_EQ(Value(buf.data(), buf.size()), 0x113fdb5cu);
}

TEST(Crc32c, ExtendEqualsWhole) {
  std::string s = "hello world, this is a crc32c extend test";
  for (size_t cut = 0; cut <= s.size(); ++cut) {
    EXPECT_EQ(Extend(Value(s.data(), cut), s.data() + cut, s.size() - cut),
              Value(s.data(), s.size()));
  }
}

TEST(Crc32c, MaskRoundTripsAndDiffers) {
  uint32_t crc = Value("foo", 3);
  EXPECT_NE(Mask(crc), crc);
  EXPECT_NE(Mask(Mask(crc)), crc);
  EXPECT_EQ(Unmask(Mask(crc)), crc);
  EXPECT_EQ(Unmask(Unmask(Mask(Mask(crc)))), crc);
}

// Inputs above INT_MAX go through ISA-L in chunks. An untouched anonymous
// mapping reads as zeros without allocating memory.
TEST(Crc32c, LargeInputIsChunked) {
  const size_t n = (size_t{1} << 31) + 77;
  void* p = mmap(nullptr, n, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) GTEST_SKIP() << "cannot map 2 GiB";
  const auto* d = static_cast<const uint8_t*>(p);
  const size_t third = n / 3;
  uint32_t parts = Extend(Extend(Value(d, third), d + third, third), d + 2 * third, n - 2 * third);
  EXPECT_EQ(Value(d, n), parts);
  munmap(p, n);
}

}  // namespace
}  // namespace aidb::crc32c
