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
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "handler.h"

namespace aidbd {

struct HttpLimits {
  size_t max_body_bytes = 64 << 20;
  size_t max_header_bytes = 16 << 10;    // request line + all headers
  uint64_t request_timeout_ms = 30000;   // first byte of a request to its end; writes
  uint64_t idle_timeout_ms = 60000;      // keep-alive connection without a request
  uint64_t shutdown_timeout_ms = 30000;  // drain deadline after a shutdown signal
  size_t max_connections = 4096;         // more are accepted and closed at once
  size_t max_connections_per_ip = 0;     // from one client address; 0 = no limit
};

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

  // On `loop`'s thread. Serves an already-connected stream socket as if it
  // had been accepted (takes ownership of `fd`): the HTTP fuzzer hands it one
  // end of a loopback connection. `peer` is what the per-address limit
  // counts it under (PeerKey), empty if not counted.
  void Serve(int fd, std::string peer = {});
  // Connections open on every I/O loop.
  size_t connections() const { return connections_.load(); }

  struct Conn;    // one per accepted connection (http_internal.h)
  struct IoLoop;  // one per I/O loop (http_internal.h)

 private:
  friend struct ConnOps;
  void OnConnection(int status);
  void OnLoopDrained();  // on `loop`'s thread
  void StopLoops();      // forces the I/O loops shut and joins their threads
  void Teardown();       // StopLoops(), then closes the handles on `loop`
  void CloseDrainedAsync();
  static void OnHandleClosed(uv_handle_t* h);
  // --max-connections-per-ip: counts `fd`'s peer address in and returns true
  // (its key in *peer), or false when that address has all it may have.
  bool AdmitPeer(int fd, std::string* peer);
  void AcceptFailed(int error);               // on `loop`'s thread
  void ReleasePeer(const std::string& peer);  // any loop's thread

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
  int open_handles_ = 0;  // on `loop`, until their close callbacks ran
  std::function<void()> drained_;
  std::vector<std::unique_ptr<IoLoop>> loops_;
  std::atomic<size_t> loops_drained_{0};
  std::atomic<size_t> connections_{0};  // open on every loop, for max_connections
  uint64_t accept_failures_ = 0;        // since the last accept_failed line
  int64_t accept_logged_ns_ = 0;
  std::mutex peers_mu_;
  std::unordered_map<std::string, size_t> peers_;  // open connections per client address
};

}  // namespace aidbd
