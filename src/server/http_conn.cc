// The connection state machine: one request at a time per connection
// (pipelined input waits, back-pressure), the Handler's Prepare/TryInline on
// the loop and Execute on the thread pool, responses (chunked streams),
// timeouts, lingering after errors, and closing.
#include <cstdio>
#include <string>

#include "http_internal.h"
#include "util.h"

namespace aidbd {

void ConnOps::ArmTimer(HttpServer::Conn* c, TimerMode mode) {
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

void ConnOps::OnTimer(uv_timer_t* t) {
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

void ConnOps::OnAlloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  static thread_local char storage[kReadBufferSize];
  *buf = uv_buf_init(storage, sizeof storage);
}

void ConnOps::StartReading(HttpServer::Conn* c) {
  if (c->reading || c->closing || c->eof) return;
  int rc = uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp), OnAlloc, OnRead);
  if (rc != 0) {
    Log(LogLevel::kDebug, "read_start_failed", KV().Add("error", uv_strerror(rc)));
    CloseConn(c);
    return;
  }
  c->reading = true;
}

void ConnOps::StopReading(HttpServer::Conn* c) {
  if (!c->reading) return;
  (void)uv_read_stop(reinterpret_cast<uv_stream_t*>(&c->tcp));  // always returns 0
  c->reading = false;
}

void ConnOps::OnRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
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
void ConnOps::ProcessInput(HttpServer::Conn* c) {
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

void ConnOps::BeginExchange(HttpServer::Conn* c, std::unique_ptr<HttpRequest> req) {
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

void ConnOps::Dispatch(HttpServer::Conn* c) {
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

void ConnOps::QueueJob(HttpServer::Conn* c, bool stream_piece) {
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

void ConnOps::OnWork(uv_work_t* w) {
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

void ConnOps::OnAfterWork(uv_work_t* w, int status) {
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

void ConnOps::AppendChunk(std::string* out, std::string_view data) {
  if (data.empty()) return;
  char len[32];
  int n = std::snprintf(len, sizeof len, "%zx\r\n", data.size());
  out->append(len, static_cast<size_t>(n));
  out->append(data);
  out->append("\r\n");
}

void ConnOps::StartResponse(HttpServer::Conn* c) {
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

void ConnOps::WriteStreamPiece(HttpServer::Conn* c) {
  std::string& h = c->head;
  h.clear();
  AppendChunk(&h, c->chunk);
  c->chunk.clear();
  if (!c->stream_more) h.append("0\r\n\r\n");
  uv_buf_t buf = uv_buf_init(h.data(), static_cast<unsigned>(h.size()));
  Write(c, &buf, 1);
}

void ConnOps::Write(HttpServer::Conn* c, uv_buf_t* bufs, unsigned nbufs) {
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

void ConnOps::OnWrite(uv_write_t* w, int status) {
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

void ConnOps::FinishMetrics(HttpServer::Conn* c) {
  if (!c->req) return;
  double secs = static_cast<double>(uv_hrtime() - c->start_ns) / 1e9;
  int status = c->resp ? c->resp->status : 0;
  c->server->handler_->Completed(*c->req, status, secs);
  c->req->route_label.clear();
  c->req.reset();
}

// Answers an error the HTTP layer found itself, then closes the connection.
void ConnOps::AnswerError(HttpServer::Conn* c, int status, const std::string& msg, bool linger) {
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
void ConnOps::Linger(HttpServer::Conn* c) {
  c->draining = true;
  c->sreq.data = c;
  int rc =
      uv_shutdown(&c->sreq, reinterpret_cast<uv_stream_t*>(&c->tcp), [](uv_shutdown_t*, int) {});
  if (rc != 0) {
    CloseConn(c);
    return;
  }
  ArmTimer(c, TimerMode::kLinger);
  StartReading(c);
}

void ConnOps::CloseConn(HttpServer::Conn* c) {
  if (c->closing) return;
  StopReading(c);
  c->closing = true;
  c->io->conns.erase(c);
  c->io->load--;
  c->server->connections_--;
  c->server->ReleasePeer(c->peer);
  (void)uv_timer_stop(&c->timer);
  uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), OnClosed);
  uv_close(reinterpret_cast<uv_handle_t*>(&c->timer), OnClosed);
  c->io->MaybeDrained();
}

void ConnOps::OnClosed(uv_handle_t* h) {
  auto* c = Of(h);
  c->refs--;
  MaybeFree(c);
}

void ConnOps::MaybeFree(HttpServer::Conn* c) {
  if (c->refs == 0 && c->closing) {
    if (c->req) FinishMetrics(c);
    delete c;
  }
}

void HttpServer::IoLoop::Adopt(int fd, std::string peer) {
  HttpServer* srv = server;
  auto* c = new Conn();
  c->server = srv;
  c->io = this;
  c->peer = std::move(peer);
  int rc = uv_tcp_init(loop, &c->tcp);
  if (rc != 0) {
    Log(LogLevel::kError, "tcp_init_failed", KV().Add("error", uv_strerror(rc)));
    ::close(fd);
    load--;
    srv->ReleasePeer(c->peer);
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
    srv->ReleasePeer(c->peer);
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
    srv->handler_->ConnectionRefused("max_connections");
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

}  // namespace aidbd
