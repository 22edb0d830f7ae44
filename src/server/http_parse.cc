// Request framing: the http-parser callbacks that build an HttpRequest (with
// the header and body limits), request target and query decoding, and the
// small HTTP helpers of handler.h.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <climits>
#include <string>

#include "http_internal.h"

namespace aidbd {

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

}  // namespace

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

// --- parser callbacks ---------------------------------------------------------

bool ConnOps::AddHeaderBytes(HttpServer::Conn* c, size_t n) {
  c->header_bytes += n;
  if (c->header_bytes > c->server->limits_.max_header_bytes) {
    c->error_status = 431;
    c->error_message = "request line and headers exceed " +
                       std::to_string(c->server->limits_.max_header_bytes) + " bytes";
    return false;
  }
  return true;
}

int ConnOps::OnMessageBegin(http_parser* p) {
  auto* c = Of(p);
  c->cur = std::make_unique<HttpRequest>();
  c->field.clear();
  c->in_value = false;
  c->in_trailer = false;
  c->header_bytes = 0;
  if (c->timer_mode != TimerMode::kRequest) ArmTimer(c, TimerMode::kRequest);
  return 0;
}

int ConnOps::OnUrl(http_parser* p, const char* at, size_t len) {
  auto* c = Of(p);
  if (!AddHeaderBytes(c, len)) return -1;
  c->cur->url.append(at, len);
  return 0;
}

int ConnOps::OnHeaderField(http_parser* p, const char* at, size_t len) {
  auto* c = Of(p);
  if (!AddHeaderBytes(c, len)) return -1;
  // Trailer fields (after a chunked body) are not headers: an API key or a
  // Content-Type there must not count. http-parser reports them alike.
  if (c->in_trailer) return 0;
  if (c->in_value) {
    c->in_value = false;
    c->field.clear();
  }
  for (size_t i = 0; i < len; ++i)
    c->field.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(at[i]))));
  return 0;
}

int ConnOps::OnHeaderValue(http_parser* p, const char* at, size_t len) {
  auto* c = Of(p);
  if (!AddHeaderBytes(c, len)) return -1;
  if (c->in_trailer) return 0;
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

int ConnOps::OnHeadersComplete(http_parser* p) {
  auto* c = Of(p);
  HttpRequest* r = c->cur.get();
  c->in_trailer = true;
  // Whitespace around a field value is not part of it (RFC 9110, 5.5);
  // http-parser drops the leading one only, so "api-key: KEY " missed.
  for (auto& h : r->headers) {
    std::string& v = h.second;
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.pop_back();
  }
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

int ConnOps::OnBody(http_parser* p, const char* at, size_t len) {
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

int ConnOps::OnChunkHeader(http_parser* p) {
  // A chunk that announces more than the body may still hold: refused now,
  // not once its bytes have crawled in.
  auto* c = Of(p);
  size_t limit = c->server->limits_.max_body_bytes;
  if (p->content_length > limit - std::min(limit, c->cur->body.size())) {
    c->error_status = 413;
    c->error_message = "request body exceeds the limit of " + std::to_string(limit) + " bytes";
    return -1;
  }
  return 0;
}

int ConnOps::OnMessageComplete(http_parser* p) {
  auto* c = Of(p);
  c->cur->body.reserve(c->cur->body.size() + kBodyPadding);
  c->ready = std::move(c->cur);
  // One request at a time: the rest of the input waits in `in` until this
  // one has been answered (pipelining with back-pressure).
  http_parser_pause(p, 1);
  return 0;
}

http_parser_settings ConnOps::settings = [] {
  http_parser_settings s;
  http_parser_settings_init(&s);
  s.on_message_begin = ConnOps::OnMessageBegin;
  s.on_url = ConnOps::OnUrl;
  s.on_header_field = ConnOps::OnHeaderField;
  s.on_header_value = ConnOps::OnHeaderValue;
  s.on_headers_complete = ConnOps::OnHeadersComplete;
  s.on_body = ConnOps::OnBody;
  s.on_chunk_header = ConnOps::OnChunkHeader;
  s.on_message_complete = ConnOps::OnMessageComplete;
  return s;
}();

}  // namespace aidbd
