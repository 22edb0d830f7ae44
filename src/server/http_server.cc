#include "http_server.h"

#include <http_parser.h>

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <exception>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>

#include "util.h"

namespace aidbd {

namespace {
constexpr size_t kReadBufferSize = 64 * 1024;
constexpr uint64_t kLingerMs = 2000;  // read-and-discard after an error answer
// simdjson reads up to 64 bytes past the end of its input.
constexpr size_t kBodyPadding = 64;
}  // namespace

std::string ErrorBody(std::string_view message) {
  nlohmann::json j = {{"error", std::string(message)}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

const char* StatusReason(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

const std::string* HttpRequest::Header(std::string_view lower_name) const {
  for (const auto& [k, v] : headers) {
    if (k == lower_name) return &v;
  }
  return nullptr;
}

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes `in`; false on a malformed escape or an encoded NUL.
bool PercentDecode(std::string_view in, bool plus_is_space, std::string* out) {
  out->clear();
  out->reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return false;
      int hi = HexValue(in[i + 1]);
      int lo = HexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      char d = static_cast<char>(hi * 16 + lo);
      if (d == '\0') return false;
      out->push_back(d);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out->push_back(' ');
    } else {
      out->push_back(c);
    }
  }
  return true;
}

}  // namespace

bool HttpRequest::QueryParam(std::string_view key, std::string* value) const {
  std::string_view q = query;
  while (!q.empty()) {
    size_t amp = q.find('&');
    std::string_view part = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
    size_t eq = part.find('=');
    std::string k;
    if (!PercentDecode(part.substr(0, eq), true, &k)) continue;
    if (k != key) continue;
    if (eq == std::string_view::npos) {
      value->clear();
      return true;
    }
    return PercentDecode(part.substr(eq + 1), true, value);
  }
  return false;
}

// ---------------------------------------------------------------------------

enum class TimerMode { kNone, kIdle, kRequest, kWrite, kLinger };

struct HttpServer::Conn {
  HttpServer* server = nullptr;
  IoLoop* io = nullptr;  // the loop that serves it
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
  std::atomic<size_t> load{0};  // connections handed to this loop and still open

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

  void Adopt(int fd);
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

  static bool AddHeaderBytes(HttpServer::Conn* c, size_t n) {
    c->header_bytes += n;
    if (c->header_bytes > c->server->limits_.max_header_bytes) {
      c->error_status = 431;
      c->error_message = "request line and headers exceed " +
                         std::to_string(c->server->limits_.max_header_bytes) + " bytes";
      return false;
    }
    return true;
  }

