// Node-to-node HTTP over libcurl: parallel calls (curl multi) on the calling
// thread, and file downloads (snapshots for a shard takeover).
#pragma once

#include <string>
#include <vector>

namespace aidbd::cluster {

struct HttpCall {
  std::string method = "GET";
  std::string url;
  std::string body;
  std::vector<std::string> headers;  // "Name: value"
  long timeout_ms = 5000;
  // Results.
  int status = 0;      // 0: no answer (see error)
  std::string answer;  // response body
  std::string error;   // transport error, empty when an answer came
};

void HttpGlobalInit();
// Runs every call in parallel; returns when all have an answer or failed.
void PerformAll(const std::vector<HttpCall*>& calls);
// GETs `url` into `path` (overwritten). False with *error on a transport
// error or a status other than 200 (*status receives it).
bool Download(const std::string& url, const std::vector<std::string>& headers,
              const std::string& path, long timeout_ms, int* status, std::string* error);

}  // namespace aidbd::cluster
