// Helpers for the C API tests.
#pragma once

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "../common/temp_dir.h"
#include "aidb.h"

namespace aidbtest {

inline uint64_t FileSize(const std::string& path) {
  struct stat sb;
  if (stat(path.c_str(), &sb) != 0) return UINT64_MAX;
  return static_cast<uint64_t>(sb.st_size);
}

inline std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void WriteAllBytes(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

// Deterministic id for point i.
inline std::string Id(uint32_t i) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "00000000-0000-4000-8000-%012x", i);
  return buf;
}

inline std::vector<float> Vec(uint32_t i, uint32_t dim) {
  std::vector<float> v(dim);
  for (uint32_t d = 0; d < dim; ++d) v[d] = static_cast<float>((i * 31 + d * 7) % 101) / 10.f - 5.f;
  return v;
}

// Status + message, freeing the message.
struct Result {
  int code = AIDB_OK;
  std::string message;
};

class Err {
 public:
  ~Err() { aidb_free(msg_); }
  char** ptr() {
    aidb_free(msg_);
    msg_ = nullptr;
    return &msg_;
  }
  std::string str() const { return msg_ ? msg_ : ""; }

 private:
  char* msg_ = nullptr;
};

#define AIDB_ASSERT_OK(call)                                        \
  do {                                                              \
    char* _m = nullptr;                                             \
    int _rc = (call);                                               \
    std::string _s = _m ? _m : "";                                  \
    aidb_free(_m);                                                  \
    ASSERT_EQ(_rc, AIDB_OK) << aidb_status_name(_rc) << ": " << _s; \
  } while (0)

inline aidb_collection* OpenCollection(const std::string& name, uint32_t dim,
                                       const std::string& wal_path, int metric = AIDB_METRIC_COSINE,
                                       int durability = AIDB_DURABILITY_FSYNC,
                                       uint64_t mmap_threshold = 1024) {
  aidb_collection_options o;
  aidb_collection_options_init(&o);
  o.name = name.c_str();
  o.dim = dim;
  o.metric = metric;
  o.wal_path = wal_path.empty() ? nullptr : wal_path.c_str();
  o.durability = durability;
  o.wal_mmap_threshold = mmap_threshold;
  aidb_collection* c = nullptr;
  char* err = nullptr;
  int rc = aidb_collection_open(&o, &c, &err);
  if (rc != AIDB_OK) {
    ADD_FAILURE() << "open failed: " << (err ? err : "");
    aidb_free(err);
    return nullptr;
  }
  return c;
}

inline int Upsert(aidb_collection* c, uint32_t i, uint32_t dim, const char* payload = nullptr) {
  std::vector<float> v = Vec(i, dim);
  std::string id = Id(i);
  return aidb_collection_upsert(c, id.c_str(), v.data(), dim, payload, (size_t)-1, nullptr);
}

inline uint64_t Count(aidb_collection* c) {
  uint64_t n = 0;
  EXPECT_EQ(aidb_collection_count(c, &n, nullptr), AIDB_OK);
  return n;
}

inline bool Has(aidb_collection* c, uint32_t i) {
  return aidb_collection_get(c, Id(i).c_str(), nullptr, 0, nullptr, nullptr) == AIDB_OK;
}

inline aidb_wal_info WalInfo(aidb_collection* c) {
  aidb_wal_info w;
  aidb_wal_info_init(&w);
  EXPECT_EQ(aidb_wal_stats(c, &w, nullptr), AIDB_OK);
  return w;
}

}  // namespace aidbtest
