#include "engine/config.h"

#include <nlohmann/json.hpp>

#include "core/defaults.h"
#include "core/names.h"

namespace aidb::engine {

Status ValidateCollectionName(std::string_view name) {
  if (name.empty() || name.size() > 64) {
    return Status::InvalidArgument("invalid collection name '" + std::string(name) +
                                   "': must be 1 to 64 characters of [A-Za-z0-9_-]");
  }
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-';
    if (!ok) {
      return Status::InvalidArgument("invalid collection name '" + std::string(name) +
                                     "': only [A-Za-z0-9_-] are allowed");
    }
  }
  return Status::OK();
}

Status ValidateConfig(const CollectionConfig& c) {
  AIDB_RETURN_IF_ERROR(ValidateCollectionName(c.name));
  if (c.index.dim == 0 || c.index.dim > 65536) {
    return Status::InvalidArgument("invalid dimension " + std::to_string(c.index.dim) +
                                   ": must be 1..65536");
  }
  int m = static_cast<int>(c.index.metric);
  if (m < 0 || m > 2) return Status::InvalidArgument("unknown metric " + std::to_string(m));
  int k = static_cast<int>(c.index.kind);
  if (k < 0 || k > 2) return Status::InvalidArgument("unknown index kind " + std::to_string(k));
  if (c.index.kind == IndexKind::kHnsw) {
    if (c.index.hnsw.m < 2 || c.index.hnsw.m > 256) {
      return Status::InvalidArgument("hnsw m must be 2..256");
    }
    if (c.index.hnsw.ef_construction < 1 || c.index.hnsw.ef_construction > 65536) {
      return Status::InvalidArgument("hnsw ef_construction must be 1..65536");
    }
    if (c.index.hnsw.ef_search > 65536) {
      return Status::InvalidArgument("hnsw ef_search must be 0..65536");
    }
  }
  int q = static_cast<int>(c.index.quantization);
  if (q < 0 || q > 1) {
    return Status::InvalidArgument("unknown quantization " + std::to_string(q) +
                                   ": expected sq8 (0) or none (1)");
  }
  if (c.index.kind == IndexKind::kIvf) {
    if (c.index.ivf.nlist > 65536) return Status::InvalidArgument("ivf nlist must be 0..65536");
    if (c.index.ivf.nprobe > 65536) return Status::InvalidArgument("ivf nprobe must be 0..65536");
    if (c.index.ivf.rerank > 65536) return Status::InvalidArgument("ivf rerank must be 0..65536");
  }
  return Status::OK();
}

std::string ConfigToJson(const CollectionConfig& c) {
  nlohmann::json j;
  j["format"] = 1;
  j["name"] = c.name;
  j["dim"] = c.index.dim;
  j["metric"] = MetricName(c.index.metric);
  j["index"] = IndexKindName(c.index.kind);
  j["hnsw"] = {{"m", c.index.hnsw.m},
               {"ef_construction", c.index.hnsw.ef_construction},
               {"ef_search", c.index.hnsw.ef_search}};
  j["quantization"] = QuantizationName(c.index.quantization);
  j["vectors_on_disk"] = c.index.vectors_on_disk;
  if (c.index.kind == IndexKind::kIvf) {
    j["ivf"] = {{"nlist", c.index.ivf.nlist},
                {"nprobe", c.index.ivf.nprobe},
                {"rerank", c.index.ivf.rerank}};
  }
  return j.dump(2) + "\n";
}

Status ConfigFromJson(const std::string& text, CollectionConfig* c) {
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return Status::Corruption("collection.json is not valid JSON");
  try {
    c->name = j.at("name").get<std::string>();
    c->index.dim = j.at("dim").get<uint32_t>();
    // Canonical names only: the file is ours, written by ConfigToJson.
    std::string metric = j.at("metric").get<std::string>();
    if (!ParseMetric(metric, &c->index.metric) || metric != MetricName(c->index.metric)) {
      return Status::Corruption("collection.json: unknown metric " + metric);
    }
    std::string kind = j.at("index").get<std::string>();
    if (!ParseIndexKind(kind, &c->index.kind) || kind != IndexKindName(c->index.kind)) {
      return Status::Corruption("collection.json: unknown index " + kind);
    }
    if (j.contains("hnsw")) {
      const auto& h = j["hnsw"];
      c->index.hnsw.m = h.value("m", kDefaultHnswM);
      c->index.hnsw.ef_construction = h.value("ef_construction", kDefaultHnswEfConstruction);
      c->index.hnsw.ef_search = h.value("ef_search", kDefaultHnswEfSearch);
    }
    if (j.contains("ivf")) {
      const auto& v = j["ivf"];
      c->index.ivf.nlist = v.value("nlist", kDefaultIvfNlist);
      c->index.ivf.nprobe = v.value("nprobe", kDefaultIvfNprobe);
      c->index.ivf.rerank = v.value("rerank", kDefaultIvfRerank);
    }
    // Absent before 0.3: sq8, vectors in RAM.
    if (j.contains("quantization")) {
      std::string q = j["quantization"].get<std::string>();
      if (!ParseQuantization(q, &c->index.quantization) ||
          q != QuantizationName(c->index.quantization)) {
        return Status::Corruption("collection.json: unknown quantization " + q);
      }
    }
    c->index.vectors_on_disk = j.value("vectors_on_disk", false);
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("collection.json: ") + e.what());
  }
  return ValidateConfig(*c).WithContext("collection.json");
}

}  // namespace aidb::engine