  static int OnMessageBegin(http_parser* p) {
    auto* c = Of(p);
    c->cur = std::make_unique<HttpRequest>();
    c->field.clear();
    c->in_value = false;
    c->header_bytes = 0;
    if (c->timer_mode != TimerMode::kRequest) ArmTimer(c, TimerMode::kRequest);
    return 0;
  }
  static int OnUrl(http_parser* p, const char* at, size_t len) {
    auto* c = Of(p);
    if (!AddHeaderBytes(c, len)) return -1;
    c->cur->url.append(at, len);
    return 0;
  }
  static int OnHeaderField(http_parser* p, const char* at, size_t len) {
    auto* c = Of(p);
    if (!AddHeaderBytes(c, len)) return -1;
    if (c->in_value) {
      c->in_value = false;
      c->field.clear();
    }
    for (size_t i = 0; i < len; ++i)
      c->field.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(at[i]))));
    return 0;
  }
  static int OnHeaderValue(http_parser* p, const char* at, size_t len) {
    auto* c = Of(p);
    if (!AddHeaderBytes(c, len)) return -1;
    if (!c->in_value) {
      c->in_value = true;
      if (c->cur->headers.size() >= 256) {
        c->error_status = 431;
        c->error_message = "too many header fields";
        return -1;
      }
      c->cur->headers.emplace_back(c->field, std::string());
    }
    c->cur->headers.back().second.append(at, len);
    return 0;
  }
  static int OnHeadersComplete(http_parser* p) {
    auto* c = Of(p);
    HttpRequest* r = c->cur.get();
    if (p->http_major != 1) {
      c->error_status = 505;
      c->error_message = "only HTTP/1.x is supported";
      return -1;
    }
    r->method = http_method_str(static_cast<http_method>(p->method));
    r->keep_alive = http_should_keep_alive(p) != 0;
    std::string_view url = r->url;
    size_t q = url.find('?');
    std::string_view raw_path = url.substr(0, q);
    if (q != std::string_view::npos) r->query = std::string(url.substr(q + 1));
    size_t hash = r->query.find('#');
    if (hash != std::string::npos) r->query.resize(hash);
    // Absolute-form targets ("http://host/path") are allowed by HTTP/1.1.
    if (raw_path.substr(0, 7) == "http://" || raw_path.substr(0, 8) == "https://") {
      size_t slash = raw_path.find('/', raw_path.find("//") + 2);
      raw_path = slash == std::string_view::npos ? std::string_view("/") : raw_path.substr(slash);
    }
    if (raw_path.empty() || raw_path[0] != '/' || !PercentDecode(raw_path, false, &r->path)) {
      c->error_status = 400;
      c->error_message = "malformed request target";
      return -1;
    }
    size_t limit = c->server->limits_.max_body_bytes;
    if (p->content_length != ULLONG_MAX && p->content_length > limit) {
      c->error_status = 413;
      c->error_message = "request body of " + std::to_string(p->content_length) +
                         " bytes exceeds the limit of " + std::to_string(limit) + " bytes";
      return -1;
    }
    if (p->content_length != ULLONG_MAX && p->content_length > 0) {
      // Announced bytes are not trusted for more than 1 MiB up front.
      r->body.reserve(std::min<uint64_t>(p->content_length, 1 << 20) + kBodyPadding);
    }
    if (const std::string* e = r->Header("expect")) {
      std::string v = *e;
      std::transform(v.begin(), v.end(), v.begin(), ::tolower);
      if (v == "100-continue" && !c->io->shutting_down) {
        static const char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
        uv_buf_t b = uv_buf_init(const_cast<char*>(kContinue), sizeof kContinue - 1);
        // Best effort: a client that does not get it sends the body anyway.
        (void)uv_try_write(reinterpret_cast<uv_stream_t*>(&c->tcp), &b, 1);
      }
    }
    return 0;
  }
  static int OnBody(http_parser* p, const char* at, size_t len) {
    auto* c = Of(p);
    size_t limit = c->server->limits_.max_body_bytes;
    if (c->cur->body.size() + len > limit) {
      c->error_status = 413;
      c->error_message = "request body exceeds the limit of " + std::to_string(limit) + " bytes";
      return -1;
    }
    c->cur->body.append(at, len);
    return 0;
  }
  static int OnMessageComplete(http_parser* p) {
    auto* c = Of(p);
    c->cur->body.reserve(c->cur->body.size() + kBodyPadding);
    c->ready = std::move(c->cur);
    // One request at a time: the rest of the input waits in `in` until this
    // one has been answered (pipelining with back-pressure).
    http_parser_pause(p, 1);
    return 0;
  }

  // --- timers -----------------------------------------------------------------

  static void ArmTimer(HttpServer::Conn* c, TimerMode mode) {
    if (c->closing) return;
    uint64_t ms = 0;
    const HttpLimits& l = c->server->limits_;
    switch (mode) {
      case TimerMode::kIdle: ms = l.idle_timeout_ms; break;
      case TimerMode::kRequest:
      case TimerMode::kWrite: ms = l.request_timeout_ms; break;
      case TimerMode::kLinger: ms = kLingerMs; break;
      case TimerMode::kNone: break;
    }
    c->timer_mode = mode;
    int rc = mode == TimerMode::kNone ? uv_timer_stop(&c->timer)
                                      : uv_timer_start(&c->timer, OnTimer, ms, 0);
    if (rc != 0) {
      Log(LogLevel::kError, "timer_failed", KV().Add("error", uv_strerror(rc)));
      CloseConn(c);
    }
  }

  static void OnTimer(uv_timer_t* t) {
    auto* c = Of(reinterpret_cast<uv_handle_t*>(t));
    TimerMode mode = c->timer_mode;
    c->timer_mode = TimerMode::kNone;
    if (mode == TimerMode::kRequest && !c->busy && c->cur) {
      Log(LogLevel::kDebug, "request_timeout");
      AnswerError(c, 408, "request not received in time", /*linger=*/false);
      return;
    }
    if (mode == TimerMode::kWrite) Log(LogLevel::kDebug, "write_timeout");
    CloseConn(c);
  }

  // --- reading ----------------------------------------------------------------

  static void OnAlloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
    static thread_local char storage[kReadBufferSize];
    *buf = uv_buf_init(storage, sizeof storage);
  }

  static void StartReading(HttpServer::Conn* c) {
    if (c->reading || c->closing || c->eof) return;
    int rc = uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp), OnAlloc, OnRead);
    if (rc != 0) {
      Log(LogLevel::kDebug, "read_start_failed", KV().Add("error", uv_strerror(rc)));
      CloseConn(c);
      return;
    }
    c->reading = true;
  }

  static void StopReading(HttpServer::Conn* c) {
    if (!c->reading) return;
    (void)uv_read_stop(reinterpret_cast<uv_stream_t*>(&c->tcp));  // always returns 0
    c->reading = false;
  }

  static void OnRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
    auto* c = Of(reinterpret_cast<uv_handle_t*>(s));
    if (c->closing) return;
    if (nread == 0) return;
    if (nread < 0) {
      StopReading(c);
      if (nread != UV_EOF) {
        CloseConn(c);
        return;
      }
      c->eof = true;
      if (c->draining) {
        CloseConn(c);
        return;
      }
      if (!c->busy) ProcessInput(c);
      return;
    }
    if (c->draining) return;  // lingering after an error: discard
    c->in.append(buf->base, static_cast<size_t>(nread));
    if (c->busy) {
      StopReading(c);  // at most one read buffer is held while serving
      return;
    }
    ProcessInput(c);
  }

  // Parses buffered input; dispatches the next complete request, answers a
  // malformed one, or waits for more bytes.
  static void ProcessInput(HttpServer::Conn* c) {
    if (c->busy || c->closing) return;
    if (c->in_off < c->in.size()) {
      size_t avail = c->in.size() - c->in_off;
      size_t n = http_parser_execute(&c->parser, &settings, c->in.data() + c->in_off, avail);
      c->in_off += n;
      http_errno err = HTTP_PARSER_ERRNO(&c->parser);
      if (err == HPE_PAUSED) {
        http_parser_pause(&c->parser, 0);
      } else if (err != HPE_OK) {
        int status = c->error_status;
        std::string msg = c->error_message;
        if (status == 0) {
          status = err == HPE_HEADER_OVERFLOW ? 431 : 400;
          msg = std::string("malformed HTTP request: ") + http_errno_description(err);
        }
        c->in.clear();
        c->in_off = 0;
        AnswerError(c, status, msg, /*linger=*/true);
        return;
      }
      if (c->in_off == c->in.size()) {
        c->in.clear();
        c->in_off = 0;
      } else if (c->in_off >= kReadBufferSize) {
        c->in.erase(0, c->in_off);
        c->in_off = 0;
      }
    }
    if (c->ready) {
      Dispatch(c);
      return;
    }
    if (c->eof) {
      // Half-closed with no complete request left: nothing more will come.
      CloseConn(c);
      return;
    }
    if (!c->cur && c->timer_mode != TimerMode::kIdle) ArmTimer(c, TimerMode::kIdle);
    StartReading(c);
  }

  // --- serving ----------------------------------------------------------------

  static void BeginExchange(HttpServer::Conn* c, std::unique_ptr<HttpRequest> req) {
    c->busy = true;
    // Back-pressure: nothing more is read while serving. Reading stops lazily,
    // at the first bytes that arrive while busy (OnRead), so a client that
    // waits for each answer costs no epoll_ctl calls per request.
    ArmTimer(c, TimerMode::kNone);
    c->req = std::move(req);
    c->resp = std::make_unique<HttpResponse>();
    c->start_ns = uv_hrtime();
    c->streaming = false;
    c->stream_more = false;
  }

  static void Dispatch(HttpServer::Conn* c) {
    BeginExchange(c, std::move(c->ready));
    HttpServer* srv = c->server;
    if (!c->req->keep_alive) c->close_after = true;
    if (c->io->shutting_down) {
      c->req->route_label = "shutdown";
      c->resp->status = 503;
      c->resp->body = ErrorBody("server is shutting down");
      c->resp->close = true;
      StartResponse(c);
      return;
    }
    HttpRequest* req = c->req.get();
    HttpResponse* resp = c->resp.get();
    bool answered = Guard(resp, [&] { return srv->handler_->Prepare(req, resp); }) ||
                    Guard(resp, [&] { return srv->handler_->TryInline(req, resp); });
    if (answered) {
      StartResponse(c);
      return;
    }
    QueueJob(c, /*stream_piece=*/false);
  }

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

  static void QueueJob(HttpServer::Conn* c, bool stream_piece) {
    auto* job = new Job{};
    job->work.data = job;
    job->conn = c;
    job->stream_piece = stream_piece;
    int rc = uv_queue_work(c->io->loop, &job->work, OnWork, OnAfterWork);
    if (rc != 0) {
      delete job;
      Log(LogLevel::kError, "queue_work_failed", KV().Add("error", uv_strerror(rc)));
      if (stream_piece) {
        CloseConn(c);
        return;
      }
      c->resp = std::make_unique<HttpResponse>();
      c->resp->status = 500;
      c->resp->body = ErrorBody("cannot schedule the request");
      c->resp->close = true;
      StartResponse(c);
      return;
    }
    c->refs++;
    c->io->jobs++;
  }

  static void OnWork(uv_work_t* w) {
    auto* job = static_cast<Job*>(w->data);
    HttpServer::Conn* c = job->conn;
    if (job->stream_piece) {
      c->chunk.clear();
      try {
        c->stream_more = c->resp->stream->Next(&c->chunk);
      } catch (const std::exception& e) {
        Log(LogLevel::kError, "stream_failed", KV().Add("error", e.what()));
        c->stream_more = false;
      }
      return;
    }
    Guard(c->resp.get(), [c] {
      c->server->handler_->Execute(c->req.get(), c->resp.get());
      return true;
    });
  }

  static void OnAfterWork(uv_work_t* w, int status) {
    auto* job = static_cast<Job*>(w->data);
    HttpServer::Conn* c = job->conn;
    bool stream_piece = job->stream_piece;
    delete job;
    HttpServer::IoLoop* io = c->io;
    io->jobs--;
    c->refs--;
    if (c->closing) {
      if (!stream_piece && c->req) FinishMetrics(c);
      MaybeFree(c);
      io->MaybeDrained();
      return;
    }
    if (stream_piece) {
      WriteStreamPiece(c);
    } else {
      StartResponse(c);
    }
    io->MaybeDrained();
  }

  static void AppendChunk(std::string* out, std::string_view data) {
    if (data.empty()) return;
    char len[32];
    int n = std::snprintf(len, sizeof len, "%zx\r\n", data.size());
    out->append(len, static_cast<size_t>(n));
    out->append(data);
    out->append("\r\n");
  }

  static void StartResponse(HttpServer::Conn* c) {
    HttpResponse* r = c->resp.get();
    if (r->close || c->io->shutting_down) c->close_after = true;
    std::string& h = c->head;
    h.clear();
    h.append("HTTP/1.1 ").append(std::to_string(r->status)).append(" ");
    h.append(StatusReason(r->status)).append("\r\n");
    h.append("Content-Type: ").append(r->content_type).append("\r\n");
    size_t content_length = r->body.size();
    if (c->req->method == "HEAD") {
      // Headers only: no body, not even the chunks of a streamed answer.
      r->stream.reset();
      r->body.clear();
    }
    c->streaming = r->stream != nullptr;
    if (c->streaming) {
      h.append("Transfer-Encoding: chunked\r\n");
    } else {
      h.append("Content-Length: ").append(std::to_string(content_length)).append("\r\n");
    }
    for (const auto& [k, v] : r->headers) h.append(k).append(": ").append(v).append("\r\n");
    h.append(c->close_after ? "Connection: close\r\n" : "Connection: keep-alive\r\n");
    h.append("\r\n");
    if (c->streaming) {
      AppendChunk(&h, r->body);
      r->body.clear();
      c->stream_more = true;
    }
    uv_buf_t bufs[2];
    unsigned nbufs = 1;
    bufs[0] = uv_buf_init(h.data(), static_cast<unsigned>(h.size()));
    if (!r->body.empty() && c->req->method != "HEAD") {
      bufs[1] = uv_buf_init(r->body.data(), static_cast<unsigned>(r->body.size()));
      nbufs = 2;
    }
    Write(c, bufs, nbufs);
  }

  static void WriteStreamPiece(HttpServer::Conn* c) {
    std::string& h = c->head;
    h.clear();
    AppendChunk(&h, c->chunk);
    c->chunk.clear();
    if (!c->stream_more) h.append("0\r\n\r\n");
    uv_buf_t buf = uv_buf_init(h.data(), static_cast<unsigned>(h.size()));
    Write(c, &buf, 1);
  }

  static void Write(HttpServer::Conn* c, uv_buf_t* bufs, unsigned nbufs) {
    c->wreq.data = c;
    auto* stream = reinterpret_cast<uv_stream_t*>(&c->tcp);
    // Fast path, the usual case: the socket takes the whole answer now.
    // Then it completes here, without a write request and its loop
    // iteration. Not with pipelined input waiting: completing serves the
    // next request from this stack.
    if (c->in_off >= c->in.size()) {
      int n = uv_try_write(stream, bufs, nbufs);
      if (n > 0) {
        size_t sent = static_cast<size_t>(n);
        while (nbufs > 0 && sent >= bufs[0].len) {
          sent -= bufs[0].len;
          ++bufs;
          --nbufs;
        }
        if (nbufs == 0) {
          OnWrite(&c->wreq, 0);
          return;
        }
        bufs[0].base += sent;
        bufs[0].len -= sent;
      }
    }
    int rc = uv_write(&c->wreq, stream, bufs, nbufs, OnWrite);
    if (rc != 0) {
      Log(LogLevel::kDebug, "write_failed", KV().Add("error", uv_strerror(rc)));
      FinishMetrics(c);
      CloseConn(c);
      return;
    }
    ArmTimer(c, TimerMode::kWrite);
  }

  static void OnWrite(uv_write_t* w, int status) {
    auto* c = static_cast<HttpServer::Conn*>(w->data);
    if (c->closing) return;
    if (status < 0) {
      FinishMetrics(c);
      CloseConn(c);
      return;
    }
    ArmTimer(c, TimerMode::kNone);
    if (c->streaming && c->stream_more) {
      if (c->io->forced) {
        FinishMetrics(c);
        CloseConn(c);
        return;
      }
      QueueJob(c, /*stream_piece=*/true);
      return;
    }
    FinishMetrics(c);
    c->req.reset();
    c->resp.reset();
    c->busy = false;
    if (c->close_after) {
      // Closing with unread input would reset the connection and could
      // destroy the answer in flight: half-close and drain first, unless the
      // client has closed its side already.
      if ((c->linger || c->in_off < c->in.size() || !c->io->shutting_down) && !c->eof) {
        Linger(c);
      } else {
        CloseConn(c);
      }
      return;
    }
    ProcessInput(c);  // the next pipelined request, if any
  }

  static void FinishMetrics(HttpServer::Conn* c) {
    if (!c->req) return;
    double secs = static_cast<double>(uv_hrtime() - c->start_ns) / 1e9;
    int status = c->resp ? c->resp->status : 0;
    c->server->handler_->Completed(*c->req, status, secs);
    c->req->route_label.clear();
    c->req.reset();
  }

  // Answers an error the HTTP layer found itself, then closes the connection.
  static void AnswerError(HttpServer::Conn* c, int status, const std::string& msg, bool linger) {
    auto req = std::make_unique<HttpRequest>();
    if (c->cur) req->method = c->cur->method;  // empty unless the headers were complete
    req->route_label = "invalid";
    c->cur.reset();
    BeginExchange(c, std::move(req));
    c->close_after = true;
    c->linger = linger;
    c->resp->status = status;
    c->resp->body = ErrorBody(msg);
    c->resp->close = true;
    Log(LogLevel::kDebug, "bad_request", KV().Add("status", status).Add("error", msg));
    StartResponse(c);
  }

  // After an error answer the client may still be sending (e.g. an oversized
  // body): closing at once would reset the connection and could destroy the
  // answer before the client reads it. Half-close, read and discard for a
  // while, then close.
  static void Linger(HttpServer::Conn* c) {
    c->draining = true;
    c->sreq.data = c;
    int rc = uv_shutdown(&c->sreq, reinterpret_cast<uv_stream_t*>(&c->tcp),
                         [](uv_shutdown_t*, int) {});
    if (rc != 0) {
      CloseConn(c);
      return;
    }
    ArmTimer(c, TimerMode::kLinger);
    StartReading(c);
  }

  // --- closing ----------------------------------------------------------------

  static void CloseConn(HttpServer::Conn* c) {
    if (c->closing) return;
    StopReading(c);
    c->closing = true;
    c->io->conns.erase(c);
    c->io->load--;
    c->server->connections_--;
    (void)uv_timer_stop(&c->timer);
    uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), OnClosed);
    uv_close(reinterpret_cast<uv_handle_t*>(&c->timer), OnClosed);
    c->io->MaybeDrained();
  }

  static void OnClosed(uv_handle_t* h) {
    auto* c = Of(h);
    c->refs--;
    MaybeFree(c);
  }

  static void MaybeFree(HttpServer::Conn* c) {
    if (c->refs == 0 && c->closing) {
      if (c->req) FinishMetrics(c);
      delete c;
    }
  }

  static void OnConnection(uv_stream_t* listener, int status) {
    auto* srv = static_cast<HttpServer*>(listener->data);
    srv->OnConnection(status);
  }
};

