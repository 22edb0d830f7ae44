// The one table of the names of metrics, index kinds and durability modes:
// the C API (aidb_metric_name, aidb_metric_from_string, ...), collection.json
// and log events all use these.
#pragma once

#include <string_view>

#include "core/config.h"
#include "core/distance.h"

namespace aidb {

// Canonical names: "cosine", "euclidean", "dot"; "flat", "hnsw", "ivf"; "fsync",
// "batch", "none". "unknown" for a value outside the enum.
const char* MetricName(Metric m);
const char* IndexKindName(IndexKind k);
const char* DurabilityName(Durability d);
// "sq8", "none".
const char* QuantizationName(Quantization q);

// Case-insensitive; metrics also accept the aliases "euclid", "l2", "l2sq" and
// "euclidean_distance" (euclidean), "ip", "inner_product" and "dot_product" (dot). False for an
// unknown name
// (*out untouched).
bool ParseMetric(std::string_view name, Metric* out);
bool ParseIndexKind(std::string_view name, IndexKind* out);
bool ParseDurability(std::string_view name, Durability* out);
bool ParseQuantization(std::string_view name, Quantization* out);

// The accepted canonical names, for error messages: "cosine, euclidean or dot".
const char* MetricChoices();
const char* IndexKindChoices();
const char* DurabilityChoices();
const char* QuantizationChoices();

}  // namespace aidb
