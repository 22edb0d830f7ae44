#include "storage/wal_iterator.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "storage/file.h"

namespace aidb::storage {

Status WalIterator::Open(Wal* wal, uint64_t from_lsn, std::unique_ptr<WalIterator>* out) {
  std::unique_ptr<WalIterator> it(new WalIterator());
  if (wal != nullptr) {
    it->path_ = wal->path();
    WalReadStats stats;
    AIDB_RETURN_IF_ERROR(wal->Read(
        [&](const WalRecord& r) {
          if (r.lsn >= from_lsn) {
            WalRecord rec = r;
            rec.body = std::string_view(nullptr, r.body.size());
            it->records_.push_back(rec);
          }
          return Status::OK();
        },
        &stats));
    it->fd_ = ::open(it->path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (it->fd_ < 0 && !it->records_.empty()) {
      return Status::IOErrorFromErrno("cannot open " + it->path_, errno);
    }
  }
  *out = std::move(it);
  return Status::OK();
}

WalIterator::~WalIterator() {
  if (fd_ >= 0) ::close(fd_);
}

Status WalIterator::Peek(WalRecord* rec, bool* has_record) {
  *has_record = false;
  if (next_ >= records_.size()) return Status::OK();
  const WalRecord& r = records_[next_];
  // Re-read header + body; the LSN check catches a file that a snapshot
  // truncated (and new writes refilled) since the iterator was opened.
  buf_.resize(kWalHeaderSize + r.body.size());
  Status s = PReadAll(fd_, buf_.data(), buf_.size(), r.offset, path_);
  uint64_t lsn = 0;
  if (s.ok()) std::memcpy(&lsn, buf_.data() + kWalLsnOffset, sizeof(lsn));
  if (!s.ok() || lsn != r.lsn) {
    return Status::NotFound("WAL " + path_ +
                            " changed during iteration (truncated by a snapshot); reopen the "
                            "iterator from LSN " +
                            std::to_string(r.lsn));
  }
  *rec = r;
  rec->body = std::string_view(buf_.data() + kWalHeaderSize, r.body.size());
  *has_record = true;
  return Status::OK();
}

}  // namespace aidb::storage