http_parser_settings ConnOps::settings = [] {
  http_parser_settings s;
  http_parser_settings_init(&s);
  s.on_message_begin = ConnOps::OnMessageBegin;
  s.on_url = ConnOps::OnUrl;
  s.on_header_field = ConnOps::OnHeaderField;
  s.on_header_value = ConnOps::OnHeaderValue;
  s.on_headers_complete = ConnOps::OnHeadersComplete;
  s.on_body = ConnOps::OnBody;
  s.on_message_complete = ConnOps::OnMessageComplete;
  return s;
}();

// ---------------------------------------------------------------------------

int HttpServer::Listen(const std::string& host, int port, std::string* bound) {
  struct sockaddr_storage addr;
  int rc;
  if (host.find(':') != std::string::npos) {
    rc = uv_ip6_addr(host.c_str(), port, reinterpret_cast<struct sockaddr_in6*>(&addr));
  } else {
    rc = uv_ip4_addr(host.c_str(), port, reinterpret_cast<struct sockaddr_in*>(&addr));
  }
  if (rc != 0) return rc;
  rc = uv_tcp_init(loop_, &listener_);
  if (rc != 0) return rc;
  listener_.data = this;
  listening_ = true;  // closed by Shutdown() or the destructor
  rc = uv_tcp_bind(&listener_, reinterpret_cast<const struct sockaddr*>(&addr), 0);
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), 511,
                              ConnOps::OnConnection);
  if (rc != 0) return rc;
  struct sockaddr_storage name;
  int len = sizeof name;
  rc = uv_tcp_getsockname(&listener_, reinterpret_cast<struct sockaddr*>(&name), &len);
  if (rc != 0) return rc;
  char ip[INET6_ADDRSTRLEN] = {0};
  int bound_port = 0;
  if (name.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<struct sockaddr_in6*>(&name);
    rc = uv_ip6_name(a, ip, sizeof ip);
    bound_port = ntohs(a->sin6_port);
    *bound = std::string("[") + ip + "]:" + std::to_string(bound_port);
  } else {
    auto* a = reinterpret_cast<struct sockaddr_in*>(&name);
    rc = uv_ip4_name(a, ip, sizeof ip);
    bound_port = ntohs(a->sin_port);
    *bound = std::string(ip) + ":" + std::to_string(bound_port);
  }
  return rc;
}

