// A collection's configuration: validation, and its collection.json form.
#pragma once

#include <string>
#include <string_view>

#include "core/config.h"
#include "core/status.h"

namespace aidb::engine {

using aidb::CollectionConfig;

// [A-Za-z0-9_-]{1,64}
Status ValidateCollectionName(std::string_view name);
Status ValidateConfig(const CollectionConfig& config);

// collection.json <-> config
std::string ConfigToJson(const CollectionConfig& c);
Status ConfigFromJson(const std::string& json, CollectionConfig* c);

}  // namespace aidb::engine
