#include "http_server.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>
#include <string>
#include <thread>

#include "http_internal.h"
#include "util.h"

namespace aidbd {

void ConnOps::OnConnection(uv_stream_t* listener, int status) {
  auto* srv = static_cast<HttpServer*>(listener->data);
  srv->OnConnection(status);
}

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
  if (rc == 0)
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), 511, ConnOps::OnConnection);
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

void HttpServer::AcceptFailed(int error) {
  // Out of descriptors (EMFILE) a connection fails like this each time a
  // client tries: counted always, logged at most once a second.
  handler_->ConnectionRefused("accept_failed");
  ++accept_failures_;
  int64_t now = NowUnixNs();
  if (accept_logged_ns_ != 0 && now - accept_logged_ns_ < 1000000000) return;
  KV kv;
  kv.Add("error", uv_strerror(error))
      .Add("connections_dropped", static_cast<unsigned long long>(accept_failures_));
  if (error == UV_EMFILE || error == UV_ENFILE) {
    kv.Add("hint", "out of file descriptors: raise RLIMIT_NOFILE or lower --max-connections");
  }
  Log(LogLevel::kWarn, "accept_failed", kv);
  accept_logged_ns_ = now;
  accept_failures_ = 0;
}

void HttpServer::OnConnection(int status) {
  if (status < 0) {
    AcceptFailed(status);
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
    AcceptFailed(rc);
    return;
  }
  std::string peer;
  if (!AdmitPeer(own, &peer)) {
    // Closed before anything is read: the client sees a clean end of file.
    ::close(own);
    if (LogEnabled(LogLevel::kDebug)) {
      Log(LogLevel::kDebug, "too_many_connections_from_address",
          KV().Add("limit", static_cast<unsigned long long>(limits_.max_connections_per_ip)));
    }
    handler_->ConnectionRefused("per_ip");
    return;
  }
  Serve(own, std::move(peer));
}

namespace {

// The client address of a connected socket as the per-address limit counts
// it: the 4 or 16 address bytes (an IPv4-mapped IPv6 address as IPv4), or
// empty when it has none.
std::string PeerKey(int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (::getpeername(fd, reinterpret_cast<struct sockaddr*>(&ss), &len) != 0) return {};
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<struct sockaddr_in*>(&ss);
    return std::string(reinterpret_cast<const char*>(&a->sin_addr), 4);
  }
  if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<struct sockaddr_in6*>(&ss);
    const char* b = reinterpret_cast<const char*>(&a->sin6_addr);
    if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) return std::string(b + 12, 4);
    return std::string(b, 16);
  }
  return {};
}

}  // namespace

bool HttpServer::AdmitPeer(int fd, std::string* peer) {
  if (limits_.max_connections_per_ip == 0) return true;
  std::string key = PeerKey(fd);
  if (key.empty()) return true;
  std::lock_guard<std::mutex> lock(peers_mu_);
  size_t& n = peers_[key];
  if (n >= limits_.max_connections_per_ip) return false;
  ++n;
  *peer = std::move(key);
  return true;
}

void HttpServer::ReleasePeer(const std::string& peer) {
  if (peer.empty()) return;
  std::lock_guard<std::mutex> lock(peers_mu_);
  auto it = peers_.find(peer);
  if (it == peers_.end()) return;
  if (--it->second == 0) peers_.erase(it);
}

void HttpServer::Serve(int own, std::string peer) {
  if (shutting_down_) {
    ::close(own);
    ReleasePeer(peer);
    return;
  }
  IoLoop* best = loops_[0].get();
  for (auto& io : loops_) {
    if (io->load.load() < best->load.load()) best = io.get();
  }
  best->load++;
  best->Run([best, own, peer = std::move(peer)]() mutable { best->Adopt(own, std::move(peer)); });
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
  int rc = uv_async_init(loop_, &drained_async_,
                         [](uv_async_t* a) { static_cast<HttpServer*>(a->data)->OnLoopDrained(); });
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