void HttpServer::OnConnection(int status) {
  if (status < 0) {
    Log(LogLevel::kWarn, "accept_failed", KV().Add("error", uv_strerror(status)));
    return;
  }
  // Accepted on this loop, served on an I/O loop: the socket changes loops
  // as a file descriptor (a libuv handle belongs to one loop).
  auto* tmp = new uv_tcp_t;
  int rc = uv_tcp_init(loop_, tmp);
  if (rc != 0) {
    Log(LogLevel::kError, "tcp_init_failed", KV().Add("error", uv_strerror(rc)));
    delete tmp;
    return;
  }
  auto free_tmp = [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); };
  rc = uv_accept(reinterpret_cast<uv_stream_t*>(&listener_), reinterpret_cast<uv_stream_t*>(tmp));
  uv_os_fd_t fd = -1;
  if (rc == 0) rc = uv_fileno(reinterpret_cast<uv_handle_t*>(tmp), &fd);
  int own = -1;
  if (rc == 0) {
    own = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (own < 0) rc = uv_translate_sys_error(errno);
  }
  uv_close(reinterpret_cast<uv_handle_t*>(tmp), free_tmp);
  if (rc != 0) {
    Log(LogLevel::kWarn, "accept_failed", KV().Add("error", uv_strerror(rc)));
    return;
  }
  if (shutting_down_) {
    ::close(own);
    return;
  }
  IoLoop* best = loops_[0].get();
  for (auto& io : loops_) {
    if (io->load.load() < best->load.load()) best = io.get();
  }
  best->load++;
  best->Run([best, own] { best->Adopt(own); });
}

