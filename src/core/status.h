// Status: the result of every fallible internal operation (LevelDB style).
// The OK path is a null pointer; errors carry a code and a message. Codes map
// one-to-one onto the AIDB_* status codes of the C API.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace aidb {

class [[nodiscard]] Status {
 public:
  enum class Code : int {
    kOk = 0,
    kInvalidArgument = 1,
    kNotFound = 2,
    kAlreadyExists = 3,
    kDimensionMismatch = 4,
    kIOError = 5,
    kCorruption = 6,
    kMisuse = 7,
    kNoMemory = 8,
    kUnsupported = 9,
    kInternal = 10,
    kBusy = 11,
  };

  Status() noexcept = default;
  Status(const Status& o) : rep_(o.rep_ ? std::make_unique<Rep>(*o.rep_) : nullptr) {}
  Status& operator=(const Status& o) {
    if (this != &o) rep_ = o.rep_ ? std::make_unique<Rep>(*o.rep_) : nullptr;
    return *this;
  }
  Status(Status&&) noexcept = default;
  Status& operator=(Status&&) noexcept = default;

  static Status OK() { return Status(); }
  static Status InvalidArgument(std::string_view m) { return Status(Code::kInvalidArgument, m); }
  static Status NotFound(std::string_view m) { return Status(Code::kNotFound, m); }
  static Status AlreadyExists(std::string_view m) { return Status(Code::kAlreadyExists, m); }
  static Status DimensionMismatch(std::string_view m) {
    return Status(Code::kDimensionMismatch, m);
  }
  static Status IOError(std::string_view m) { return Status(Code::kIOError, m); }
  // An I/O error from a failed system call: "<context>: <strerror(err)>".
  static Status IOErrorFromErrno(std::string_view context, int err);
  static Status Corruption(std::string_view m) { return Status(Code::kCorruption, m); }
  static Status Misuse(std::string_view m) { return Status(Code::kMisuse, m); }
  static Status NoMemory(std::string_view m) { return Status(Code::kNoMemory, m); }
  static Status Unsupported(std::string_view m) { return Status(Code::kUnsupported, m); }
  static Status Internal(std::string_view m) { return Status(Code::kInternal, m); }
  static Status Busy(std::string_view m) { return Status(Code::kBusy, m); }

  bool ok() const noexcept { return rep_ == nullptr; }
  Code code() const noexcept { return rep_ ? rep_->code : Code::kOk; }
  const std::string& message() const noexcept {
    static const std::string kEmpty;
    return rep_ ? rep_->message : kEmpty;
  }
  bool IsInvalidArgument() const noexcept { return code() == Code::kInvalidArgument; }
  bool IsNotFound() const noexcept { return code() == Code::kNotFound; }
  bool IsAlreadyExists() const noexcept { return code() == Code::kAlreadyExists; }
  bool IsDimensionMismatch() const noexcept { return code() == Code::kDimensionMismatch; }
  bool IsIOError() const noexcept { return code() == Code::kIOError; }
  bool IsCorruption() const noexcept { return code() == Code::kCorruption; }
  bool IsMisuse() const noexcept { return code() == Code::kMisuse; }
  bool IsUnsupported() const noexcept { return code() == Code::kUnsupported; }

  // A copy with "<prefix>: " in front of the message (same code).
  Status WithContext(std::string_view prefix) const {
    if (ok()) return Status();
    std::string m(prefix);
    m += ": ";
    m += rep_->message;
    return Status(rep_->code, m);
  }

  // "OK" or "<CODE_NAME>: <message>".
  std::string ToString() const;
  static const char* CodeName(Code c) noexcept;

 private:
  struct Rep {
    Code code;
    std::string message;
  };
  Status(Code c, std::string_view m) : rep_(std::make_unique<Rep>(Rep{c, std::string(m)})) {}
  std::unique_ptr<Rep> rep_;
};

}  // namespace aidb

// Returns early from the enclosing function when `expr` is not OK.
#define AIDB_RETURN_IF_ERROR(expr)       \
  do {                                   \
    ::aidb::Status _aidb_st = (expr);    \
    if (!_aidb_st.ok()) return _aidb_st; \
  } while (0)
