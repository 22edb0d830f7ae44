// Internals of aidbd's HTTP layer shared by its three files: the connection
// (HttpServer::Conn) and I/O loop (HttpServer::IoLoop) records, and ConnOps,
// the connection state machine's functions (libuv and http-parser callbacks).
//   http_parse.cc   request framing: http-parser callbacks, target decoding
//   http_conn.cc    the connection: timers, reading, dispatch to the Handler,
//                   the thread pool, writing (chunked streams), closing
//   http_server.cc  the listener, the I/O loops and the shutdown
#pragma once

#include <http_parser.h>
#include <uv.h>

#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_set>
#include <vector>

#include "http_server.h"

namespace aidbd {

constexpr size_t kReadBufferSize = 64 * 1024;
constexpr uint64_t kLingerMs = 2000;  // read-and-discard after an error answer
// simdjson reads up to 64 bytes past the end of its input.
constexpr size_t kBodyPadding = 64;

// Percent-decodes `in`; false on a malformed escape or an encoded NUL.
bool PercentDecode(std::string_view in, bool plus_is_space, std::string* out);

enum class TimerMode { kNone, kIdle, kRequest, kWrite, kLinger };

struct HttpServer::Conn {
  HttpServer* server = nullptr;
  IoLoop* io = nullptr;  // the loop that serves it
  std::string peer;      // counted under this client address (PeerKey), or empty
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_write_t wreq;
  uv_shutdown_t sreq;
  // Two for the handles (tcp, timer) until their close callbacks ran, plus
  // one per work item in flight: the Conn is freed when it drops to zero.
  int refs = 0;

  http_parser parser;
  std::string in;  // received bytes not parsed yet, from in_off on
  size_t in_off = 0;
  std::unique_ptr<HttpRequest> cur;    // being parsed
  std::unique_ptr<HttpRequest> ready;  // parsed, not dispatched yet
  std::string field;
  bool in_value = false;
  bool in_trailer = false;  // header fields after a chunked body: counted, not kept
  size_t header_bytes = 0;
  int error_status = 0;  // set by a parser callback that refused the request
  std::string error_message;

  bool busy = false;  // a request is being served (work or write in flight)
  bool reading = false;
  bool closing = false;
  bool eof = false;          // the client half-closed
  bool close_after = false;  // close once the current response is written
  bool linger = false;       // ... after reading and discarding what the client sends
  bool draining = false;     // lingering now
  TimerMode timer_mode = TimerMode::kNone;

  // The exchange in progress.
  std::unique_ptr<HttpRequest> req;
  std::unique_ptr<HttpResponse> resp;
  uint64_t start_ns = 0;
  std::string head;   // status line + headers (+ chunk framing) being written
  std::string chunk;  // next streamed piece
  bool streaming = false;
  bool stream_more = false;
};

struct HttpServer::IoLoop {
  HttpServer* server = nullptr;
  uv_loop_t* loop = nullptr;  // &own_loop, or the server's loop
  uv_loop_t own_loop;
  bool threaded = false;
  std::thread thread;
  uv_async_t wake;  // threaded: runs `tasks`
  std::mutex mu;
  std::vector<std::function<void()>> tasks;  // guarded by mu
  std::atomic<size_t> load{0};               // connections handed to this loop and still open

  // Loop thread only.
  std::unordered_set<Conn*> conns;
  size_t jobs = 0;  // work items queued or running
  bool shutting_down = false;
  bool forced = false;
  bool drained = false;

  // Runs `fn` on this loop's thread (at once if it is the caller's).
  void Run(std::function<void()> fn) {
    if (!threaded) {
      fn();
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mu);
      tasks.push_back(std::move(fn));
    }
    uv_async_send(&wake);
  }

  static void OnWake(uv_async_t* a) {
    auto* io = static_cast<IoLoop*>(a->data);
    std::vector<std::function<void()>> batch;
    {
      std::lock_guard<std::mutex> lock(io->mu);
      batch.swap(io->tasks);
    }
    for (auto& fn : batch) fn();
  }

  void Adopt(int fd, std::string peer);
  void BeginShutdown(bool force);
  void MaybeDrained();
};

struct Job {
  uv_work_t work;
  HttpServer::Conn* conn;
  bool stream_piece;  // BodyStream::Next rather than Handler::Execute
};

struct ConnOps {
  static http_parser_settings settings;

  static HttpServer::Conn* Of(http_parser* p) { return static_cast<HttpServer::Conn*>(p->data); }
  static HttpServer::Conn* Of(uv_handle_t* h) { return static_cast<HttpServer::Conn*>(h->data); }

  // --- parser callbacks -----------------------------------------------------
  static bool AddHeaderBytes(HttpServer::Conn* c, size_t n);
  static int OnMessageBegin(http_parser* p);
  static int OnUrl(http_parser* p, const char* at, size_t len);
  static int OnHeaderField(http_parser* p, const char* at, size_t len);
  static int OnHeaderValue(http_parser* p, const char* at, size_t len);
  static int OnHeadersComplete(http_parser* p);
  static int OnBody(http_parser* p, const char* at, size_t len);
  static int OnChunkHeader(http_parser* p);
  static int OnMessageComplete(http_parser* p);

  // --- timers -----------------------------------------------------------------
  static void ArmTimer(HttpServer::Conn* c, TimerMode mode);
  static void OnTimer(uv_timer_t* t);

  // --- reading ----------------------------------------------------------------
  static void OnAlloc(uv_handle_t* h, size_t, uv_buf_t* buf);
  static void StartReading(HttpServer::Conn* c);
  static void StopReading(HttpServer::Conn* c);
  static void OnRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  // Parses buffered input; dispatches the next complete request, answers a
  // malformed one, or waits for more bytes.
  static void ProcessInput(HttpServer::Conn* c);

  // --- serving ----------------------------------------------------------------
  static void BeginExchange(HttpServer::Conn* c, std::unique_ptr<HttpRequest> req);
  static void Dispatch(HttpServer::Conn* c);
  // Runs a handler call; an exception it lets out becomes a 500 answer in
  // *resp (and counts as answered).
  template <class Fn>
  static bool Guard(HttpResponse* resp, Fn&& fn) {
    try {
      return fn();
    } catch (const std::exception& e) {
      *resp = HttpResponse();
      resp->status = 500;
      resp->body = ErrorBody(std::string("internal error: ") + e.what());
      return true;
    }
  }
  static void QueueJob(HttpServer::Conn* c, bool stream_piece);
  static void OnWork(uv_work_t* w);
  static void OnAfterWork(uv_work_t* w, int status);
  static void AppendChunk(std::string* out, std::string_view data);
  static void StartResponse(HttpServer::Conn* c);
  static void WriteStreamPiece(HttpServer::Conn* c);
  static void Write(HttpServer::Conn* c, uv_buf_t* bufs, unsigned nbufs);
  static void OnWrite(uv_write_t* w, int status);
  static void FinishMetrics(HttpServer::Conn* c);
  // Answers an error the HTTP layer found itself, then closes the connection.
  static void AnswerError(HttpServer::Conn* c, int status, const std::string& msg, bool linger);
  // After an error answer the client may still be sending (e.g. an oversized
  // body): closing at once would reset the connection and could destroy the
  // answer before the client reads it. Half-close, read and discard for a
  // while, then close.
  static void Linger(HttpServer::Conn* c);

  // --- closing ----------------------------------------------------------------
  static void CloseConn(HttpServer::Conn* c);
  static void OnClosed(uv_handle_t* h);
  static void MaybeFree(HttpServer::Conn* c);
  static void OnConnection(uv_stream_t* listener, int status);
};

}  // namespace aidbd