void HttpServer::IoLoop::Adopt(int fd) {
  HttpServer* srv = server;
  auto* c = new Conn();
  c->server = srv;
  c->io = this;
  int rc = uv_tcp_init(loop, &c->tcp);
  if (rc != 0) {
    Log(LogLevel::kError, "tcp_init_failed", KV().Add("error", uv_strerror(rc)));
    ::close(fd);
    load--;
    delete c;
    return;
  }
  c->tcp.data = c;
  c->refs = 1;
  conns.insert(c);
  srv->connections_++;
  rc = uv_timer_init(loop, &c->timer);
  if (rc != 0) {
    Log(LogLevel::kError, "timer_init_failed", KV().Add("error", uv_strerror(rc)));
    ::close(fd);
    // Only the tcp handle to close: CloseConn would close the timer too.
    c->closing = true;
    conns.erase(c);
    load--;
    srv->connections_--;
    uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), ConnOps::OnClosed);
    MaybeDrained();
    return;
  }
  c->timer.data = c;
  c->refs = 2;
  rc = uv_tcp_open(&c->tcp, fd);
  if (rc != 0) {
    Log(LogLevel::kError, "tcp_open_failed", KV().Add("error", uv_strerror(rc)));
    ::close(fd);
    ConnOps::CloseConn(c);
    return;
  }
  if (shutting_down) {
    ConnOps::CloseConn(c);
    return;
  }
  if (srv->connections_.load() > srv->limits_.max_connections) {
    Log(LogLevel::kWarn, "too_many_connections",
        KV().Add("limit", static_cast<unsigned long long>(srv->limits_.max_connections)));
    ConnOps::CloseConn(c);
    return;
  }
  rc = uv_tcp_nodelay(&c->tcp, 1);
  if (rc != 0) Log(LogLevel::kDebug, "nodelay_failed", KV().Add("error", uv_strerror(rc)));
  http_parser_init(&c->parser, HTTP_REQUEST);
  c->parser.data = c;
  ConnOps::ArmTimer(c, TimerMode::kIdle);
  ConnOps::StartReading(c);
}

