// libFuzzer target: raw bytes through aidbd's real HTTP/1.1 layer (http-parser
// callbacks of http_parse.cc, the connection state machine of http_conn.cc:
// request line, headers, limits, chunked bodies, pipelining, back-pressure,
// error answers and lingering) and on to the real Api over a real database.
// Each input is one loopback TCP connection: the fuzzer is the client, an
// HttpServer on this thread's libuv loop serves the accepted socket.
//
// Input: one control byte, then the bytes the client sends.
//   control & 3: how the bytes are split into separate reads of the server:
//     0 one write; 1 one byte per read (the first 4 KiB, then the rest in one
//     write); 2 pieces of 1..64 bytes from a PRNG seeded by the control byte;
//     3 two pieces, split at (control >> 2) / 64 of the input.
//   control & 0x80: close the socket at the end instead of half-closing it.
// Checked: every answer the server writes parses as an HTTP/1.x response with
// a status of 100..599, the server reads every byte it is sent (no stall) and
// closes the connection once the client is done, and nothing leaks.
#include <aidb.h>
#include <arpa/inet.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "api_fuzz_util.h"
#include "http_server.h"

using namespace aidbfuzz;

namespace {

struct State : ApiDb {
  uv_loop_t loop;
  std::unique_ptr<aidbd::HttpServer> server;
  int listener = -1;
  sockaddr_in addr{};
  int runs = 0;
  uint32_t conns = 0;
};

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "http_fuzz: %s\n", what);
  __builtin_trap();
}

State& Get() {
  static State* s = [] {
    signal(SIGPIPE, SIG_IGN);
    auto* st = new State();
    OpenApiDb(st);
    if (uv_loop_init(&st->loop) != 0) std::abort();
    aidbd::HttpLimits limits;
    // Small, so that the 413 and 431 paths are within the fuzzer's reach.
    limits.max_body_bytes = 16 << 10;
    limits.max_header_bytes = 2 << 10;
    st->server = std::make_unique<aidbd::HttpServer>(&st->loop, st->api.get(), limits, 0);
    st->listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    st->addr.sin_family = AF_INET;
    st->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof st->addr;
    if (st->listener < 0 ||
        bind(st->listener, reinterpret_cast<sockaddr*>(&st->addr), sizeof st->addr) != 0 ||
        listen(st->listener, 16) != 0 ||
        getsockname(st->listener, reinterpret_cast<sockaddr*>(&st->addr), &len) != 0) {
      std::abort();
    }
    return st;
  }();
  return *s;
}

double NowSec() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// The client's view: every byte the server answers is parsed as responses.
struct Client {
  int fd = -1;
  bool eof = false;
  http_parser parser;
  bool bad = false;
  int responses = 0;

  static int OnHeaders(http_parser* p) {
    auto* c = static_cast<Client*>(p->data);
    if (p->status_code < 100 || p->status_code > 599) c->bad = true;
    return 0;
  }
  static int OnComplete(http_parser* p) {
    static_cast<Client*>(p->data)->responses++;
    return 0;
  }

  void Init(int f, bool check) {
    fd = f;
    http_parser_init(&parser, HTTP_RESPONSE);
    parser.data = this;
    checking = check;
  }
  // Reads what the server has written so far.
  void Drain() {
    char buf[16384];
    while (!eof) {
      ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        eof = true;  // closed (or reset after the client's own close)
        if (checking && !bad) http_parser_execute(&parser, &Settings(), nullptr, 0);
        return;
      }
      if (n < 0) return;
      if (checking && !bad) {
        size_t used = http_parser_execute(&parser, &Settings(), buf, static_cast<size_t>(n));
        if (used != static_cast<size_t>(n) || HTTP_PARSER_ERRNO(&parser) != HPE_OK) bad = true;
      }
    }
  }
  static http_parser_settings& Settings() {
    static http_parser_settings s = [] {
      http_parser_settings x;
      http_parser_settings_init(&x);
      x.on_headers_complete = OnHeaders;
      x.on_message_complete = OnComplete;
      return x;
    }();
    return s;
  }
  bool checking = true;
};

int Pending(int fd) {
  int n = 0;
  if (ioctl(fd, FIONREAD, &n) != 0) return 0;
  return n;
}

