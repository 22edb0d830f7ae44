#include "records.h"

#include <sys/resource.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <system_error>

namespace aidb_bench {
namespace {

// Reads a gzip'd IDX file (big-endian header) whole; empty on failure.
std::vector<uint8_t> ReadGz(const std::string& path) {
  std::vector<uint8_t> out;
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) return out;
  uint8_t buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof(buf))) > 0) out.insert(out.end(), buf, buf + n);
  gzclose(f);
  return out;
}

uint32_t Be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

std::string UuidText(const std::array<uint8_t, 16>& b) {
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s.push_back('-');
    s.push_back(hex[b[i] >> 4]);
    s.push_back(hex[b[i] & 15]);
  }
  return s;
}

}  // namespace

double ProcessCpuSeconds() {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

double NowSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void RemoveTree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

bool MakeDirs(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  return !ec;
}

std::string FreshWorkDir(const std::string& parent, const std::string& name) {
  const std::string path = parent + "/" + name;
  RemoveTree(path);
  return MakeDirs(path) ? path : std::string();
}

uint64_t TreeBytes(const std::string& path) {
  uint64_t total = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(path, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec)) total += it->file_size(ec);
  }
  return total;
}

Records MakeRecords(size_t count, const std::string& fmnist_dir, uint64_t seed) {
  Records r;
  r.count = count;
  r.vectors.resize(count * kDim);
  r.ids.resize(count);
  r.id_bytes.resize(count);
  r.payloads.resize(count);
  std::mt19937_64 rng(seed);

  std::vector<uint8_t> images = ReadGz(fmnist_dir + "/train-images-idx3-ubyte.gz");
  std::vector<uint8_t> labels = ReadGz(fmnist_dir + "/train-labels-idx1-ubyte.gz");
  size_t n_img = 0;
  if (images.size() >= 16 && Be32(images.data()) == 0x803 && labels.size() >= 8 &&
      Be32(images.data() + 8) * Be32(images.data() + 12) == kDim) {
    n_img = std::min<size_t>(Be32(images.data() + 4), (images.size() - 16) / kDim);
    n_img = std::min<size_t>(n_img, labels.size() - 8);
  }
  r.source = n_img > 0 ? "fashion-mnist" : "random";
  static const char* kNames[10] = {"tshirt", "trouser", "pullover", "dress", "coat",
                                   "sandal", "shirt",   "sneaker",  "bag",   "boot"};
  std::uniform_real_distribution<float> uni(0.0f, 255.0f);
  for (size_t i = 0; i < count; ++i) {
    float* v = r.vectors.data() + i * kDim;
    int label;
    if (n_img > 0) {
      const uint8_t* px = images.data() + 16 + (i % n_img) * kDim;
      for (size_t d = 0; d < kDim; ++d) v[d] = px[d];
      label = labels[8 + i % n_img] % 10;
    } else {
      for (size_t d = 0; d < kDim; ++d) v[d] = uni(rng);
      label = static_cast<int>(rng() % 10);
    }
    std::array<uint8_t, 16> b;
    for (int k = 0; k < 16; k += 8) {
      uint64_t x = rng();
      for (int j = 0; j < 8; ++j) b[k + j] = static_cast<uint8_t>(x >> (8 * j));
    }
    b[6] = (b[6] & 0x0f) | 0x40;  // version 4
    b[8] = (b[8] & 0x3f) | 0x80;  // variant
    r.id_bytes[i] = b;
    r.ids[i] = UuidText(b);
    char buf[96];
    std::snprintf(buf, sizeof(buf), "{\"label\":%d,\"name\":\"%s\",\"row\":%zu}", label,
                  kNames[label], i);
    r.payloads[i] = buf;
    r.logical_bytes += r.record_bytes(i);
  }
  return r;
}

}  // namespace aidb_bench
