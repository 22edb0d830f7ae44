// The web console's files (index.html, app.js, app.css, favicon.svg in this
// folder), compiled into aidbd: embed.cmake turns them into byte arrays in
// the build tree (console_assets.cc) at build time.
#pragma once

#include <cstddef>
#include <string_view>

namespace aidbd::console {

struct Asset {
  const char* name;          // file name, e.g. "app.js"
  const char* content_type;  // e.g. "text/javascript; charset=utf-8"
  const unsigned char* data;
  size_t size;
};

extern const Asset kAssets[];
extern const size_t kAssetCount;

// The asset called `name`, or nullptr.
inline const Asset* FindAsset(std::string_view name) {
  for (size_t i = 0; i < kAssetCount; ++i) {
    if (name == kAssets[i].name) return &kAssets[i];
  }
  return nullptr;
}

}  // namespace aidbd::console
