// The HTTP/1.1 layer of aidbd: a libuv TCP server with http-parser, keep-alive,
// pipelining, back-pressure, limits and timeouts. It knows nothing about AIDB:
// it hands complete requests to a Handler and writes back what it answers.
//
// Threading: the caller's loop accepts connections and hands each to one of
// the server's I/O loops (threads of their own, the one with the fewest
// connections first; or the caller's loop itself with io_threads = 0). A
// connection lives on its I/O loop: parsing, Prepare(), TryInline(),
// writing and Completed() run there. Handler::Execute() and BodyStream::Next()
// run on libuv's thread pool (uv_queue_work; size it with UV_THREADPOOL_SIZE).
// So a handler's Prepare/TryInline/Completed may run on several loops at once.
#pragma once

#include <uv.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

namespace aidbd {

struct HttpRequest {
  std::string method;   // "GET", "POST", ...
  std::string url;      // the raw request target
  std::string path;     // percent-decoded path, without the query
  std::string query;    // raw query string (after '?'), may be empty
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
};

struct HttpLimits {
  size_t max_body_bytes = 64 << 20;
  size_t max_header_bytes = 16 << 10;    // request line + all headers
  uint64_t request_timeout_ms = 30000;   // first byte of a request to its end; writes
  uint64_t idle_timeout_ms = 60000;      // keep-alive connection without a request
  uint64_t shutdown_timeout_ms = 30000;  // drain deadline after a shutdown signal
  size_t max_connections = 4096;         // more are accepted and closed at once
};

// JSON error body {"error": message}.
std::string ErrorBody(std::string_view message);
const char* StatusReason(int status);

class HttpServer {
 public:
  // `loop` accepts connections and runs the shutdown; with io_threads > 0 the
  // connections are served by that many loops on threads of their own, with 0
  // on `loop` itself.
  HttpServer(uv_loop_t* loop, Handler* handler, HttpLimits limits, unsigned io_threads = 0);
  // Stops and joins the I/O threads (call once drained, or if never served).
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens on host:port (port 0 = ephemeral). Returns a libuv
  // error code (0 on success); *bound receives "host:port" actually bound.
  int Listen(const std::string& host, int port, std::string* bound);

  // On `loop`'s thread. Stops accepting, closes idle connections, lets
  // in-flight requests finish (answering with Connection: close), then calls
  // `drained` (on `loop`'s thread) once no connection and no work remain on
  // any I/O loop. A second call forces every connection shut.
  void Shutdown(std::function<void()> drained);
  bool shutting_down() const { return shutting_down_; }

  struct Conn;    // one per accepted connection (http_server.cc)
  struct IoLoop;  // one per I/O loop (http_server.cc)

 private:
  friend struct ConnOps;
  void OnConnection(int status);
  void OnLoopDrained();  // on `loop`'s thread
  void StopLoops();      // forces the I/O loops shut and joins their threads
  void Teardown();       // StopLoops(), then closes the handles on `loop`
  void CloseDrainedAsync();
  static void OnHandleClosed(uv_handle_t* h);

  uv_loop_t* loop_;
  Handler* handler_;
  HttpLimits limits_;
  uv_tcp_t listener_;
  bool listening_ = false;
  bool shutting_down_ = false;
  bool drained_called_ = false;
  uv_timer_t shutdown_timer_;
  bool shutdown_timer_init_ = false;
  uv_async_t drained_async_;  // an I/O thread's loop drained
  std::mutex drained_mu_;     // orders its sends before its close
  bool drained_async_closed_ = false;
  int open_handles_ = 0;      // on `loop`, until their close callbacks ran
  std::function<void()> drained_;
  std::vector<std::unique_ptr<IoLoop>> loops_;
  std::atomic<size_t> loops_drained_{0};
  std::atomic<size_t> connections_{0};  // open on every loop, for max_connections
};

}  // namespace aidbd
