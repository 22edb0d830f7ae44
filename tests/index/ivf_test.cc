// IvfIndex: kernels against the scalar reference, recall with the default
// knobs, filters, writes after training, regrowth and background rebuilds.
#include "index/ivf.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "core/distance.h"
#include "index/ivf_kernels.h"
#include "index/vector_file.h"
#include "temp_dir.h"
#include "test_data.h"

namespace aidb::index {
namespace {

std::vector<std::pair<uint32_t, float>> Pairs(const std::vector<Hit>& hits) {
  std::vector<std::pair<uint32_t, float>> v;
  for (const Hit& h : hits) v.emplace_back(h.slot, h.score);
  return v;
}

using testing::Clustered;
using testing::Recall;

IndexConfig Ivf(uint32_t dim, Metric metric) {
  IndexConfig c;
  c.dim = dim;
  c.metric = metric;
  c.kind = IndexKind::kIvf;
  return c;
}

IvfTuning Inline() {
  IvfTuning t;
  t.background = false;
  return t;
}

// Exact top-k through the index itself (params.exact).
std::vector<Hit> Truth(const IvfIndex& idx, const float* q, uint32_t k,
                       const SlotFilter* f = nullptr) {
  SearchParams p;
  p.k = k;
  p.exact = true;
  p.filter = f;
  std::vector<Hit> out;
  EXPECT_TRUE(idx.Search(q, p, &out).ok());
  return out;
}

double MeanRecall(const IvfIndex& idx, const std::vector<float>& queries, size_t nq,
                  uint32_t k = 10, const SlotFilter* f = nullptr) {
  const uint32_t dim = idx.config().dim;
  double sum = 0;
  for (size_t i = 0; i < nq; ++i) {
    const float* q = queries.data() + i * dim;
    SearchParams p;
    p.k = k;
    p.filter = f;
    std::vector<Hit> got;
    EXPECT_TRUE(idx.Search(q, p, &got).ok());
    sum += Recall(got, Truth(idx, q, k, f));
  }
  return sum / static_cast<double>(nq);
}

TEST(IvfKernels, EveryLevelAgreesWithScalar) {
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> byte(0, 255);
  const auto impls = pq4::SupportedScans();
  ASSERT_FALSE(impls.empty());
  EXPECT_STREQ(impls.front().name, "scalar");
  for (size_t npairs : {1, 2, 3, 7, 32, 33, 64, 98}) {
    for (size_t nblocks : {1, 3}) {
      std::vector<uint8_t> codes(nblocks * pq4::BlockBytes(npairs));
      std::vector<uint8_t> lut(npairs * pq4::kPairBytes);
      for (auto& c : codes) c = static_cast<uint8_t>(byte(rng));
      // Entries small enough that 2 * npairs of them fit 16 bits.
      const int cap = std::min<int>(255, 65535 / static_cast<int>(2 * npairs));
      for (auto& t : lut) t = static_cast<uint8_t>(byte(rng) % (cap + 1));
      std::vector<uint16_t> want(nblocks * pq4::kBlock), got(want.size());
      pq4::ScanScalar(codes.data(), nblocks, npairs, lut.data(), want.data());
      // The scalar kernel against a direct decode of the layout.
      for (size_t b = 0; b < nblocks; ++b)
        for (size_t i = 0; i < pq4::kBlock; ++i) {
          uint32_t s = 0;
          const uint8_t* block = codes.data() + b * pq4::BlockBytes(npairs);
          for (size_t m = 0; m < 2 * npairs; ++m)
            s += lut[(m / 2) * pq4::kPairBytes + (m % 2) * 16 + pq4::GetCode(block, i, m)];
          ASSERT_EQ(want[b * pq4::kBlock + i], s) << npairs << " " << b << " " << i;
        }
      for (const auto& impl : impls) {
        std::fill(got.begin(), got.end(), 0);
        impl.scan(codes.data(), nblocks, npairs, lut.data(), got.data());
        EXPECT_EQ(got, want) << impl.name << " npairs=" << npairs << " nblocks=" << nblocks;
      }
      // Several queries at once (1 to 6: full groups and remainders).
      std::vector<std::vector<uint8_t>> luts(6, lut);
      for (size_t q = 1; q < luts.size(); ++q)
        for (auto& t : luts[q]) t = static_cast<uint8_t>(byte(rng) % (cap + 1));
      std::vector<std::vector<uint16_t>> wants(luts.size(), want), gots(luts.size(), want);
      std::vector<const uint8_t*> lut_ptrs;
      std::vector<uint16_t*> out_ptrs;
      for (size_t q = 0; q < luts.size(); ++q) {
        pq4::ScanScalar(codes.data(), nblocks, npairs, luts[q].data(), wants[q].data());
        lut_ptrs.push_back(luts[q].data());
        out_ptrs.push_back(gots[q].data());
      }
      for (const auto& impl : impls) {
        for (size_t nq = 1; nq <= luts.size(); ++nq) {
          for (auto& g : gots) std::fill(g.begin(), g.end(), 0);
          impl.scan_many(codes.data(), nblocks, npairs, lut_ptrs.data(), nq, out_ptrs.data());
          for (size_t q = 0; q < nq; ++q)
            EXPECT_EQ(gots[q], wants[q]) << impl.name << " many nq=" << nq << " q=" << q
                                         << " npairs=" << npairs << " nblocks=" << nblocks;
        }
      }
    }
  }
}

// The blocked products (DotBlock) at every level: close to the scalar
// kernel's; a vector's products the same bits whether it is scored alone
// or at any position of a block (the batch search relies on it: its
// centroid scores must equal the single search's); and the same bits at
// every SIMD level (one multiply-add chain per product).
TEST(IvfKernels, DotBlockAgreesWithScalarAndIgnoresTheBlock) {
  std::mt19937 rng(13);
  std::normal_distribution<float> nd(0.f, 1.f);
  const auto impls = pq4::SupportedScans();
  for (size_t dim : {1, 7, 16, 33, 128, 784}) {
    for (size_t nrows : {1, 15, 16, 17, 47, 48, 49, 100}) {
      const size_t nx = 13;  // a full register block (6 or 8) and a remainder
      std::vector<float> x(nx * dim), rows(nrows * dim);
      for (auto& v : x) v = nd(rng);
      for (auto& v : rows) v = nd(rng);
      std::vector<float> packed(pq4::PackedFloats(nrows, dim), -1.f);
      pq4::PackRows(rows.data(), nrows, dim, packed.data());
      const size_t ld = nrows + 3;  // out stride above nrows: columns past it stay
      std::vector<float> want(nx * ld, 7.f);
      pq4::DotBlockScalar(x.data(), nx, packed.data(), nrows, dim, want.data(), ld);
      std::vector<std::vector<float>> by_level;
      for (const auto& impl : impls) {
        std::vector<float> got(nx * ld, 7.f);
        impl.dot_block(x.data(), nx, packed.data(), nrows, dim, got.data(), ld);
        for (size_t i = 0; i < nx; ++i) {
          for (size_t j = 0; j < nrows; ++j) {
            double exact = 0;
            for (size_t t = 0; t < dim; ++t)
              exact += double{x[i * dim + t]} * double{rows[j * dim + t]};
            const double tol = 1e-5 * dim + 1e-4 * std::fabs(exact);
            ASSERT_NEAR(got[i * ld + j], exact, tol) << impl.name << " dim " << dim << " " << j;
            ASSERT_NEAR(want[i * ld + j], exact, tol) << "scalar dim " << dim << " " << j;
          }
          for (size_t j = nrows; j < ld; ++j) ASSERT_EQ(got[i * ld + j], 7.f) << impl.name;
        }
        // Each vector alone, and the block from an offset (other
        // neighbours in the register block): the same bits.
        for (size_t i = 0; i < nx; ++i) {
          std::vector<float> one(nrows);
          impl.dot_block(&x[i * dim], 1, packed.data(), nrows, dim, one.data(), nrows);
          for (size_t j = 0; j < nrows; ++j)
            ASSERT_EQ(one[j], got[i * ld + j]) << impl.name << " vector " << i << " row " << j;
        }
        std::vector<float> tail((nx - 3) * ld);
        impl.dot_block(&x[3 * dim], nx - 3, packed.data(), nrows, dim, tail.data(), ld);
        for (size_t i = 3; i < nx; ++i)
          for (size_t j = 0; j < nrows; ++j)
            ASSERT_EQ(tail[(i - 3) * ld + j], got[i * ld + j]) << impl.name;
        if (std::string(impl.name) != "scalar") by_level.push_back(got);
      }
      for (size_t l = 1; l < by_level.size(); ++l)
        EXPECT_EQ(by_level[l], by_level[0]) << "SIMD levels differ, dim " << dim;
    }
  }
}

// The re-rank's four-row kernels (when the distance kernels' level has
// them): each row's value the same bits as distance::Dot() / L2Squared(),
// whatever the length (full 64-float steps, 16-float steps, a masked tail)
// and the row's position among the four, so the re-rank's hits do not
// depend on how candidates are grouped.
TEST(IvfKernels, FourRowDistancesEqualTheDistanceKernels) {
  const pq4::Dist4Fn dot4 = pq4::Dot4(), l2sq4 = pq4::L2Squared4();
  if (dot4 == nullptr || l2sq4 == nullptr) GTEST_SKIP() << "no four-row form at this level";
  const distance::Kernel dot = distance::Dot(), l2 = distance::L2Squared();
  std::mt19937 rng(29);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (size_t dim : {1, 5, 15, 16, 17, 48, 63, 64, 65, 100, 128, 130, 768, 784}) {
    std::vector<float> q(dim), rows(6 * dim);
    for (auto& v : q) v = nd(rng);
    for (auto& v : rows) v = nd(rng);
    for (size_t first = 0; first < 3; ++first) {
      const float* r[4] = {&rows[first * dim], &rows[(first + 1) * dim], &rows[(first + 2) * dim],
                           &rows[(first + 3) * dim]};
      float d[4], e[4];
      dot4(q.data(), r, dim, d);
      l2sq4(q.data(), r, dim, e);
      for (size_t k = 0; k < 4; ++k) {
        EXPECT_EQ(d[k], dot(q.data(), r[k], dim)) << "dim " << dim << " row " << first + k;
        EXPECT_EQ(e[k], l2(q.data(), r[k], dim)) << "dim " << dim << " row " << first + k;
      }
    }
  }
}

// NearestBlock at every level: the row it picks is as near as the scalar
// kernel's (the same up to ties and rounding), it is the argmin of the
// level's own DotBlock scores, and of equal rows the lowest index wins.
TEST(IvfKernels, NearestBlockAgreesWithScalar) {
  std::mt19937 rng(17);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (size_t dim : {3, 16, 33, 128, 784}) {
    for (size_t nrows : {1, 16, 17, 50, 245}) {
      const size_t nx = 29;
      std::vector<float> x(nx * dim), rows(nrows * dim), norms(nrows);
      for (auto& v : rows) v = nd(rng);
      // Duplicate rows: ties, to the lowest index.
      if (nrows >= 17)
        std::copy(rows.begin() + 2 * dim, rows.begin() + 3 * dim, rows.begin() + 16 * dim);
      // Vectors near rows (some exactly on the duplicated one).
      for (size_t i = 0; i < nx; ++i)
        for (size_t t = 0; t < dim; ++t)
          x[i * dim + t] = rows[((i * 7) % nrows) * dim + t] + (i % 4 == 0 ? 0.f : 0.3f * nd(rng));
      for (size_t j = 0; j < nrows; ++j) {
        double n2 = 0;
        for (size_t t = 0; t < dim; ++t) n2 += double{rows[j * dim + t]} * rows[j * dim + t];
        norms[j] = static_cast<float>(n2);
      }
      std::vector<float> packed(pq4::PackedFloats(nrows, dim));
      pq4::PackRows(rows.data(), nrows, dim, packed.data());
      auto dist = [&](size_t i, size_t j) {
        double d = 0;
        for (size_t t = 0; t < dim; ++t) {
          const double e = double{x[i * dim + t]} - rows[j * dim + t];
          d += e * e;
        }
        return d;
      };
      std::vector<uint32_t> want(nx);
      pq4::NearestBlockScalar(x.data(), nx, packed.data(), norms.data(), nrows, dim, want.data());
      for (const auto& impl : pq4::SupportedScans()) {
        std::vector<uint32_t> got(nx, 12345);
        impl.nearest_block(x.data(), nx, packed.data(), norms.data(), nrows, dim, got.data());
        std::vector<float> dots(nx * nrows);
        impl.dot_block(x.data(), nx, packed.data(), nrows, dim, dots.data(), nrows);
        for (size_t i = 0; i < nx; ++i) {
          ASSERT_LT(got[i], nrows) << impl.name;
          if (got[i] != want[i]) {
            EXPECT_NEAR(dist(i, got[i]), dist(i, want[i]), 1e-4 * (1.0 + dim))
                << impl.name << " dim " << dim << " vector " << i;
          }
          uint32_t own = 0;
          float bd = std::numeric_limits<float>::infinity();
          for (size_t j = 0; j < nrows; ++j) {
            const float v = norms[j] - 2.f * dots[i * nrows + j];
            if (v < bd) bd = v, own = static_cast<uint32_t>(j);
          }
          EXPECT_EQ(got[i], own) << impl.name << " dim " << dim << " vector " << i;
          if (nrows >= 17) {
            EXPECT_NE(got[i], 16u) << impl.name << ": a duplicate beat row 2";
          }
        }
      }
    }
  }
}

// Encode at every level: the code picked per subspace is as near as the
// scalar kernel's, and of equal codewords the lowest wins.
TEST(IvfKernels, EncodeAgreesWithScalar) {
  std::mt19937 rng(19);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (size_t dim : {5, 16, 64, 130, 784}) {
    for (size_t ds : {1, 2, 3, 4}) {
      const size_t m = (dim + ds - 1) / ds;
      std::vector<float> cbt(m * ds * 16), r(dim);
      for (auto& v : cbt) v = nd(rng);
      for (size_t s = 0; s < m; ++s)  // codeword 9 repeats codeword 4
        for (size_t t = 0; t < ds; ++t) cbt[(s * ds + t) * 16 + 9] = cbt[(s * ds + t) * 16 + 4];
      for (size_t t = 0; t < dim; ++t)  // r on codeword 4 in even subspaces
        r[t] = (t / ds) % 2 == 0 ? cbt[t * 16 + 4] : nd(rng);
      auto sub = [&](size_t s, uint8_t j) {
        double d = 0;
        for (size_t t = s * ds; t < std::min(dim, s * ds + ds); ++t) {
          const double e = double{r[t]} - cbt[t * 16 + j];
          d += e * e;
        }
        return d;
      };
      std::vector<uint8_t> want(m);
      pq4::EncodeScalar(r.data(), dim, ds, cbt.data(), want.data());
      for (const auto& impl : pq4::SupportedScans()) {
        std::vector<uint8_t> got(m, 99);
        impl.encode(r.data(), dim, ds, cbt.data(), got.data());
        for (size_t s = 0; s < m; ++s) {
          ASSERT_LT(got[s], 16) << impl.name;
          EXPECT_NE(got[s], 9) << impl.name << ": a duplicate beat codeword 4";
          if (got[s] != want[s]) {
            EXPECT_NEAR(sub(s, got[s]), sub(s, want[s]), 1e-5) << impl.name << " s " << s;
          }
          if (s % 2 == 0) {
            EXPECT_EQ(got[s], 4) << impl.name << " dim " << dim << " ds " << ds;
          }
        }
      }
    }
  }
}

// The lookup table at every level: the floats as the scalar kernel's (up to
// rounding), each subspace's minimum 0; the 8-bit quantisation exactly the
// scalar's, saturating at 255.
TEST(IvfKernels, LutAndQuantizeAgreeWithScalar) {
  std::mt19937 rng(23);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (size_t dim : {5, 16, 64, 130, 784}) {
    for (size_t ds : {1, 2, 4}) {
      const size_t m = (dim + ds - 1) / ds;
      std::vector<float> cbt(m * ds * 16), q(dim);
      for (auto& v : cbt) v = nd(rng);
      for (auto& v : q) v = nd(rng);
      std::vector<float> want(m * 16), wlo(m), whi(m);
      pq4::LutScalar(q.data(), dim, ds, cbt.data(), 2.f, want.data(), wlo.data(), whi.data());
      float maxspan = 0.f;
      for (size_t s = 0; s < m; ++s) maxspan = std::max(maxspan, whi[s] - wlo[s]);
      const float inv = 300.f / maxspan;  // some entries saturate
      std::vector<uint8_t> wq(m * 16);
      pq4::QuantizeScalar(want.data(), m * 16, inv, wq.data());
      for (const auto& impl : pq4::SupportedScans()) {
        std::vector<float> got(m * 16), lo(m), hi(m);
        impl.lut(q.data(), dim, ds, cbt.data(), 2.f, got.data(), lo.data(), hi.data());
        for (size_t s = 0; s < m; ++s) {
          EXPECT_NEAR(lo[s], wlo[s], 1e-4f * (1.f + std::fabs(wlo[s]))) << impl.name;
          EXPECT_NEAR(hi[s], whi[s], 1e-4f * (1.f + std::fabs(whi[s]))) << impl.name;
          float mn = got[s * 16];
          for (size_t j = 0; j < 16; ++j) {
            EXPECT_NEAR(got[s * 16 + j], want[s * 16 + j], 1e-4f * (1.f + maxspan)) << impl.name;
            mn = std::min(mn, got[s * 16 + j]);
          }
          EXPECT_EQ(mn, 0.f) << impl.name << " subspace " << s;
        }
        std::vector<uint8_t> gq(m * 16, 1);
        impl.quantize(want.data(), m * 16, inv, gq.data());
        EXPECT_EQ(gq, wq) << impl.name << " dim " << dim << " ds " << ds;
      }
      EXPECT_NE(std::count(wq.begin(), wq.end(), 255), 0);
    }
  }
}

TEST(IvfKernels, BelowAgreesWithScalar) {
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> word(0, 65535);
  for (int round = 0; round < 200; ++round) {
    uint16_t vals[pq4::kBlock];
    for (auto& v : vals) v = static_cast<uint16_t>(word(rng) >> (round % 16));
    // Limits at the extremes and at values present (the boundary is <=).
    const uint16_t limit = round % 5 == 0   ? 0
                           : round % 5 == 1 ? 65535
                           : round % 5 == 2 ? vals[round % pq4::kBlock]
                                            : static_cast<uint16_t>(word(rng) >> (round % 16));
    uint32_t want = 0;
    for (uint32_t i = 0; i < pq4::kBlock; ++i) want |= uint32_t{vals[i] <= limit} << i;
    for (const auto& impl : pq4::SupportedScans())
      EXPECT_EQ(impl.below(vals, limit), want) << impl.name << " round " << round;
  }
}

TEST(IvfKernels, SetCodeRoundTrips) {
  std::vector<uint8_t> block(pq4::BlockBytes(3), 0);
  for (size_t i = 0; i < 32; ++i)
    for (size_t m = 0; m < 6; ++m) pq4::SetCode(block.data(), i, m, (i * 7 + m * 3) % 16);
  for (size_t i = 0; i < 32; ++i)
    for (size_t m = 0; m < 6; ++m)
      EXPECT_EQ(pq4::GetCode(block.data(), i, m), (i * 7 + m * 3) % 16);
}

class IvfRecall : public ::testing::TestWithParam<Metric> {};
INSTANTIATE_TEST_SUITE_P(Metrics, IvfRecall,
                         ::testing::Values(Metric::kCosine, Metric::kEuclidean, Metric::kDot));

TEST_P(IvfRecall, DefaultsReachRecall95) {
  const uint32_t dim = 48;
  const size_t n = 20000, nq = 200;
  auto data = Clustered(n + nq, dim, 60, 7, 0.5f);
  IvfIndex idx(Ivf(dim, GetParam()), Inline());
  std::vector<uint32_t> slots(n);
  ASSERT_TRUE(idx.AddBatch(data.data(), n, slots.data(), 2).ok());
  ASSERT_TRUE(idx.Trained());
  EXPECT_EQ(idx.Size(), n);
  EXPECT_GT(idx.Nlist(), 100u);
  EXPECT_EQ(idx.Subspaces(), dim);  // one dimension per subspace up to 64
  std::vector<float> queries(data.begin() + n * dim, data.end());
  EXPECT_GE(MeanRecall(idx, queries, nq), 0.95);
  // Knobs: probing every list and re-ranking generously is near exact.
  SearchParams p;
  p.k = 10;
  p.ef = idx.Nlist();
  p.rerank = 500;
  double sum = 0;
  for (size_t i = 0; i < nq; ++i) {
    std::vector<Hit> got;
    ASSERT_TRUE(idx.Search(queries.data() + i * dim, p, &got).ok());
    sum += Recall(got, Truth(idx, queries.data() + i * dim, 10));
  }
  EXPECT_GE(sum / nq, 0.99);
  // Scores are the exact ones (re-ranked from the floats), best first.
  std::vector<Hit> got, want = Truth(idx, queries.data(), 10);
  ASSERT_TRUE(idx.Search(queries.data(), SearchParams{}, &got).ok());
  ASSERT_FALSE(got.empty());
  for (size_t i = 1; i < got.size(); ++i) EXPECT_GE(got[i - 1].score, got[i].score);
  EXPECT_FLOAT_EQ(got[0].score, want[0].score);
}

// Training on a sample smaller than the data: the sampled vectors keep
// their k-means lists, the others are assigned after it (refine 0), or
// Lloyd passes over every vector refine the centroids first.
TEST(Ivf, SampledTrainingReachesRecall95) {
  const uint32_t dim = 48;
  const size_t n = 20000, nq = 200;
  auto data = Clustered(n + nq, dim, 60, 7, 0.5f);
  std::vector<float> queries(data.begin() + n * dim, data.end());
  for (auto [per_list, refine] : {std::pair{64u, 0u}, std::pair{16u, 2u}}) {
    IvfTuning t = Inline();
    t.sample_per_list = per_list;  // 141 lists: a sample of 9024 or 8192
    t.refine_passes = refine;
    IvfIndex idx(Ivf(dim, Metric::kEuclidean), t);
    std::vector<uint32_t> slots(n);
    ASSERT_TRUE(idx.AddBatch(data.data(), n, slots.data(), 2).ok());
    ASSERT_TRUE(idx.Trained());
    EXPECT_EQ(idx.Nlist(), 141u);
    // Only the vectors outside the sample were searched after training.
    EXPECT_EQ(idx.LastRebuildSearched(), n - std::max<size_t>(8192, 141 * per_list));
    EXPECT_GE(MeanRecall(idx, queries, nq), 0.95) << per_list << " " << refine;
    // Every vector is listed: an exhaustive probe finds each one itself.
    SearchParams p;
    p.k = 1;
    p.ef = idx.Nlist();
    for (size_t i = 0; i < n; i += 97) {
      std::vector<Hit> got;
      ASSERT_TRUE(idx.Search(data.data() + i * dim, p, &got).ok());
      ASSERT_EQ(got.size(), 1u);
      EXPECT_EQ(got[0].slot, slots[i]) << i;
    }
  }
}

TEST(Ivf, UntrainedIsExact) {
  const uint32_t dim = 16;
  auto data = Clustered(500, dim, 5, 3);
  IvfIndex idx(Ivf(dim, Metric::kEuclidean), Inline());
  std::vector<uint32_t> slots(500);
  ASSERT_TRUE(idx.AddBatch(data.data(), 500, slots.data(), 1).ok());
  EXPECT_FALSE(idx.Trained());
  std::vector<Hit> got;
  ASSERT_TRUE(idx.Search(data.data(), SearchParams{}, &got).ok());
  EXPECT_EQ(Pairs(got), Pairs(Truth(idx, data.data(), 10)));
  ASSERT_EQ(got.size(), 10u);
  EXPECT_EQ(got[0].slot, slots[0]);
}

// Every slot with slot % mod == 0 (optionally reporting its count).
class ModFilter final : public SlotFilter {
 public:
  ModFilter(uint32_t mod, int64_t estimate) : mod_(mod), est_(estimate) {}
  bool Allowed(uint32_t slot) const override { return slot % mod_ == 0; }
  int64_t EstimatedMatches() const override { return est_; }