void HttpServer::IoLoop::BeginShutdown(bool force) {
  shutting_down = true;
  if (force) forced = true;
  std::vector<Conn*> all(conns.begin(), conns.end());
  for (Conn* c : all) {
    if (c->busy && !force) {
      c->close_after = true;
    } else {
      ConnOps::CloseConn(c);
    }
  }
  MaybeDrained();
}

void HttpServer::IoLoop::MaybeDrained() {
  if (!shutting_down || drained || !conns.empty() || jobs != 0) return;
  drained = true;
  if (!threaded) {
    server->loops_drained_++;
    server->OnLoopDrained();
    return;
  }
  // Under the mutex that OnLoopDrained() closes the handle under: the send
  // cannot come after the close.
  std::lock_guard<std::mutex> lock(server->drained_mu_);
  server->loops_drained_++;
  uv_async_send(&server->drained_async_);
}

HttpServer::HttpServer(uv_loop_t* loop, Handler* handler, HttpLimits limits, unsigned io_threads)
    : loop_(loop), handler_(handler), limits_(limits) {
  int rc = uv_async_init(loop_, &drained_async_, [](uv_async_t* a) {
    static_cast<HttpServer*>(a->data)->OnLoopDrained();
  });
  if (rc != 0) throw std::runtime_error(std::string("uv_async_init: ") + uv_strerror(rc));
  drained_async_.data = this;
  open_handles_ = 1;
  if (io_threads == 0) {
    auto io = std::make_unique<IoLoop>();
    io->server = this;
    io->loop = loop_;
    loops_.push_back(std::move(io));
    return;
  }
  for (unsigned i = 0; i < io_threads; ++i) {
    auto io = std::make_unique<IoLoop>();
    io->server = this;
    io->loop = &io->own_loop;
    io->threaded = true;
    rc = uv_loop_init(&io->own_loop);
    if (rc == 0) {
      rc = uv_async_init(&io->own_loop, &io->wake, IoLoop::OnWake);
      if (rc != 0) uv_loop_close(&io->own_loop);
    }
    if (rc != 0) {
      Teardown();
      throw std::runtime_error(std::string("I/O loop: ") + uv_strerror(rc));
    }
    io->wake.data = io.get();
    IoLoop* p = io.get();
    loops_.push_back(std::move(io));
    p->thread = std::thread([p, i] {
      std::string name = "aidbd-io-" + std::to_string(i);
      pthread_setname_np(pthread_self(), name.c_str());
      uv_run(p->loop, UV_RUN_DEFAULT);
    });
  }
}

