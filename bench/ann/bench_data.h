// Helpers shared by the ANN benchmarks: a row-major float matrix, the
// reader of Fashion-MNIST's gzipped idx3 image files (Debian package
// dataset-fashion-mnist) and a parallel loop.
#pragma once

#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace aidb_bench {

struct Matrix {
  uint32_t n = 0, dim = 0;
  std::vector<float> v;
  const float* row(size_t i) const { return v.data() + i * dim; }
};

inline uint32_t BigEndian(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

// Reads an idx3 image file (gzipped) into *out, one row per image, pixels as
// floats 0..255. Prints why and returns false when it cannot.
inline bool LoadIdxImages(const std::string& path, Matrix* out) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) {
    std::fprintf(stderr, "cannot open %s (apt install dataset-fashion-mnist)\n", path.c_str());
    return false;
  }
  unsigned char h[16];
  if (gzread(f, h, 16) != 16 || BigEndian(h) != 0x803) {
    std::fprintf(stderr, "%s: not an idx3 image file\n", path.c_str());
    gzclose(f);
    return false;
  }
  out->n = BigEndian(h + 4);
  out->dim = BigEndian(h + 8) * BigEndian(h + 12);
  std::vector<unsigned char> bytes(static_cast<size_t>(out->n) * out->dim);
  size_t got = 0;
  while (got < bytes.size()) {
    int r = gzread(f, bytes.data() + got,
                   static_cast<unsigned>(std::min<size_t>(bytes.size() - got, 1 << 30)));
    if (r <= 0) break;
    got += static_cast<size_t>(r);
  }
  gzclose(f);
  if (got != bytes.size()) {
    std::fprintf(stderr, "%s: truncated\n", path.c_str());
    return false;
  }
  out->v.assign(bytes.begin(), bytes.end());
  return true;
}

// Runs fn(i) for i in [begin, end) on `threads` threads (the caller's
// included), each taking the next index as it is free.
inline void ParallelFor(size_t begin, size_t end, unsigned threads,
                        const std::function<void(size_t)>& fn) {
  std::atomic<size_t> next{begin};
  auto work = [&] {
    for (size_t i; (i = next.fetch_add(1)) < end;) fn(i);
  };
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
}

}  // namespace aidb_bench