 private:
  uint32_t mod_;
  int64_t est_;
};

// An unfiltered search starts its threshold from the first list's
// rerank-th approximate distance; a filter (here one allowing everything)
// takes the plain path. Both must re-rank the same candidates.
TEST(Ivf, SeededThresholdKeepsTheCandidates) {
  const uint32_t dim = 32;
  const size_t n = 20000, nq = 100;
  for (Metric metric : {Metric::kCosine, Metric::kDot, Metric::kEuclidean}) {
    auto data = Clustered(n + nq, dim, 40, 17, 0.5f);
    IvfIndex idx(Ivf(dim, metric), Inline());
    std::vector<uint32_t> slots(n);
    ASSERT_TRUE(idx.AddBatch(data.data(), n, slots.data(), 2).ok());
    ModFilter all(1, -1);
    size_t same = 0;
    for (size_t i = 0; i < nq; ++i) {
      const float* q = data.data() + (n + i) * dim;
      SearchParams p;
      p.k = 10;
      p.ef = 3;
      p.rerank = 20;  // lists hold ~140 codes: the seed applies
      std::vector<Hit> plain, seeded;
      ASSERT_TRUE(idx.Search(q, p, &seeded).ok());
      p.filter = &all;
      ASSERT_TRUE(idx.Search(q, p, &plain).ok());
      ASSERT_EQ(seeded.size(), 10u);
      bool eq = plain.size() == seeded.size();
      for (size_t j = 0; eq && j < plain.size(); ++j) eq = plain[j].slot == seeded[j].slot;
      same += eq;
    }
    // Candidates are ranked by (approximate distance, slot): equal
    // distances at the reservoir's edge are kept whatever the scan's
    // history, so every query is identical.
    EXPECT_EQ(same, nq) << static_cast<int>(metric);
  }
}

// SearchBatch answers exactly what Search answers, query by query:
// unfiltered; filtered with an unknown match count (probing past nprobe
// until enough match), with a known one (a widened probe, or an exact
// scan); after deletes and updates, with duplicate vectors (equal
// distances, approximate and exact), over more than one group of queries,
// with the floats in RAM and in a vectors file.
class IvfBatch : public ::testing::TestWithParam<std::tuple<Metric, bool>> {};
INSTANTIATE_TEST_SUITE_P(MetricsAndStorage, IvfBatch,
                         ::testing::Combine(::testing::Values(Metric::kCosine, Metric::kEuclidean,
                                                              Metric::kDot),
                                            ::testing::Bool()));

TEST_P(IvfBatch, MatchesSingleQuerySearch) {
  const auto [metric, on_disk] = GetParam();
  const uint32_t dim = 24;
  const size_t n = 12000, nq = 300;  // more than one group of 256
  auto data = Clustered(n + nq, dim, 40, 29, 0.5f);
  IndexConfig cfg = Ivf(dim, metric);
  cfg.vectors_on_disk = on_disk;
  aidbtest::TempDir tmp;
  std::unique_ptr<VectorFile> vf;
  if (on_disk) {
    ASSERT_TRUE(VectorFile::Create(tmp / "vectors.bin", &vf).ok());
  }
  IvfIndex idx(cfg, Inline(), std::move(vf));
  std::vector<uint32_t> slots(n);
  ASSERT_TRUE(idx.AddBatch(data.data(), n, slots.data(), 2).ok());
  ASSERT_TRUE(idx.Trained());
  for (size_t i = 0; i < n; i += 11) idx.Remove(slots[i]);
  for (size_t i = 3; i + 1 < n; i += 13) {  // duplicates of the next point
    if (i % 11 == 0 || (i + 1) % 11 == 0) continue;
    ASSERT_TRUE(idx.Update(slots[i], data.data() + (i + 1) * dim).ok());
  }
  // Half the queries are new points, half are stored (duplicated) ones.
  std::vector<float> queries(data.begin() + n * dim, data.end());
  for (size_t i = 0; i < nq; i += 2)
    std::copy_n(data.data() + (i * 13 + 4) * dim, dim, queries.data() + i * dim);

  ModFilter odd_unknown(2, -1), sparse_unknown(7, -1), third_known(3, n / 3),
      rare_known(50, n / 50);
  struct Case {
    uint32_t k, ef, rerank;
    const SlotFilter* filter;
  };
  const std::vector<Case> cases = {
      {10, 0, 0, nullptr},       {10, 1, 10, nullptr},     {10, 5, 25, nullptr},
      {1, 3, 0, nullptr},        {10, 0, 0, &odd_unknown}, {10, 1, 100, &sparse_unknown},
      {10, 2, 30, &third_known}, {10, 0, 0, &rare_known},  {10, 1000000, 40, nullptr},
  };
  for (size_t c = 0; c < cases.size(); ++c) {
    SCOPED_TRACE("case " + std::to_string(c));
    SearchParams p;
    p.k = cases[c].k;
    p.ef = cases[c].ef;
    p.rerank = cases[c].rerank;
    p.filter = cases[c].filter;
    std::vector<std::vector<Hit>> batch;
    ASSERT_TRUE(idx.SearchBatch(queries.data(), nq, p, &batch).ok());
    ASSERT_EQ(batch.size(), nq);
    size_t differ = 0;
    for (size_t i = 0; i < nq; ++i) {
      std::vector<Hit> one;
      ASSERT_TRUE(idx.Search(queries.data() + i * dim, p, &one).ok());
      ASSERT_EQ(one.size(), p.k);
      differ += Pairs(batch[i]) != Pairs(one);
    }
    EXPECT_EQ(differ, 0u);
  }
  // A batch of one and an empty batch.
  std::vector<std::vector<Hit>> batch;
  ASSERT_TRUE(idx.SearchBatch(queries.data(), 1, SearchParams{}, &batch).ok());
  std::vector<Hit> one;
  ASSERT_TRUE(idx.Search(queries.data(), SearchParams{}, &one).ok());
  ASSERT_EQ(batch.size(), 1u);
  EXPECT_EQ(Pairs(batch[0]), Pairs(one));
  ASSERT_TRUE(idx.SearchBatch(queries.data(), 0, SearchParams{}, &batch).ok());
  EXPECT_TRUE(batch.empty());
}

// The re-rank's four-row kernel is chosen per index by its metric: in one
// process, indexes of each metric searched one after the other, every
// candidate re-ranked (all lists, rerank >= n), give the exact top-k,
// scores included (the first version picked the kernel once per process,
// so an index of another metric searched later re-ranked with the first
// one's).
TEST(Ivf, RerankUsesEachIndexsMetric) {
  // 36 dims: one candidate at a time; 520: four per kernel call (from 512).
  for (const uint32_t dim : {36u, 520u}) {
    const size_t n = 3000, nq = 20;
    auto data = Clustered(n + nq, dim, 20, 41, 0.5f);
    for (size_t i = 0; i < n; i += 3)  // norms differ: the metrics rank differently
      for (uint32_t t = 0; t < dim; ++t) data[i * dim + t] *= 1.f + static_cast<float>(i % 7);
    for (Metric metric : {Metric::kCosine, Metric::kEuclidean, Metric::kDot, Metric::kEuclidean}) {
      SCOPED_TRACE("dim " + std::to_string(dim) + " metric " +
                   std::to_string(static_cast<int>(metric)));
      IvfIndex idx(Ivf(dim, metric), Inline());
      std::vector<uint32_t> slots(n);
      ASSERT_TRUE(idx.AddBatch(data.data(), n, slots.data(), 2).ok());
      ASSERT_TRUE(idx.Trained());
      SearchParams p;
      p.k = 10;
      p.ef = 1000000;
      p.rerank = static_cast<uint32_t>(n);
      for (size_t i = 0; i < nq; ++i) {
        const float* q = data.data() + (n + i) * dim;
        std::vector<Hit> got;
        ASSERT_TRUE(idx.Search(q, p, &got).ok());
        EXPECT_EQ(Pairs(got), Pairs(Truth(idx, q, p.k))) << "query " << i;
      }
    }
  }
}

TEST(Ivf, FilteredSearchKeepsRecall) {
  const uint32_t dim = 32;
  const size_t n = 20000, nq = 100;
  auto data = Clustered(n + nq, dim, 40, 11, 0.5f);
  IvfIndex idx(Ivf(dim, Metric::kCosine), Inline());
  std::vector<uint32_t> slots(n);
  ASSERT_TRUE(idx.AddBatch(data.data(), n, slots.data(), 2).ok());
  std::vector<float> queries(data.begin() + n * dim, data.end());
  for (uint32_t mod : {2u, 20u, 200u}) {
    for (bool known : {false, true}) {
      ModFilter f(mod, known ? static_cast<int64_t>(n / mod) : -1);
      EXPECT_GE(MeanRecall(idx, queries, nq, 10, &f), 0.95) << mod << " " << known;
      std::vector<Hit> got;
      SearchParams p;
      p.filter = &f;
      ASSERT_TRUE(idx.Search(queries.data(), p, &got).ok());
      EXPECT_EQ(got.size(), 10u);
      for (const Hit& h : got) EXPECT_EQ(h.slot % mod, 0u);
    }
  }
  // A filter nothing passes.
  ModFilter none(n * 10, -1);
  std::vector<Hit> got;
  SearchParams p;
  p.filter = &none;
  ASSERT_TRUE(idx.Search(queries.data(), p, &got).ok());
  ASSERT_EQ(got.size(), 1u);  // slot 0 only
  EXPECT_EQ(got[0].slot, 0u);
}

TEST(Ivf, WritesAfterTraining) {
  const uint32_t dim = 32;
  const size_t n = 12000, nq = 100;
  auto data = Clustered(2 * n + nq, dim, 30, 13, 0.5f);
  IvfTuning t = Inline();
  t.regrow = 100;  // no retraining here: writes go into the trained lists
  IvfIndex idx(Ivf(dim, Metric::kEuclidean), t);
  std::vector<uint32_t> slots(2 * n);
  ASSERT_TRUE(idx.AddBatch(data.data(), n, slots.data(), 2).ok());
  ASSERT_TRUE(idx.Trained());
  const uint32_t nlist = idx.Nlist();
  for (size_t i = n; i < 2 * n; ++i) ASSERT_TRUE(idx.Add(data.data() + i * dim, &slots[i]).ok());
  EXPECT_EQ(idx.Nlist(), nlist);
  std::set<uint32_t> removed;
  for (size_t i = 0; i < 2 * n; i += 3) {
    idx.Remove(slots[i]);
    removed.insert(slots[i]);
  }
  // Updates move points between lists.
  for (size_t i = 1; i < 2 * n; i += 7)
    if (i % 3 != 0) {
      ASSERT_TRUE(idx.Update(slots[i], data.data() + ((i * 31) % (2 * n)) * dim).ok());
    }
  EXPECT_EQ(idx.Size(), 2 * n - removed.size());
  std::vector<float> queries(data.begin() + 2 * n * dim, data.end());
  EXPECT_GE(MeanRecall(idx, queries, nq), 0.95);
  for (size_t i = 0; i < nq; ++i) {
    std::vector<Hit> got;
    SearchParams p;
    p.k = 50;
    ASSERT_TRUE(idx.Search(queries.data() + i * dim, p, &got).ok());
    for (const Hit& h : got) EXPECT_EQ(removed.count(h.slot), 0u);
  }
  // Freed slots are reused and searchable at once.
  uint32_t s = 0;
  ASSERT_TRUE(idx.Add(queries.data(), &s).ok());
  EXPECT_EQ(removed.count(s), 1u);
  std::vector<Hit> got;
  ASSERT_TRUE(idx.Search(queries.data(), SearchParams{}, &got).ok());
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got[0].slot, s);
}

TEST(Ivf, RetrainsAsTheCollectionGrows) {
  const uint32_t dim = 24;
  const size_t n = 9000, nq = 100;
  auto data = Clustered(n + nq, dim, 30, 17, 0.5f);
  IvfTuning t = Inline();
  t.min_train = 500;
  IvfIndex idx(Ivf(dim, Metric::kEuclidean), t);
  std::vector<uint32_t> nlists;
  for (size_t i = 0; i < n; ++i) {
    uint32_t s;
    ASSERT_TRUE(idx.Add(data.data() + i * dim, &s).ok());
    if (idx.Nlist() != (nlists.empty() ? 0 : nlists.back())) nlists.push_back(idx.Nlist());
  }
  // Trained at 500 (~22 lists), again at 2000 (~45) and 8000 (~89).
  ASSERT_EQ(nlists.size(), 3u);
  EXPECT_LT(nlists[0], nlists[1]);
  EXPECT_LT(nlists[1], nlists[2]);
  std::vector<float> queries(data.begin() + n * dim, data.end());
  EXPECT_GE(MeanRecall(idx, queries, nq), 0.95);
}

TEST(Ivf, BackgroundRebuildBesideSearchesAndWrites) {
  const uint32_t dim = 32;
  const size_t n = 16000, nq = 100;
  auto data = Clustered(n + nq, dim, 30, 19, 0.5f);
  IvfTuning t;  // background
  t.min_train = 1000;
  IvfIndex idx(Ivf(dim, Metric::kCosine), t);
  std::atomic<bool> done{false};
  std::thread searcher([&] {
    std::vector<Hit> got;
    while (!done.load()) {
      ASSERT_TRUE(idx.Search(data.data() + n * dim, SearchParams{}, &got).ok());
    }
  });
  std::vector<uint32_t> slots(n);
  for (size_t b = 0; b < n; b += 500)
    ASSERT_TRUE(idx.AddBatch(data.data() + b * dim, 500, slots.data() + b, 1).ok());
  for (size_t i = 0; i < n; i += 5) idx.Remove(slots[i]);
  idx.WaitIdle();
  done.store(true);
  searcher.join();
  ASSERT_TRUE(idx.Trained());
  EXPECT_EQ(idx.Size(), n - n / 5);
  std::vector<float> queries(data.begin() + n * dim, data.end());
  EXPECT_GE(MeanRecall(idx, queries, nq), 0.95);
  for (size_t i = 0; i < n; i += 5) {
    std::vector<Hit> got;
    ASSERT_TRUE(idx.Search(data.data() + i * dim, SearchParams{}, &got).ok());
    for (const Hit& h : got) ASSERT_NE(h.slot, slots[i]);
  }
}

}  // namespace
}  // namespace aidb::index