HttpServer::~HttpServer() { Teardown(); }

void HttpServer::Teardown() {
  StopLoops();
  // The handles on the caller's loop: closed, and their close callbacks run,
  // before their memory goes away with this object.
  if (listening_) {
    listening_ = false;
    open_handles_++;
    uv_close(reinterpret_cast<uv_handle_t*>(&listener_), OnHandleClosed);
  }
  if (shutdown_timer_init_) {
    shutdown_timer_init_ = false;
    open_handles_++;
    uv_close(reinterpret_cast<uv_handle_t*>(&shutdown_timer_), OnHandleClosed);
  }
  CloseDrainedAsync();
  while (open_handles_ > 0) uv_run(loop_, UV_RUN_ONCE);
}

void HttpServer::OnHandleClosed(uv_handle_t* h) {
  static_cast<HttpServer*>(h->data)->open_handles_--;
}

void HttpServer::CloseDrainedAsync() {
  std::lock_guard<std::mutex> lock(drained_mu_);
  if (drained_async_closed_) return;
  drained_async_closed_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&drained_async_), OnHandleClosed);
}

void HttpServer::StopLoops() {
  for (auto& io : loops_) {
    if (!io->threaded || !io->thread.joinable()) continue;
    IoLoop* p = io.get();
    p->Run([p] {
      p->BeginShutdown(/*force=*/true);
      uv_close(reinterpret_cast<uv_handle_t*>(&p->wake), nullptr);
    });
    p->thread.join();
    // Close callbacks of work cancelled by the forced close have run: uv_run
    // returned only once no handle and no request was left.
    int rc = uv_loop_close(p->loop);
    if (rc != 0) Log(LogLevel::kError, "loop_close_failed", KV().Add("error", uv_strerror(rc)));
  }
}

