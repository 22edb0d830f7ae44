#include "core/uuid.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <set>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

namespace aidb {
namespace {

constexpr const char* kCanonical = "0123abcd-4567-89ef-a0b1-c2d3e4f5a6b7";

Uuid MustParse(std::string_view s) {
  Uuid u;
  Status st = Uuid::Parse(s, &u);
  EXPECT_TRUE(st.ok()) << s << ": " << st.ToString();
  return u;
}

TEST(UuidTest, ParsesEveryAcceptedForm) {
  const char* forms[] = {
      "0123abcd-4567-89ef-a0b1-c2d3e4f5a6b7",
      "0123ABCD-4567-89EF-A0B1-C2D3E4F5A6B7",
      "0123aBcD-4567-89eF-a0B1-c2D3e4F5a6B7",
      "{0123abcd-4567-89ef-a0b1-c2d3e4f5a6b7}",
      "{0123ABCD-4567-89EF-A0B1-C2D3E4F5A6B7}",
      "urn:uuid:0123abcd-4567-89ef-a0b1-c2d3e4f5a6b7",
      "URN:UUID:0123ABCD-4567-89EF-A0B1-C2D3E4F5A6B7",
      "0123abcd456789efa0b1c2d3e4f5a6b7",
      "0123ABCD456789EFA0B1C2D3E4F5A6B7",
  };
  for (const char* f : forms) {
    Uuid u = MustParse(f);
    EXPECT_EQ(u.ToString(), kCanonical) << f;
  }
  Uuid u = MustParse(kCanonical);
  EXPECT_EQ(u.bytes[0], 0x01);
  EXPECT_EQ(u.bytes[1], 0x23);
  EXPECT_EQ(u.bytes[15], 0xb7);
}

// Every byte value at every position of both layouts: accepted exactly when
// it is a hex digit where a digit belongs (with that digit's value) or a
// dash where a dash belongs (the table-driven parser's whole domain).
TEST(UuidTest, EveryByteAtEveryPositionIsClassifiedExactly) {
  for (std::string base :
       {std::string(kCanonical), std::string("0123abcd456789efa0b1c2d3e4f5a6b7")}) {
    const bool dashed = base.size() == 36;
    for (size_t pos = 0; pos < base.size(); ++pos) {
      const bool dash_here = dashed && (pos == 8 || pos == 13 || pos == 18 || pos == 23);
      for (int c = 0; c < 256; ++c) {
        std::string s = base;
        s[pos] = static_cast<char>(c);
        const bool hex = std::isxdigit(c) != 0;
        const bool want_ok = dash_here ? c == '-' : hex;
        Uuid u;
        Status st = Uuid::Parse(s, &u);
        ASSERT_EQ(st.ok(), want_ok) << "position " << pos << ", byte " << c;
        if (!want_ok || dash_here) continue;
        // The digit's value lands in its nibble.
        Uuid ref = MustParse(base);
        size_t digit = pos - (dashed ? (pos > 8) + (pos > 13) + (pos > 18) + (pos > 23) : 0);
        const int v = std::stoi(std::string(1, static_cast<char>(c)), nullptr, 16);
        uint8_t& b = ref.bytes[digit / 2];
        b = static_cast<uint8_t>(digit % 2 == 0 ? (b & 0x0f) | (v << 4) : (b & 0xf0) | v);
        ASSERT_EQ(u, ref) << "position " << pos << ", byte " << c;
      }
    }
  }
}

TEST(UuidTest, RejectsMalformedIdsNamingTheInput) {
  const std::string rejected[] = {
      "",
      "../x",
      "x",
      "0123abcd-4567-89ef-a0b1-c2d3e4f5a6b",    // 35
      "0123abcd-4567-89ef-a0b1-c2d3e4f5a6b7a",  // 37
      "0123abcd-4567-89ef-a0b1-c2d3e4f5a6bg",   // non-hex
      "0123abcd_4567_89ef_a0b1_c2d3e4f5a6b7",   // wrong separators
      "0123abc-d4567-89ef-a0b1-c2d3e4f5a6b7",   // dash misplaced
      "0123abcd-456789ef-a0b1-c2d3-e4f5a6b7",   // dashes in the wrong groups
      "0123abcd-4567-89ef-a0b1c2d3e4f5a6b7-",   // 36 chars, wrong layout
      " 0123abcd-4567-89ef-a0b1-c2d3e4f5a6b7",  // leading space
      "0123abcd-4567-89ef-a0b1-c2d3e4f5a6b7 ",  // trailing space
      "{0123abcd-4567-89ef-a0b1-c2d3e4f5a6b7",  // unbalanced brace
      "0123abcd-4567-89ef-a0b1-c2d3e4f5a6b7}",
      "(0123abcd-4567-89ef-a0b1-c2d3e4f5a6b7)",  // wrong brackets
      "{0123abcd456789efa0b1c2d3e4f5a6b7}",      // braces only around the dashed form
      "urn:uuid:0123abcd456789efa0b1c2d3e4f5a6b7",
      "urn:uid:0123abcd-4567-89ef-a0b1-c2d3e4f5a6b7",
      "uuid:0123abcd-4567-89ef-a0b1-c2d3e4f5a6b7",
      "0123abcd456789efa0b1c2d3e4f5a6b",    // 31 hex
      "0123abcd456789efa0b1c2d3e4f5a6b7a",  // 33 hex
      "0x23abcd456789efa0b1c2d3e4f5a6b7",
      "+123abcd-4567-89ef-a0b1-c2d3e4f5a6b7",
      "12345",
      std::string("0123abcd-4567-89ef-a0b1-c2d3e4f5a6b\0", 36),
  };
  for (const std::string& s : rejected) {
    Uuid u;
    Status st = Uuid::Parse(s, &u);
    ASSERT_FALSE(st.ok()) << "accepted '" << s << "'";
    EXPECT_TRUE(st.IsInvalidArgument()) << s;
    EXPECT_NE(st.message().find("expected a UUID like 8-4-4-4-12 hex digits"), std::string::npos)
        << st.message();
  }
  Uuid u;
  Status st = Uuid::Parse("../x", &u);
  EXPECT_EQ(st.message(), "invalid point id '../x': expected a UUID like 8-4-4-4-12 hex digits");
}

TEST(UuidTest, ErrorMessageQuotesOddInputSafely) {
  Uuid u;
  Status st = Uuid::Parse(std::string("a\nb'\x01"), &u);
  ASSERT_TRUE(st.IsInvalidArgument());
  EXPECT_EQ(st.message(),
            "invalid point id 'a\\x0ab\\x27\\x01': expected a UUID like 8-4-4-4-12 hex digits");
  std::string long_input(1000, 'z');
  st = Uuid::Parse(long_input, &u);
  ASSERT_TRUE(st.IsInvalidArgument());
  EXPECT_LT(st.message().size(), 200u);
  EXPECT_NE(st.message().find("zzz...'"), std::string::npos) << st.message();
}

TEST(UuidTest, FailedParseLeavesOutputUntouched) {
  Uuid u = MustParse(kCanonical);
  EXPECT_FALSE(Uuid::Parse("nope", &u).ok());
  EXPECT_EQ(u.ToString(), kCanonical);
}

TEST(UuidTest, ToCharsIsNulTerminatedCanonical) {
  Uuid u = MustParse("FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF");
  char buf[37];
  std::memset(buf, 'X', sizeof(buf));
  u.ToChars(buf);
  EXPECT_EQ(buf[36], '\0');
  EXPECT_STREQ(buf, "ffffffff-ffff-ffff-ffff-ffffffffffff");
  EXPECT_EQ(u.ToString().size(), 36u);
}

TEST(UuidTest, NilAndComparison) {
  Uuid nil;
  EXPECT_TRUE(nil.IsNil());
  EXPECT_EQ(nil.ToString(), "00000000-0000-0000-0000-000000000000");
  Uuid a = MustParse("00000000-0000-0000-0000-000000000001");
  Uuid b = MustParse("00000000-0000-0000-0000-000000000002");
  Uuid c = MustParse("01000000-0000-0000-0000-000000000000");
  EXPECT_FALSE(a.IsNil());
  EXPECT_TRUE(a < b);
  EXPECT_TRUE(b < c);  // byte order, i.e. the order of the canonical text
  EXPECT_TRUE(a != b);
  EXPECT_TRUE(a == MustParse("00000000000000000000000000000001"));
  EXPECT_NE(UuidHash()(a), UuidHash()(b));
}

TEST(UuidTest, RandomIsVersion4VariantRfc4122AndRoundTrips) {
  for (int i = 0; i < 1000; ++i) {
    Uuid u = Uuid::Random();
    EXPECT_EQ(u.bytes[6] >> 4, 4);
    EXPECT_EQ(u.bytes[8] & 0xc0, 0x80);
    std::string s = u.ToString();
    EXPECT_EQ(s[14], '4');
    EXPECT_TRUE(s[19] == '8' || s[19] == '9' || s[19] == 'a' || s[19] == 'b') << s;
    EXPECT_EQ(MustParse(s), u);
  }
}

TEST(UuidTest, RandomIsUniqueAcrossThreads) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 20000;
  std::vector<std::vector<Uuid>> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&got, t] {
      for (int i = 0; i < kPerThread; ++i) got[t].push_back(Uuid::Random());
    });
  }
  for (auto& th : threads) th.join();
  std::unordered_set<Uuid, UuidHash> all;
  for (const auto& v : got) all.insert(v.begin(), v.end());
  EXPECT_EQ(all.size(), size_t{kThreads * kPerThread});
}

