#include "core/status.h"

#include <cstring>

namespace aidb {

Status Status::IOErrorFromErrno(std::string_view context, int err) {
  std::string m(context);
  m += ": ";
  m += std::strerror(err);
  return Status(Code::kIOError, m);
}

const char* Status::CodeName(Code c) noexcept {
  switch (c) {
    case Code::kOk: return "OK";
    case Code::kInvalidArgument: return "INVALID_ARGUMENT";
    case Code::kNotFound: return "NOT_FOUND";
    case Code::kAlreadyExists: return "ALREADY_EXISTS";
    case Code::kDimensionMismatch: return "DIMENSION_MISMATCH";
    case Code::kIOError: return "IO_ERROR";
    case Code::kCorruption: return "CORRUPTION";
    case Code::kMisuse: return "MISUSE";
    case Code::kNoMemory: return "NO_MEMORY";
    case Code::kUnsupported: return "UNSUPPORTED";
    case Code::kInternal: return "INTERNAL";
    case Code::kBusy: return "BUSY";
  }
  return "UNKNOWN";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string s = CodeName(code());
  s += ": ";
  s += message();
  return s;
}

}  // namespace aidb
