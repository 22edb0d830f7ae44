// Every kernel implementation the CPU supports against a double-precision
// reference: dims 1..2048, unaligned pointers, adversarial values, vectors
// that end at the last byte before an unmapped page; the NaN/Inf check.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <iterator>
#include <limits>
#include <random>
#include <vector>

#include "core/distance.h"

namespace aidb::distance {
namespace {

struct Ref {
  double value;
  double magnitude;  // sum of |terms|: scales the allowed rounding error
};

Ref DotRef(const float* a, const float* b, size_t n) {
  double s = 0, m = 0;
  for (size_t i = 0; i < n; ++i) {
    double t = static_cast<double>(a[i]) * b[i];
    s += t;
    m += std::fabs(t);
  }
  return {s, m};
}

Ref L2Ref(const float* a, const float* b, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; ++i) {
    double d = static_cast<double>(a[i]) - b[i];
    s += d * d;
  }
  return {s, s};
}

// Float summation of n terms in any order is within ~n * eps of the sum of
// magnitudes; the differences themselves (a - b) round once more.
void ExpectClose(float got, Ref ref, size_t n, const char* what, const char* impl) {
  double tol = (static_cast<double>(n) + 4) * 1.2e-7 * ref.magnitude + 1e-30;
  ASSERT_LE(std::fabs(got - ref.value), tol)
      << what << " " << impl << " n=" << n << " ref=" << ref.value << " got=" << got;
}

TEST(DistanceKernels, PortableIsAlwaysAvailableAndPickedIsFastest) {
  auto impls = SupportedKernels();
  ASSERT_FALSE(impls.empty());
  EXPECT_STREQ(impls.front().name, "portable");
  EXPECT_STREQ(KernelName(), impls.back().name);
  EXPECT_EQ(Dot(), impls.back().dot);
  EXPECT_EQ(L2Squared(), impls.back().l2_squared);
}

TEST(DistanceKernels, MatchScalarReferenceForEveryDimAndAlignment) {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> abuf(2048 + 16), bbuf(2048 + 16);
  for (auto& x : abuf) x = nd(rng);
  for (auto& x : bbuf) x = nd(rng);
  for (const KernelImpl& k : SupportedKernels()) {
    for (size_t n = 1; n <= 2048; ++n) {
      size_t oa = n % 5, ob = (n / 5) % 3;  // unaligned starts
      const float* a = abuf.data() + oa;
      const float* b = bbuf.data() + ob;
      ExpectClose(k.dot(a, b, n), DotRef(a, b, n), n, "dot", k.name);
      ExpectClose(k.l2_squared(a, b, n), L2Ref(a, b, n), n, "l2", k.name);
      // Bounded L2: exact when the bound is not exceeded, > bound otherwise.
      Ref l2 = L2Ref(a, b, n);
      ExpectClose(k.l2_squared_bounded(a, b, n, INFINITY), l2, n, "l2-bounded", k.name);
      ExpectClose(k.l2_squared_bounded(a, b, n, static_cast<float>(l2.value * 1.01)), l2, n,
                  "l2-bounded-above", k.name);
      float bound = static_cast<float>(l2.value * 0.5);
      ASSERT_GT(k.l2_squared_bounded(a, b, n, bound), bound) << k.name << " n=" << n;
      ASSERT_GT(L2SquaredBoundedScalar(a, b, n, bound), bound) << n;
      // The scalar reference of the library agrees too.
      ExpectClose(DotScalar(a, b, n), DotRef(a, b, n), n, "dot-scalar", k.name);
      ExpectClose(L2SquaredScalar(a, b, n), L2Ref(a, b, n), n, "l2-scalar", k.name);
    }
  }
}

TEST(DistanceKernels, AdversarialValues) {
  std::mt19937 rng(11);
  const size_t dims[] = {1,  3,   7,   15,  16,  17,  31,   33,   63,  64,
                         65, 127, 129, 255, 783, 784, 1023, 2047, 2048};
  for (const KernelImpl& k : SupportedKernels()) {
    for (size_t n : dims) {
      std::vector<float> a(n + 1), b(n + 1);
      for (int pattern = 0; pattern < 7; ++pattern) {
        for (size_t i = 0; i < n; ++i) {
          float sign = (i % 2) ? -1.f : 1.f;
          switch (pattern) {
            case 0:  // huge magnitudes, squares near the top of float range
              a[i] = sign * 1e15f;
              b[i] = -sign * 1e15f;
              break;
            case 1:  // denormal products
              a[i] = 1e-20f * sign;
              b[i] = 1e-25f;
              break;
            case 2:  // catastrophic cancellation
              a[i] = (i < n / 2) ? 1e8f : -1e8f;
              b[i] = 1.f + static_cast<float>(i % 3);
              break;
            case 3:  // identical vectors: L2 must be exactly zero
              a[i] = b[i] =
                  std::ldexp(static_cast<float>(rng() % 1000), static_cast<int>(rng() % 40) - 20);
              break;
            case 4:  // zeros and negative zeros
              a[i] = (i % 3) ? 0.f : -0.f;
              b[i] = sign * 3.f;
              break;
            case 5:  // wildly mixed scales
              a[i] = std::ldexp(1.f, static_cast<int>(rng() % 80) - 40) * sign;
              b[i] = std::ldexp(1.f, static_cast<int>(rng() % 80) - 40);
              break;
            default:  // one large component among small ones
              a[i] = (i == n / 2) ? 1e10f : 1e-3f;
              b[i] = (i == n / 2) ? -1e10f : 1e-3f;
          }
        }
        const float* pa = a.data() + (n + pattern) % 2;  // odd offsets too
        const float* pb = b.data() + (n + pattern) % 2;
        if ((n + pattern) % 2) {  // shift the data with the pointer
          std::memmove(a.data() + 1, a.data(), n * sizeof(float));
          std::memmove(b.data() + 1, b.data(), n * sizeof(float));
        }
        ExpectClose(k.dot(pa, pb, n), DotRef(pa, pb, n), n, "dot", k.name);
        ExpectClose(k.l2_squared(pa, pb, n), L2Ref(pa, pb, n), n, "l2", k.name);
        ExpectClose(k.l2_squared_bounded(pa, pb, n, INFINITY), L2Ref(pa, pb, n), n, "l2b", k.name);
        if (pattern == 3) {
          EXPECT_EQ(k.l2_squared(pa, pb, n), 0.f) << k.name << " n=" << n;
        }
        EXPECT_FALSE(std::isnan(k.dot(pa, pb, n))) << k.name;
      }
    }
  }
}

TEST(DistanceKernels, NeverReadPastTheEnd) {
  // Vectors whose last float is the last 4 bytes before a PROT_NONE page: a
  // kernel reading one float too far crashes.
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  void* mem = mmap(nullptr, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mem, MAP_FAILED);
  char* base = static_cast<char*>(mem);
  ASSERT_EQ(mprotect(base + page, page, PROT_NONE), 0);
  ASSERT_EQ(mprotect(base + 3 * page, page, PROT_NONE), 0);
  float* a_end = reinterpret_cast<float*>(base + page);
  float* b_end = reinterpret_cast<float*>(base + 3 * page);
  for (size_t i = 1; i <= page / sizeof(float); ++i) {
    a_end[-static_cast<ptrdiff_t>(i)] = 0.5f;
    b_end[-static_cast<ptrdiff_t>(i)] = 0.25f;
  }
  for (const KernelImpl& k : SupportedKernels()) {
    for (size_t n = 1; n <= 300; ++n) {
      const float* a = a_end - n;
      const float* b = b_end - n;
      EXPECT_FLOAT_EQ(k.dot(a, b, n), 0.125f * n) << k.name << " n=" << n;
      EXPECT_FLOAT_EQ(k.l2_squared(a, b, n), 0.0625f * n) << k.name << " n=" << n;
      EXPECT_TRUE(k.all_finite(a, n)) << k.name << " n=" << n;
    }
  }
  munmap(mem, 4 * page);
}

// AllFinite: every implementation finds one NaN, +Inf or -Inf wherever it is
// (each of the four streams, the vector tails, the scalar rest), at any
// alignment, and passes every finite value, the extremes included.
TEST(DistanceKernels, AllFiniteFindsEveryNonFiniteComponent) {
  const float finite[] = {0.f,
                          -0.f,
                          1.f,
                          -3.5e7f,
                          std::numeric_limits<float>::max(),
                          -std::numeric_limits<float>::max(),
                          std::numeric_limits<float>::min(),
                          std::numeric_limits<float>::denorm_min(),
                          -1e-42f};
  const float bad[] = {
      std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::quiet_NaN(),
      std::numeric_limits<float>::signaling_NaN(), std::numeric_limits<float>::infinity(),
      -std::numeric_limits<float>::infinity()};
  std::vector<float> buf(1200 + 3);
  auto impls = SupportedKernels();
  EXPECT_EQ(AllFinite(), impls.back().all_finite);
  for (size_t n : {0u, 1u, 3u, 15u, 16u, 17u, 63u, 64u, 65u, 127u, 200u, 784u, 1200u}) {
    for (size_t off = 0; off < 3; ++off) {
      float* v = buf.data() + off;
      for (size_t i = 0; i < n; ++i) v[i] = finite[(i + off) % std::size(finite)];
      for (const KernelImpl& k : impls) {
        ASSERT_TRUE(k.all_finite(v, n)) << k.name << " n=" << n;
        ASSERT_TRUE(AllFiniteScalar(v, n)) << n;
      }
      for (size_t at = 0; at < n; ++at) {
        const float keep = v[at];
        v[at] = bad[at % std::size(bad)];
        for (const KernelImpl& k : impls) {
          ASSERT_FALSE(k.all_finite(v, n)) << k.name << " n=" << n << " at=" << at;
        }
        ASSERT_FALSE(AllFiniteScalar(v, n)) << n << " " << at;
        v[at] = keep;
      }
    }
  }
}

// The batch kernels give what the single ones give, for every count (pairs
// and an odd one out) and dimension.
TEST(DistanceKernels, Sq8BatchKernelsMatchTheSingleOnes) {
  std::mt19937 rng(6);
  std::uniform_int_distribution<int> byte(0, 255), l2q(-255, 510), dotq(-1023, 1023);
  const size_t kCodes = 7, kMaxN = 300;
  std::vector<uint8_t> code(kCodes * (kMaxN + 3));
  std::vector<int16_t> ql(kMaxN + 1), qd(kMaxN + 1);
  for (auto& c : code) c = static_cast<uint8_t>(byte(rng));
  for (auto& x : ql) x = static_cast<int16_t>(l2q(rng));
  for (auto& x : qd) x = static_cast<int16_t>(dotq(rng));
  for (const KernelImpl& k : SupportedKernels()) {
    for (size_t n = 1; n <= kMaxN; n += (n < 70 ? 1 : 13)) {
      const uint8_t* codes[kCodes];
      for (size_t c = 0; c < kCodes; ++c) codes[c] = code.data() + c * (kMaxN + 3) + c % 3;
      for (size_t count = 0; count <= kCodes; ++count) {
        int32_t l2[kCodes] = {}, dot[kCodes] = {};
        k.sq_l2_batch(codes, count, ql.data() + 1, n, l2);
        k.sq_dot_batch(codes, count, qd.data(), n, dot);
        for (size_t c = 0; c < count; ++c) {
          ASSERT_EQ(l2[c], k.sq_l2(codes[c], ql.data() + 1, n)) << k.name << " n=" << n;
          ASSERT_EQ(dot[c], k.sq_dot(codes[c], qd.data(), n)) << k.name << " n=" << n;
        }
      }
    }
  }
}

TEST(DistanceKernels, Sq8KernelsAreExact) {
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> byte(0, 255), l2q(-255, 510), dotq(-1023, 1023);
  std::vector<uint8_t> code(8192 + 8);
  std::vector<int16_t> ql(8192 + 8), qd(8192 + 8);
  for (auto& c : code) c = static_cast<uint8_t>(byte(rng));
  for (auto& x : ql) x = static_cast<int16_t>(l2q(rng));
  for (auto& x : qd) x = static_cast<int16_t>(dotq(rng));
  // Extremes: all 255 against the most negative query values.
  std::vector<uint8_t> hi(8192, 255);
  std::vector<int16_t> lo(8192, -255), lod(8192, -1023);
  for (const KernelImpl& k : SupportedKernels()) {
    for (size_t n = 1; n <= 8192; n += (n < 200 ? 1 : 61)) {
      const uint8_t* c = code.data() + n % 7;  // unaligned
      const int16_t* a = ql.data() + n % 3;
      const int16_t* d = qd.data() + n % 5;
      int64_t l2 = 0, dot = 0;
      for (size_t i = 0; i < n; ++i) {
        int64_t x = static_cast<int64_t>(c[i]) - a[i];
        l2 += x * x;
        dot += static_cast<int64_t>(c[i]) * d[i];
      }
      ASSERT_EQ(k.sq_l2(c, a, n), l2) << k.name << " n=" << n;
      ASSERT_EQ(k.sq_dot(c, d, n), dot) << k.name << " n=" << n;
      ASSERT_EQ(k.sq_l2(hi.data(), lo.data(), n), static_cast<int64_t>(n) * 510 * 510) << k.name;
      ASSERT_EQ(k.sq_dot(hi.data(), lod.data(), n), -static_cast<int64_t>(n) * 255 * 1023)
          << k.name;
    }
  }
}

TEST(DistanceKernels, NormalizeAndScores) {
  std::vector<float> v = {3.f, 4.f};
  Normalize(v.data(), v.size());
  EXPECT_FLOAT_EQ(v[0], 0.6f);
  EXPECT_FLOAT_EQ(v[1], 0.8f);
  std::vector<float> z = {0.f, 0.f, 0.f};
  Normalize(z.data(), z.size());
  EXPECT_EQ(z, std::vector<float>({0.f, 0.f, 0.f}));
  EXPECT_FLOAT_EQ(ScoreFromL2Squared(9.f), -3.f);
  EXPECT_FLOAT_EQ(ScoreFromL2Squared(-1e-9f), 0.f);

  // Every length around the 8-lane blocks: unit norm, same direction.
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-100.f, 100.f);
  for (size_t n : {1u, 7u, 8u, 9u, 15u, 16u, 17u, 784u, 1023u}) {
    std::vector<float> x(n);
    for (float& f : x) f = u(rng);
    std::vector<float> y = x;
    Normalize(y.data(), n);
    double norm = 0, ref = 0;
    for (size_t i = 0; i < n; ++i) {
      norm += static_cast<double>(y[i]) * y[i];
      ref += static_cast<double>(x[i]) * x[i];
    }
    EXPECT_NEAR(norm, 1.0, 1e-5) << n;
    for (size_t i = 0; i < n; ++i) EXPECT_NEAR(y[i], x[i] / std::sqrt(ref), 1e-6) << n << " " << i;
  }
}

}  // namespace
}  // namespace aidb::distance
