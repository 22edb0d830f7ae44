#include "storage/wal.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <deque>
#include <shared_mutex>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/coding.h"
#include "core/log.h"
#include "storage/crc32c.h"
#include "storage/file.h"

namespace aidb::storage {
namespace {

// A group stops growing past this many bytes (unless its first record alone is
// larger) or records, so one slow leader does not hold many callers hostage.
constexpr uint64_t kMaxGroupBytes = 8u << 20;
constexpr size_t kMaxGroupRecords = 1024;

// One Commit call waiting in the queue.
struct Writer {
  uint8_t op;
  std::string_view body;
  const std::function<void(uint64_t)>* apply;
  uint64_t lsn = 0;
  Status status;
  bool done = false;
  std::condition_variable cv;
};

}  // namespace

struct Wal::Impl {
  std::string path;
  std::string lsn_path;
  WalOptions opts;
  int fd = -1;

  // Lock order: file_mu before mu. Readers of the file (Read) hold file_mu
  // shared; anything that shrinks the committed part of the file holds it
  // exclusively. Read never takes mu.
  std::shared_mutex file_mu;

  std::mutex mu;
  std::condition_variable excl_cv;  // exclusive ended / queue drained
  std::deque<Writer*> queue;        // front = the current leader's group
  bool exclusive = false;
  bool scanned = false;  // last LSN and end of file known
  uint64_t end = 0;      // file size as written by us
  uint64_t next_lsn = 1;
  uint64_t last_lsn = 0;
  Status sticky;  // file state unknown after a failed cleanup or sync
  std::optional<int64_t> last_truncate_ns;
  uint64_t bytes_since_truncate = 0;
  uint64_t growth_mark = 0;  // end / growth_step when last logged
  int64_t last_ts = 0;       // newest record timestamp written (leader only)

  std::atomic<uint64_t> committed_end{0};  // end of the last fully committed group
  // Batch / none modes: groups written vs synced.
  std::atomic<uint64_t> written_gen{0};
  std::atomic<uint64_t> synced_gen{0};
  std::mutex sync_mu;  // one fdatasync at a time (Sync and the syncer)

  std::thread syncer;
  std::mutex syncer_mu;
  std::condition_variable syncer_cv;
  bool syncer_stop = false;

  // Leader scratch (only the leader touches these).
  std::vector<uint8_t> headers;
  std::vector<struct iovec> iov;
  std::vector<Writer*> group;