TEST(UuidTest, RandomBitsAreNotStuck) {
  // Every one of the 122 random bits takes both values over 200 draws.
  std::array<int, 16> ones{};
  for (int i = 0; i < 200; ++i) {
    Uuid u = Uuid::Random();
    for (int b = 0; b < 16; ++b) ones[b] |= u.bytes[b];
  }
  std::array<int, 16> zeros{};
  for (int i = 0; i < 200; ++i) {
    Uuid u = Uuid::Random();
    for (int b = 0; b < 16; ++b) zeros[b] |= static_cast<uint8_t>(~u.bytes[b]);
  }
  for (int b = 0; b < 16; ++b) {
    int fixed_mask = b == 6 ? 0xf0 : b == 8 ? 0xc0 : 0;
    EXPECT_EQ(ones[b] | fixed_mask, 0xff) << "byte " << b;
    EXPECT_EQ(zeros[b] | fixed_mask, 0xff) << "byte " << b;
  }
}

TEST(UuidTest, ForkedChildDoesNotRepeatParentSequence) {
  (void)Uuid::Random();  // seed this thread's generator in the parent
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    Uuid u = Uuid::Random();
    ssize_t n = write(fds[1], u.bytes.data(), 16);
    _exit(n == 16 ? 0 : 1);
  }
  close(fds[1]);
  Uuid parent = Uuid::Random();
  Uuid child;
  ASSERT_EQ(read(fds[0], child.bytes.data(), 16), 16);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_NE(parent, child);
}

}  // namespace
}  // namespace aidb
