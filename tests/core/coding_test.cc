// core/coding.h: fixed-width little-endian coding of the on-disk formats.
#include "core/coding.h"

#include <gtest/gtest.h>

#include <string>

namespace aidb {
namespace {

TEST(CodingTest, FixedWidthIsLittleEndian) {
  unsigned char b[8];
  EncodeFixed32(b, 0x04030201u);
  EXPECT_EQ(b[0], 1);
  EXPECT_EQ(b[3], 4);
  EXPECT_EQ(DecodeFixed32(b), 0x04030201u);
  EncodeFixed64(b, 0x0807060504030201ull);
  EXPECT_EQ(b[0], 1);
  EXPECT_EQ(b[7], 8);
  EXPECT_EQ(DecodeFixed64(b), 0x0807060504030201ull);
}

TEST(CodingTest, PutAppendsAndDecodesUnaligned) {
  std::string s = "x";
  PutFixed32(&s, 0xdeadbeefu);
  PutFixed64(&s, 0x0123456789abcdefull);
  ASSERT_EQ(s.size(), 13u);
  EXPECT_EQ(DecodeFixed32(s.data() + 1), 0xdeadbeefu);
  EXPECT_EQ(DecodeFixed64(s.data() + 5), 0x0123456789abcdefull);
}

}  // namespace
}  // namespace aidb