  Status WriteGroup(uint64_t offset, size_t n_iov);
  Status ScanAndCut(const std::function<Status(const WalRecord&)>& fn, WalReadStats* st);
  Status SyncIfDirty();
  void SyncerLoop();
  void EmitGrowth(uint64_t old_mark, uint64_t new_mark, uint64_t size);
};

Status Wal::Impl::WriteGroup(uint64_t offset, size_t n_iov) {
  struct iovec* v = iov.data();
  size_t cnt = n_iov;
  while (cnt > 0) {
    int n = static_cast<int>(std::min<size_t>(cnt, IOV_MAX));
    ssize_t r = ::pwritev(fd, v, n, static_cast<off_t>(offset));
    if (r < 0) {
      if (errno == EINTR) continue;
      return Status::IOErrorFromErrno("write " + path, errno);
    }
    if (r == 0) return Status::IOError("write " + path + ": wrote 0 bytes");
    offset += static_cast<uint64_t>(r);
    size_t left = static_cast<size_t>(r);
    while (cnt > 0 && left >= v->iov_len) {
      left -= v->iov_len;
      ++v;
      --cnt;
    }
    if (left > 0) {
      v->iov_base = static_cast<char*>(v->iov_base) + left;
      v->iov_len -= left;
    }
  }
  return Status::OK();
}

Status Wal::Impl::ScanAndCut(const std::function<Status(const WalRecord&)>& fn, WalReadStats* st) {
  std::unique_lock<std::shared_mutex> f(file_mu);
  *st = WalReadStats();
  AIDB_RETURN_IF_ERROR(ReadWalFd(fd, path, UINT64_MAX, opts.mmap_threshold, fn, st));
  if (st->torn_tail) {
    if (::ftruncate(fd, static_cast<off_t>(st->valid_bytes)) != 0) {
      return Status::IOErrorFromErrno("cut torn tail of " + path, errno);
    }
    AIDB_RETURN_IF_ERROR(Fsync(fd, path));
  }
  std::lock_guard<std::mutex> l(mu);
  end = st->valid_bytes;
  committed_end.store(end);
  last_lsn = std::max(last_lsn, st->last_lsn);
  next_lsn = std::max(next_lsn, last_lsn + 1);
  growth_mark = end / opts.growth_step;
  last_ts = std::max(last_ts, st->last_timestamp_ns);
  scanned = true;
  return Status::OK();
}

Status Wal::Impl::SyncIfDirty() {
  std::lock_guard<std::mutex> s(sync_mu);
  uint64_t gen = written_gen.load();
  if (gen == synced_gen.load()) return Status::OK();
  Status st = Fdatasync(fd, path);
  if (!st.ok()) {
    // Records of these groups were acknowledged and applied, but we cannot know
    // what reached the disk; never pretend a later sync covers them.
    {
      std::lock_guard<std::mutex> l(mu);
      if (sticky.ok()) sticky = st.WithContext("WAL unusable after a failed background sync");
    }
    log::Emit(log::Level::kError, log::kStorageTarget, "wal_sync_failed",
              log::Fields()
                  .Add("collection", opts.collection)
                  .Add("path", path)
                  .Add("error", st.message())
                  .str());
    return st;
  }
  uint64_t cur = synced_gen.load();
  while (cur < gen && !synced_gen.compare_exchange_weak(cur, gen)) {
  }
  return Status::OK();
}

void Wal::Impl::SyncerLoop() {
  std::unique_lock<std::mutex> l(syncer_mu);
  while (!syncer_stop) {
    syncer_cv.wait_for(
        l, std::chrono::milliseconds(opts.batch_interval_ms ? opts.batch_interval_ms : 1));
    if (syncer_stop) break;
    l.unlock();
    (void)SyncIfDirty();
    l.lock();
  }
}

void Wal::Impl::EmitGrowth(uint64_t old_mark, uint64_t new_mark, uint64_t size) {
  for (uint64_t m = old_mark + 1; m <= new_mark; ++m) {
    log::Emit(log::Level::kInfo, log::kStorageTarget, "wal_growth",
              log::Fields()
                  .Add("collection", opts.collection)
                  .Add("path", path)
                  .Add("size_bytes", size)
                  .Add("threshold_bytes", m * opts.growth_step)
                  .str());
  }
}

Status Wal::Open(const std::string& path, const WalOptions& opts, std::unique_ptr<Wal>* out) {
  if (opts.growth_step == 0) return Status::InvalidArgument("WAL growth_step must be > 0");
  std::unique_ptr<Wal> w(new Wal());
  w->impl_ = std::make_unique<Impl>();
  Impl& im = *w->impl_;
  im.path = path;
  im.lsn_path = path + ".lsn";
  im.opts = opts;

  // The LSN sidecar: 8 bytes LE + CRC32C of them.
  std::string side;
  Status s = ReadFile(im.lsn_path, &side);
  if (s.ok()) {
    if (side.size() != kWalSidecarSize ||
        crc32c::Value(side.data(), 8) !=
            DecodeFixed32(reinterpret_cast<const uint8_t*>(side.data()) + 8)) {
      return Status::Corruption("WAL LSN sidecar " + im.lsn_path + " is damaged (" +
                                std::to_string(side.size()) + " bytes)");
    }
    im.last_lsn = DecodeFixed64(reinterpret_cast<const uint8_t*>(side.data()));
    im.next_lsn = im.last_lsn + 1;
  } else if (!s.IsNotFound()) {
    return s;
  }

  bool existed = FileExists(path);
  im.fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (im.fd < 0) return Status::IOErrorFromErrno("open " + path, errno);
  if (!existed) AIDB_RETURN_IF_ERROR(FsyncDir(DirName(path)));
  struct stat sb;
  if (::fstat(im.fd, &sb) != 0) return Status::IOErrorFromErrno("fstat " + path, errno);
  im.end = static_cast<uint64_t>(sb.st_size);
  im.committed_end.store(im.end);
  im.growth_mark = im.end / opts.growth_step;
  im.scanned = im.end == 0;
  if (opts.durability == Durability::kBatch) {
    im.syncer = std::thread([&im] { im.SyncerLoop(); });
  }
  *out = std::move(w);
  return Status::OK();
}

Wal::~Wal() {
  if (!impl_) return;
  Impl& im = *impl_;
  if (im.syncer.joinable()) {
    {
      std::lock_guard<std::mutex> l(im.syncer_mu);
      im.syncer_stop = true;
    }
    im.syncer_cv.notify_all();
    im.syncer.join();
  }
  if (im.fd >= 0) {
    if (im.opts.durability == Durability::kBatch) (void)im.SyncIfDirty();
    ::close(im.fd);
  }
}

Status Wal::Commit(uint8_t op, std::string_view body, const std::function<void(uint64_t)>& apply) {
  Impl& im = *impl_;
  if (op == 0) return Status::InvalidArgument("WAL record op must not be 0");
  if (body.size() > kMaxRecordBody) {
    return Status::InvalidArgument("WAL record body of " + std::to_string(body.size()) +
                                   " bytes exceeds the 1 GiB limit");
  }
  Writer w;
  w.op = op;
  w.body = body;
  w.apply = &apply;

  std::unique_lock<std::mutex> l(im.mu);
  im.excl_cv.wait(l, [&] { return !im.exclusive; });
  im.queue.push_back(&w);
  while (!w.done && im.queue.front() != &w) w.cv.wait(l);
  if (w.done) return std::move(w.status);

  // Leader. Fails alone (the next in line retries) when the log is unusable.
  auto fail_alone = [&](Status s) {
    im.queue.pop_front();
    if (!im.queue.empty()) {
      im.queue.front()->cv.notify_one();
    } else {
      im.excl_cv.notify_all();
    }
    return s;
  };
  if (!im.sticky.ok()) return fail_alone(im.sticky);
  if (!im.scanned) {
    l.unlock();
    WalReadStats st;
    Status s = im.ScanAndCut([](const WalRecord&) { return Status::OK(); }, &st);
    l.lock();
    if (!s.ok()) return fail_alone(s);
  }

  // Form the group and assign LSNs.
  std::vector<Writer*>& group = im.group;
  group.clear();
  uint64_t bytes = 0;
  for (Writer* x : im.queue) {
    uint64_t rec = kWalHeaderSize + x->body.size();
    if (!group.empty() && (bytes + rec > kMaxGroupBytes || group.size() >= kMaxGroupRecords)) break;
    group.push_back(x);
    bytes += rec;
  }
  for (Writer* x : group) x->lsn = im.next_lsn++;
  const uint64_t start = im.end;
  l.unlock();

  // Encode and write without the lock; bodies stay in the callers' memory.
  const int64_t ts = std::max(UnixNowNs(), im.last_ts);
  im.headers.resize(group.size() * kWalHeaderSize);
  im.iov.resize(group.size() * 2);
  for (size_t i = 0; i < group.size(); ++i) {
    uint8_t* h = im.headers.data() + i * kWalHeaderSize;
    EncodeRecordHeader(h, group[i]->lsn, ts, group[i]->op, group[i]->body);
    im.iov[2 * i] = {h, kWalHeaderSize};
    im.iov[2 * i + 1] = {const_cast<char*>(group[i]->body.data()), group[i]->body.size()};
  }
  Status s = im.WriteGroup(start, im.iov.size());
  if (s.ok() && im.opts.durability == Durability::kFsync) s = Fdatasync(im.fd, im.path);
  Status cleanup;
  if (!s.ok() && ::ftruncate(im.fd, static_cast<off_t>(start)) != 0) {
    cleanup =
        Status::IOErrorFromErrno("WAL unusable: cannot cut a failed write off " + im.path, errno);
  }

  l.lock();
  uint64_t old_mark = im.growth_mark, new_mark = old_mark;
  if (s.ok()) {
    im.last_ts = ts;
    im.end = start + bytes;
    im.last_lsn = group.back()->lsn;
    im.bytes_since_truncate += bytes;
    new_mark = im.end / im.opts.growth_step;
    im.growth_mark = std::max(old_mark, new_mark);
    im.committed_end.store(im.end);
    if (im.opts.durability != Durability::kFsync) im.written_gen.fetch_add(1);
  } else if (!cleanup.ok()) {
    im.sticky = cleanup;
  }
  const uint64_t size_now = im.end;
  l.unlock();

  if (s.ok()) {
    // Applies in LSN order; the group still heads the queue, so no later
    // group can apply (or even write) before these finish.
    for (Writer* x : group) {
      try {
        (*x->apply)(x->lsn);
      } catch (const std::exception& e) {
        x->status = Status::Internal(std::string("WAL apply callback threw: ") + e.what());
      } catch (...) {
        x->status = Status::Internal("WAL apply callback threw");
      }
    }
    if (new_mark > old_mark) im.EmitGrowth(old_mark, new_mark, size_now);
  } else {
    log::Emit(log::Level::kError, log::kStorageTarget, "wal_write_failed",
              log::Fields()
                  .Add("collection", im.opts.collection)
                  .Add("path", im.path)
                  .Add("records", static_cast<unsigned long long>(group.size()))
                  .Add("error", s.message())
                  .str());
    for (Writer* x : group) x->status = s;
  }

  l.lock();
  Status mine = std::move(w.status);
  for (size_t i = 0; i < group.size(); ++i) {
    Writer* x = im.queue.front();
    im.queue.pop_front();
    if (x != &w) {
      x->done = true;
      x->cv.notify_one();
    }
  }
  if (!im.queue.empty()) {
    im.queue.front()->cv.notify_one();
  } else {
    im.excl_cv.notify_all();
  }
  return mine;
}

Status Wal::Exclusive(const std::function<Status()>& fn) {
  Impl& im = *impl_;
  {
    std::unique_lock<std::mutex> l(im.mu);
    im.excl_cv.wait(l, [&] { return !im.exclusive; });
    im.exclusive = true;
    im.excl_cv.wait(l, [&] { return im.queue.empty(); });
  }
  struct Release {
    Impl& im;
    ~Release() {
      std::lock_guard<std::mutex> l(im.mu);
      im.exclusive = false;
      im.excl_cv.notify_all();
    }
  } release{im};
  return fn();
}

Status Wal::Replay(const std::function<Status(const WalRecord&)>& fn, WalReadStats* stats) {
  WalReadStats local;
  return impl_->ScanAndCut(fn, stats ? stats : &local);
}

Status Wal::CutTail(uint64_t offset) {
  Impl& im = *impl_;
  std::unique_lock<std::shared_mutex> f(im.file_mu);
  struct stat sb;
  if (::fstat(im.fd, &sb) != 0) return Status::IOErrorFromErrno("fstat " + im.path, errno);
  if (offset > static_cast<uint64_t>(sb.st_size)) {
    return Status::InvalidArgument("WAL " + im.path + ": cannot cut at offset " +
                                   std::to_string(offset) + " beyond end of file (" +
                                   std::to_string(sb.st_size) + " bytes)");
  }
  if (::ftruncate(im.fd, static_cast<off_t>(offset)) != 0) {
    return Status::IOErrorFromErrno("truncate " + im.path, errno);
  }
  AIDB_RETURN_IF_ERROR(Fsync(im.fd, im.path));
  std::lock_guard<std::mutex> l(im.mu);
  im.end = offset;
  im.committed_end.store(offset);
  im.growth_mark = offset / im.opts.growth_step;
  im.scanned = offset == 0;
  return Status::OK();
}

Status Wal::Read(const std::function<Status(const WalRecord&)>& fn, WalReadStats* stats) {
  Impl& im = *impl_;
  WalReadStats local;
  WalReadStats* st = stats ? stats : &local;
  *st = WalReadStats();
  std::shared_lock<std::shared_mutex> f(im.file_mu);
  return ReadWalFd(im.fd, im.path, im.committed_end.load(), im.opts.mmap_threshold, fn, st);
}

Status Wal::Truncate() {
  Impl& im = *impl_;
  std::unique_lock<std::shared_mutex> f(im.file_mu);
  uint64_t file_lsn = 0;
  bool scanned;
  {
    std::lock_guard<std::mutex> l(im.mu);
    scanned = im.scanned;
  }
  if (!scanned) {
    // Records never scanned still own their LSNs: find the last one so the
    // sidecar covers it (a corrupt file counts up to its last valid record).
    WalReadStats st;
    (void)ReadWalFd(
        im.fd, im.path, UINT64_MAX, im.opts.mmap_threshold,
        [](const WalRecord&) { return Status::OK(); }, &st);
    file_lsn = st.last_lsn;
  }
  uint64_t hi, size_before;
  {
    std::lock_guard<std::mutex> l(im.mu);
    hi = std::max({im.last_lsn, im.next_lsn - 1, file_lsn});
    size_before = im.end;
  }
  uint8_t side[kWalSidecarSize];
  EncodeFixed64(side, hi);
  EncodeFixed32(side + 8, crc32c::Value(side, 8));
  AIDB_RETURN_IF_ERROR(AtomicWriteFile(
      im.lsn_path, std::string_view(reinterpret_cast<const char*>(side), kWalSidecarSize)));
  {
    std::lock_guard<std::mutex> l(im.mu);
    im.last_lsn = hi;
    im.next_lsn = hi + 1;
  }
  if (::ftruncate(im.fd, 0) != 0) return Status::IOErrorFromErrno("truncate " + im.path, errno);
  const uint64_t gen = im.written_gen.load();
  {
    std::lock_guard<std::mutex> l(im.mu);
    im.end = 0;
    im.committed_end.store(0);
    im.scanned = true;
    im.growth_mark = 0;
  }
  AIDB_RETURN_IF_ERROR(Fsync(im.fd, im.path));
  uint64_t cur = im.synced_gen.load();
  while (cur < gen && !im.synced_gen.compare_exchange_weak(cur, gen)) {
  }
  {
    std::lock_guard<std::mutex> l(im.mu);
    im.last_truncate_ns = UnixNowNs();
    im.bytes_since_truncate = 0;
  }
  log::Emit(log::Level::kInfo, log::kStorageTarget, "wal_truncated",
            log::Fields()
                .Add("collection", im.opts.collection)
                .Add("path", im.path)
                .Add("size_before", size_before)
                .Add("last_lsn", hi)
                .str());
  return Status::OK();
}

void Wal::AdvanceLsn(uint64_t lsn) {
  Impl& im = *impl_;
  std::lock_guard<std::mutex> l(im.mu);
  im.last_lsn = std::max(im.last_lsn, lsn);
  im.next_lsn = std::max(im.next_lsn, lsn + 1);
}

Status Wal::Sync() {
  Impl& im = *impl_;
  {
    std::lock_guard<std::mutex> l(im.mu);
    if (!im.sticky.ok()) return im.sticky;
  }
  if (im.opts.durability == Durability::kFsync) return Status::OK();
  return im.SyncIfDirty();
}

WalStats Wal::Stats() const {
  Impl& im = *impl_;
  std::lock_guard<std::mutex> l(im.mu);
  WalStats s;
  s.size_bytes = im.end;
  s.last_truncate_ns = im.last_truncate_ns;
  s.bytes_since_truncate = im.bytes_since_truncate;
  s.last_lsn = im.last_lsn;
  return s;
}

const std::string& Wal::path() const { return impl_->path; }

uint64_t Wal::last_lsn() const {
  std::lock_guard<std::mutex> l(impl_->mu);
  return impl_->last_lsn;
}

}  // namespace aidb::storage