// Runs the server's loop (and drains the client) until `done` or a deadline.
template <class Done>
void Pump(State& s, Client& cl, Done done, const char* what) {
  double deadline = NowSec() + 15;
  for (int i = 0;; ++i) {
    uv_run(&s.loop, UV_RUN_NOWAIT);
    cl.Drain();
    if (done()) return;
    if ((i & 63) == 63) {
      if (NowSec() > deadline) Die(what);
      sched_yield();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  State& s = Get();
  if (s.runs++ % 64 == 0) ResetApiDb(&s);
  uint8_t control = data[0];
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);

  // The pieces, each to arrive in a read of its own.
  std::vector<std::string_view> pieces;
  switch (control & 3) {
    case 0: pieces.push_back(in); break;
    case 1: {
      size_t bytewise = std::min<size_t>(in.size(), 4096);
      for (size_t i = 0; i < bytewise; ++i) pieces.push_back(in.substr(i, 1));
      if (bytewise < in.size()) pieces.push_back(in.substr(bytewise));
      break;
    }
    case 2: {
      uint32_t x = control * 2654435761u + 1;
      for (size_t off = 0; off < in.size();) {
        x = x * 1103515245u + 12345u;
        size_t n = std::min<size_t>(1 + ((x >> 16) & 63), in.size() - off);
        pieces.push_back(in.substr(off, n));
        off += n;
      }
      break;
    }
    default: {
      size_t cut = in.size() * (control >> 2 & 31) / 32;
      pieces.push_back(in.substr(0, cut));
      pieces.push_back(in.substr(cut));
      break;
    }
  }

  int cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  // Every connection leaves its port in TIME_WAIT for a minute: at hundreds
  // of inputs a second one source address runs out of ports. The client
  // takes its address from the ~13 million of 127.1.0.0-127.200.255.255.
  sockaddr_in local{};
  local.sin_family = AF_INET;
  uint32_t n = s.conns++ % (200u << 16);
  local.sin_addr.s_addr = htonl((127u << 24) | ((1 + (n >> 16)) << 16) | (n & 0xffff));
  if (cfd < 0 || bind(cfd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0 ||
      connect(cfd, reinterpret_cast<sockaddr*>(&s.addr), sizeof s.addr) != 0) {
    std::perror("http_fuzz: connect");
    Die("connect");
  }
  int one = 1;
  setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int sfd = accept4(s.listener, nullptr, nullptr, SOCK_CLOEXEC);
  if (sfd < 0) Die("accept");
  size_t before = s.server->connections();
  s.server->Serve(sfd);  // the server's loop owns sfd from here
  bool served = s.server->connections() > before;

  Client cl;
  // A HEAD answer announces a body it does not send: the client cannot
  // frame what follows without knowing the request, so it does not check.
  cl.Init(cfd, in.find("HEAD") == std::string_view::npos);
  auto closed = [&] { return s.server->connections() == before; };
  for (std::string_view p : pieces) {
    if (!served || closed()) break;
    size_t off = 0;
    while (off < p.size() && !closed()) {
      ssize_t n = send(cfd, p.data() + off, p.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        off += static_cast<size_t>(n);
      } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        break;  // reset by the server after its error answer
      } else {
        Pump(
            s, cl, [&] { return closed() || Pending(sfd) == 0; }, "server stopped reading");
      }
    }
    // Until the server has read this piece (or closed): the next piece
    // comes in a read of its own.
    Pump(
        s, cl, [&] { return closed() || Pending(sfd) == 0; }, "server stopped reading");
  }
  if (control & 0x80) {
    ::close(cfd);
    cfd = -1;
    cl.eof = true;
    Pump(s, cl, closed, "server did not close after the client closed");
  } else {
    shutdown(cfd, SHUT_WR);
    Pump(
        s, cl, [&] { return closed() && cl.eof; }, "server did not close after end of input");
  }
  // Work in flight and close callbacks: let them finish.
  Pump(
      s, cl, [&] { return s.loop.active_reqs.count == 0; }, "work did not finish");
  uv_run(&s.loop, UV_RUN_NOWAIT);
  if (cfd >= 0) ::close(cfd);
  if (cl.bad) Die("the server's answer is not a valid HTTP response");
  return 0;
}
