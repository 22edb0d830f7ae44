// The records every storage benchmark writes: Fashion-MNIST-sized points
// (784 float32 + ~40 bytes of JSON payload + a UUID), shared by the ingest and
// recovery harnesses so all systems see the same bytes.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace aidb_bench {

constexpr size_t kDim = 784;

struct Records {
  size_t count = 0;
  std::vector<float> vectors;                     // count * kDim
  std::vector<std::string> ids;                   // canonical textual UUIDs
  std::vector<std::array<uint8_t, 16>> id_bytes;  // the same ids, binary
  std::vector<std::string> payloads;              // JSON objects, ~40 bytes
  std::string source;                             // "fashion-mnist" or "random"
  uint64_t logical_bytes = 0;                     // sum of 16 + 4*kDim + payload

  const float* vector(size_t i) const { return vectors.data() + i * kDim; }
  size_t record_bytes(size_t i) const { return 16 + kDim * sizeof(float) + payloads[i].size(); }
};

// Loads `count` records: the Fashion-MNIST training images (pixels as floats,
// label in the payload) from `fmnist_dir` when present, cycling through the
// 60000 images when count is larger; random floats otherwise. Ids are
// deterministic (seeded), distinct.
Records MakeRecords(size_t count, const std::string& fmnist_dir, uint64_t seed);

double NowSeconds();
// User + system CPU time of the whole process (all threads) so far.
double ProcessCpuSeconds();
double Median(std::vector<double> v);

// Removes a directory tree (the benchmarks' data). Ignores errors.
void RemoveTree(const std::string& path);
// mkdir -p.
bool MakeDirs(const std::string& path);
// The benchmark's own working directory "<parent>/<name>": parent is made
// if missing, a <name> left by an earlier run is removed, and nothing else
// in parent is touched (parent is the user's --dir, which may hold anything).
// Empty when it cannot be created.
std::string FreshWorkDir(const std::string& parent, const std::string& name);
// Sum of file sizes under a directory.
uint64_t TreeBytes(const std::string& path);

}  // namespace aidb_bench
