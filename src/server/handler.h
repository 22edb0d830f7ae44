// The seam between aidbd's HTTP layer and the route handlers it serves.
//
// HttpServer (http_server.h) frames requests and writes answers; it knows
// nothing about AIDB. It hands each complete HttpRequest to one Handler and
// writes back the HttpResponse the handler fills. A Handler is a router: it
// matches the method and path (Prepare), and serves the request either on the
// event loop (Prepare answering at once, or TryInline for short work that
// cannot wait) or on a pool thread (Execute). aidbd's REST API over the C API
// is one Handler (Api, api.h); another router, e.g. the cluster mode's, is
// another Handler given to the same HttpServer. It may keep an Api and forward
// the routes it does not own to it (calling its four methods in the same
// order for those requests).
//
// What a router reuses: request.h (parsing a JSON body, typed fields, the
// error answers handlers throw, AIDB status -> HTTP status) and render.h (JSON
// answers: hits, collections, snapshots). The HTTP layer itself is in
// http_server.cc (listener, I/O loops, shutdown), http_conn.cc (the
// connection state machine: reading, dispatch, writing, timeouts) and
// http_parse.cc (http-parser callbacks, request target and query decoding).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace aidbd {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string url;     // the raw request target
  std::string path;    // percent-decoded path, without the query
  std::string query;   // raw query string (after '?'), may be empty
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  bool keep_alive = true;

  // Set by the handler's Prepare() for Execute() and metrics.
  int route = -1;
  std::string route_label;  // e.g. "/collections/:name/search"
  std::vector<std::string> params;

  const std::string* Header(std::string_view lower_name) const;
  // The value of query parameter `key` (percent-decoded), or false.
  bool QueryParam(std::string_view key, std::string* value) const;
};

// A response body produced piece by piece (sent with chunked transfer encoding).
class BodyStream {
 public:
  virtual ~BodyStream() = default;
  // Runs on a pool thread, never concurrently with itself. Appends the next
  // piece to `out`; returns false once the stream has ended (out may still
  // hold a last piece).
  virtual bool Next(std::string* out) = 0;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // When set, `body` is the first piece and the rest comes from the stream.
  std::unique_ptr<BodyStream> stream;
  bool close = false;  // close the connection after this response
};

class Handler {
 public:
  virtual ~Handler() = default;
  // Loop thread. Routes the request (fills req->route*). Returns true if it
  // answered already into *resp (cheap routes, errors); false to have
  // Execute() run on the thread pool.
  virtual bool Prepare(HttpRequest* req, HttpResponse* resp) = 0;
  // Loop thread, after Prepare() returned false: serves the request right
  // there and returns true if that is cheap and cannot wait (for a lock, the
  // disk); returns false to have Execute() run on the thread pool. Saves the
  // two thread hand-offs of the pool for short requests.
  virtual bool TryInline(HttpRequest*, HttpResponse*) { return false; }
  // Pool thread: the blocking work.
  virtual void Execute(HttpRequest* req, HttpResponse* resp) = 0;
  // Loop thread, once the response (all of it) has been written or dropped.
  virtual void Completed(const HttpRequest& req, int status, double seconds) = 0;
  // Any loop's thread: a connection was closed unanswered, `reason`
  // "max_connections", "per_ip" (--max-connections-per-ip) or
  // "accept_failed" (accepting it failed, e.g. out of file descriptors).
  virtual void ConnectionRefused(const char* reason) { (void)reason; }
};

// JSON error body {"error": message}.
std::string ErrorBody(std::string_view message);
const char* StatusReason(int status);

}  // namespace aidbd
