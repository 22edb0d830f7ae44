#include "cluster/http_client.h"

#include <curl/curl.h>
#include <unistd.h>

#include <algorithm>

#include <cstdio>
#include <memory>
#include <mutex>

namespace aidbd::cluster {

namespace {

size_t AppendBody(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

size_t WriteFile(char* data, size_t size, size_t n, void* user) {
  return std::fwrite(data, size, n, static_cast<FILE*>(user)) * size;
}

curl_slist* Headers(const std::vector<std::string>& headers) {
  curl_slist* list = nullptr;
  // No "Expect: 100-continue" round trip for large bodies.
  list = curl_slist_append(list, "Expect:");
  for (const auto& h : headers) list = curl_slist_append(list, h.c_str());
  return list;
}

void Setup(CURL* e, HttpCall* c, curl_slist* hdrs) {
  curl_easy_setopt(e, CURLOPT_URL, c->url.c_str());
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, c->timeout_ms);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, std::min<long>(c->timeout_ms, 2000));
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, AppendBody);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &c->answer);
  if (c->method == "GET") {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, c->method.c_str());
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->body.data());
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(c->body.size()));
  }
}

}  // namespace

void HttpGlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

void PerformAll(const std::vector<HttpCall*>& calls) {
  if (calls.empty()) return;
  CURLM* multi = curl_multi_init();
  std::vector<CURL*> easies;
  std::vector<curl_slist*> lists;
  for (HttpCall* c : calls) {
    c->status = 0;
    c->answer.clear();
    c->error.clear();
    CURL* e = curl_easy_init();
    curl_slist* h = Headers(c->headers);
    Setup(e, c, h);
    curl_easy_setopt(e, CURLOPT_PRIVATE, c);
    curl_multi_add_handle(multi, e);
    easies.push_back(e);
    lists.push_back(h);
  }
  int running = 1;
  while (running > 0) {
    CURLMcode mc = curl_multi_perform(multi, &running);
    if (mc != CURLM_OK) break;
    if (running > 0) curl_multi_poll(multi, nullptr, 0, 100, nullptr);
  }
  int left = 0;
  while (CURLMsg* m = curl_multi_info_read(multi, &left)) {
    if (m->msg != CURLMSG_DONE) continue;
    HttpCall* c = nullptr;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, reinterpret_cast<char**>(&c));
    if (m->data.result == CURLE_OK) {
      long code = 0;
      curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &code);
      c->status = static_cast<int>(code);
    } else {
      c->error = curl_easy_strerror(m->data.result);
    }
  }
  for (size_t i = 0; i < easies.size(); ++i) {
    HttpCall* c = calls[i];
    if (c->status == 0 && c->error.empty()) c->error = "no answer";
    curl_multi_remove_handle(multi, easies[i]);
    curl_easy_cleanup(easies[i]);
    curl_slist_free_all(lists[i]);
  }
  curl_multi_cleanup(multi);
}

bool Download(const std::string& url, const std::vector<std::string>& headers,
              const std::string& path, long timeout_ms, int* status, std::string* error) {
  *status = 0;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) {
    *error = "cannot create " + path;
    return false;
  }
  CURL* e = curl_easy_init();
  curl_slist* h = Headers(headers);
  curl_easy_setopt(e, CURLOPT_URL, url.c_str());
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, WriteFile);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, f);
  CURLcode rc = curl_easy_perform(e);
  long code = 0;
  if (rc == CURLE_OK) curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(e);
  curl_slist_free_all(h);
  bool ok = std::fflush(f) == 0 && ::fsync(fileno(f)) == 0;
  ok = (std::fclose(f) == 0) && ok;
  *status = static_cast<int>(code);
  if (rc != CURLE_OK) {
    *error = curl_easy_strerror(rc);
    return false;
  }
  if (code != 200) {
    *error = "HTTP " + std::to_string(code);
    return false;
  }
  if (!ok) {
    *error = "cannot write " + path;
    return false;
  }
  return true;
}

}  // namespace aidbd::cluster
