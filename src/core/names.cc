#include "core/names.h"

#include <cctype>

namespace aidb {
namespace {

template <typename T>
struct Name {
  const char* name;
  T value;
};

constexpr Name<Metric> kMetrics[] = {
    {"cosine", Metric::kCosine},
    {"euclidean", Metric::kEuclidean},
    {"dot", Metric::kDot},
    {"euclid", Metric::kEuclidean},
    {"l2", Metric::kEuclidean},
    {"ip", Metric::kDot},
    {"inner_product", Metric::kDot},
    {"l2sq", Metric::kEuclidean},
    {"euclidean_distance", Metric::kEuclidean},
    {"dot_product", Metric::kDot},
};
constexpr Name<IndexKind> kIndexKinds[] = {
    {"flat", IndexKind::kFlat},
    {"hnsw", IndexKind::kHnsw},
    {"ivf", IndexKind::kIvf},
};
constexpr Name<Durability> kDurabilities[] = {
    {"fsync", Durability::kFsync},
    {"batch", Durability::kBatch},
    {"none", Durability::kNone},
};
constexpr Name<Quantization> kQuantizations[] = {
    {"sq8", Quantization::kSq8},
    {"none", Quantization::kNone},
};

bool EqualsIgnoreCase(std::string_view a, const char* b) {
  size_t i = 0;
  for (; i < a.size() && b[i] != '\0'; ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != b[i]) return false;
  }
  return i == a.size() && b[i] == '\0';
}

// The first entry of a value is its canonical name.
template <typename T, size_t N>
const char* NameOf(const Name<T> (&table)[N], T v) {
  for (const Name<T>& n : table) {
    if (n.value == v) return n.name;
  }
  return "unknown";
}

template <typename T, size_t N>
bool Parse(const Name<T> (&table)[N], std::string_view s, T* out) {
  for (const Name<T>& n : table) {
    if (EqualsIgnoreCase(s, n.name)) {
      *out = n.value;
      return true;
    }
  }
  return false;
}

}  // namespace

const char* MetricName(Metric m) { return NameOf(kMetrics, m); }
const char* IndexKindName(IndexKind k) { return NameOf(kIndexKinds, k); }
const char* DurabilityName(Durability d) { return NameOf(kDurabilities, d); }
const char* QuantizationName(Quantization q) { return NameOf(kQuantizations, q); }

bool ParseMetric(std::string_view name, Metric* out) { return Parse(kMetrics, name, out); }
bool ParseIndexKind(std::string_view name, IndexKind* out) { return Parse(kIndexKinds, name, out); }
bool ParseDurability(std::string_view name, Durability* out) {
  return Parse(kDurabilities, name, out);
}

bool ParseQuantization(std::string_view name, Quantization* out) {
  return Parse(kQuantizations, name, out);
}

const char* MetricChoices() { return "cosine, euclidean or dot"; }
const char* IndexKindChoices() { return "flat, hnsw or ivf"; }
const char* DurabilityChoices() { return "fsync, batch or none"; }
const char* QuantizationChoices() { return "sq8 or none"; }

}  // namespace aidb