void HttpServer::Shutdown(std::function<void()> drained) {
  if (shutting_down_) {
    // Second signal: stop waiting for slow clients.
    for (auto& io : loops_) {
      IoLoop* p = io.get();
      p->Run([p] { p->BeginShutdown(/*force=*/true); });
    }
    return;
  }
  shutting_down_ = true;
  drained_ = std::move(drained);
  if (listening_) {
    listening_ = false;
    open_handles_++;
    uv_close(reinterpret_cast<uv_handle_t*>(&listener_), OnHandleClosed);
  }
  int rc = uv_timer_init(loop_, &shutdown_timer_);
  if (rc == 0) {
    shutdown_timer_init_ = true;
    shutdown_timer_.data = this;
    rc = uv_timer_start(
        &shutdown_timer_,
        [](uv_timer_t* t) {
          auto* self = static_cast<HttpServer*>(t->data);
          Log(LogLevel::kWarn, "shutdown_deadline",
              KV().Add("connections", static_cast<unsigned long long>(self->connections_.load())));
          self->Shutdown(nullptr);
        },
        limits_.shutdown_timeout_ms, 0);
  }
  if (rc != 0) Log(LogLevel::kError, "shutdown_timer_failed", KV().Add("error", uv_strerror(rc)));
  for (auto& io : loops_) {
    IoLoop* p = io.get();
    p->Run([p] { p->BeginShutdown(/*force=*/false); });
  }
}

void HttpServer::OnLoopDrained() {
  if (drained_called_ || loops_drained_.load() != loops_.size()) return;
  drained_called_ = true;
  if (shutdown_timer_init_) {
    shutdown_timer_init_ = false;
    open_handles_++;
    uv_close(reinterpret_cast<uv_handle_t*>(&shutdown_timer_), OnHandleClosed);
  }
  CloseDrainedAsync();
  if (drained_) drained_();
}

}  // namespace aidbd
