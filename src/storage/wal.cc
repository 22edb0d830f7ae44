#include "storage/wal.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
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

// Gathering (fsync mode, concurrent writers): before an fdatasync starts, it
// waits up to this share of the recent sync time (and at most
// kMaxGatherNs) for as many records as there were concurrent callers lately,
// so writers woken by the previous sync can join this one instead of the
// next. See Impl::SyncGroups.
constexpr double kGatherShare = 0.5;
constexpr int64_t kMaxGatherNs = 500'000;
// The concurrency estimate (most callers inside Commit at once) restarts
// every this many syncs, so it follows a load that shrinks.
constexpr uint64_t kPeakWindowSyncs = 256;

// Preallocated space is written from this buffer (zero pages, never written).
constexpr size_t kZeroChunk = 64u << 10;
alignas(4096) const uint8_t kZeros[kZeroChunk] = {};

// How many zero bytes to write after a group whose records take `bytes`
// (0: none): 16 times the group, at least 256 KiB, at most `want`, so the
// zeros cover many groups like it (one journal commit for the new size per
// 16 or more groups) without a small commit paying for megabytes. Never more
// than an eighth of the free space, so a nearly full disk gets no
// preallocation and fails on records, as before.
uint64_t PreallocAfter(int fd, uint64_t want, uint64_t bytes) {
  if (want == 0 || bytes * 2 > want) return 0;
  want = std::min(want, std::max<uint64_t>(256u << 10, bytes * 16));
  struct statfs fs;
  if (::fstatfs(fd, &fs) == 0) {
    const uint64_t free_bytes = static_cast<uint64_t>(fs.f_bavail) * fs.f_bsize;
    want = std::min(want, free_bytes / 8);
    if (bytes * 2 > want) return 0;
  }
  return want;
}

// One Commit call waiting in the queue.
struct Writer {
  uint8_t op;
  const std::string_view* parts;  // the body, concatenated
  size_t nparts;
  uint64_t size;  // of the body
  const std::function<void(uint64_t)>* apply;
  const std::function<void(uint64_t)>* prepare = nullptr;  // may be null
  const std::function<void()>* abort = nullptr;
  bool prepared = false;  // prepare ran: apply or abort must follow
  uint64_t lsn = 0;
  Status status;
  bool done = false;
  std::condition_variable cv;
};

// A group formed and not yet through the apply stage. Its leader waits on
// `cv`, woken only when it is to run the next fdatasync or its group is
// finished (no herd). Whichever thread holds the apply stage applies every
// ready group in order (Impl::DrainApplies), so a sync that makes several
// groups durable lets one thread apply them all and wake their writers once.
struct PendingGroup {
  uint64_t seq = 0;
  std::condition_variable cv;
  std::vector<Writer*> writers;  // in LSN order; writers[i]->lsn ascending
  uint64_t bytes = 0;            // of its records
  uint64_t end = 0;              // file offset just past its records
  bool written = false;          // its write succeeded
  bool durable = false;          // fsync mode: an fdatasync covering it succeeded
  bool failed = false;           // its write or a sync covering it failed (bytes cut off)
  bool ready = false;            // its leader is past write and prepare
  bool finished = false;         // through the apply stage; writers woken
  Status status;                 // when failed
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
  std::deque<Writer*> queue;        // writers not yet in a group
  bool exclusive = false;
  // The pipeline (Commit): groups formed / applied, in order.
  bool writing = false;   // a write leader is forming or writing a group
  bool cutting = false;   // a failed sync's groups are being cut off the file
  bool syncing = false;   // an fdatasync (fsync mode) is running
  bool applying = false;  // a thread is in DrainApplies' apply loop
  // Gathering (fsync mode): see kGatherShare.
  uint64_t callers = 0;                 // threads inside Commit
  uint64_t peak_callers = 0;            // most at once in this window
  uint64_t window_syncs = 0;            // syncs in this window
  uint64_t unsynced_records = 0;        // records of the groups in `unsynced`
  double sync_ns_avg = 0;               // moving average of fdatasync time
  bool gathering = false;               // a sync waits on gather_cv
  std::condition_variable gather_cv;    // a group was written
  uint64_t formed_seq = 0;              // groups formed so far
  uint64_t applied_seq = 0;             // groups through the apply stage
  uint64_t inflight = 0;                // groups formed and not through the apply stage
  uint64_t synced_end = 0;              // file offset up to which records are durable
  std::deque<PendingGroup*> unsynced;   // written, not yet durable, in file order
  std::deque<PendingGroup*> unapplied;  // formed, not yet applied, in group order
  bool scanned = false;                 // last LSN and end of file known
  uint64_t end = 0;                     // end of the last record (the logical size)
  uint64_t alloc_end = 0;               // file size as written by us: end + preallocated zeros
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

  Status WriteGroup(uint64_t offset, size_t n_iov);
  Status ScanAndCut(const std::function<Status(const WalRecord&)>& fn, WalReadStats* st);
  Status SyncIfDirty();
  Status Commit(uint8_t op, std::span<const std::string_view> body,
                const std::function<void(uint64_t)>* apply,
                const std::function<void(uint64_t)>* prepare, const std::function<void()>* abort);
  void SyncerLoop();
  // With mu held (l): while no other thread does, applies (or fails) every
  // group at the head of `unapplied` that may go through the apply stage,
  // in order, and finishes it (marks it, wakes its writers). Drops mu while
  // running callbacks.
  void DrainApplies(std::unique_lock<std::mutex>& l);
  // Runs one fdatasync covering every group written so far (mu held, syncing
  // set by the caller), then marks them durable or, on failure, failed.
  void SyncGroups(std::unique_lock<std::mutex>& l);
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
  alloc_end = st->torn_tail ? end : std::max(end, st->file_bytes);
  synced_end = end;
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
  im.alloc_end = im.end;
  im.synced_end = im.end;
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
    // Preallocated zeros off the end: a closed WAL is its records. Errors
    // are harmless (a reader takes trailing zeros for a clean end).
    if (im.scanned && im.sticky.ok() && im.alloc_end > im.end &&
        ::ftruncate(im.fd, static_cast<off_t>(im.end)) == 0) {
      (void)::fdatasync(im.fd);
    }
    ::close(im.fd);
  }
}

Status Wal::Commit(uint8_t op, std::string_view body, const std::function<void(uint64_t)>& apply) {
  return impl_->Commit(op, std::span<const std::string_view>(&body, 1), &apply, nullptr, nullptr);
}

Status Wal::Commit(uint8_t op, std::span<const std::string_view> body,
                   const std::function<void(uint64_t)>& apply,
                   const std::function<void(uint64_t)>& prepare,
                   const std::function<void()>& abort) {
  return impl_->Commit(op, body, &apply, &prepare, &abort);
}

Status Wal::Impl::Commit(uint8_t op, std::span<const std::string_view> body,
                         const std::function<void(uint64_t)>* apply,
                         const std::function<void(uint64_t)>* prepare,
                         const std::function<void()>* abort) {
  Impl& im = *this;
  if (op == 0) return Status::InvalidArgument("WAL record op must not be 0");
  uint64_t size = 0;
  for (std::string_view p : body) size += p.size();
  if (size > kMaxRecordBody) {
    return Status::InvalidArgument("WAL record body of " + std::to_string(size) +
                                   " bytes exceeds the 1 GiB limit");
  }
  Writer w;
  w.op = op;
  w.parts = body.data();
  w.nparts = body.size();
  w.size = size;
  w.apply = apply;
  w.prepare = prepare;
  w.abort = abort;

  // Three stages, each group passing them in order, different groups in
  // different stages at once: write (one group at a time: the "write
  // leader"), sync (one fdatasync at a time, covering every group written
  // when it starts), apply (one group at a time, in group order). While the
  // leader of group N waits for its fdatasync, the leader of group N+1
  // writes, and group N-1 applies.
  std::unique_lock<std::mutex> l(im.mu);
  im.excl_cv.wait(l, [&] { return !im.exclusive; });
  im.queue.push_back(&w);
  im.peak_callers = std::max(im.peak_callers, ++im.callers);
  struct Leave {  // callers--, with mu held (every return below holds it)
    Impl& im;
    ~Leave() { --im.callers; }
  } leave{im};
  while (!w.done && (im.queue.front() != &w || im.writing || im.cutting)) w.cv.wait(l);
  if (w.done) return std::move(w.status);

  // Write leader. Fails alone (the next in line retries) when the log is
  // unusable.
  im.writing = true;
  auto next_writer = [&] {
    im.writing = false;
    if (!im.queue.empty()) im.queue.front()->cv.notify_one();
    im.excl_cv.notify_all();  // Exclusive, or a failed sync waiting to cut
  };
  auto fail_alone = [&](Status s) {
    im.queue.pop_front();
    next_writer();
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
  PendingGroup pg;
  std::vector<Writer*>& group = pg.writers;
  uint64_t bytes = 0;
  while (!im.queue.empty()) {
    Writer* x = im.queue.front();
    uint64_t rec = kWalHeaderSize + x->size;
    if (!group.empty() && (bytes + rec > kMaxGroupBytes || group.size() >= kMaxGroupRecords)) break;
    group.push_back(x);
    bytes += rec;
    im.queue.pop_front();
  }
  for (Writer* x : group) x->lsn = im.next_lsn++;
  const uint64_t seq = ++im.formed_seq;
  pg.seq = seq;
  pg.bytes = bytes;
  im.unapplied.push_back(&pg);
  ++im.inflight;
  const uint64_t start = im.end;
  // Preallocation (fsync mode): zeros after the records when they reach
  // past the zeros already there, written and synced with them.
  uint64_t zeros = 0;
  if (im.opts.durability == Durability::kFsync && start + bytes > im.alloc_end) {
    zeros = PreallocAfter(im.fd, im.opts.prealloc_bytes, bytes);
    if (zeros > 0) zeros += (4096 - (start + bytes + zeros) % 4096) % 4096;
  }
  l.unlock();

  // Encode and write without the lock; bodies stay in the callers' memory.
  const int64_t ts = std::max(UnixNowNs(), im.last_ts);
  im.headers.resize(group.size() * kWalHeaderSize);
  im.iov.clear();
  for (size_t i = 0; i < group.size(); ++i) {
    const Writer& x = *group[i];
    uint8_t* h = im.headers.data() + i * kWalHeaderSize;
    EncodeRecordHeaderParts(h, x.lsn, ts, x.op, x.parts, x.nparts);
    im.iov.push_back({h, kWalHeaderSize});
    for (size_t k = 0; k < x.nparts; ++k) {
      if (x.parts[k].empty()) continue;
      im.iov.push_back({const_cast<char*>(x.parts[k].data()), x.parts[k].size()});
    }
  }
  for (uint64_t z = 0; z < zeros; z += kZeroChunk) {
    im.iov.push_back({const_cast<uint8_t*>(kZeros), std::min<uint64_t>(kZeroChunk, zeros - z)});
  }
  Status s = im.WriteGroup(start, im.iov.size());
  Status cleanup;
  if (!s.ok() && ::ftruncate(im.fd, static_cast<off_t>(start)) != 0) {
    cleanup =
        Status::IOErrorFromErrno("WAL unusable: cannot cut a failed write off " + im.path, errno);
  }

  l.lock();
  const uint64_t group_end = start + bytes;
  pg.end = group_end;
  if (s.ok()) {
    pg.written = true;
    im.last_ts = ts;
    im.end = group_end;
    im.alloc_end = std::max(im.alloc_end, group_end + zeros);
    if (im.opts.durability != Durability::kFsync) {
      im.written_gen.fetch_add(1);
    } else {
      im.unsynced.push_back(&pg);
      im.unsynced_records += group.size();
      if (im.gathering) im.gather_cv.notify_one();
    }
  } else {
    pg.failed = true;
    pg.status = s;
    if (!cleanup.ok()) {
      im.sticky = cleanup;
    } else {
      im.alloc_end = start;
    }
  }
  next_writer();  // group N+1 may write while this one syncs

  // Prepare while the disk writes, when no earlier group is still to apply
  // (then nothing else prepares or applies until this group has: the apply
  // stage stops at a group that is not ready).
  bool has_prepare = false;
  for (Writer* x : group) has_prepare |= x->prepare != nullptr;
  if (s.ok() && has_prepare && im.applied_seq + 1 == seq) {
    l.unlock();
    if (im.opts.durability == Durability::kFsync) {
      (void)::sync_file_range(im.fd, static_cast<off_t>(start), static_cast<off_t>(bytes + zeros),
                              SYNC_FILE_RANGE_WRITE);
    }
    for (Writer* x : group) {
      if (x->prepare == nullptr) continue;
      (*x->prepare)(x->lsn);
      x->prepared = true;
    }
    l.lock();
  }
  pg.ready = true;

  // Sync and apply stages. In fsync mode a group may apply once an
  // fdatasync that started after its write has succeeded; whoever finishes
  // a sync, or makes a group ready, applies every ready group in order.
  while (true) {
    im.DrainApplies(l);
    if (pg.finished) break;
    if (im.opts.durability == Durability::kFsync && !pg.durable && !pg.failed && !im.syncing) {
      im.syncing = true;
      im.SyncGroups(l);
      continue;
    }
    pg.cv.wait(l);
  }
  Status mine = std::move(w.status);
  if (--im.inflight == 0 && im.queue.empty() && !im.writing) im.excl_cv.notify_all();
  return mine;
}

void Wal::Impl::SyncGroups(std::unique_lock<std::mutex>& l) {
  Impl& im = *this;
  // Gather: with concurrent writers, the groups written while the last sync
  // ran are here, but the writers that sync woke are still on their way
  // back. Without waiting, syncs alternate between two halves of the
  // writers. Wait a little (a share of a sync) for as many records as
  // callers were seen lately; one writer (peak 1) never waits.
  if (++im.window_syncs >= kPeakWindowSyncs) {
    im.window_syncs = 0;
    im.peak_callers = im.callers;
  }
  if (im.peak_callers > 1 && im.unsynced_records < im.peak_callers && im.sync_ns_avg > 0) {
    const auto budget = std::chrono::nanoseconds(
        std::min<int64_t>(kMaxGatherNs, static_cast<int64_t>(im.sync_ns_avg * kGatherShare)));
    const auto deadline = std::chrono::steady_clock::now() + budget;
    im.gathering = true;
    while (im.unsynced_records < im.peak_callers && !im.unsynced.empty()) {
      if (im.gather_cv.wait_until(l, deadline) == std::cv_status::timeout) {
        // Fewer writers than estimated: expect only those that came (the
        // estimate grows again as callers enter), so a writer left alone
        // after a burst waits once, not for the rest of the window.
        im.peak_callers = std::max<uint64_t>(1, im.unsynced_records);
        break;
      }
    }
    im.gathering = false;
  }
  if (im.unsynced.empty()) {  // nothing to sync (a failed sync cut them meanwhile)
    im.syncing = false;
    return;
  }
  const uint64_t target = im.end;
  l.unlock();
  const auto t0 = std::chrono::steady_clock::now();
  Status st = Fdatasync(im.fd, im.path);
  const double ns = static_cast<double>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0)
          .count());
  l.lock();
  im.sync_ns_avg = im.sync_ns_avg == 0 ? ns : 0.875 * im.sync_ns_avg + 0.125 * ns;
  if (st.ok()) {
    im.synced_end = std::max(im.synced_end, target);
    while (!im.unsynced.empty() && im.unsynced.front()->end <= target) {
      im.unsynced.front()->durable = true;
      im.unsynced_records -= im.unsynced.front()->writers.size();
      im.unsynced.pop_front();
    }
  } else {
    // Every group written and not yet durable fails, and its bytes are
    // cut off the file. No other sync may run meanwhile (it could pass
    // for theirs), nor a write.
    im.cutting = true;
    im.excl_cv.wait(l, [&] { return !im.writing; });
    for (PendingGroup* g : im.unsynced) {
      g->failed = true;
      g->status = st;
    }
    im.unsynced.clear();
    im.unsynced_records = 0;
    if (::ftruncate(im.fd, static_cast<off_t>(im.synced_end)) != 0 && im.sticky.ok()) {
      im.sticky =
          Status::IOErrorFromErrno("WAL unusable: cannot cut a failed write off " + im.path, errno);
    }
    im.end = im.synced_end;
    im.alloc_end = im.synced_end;
    im.cutting = false;
    if (!im.queue.empty()) im.queue.front()->cv.notify_one();
  }
  im.syncing = false;
  // The next sync is run by the first group still waiting for one.
  if (!im.unsynced.empty()) im.unsynced.front()->cv.notify_one();
}

void Wal::Impl::DrainApplies(std::unique_lock<std::mutex>& l) {
  Impl& im = *this;
  const bool fsync = im.opts.durability == Durability::kFsync;
  while (!im.applying && !im.unapplied.empty()) {
    PendingGroup& g = *im.unapplied.front();
    if (!g.ready || (fsync && !g.failed && !g.durable)) return;
    im.applying = true;
    const bool ok = !g.failed;
    uint64_t old_mark = im.growth_mark, new_mark = old_mark;
    if (ok) {
      im.last_lsn = g.writers.back()->lsn;
      im.bytes_since_truncate += g.bytes;
      new_mark = g.end / im.opts.growth_step;
      im.growth_mark = std::max(old_mark, new_mark);
      im.committed_end.store(g.end);
    }
    l.unlock();
    if (ok) {
      // Applies in LSN order: no later group applies before these finish.
      for (Writer* x : g.writers) {
        try {
          (*x->apply)(x->lsn);
        } catch (const std::exception& e) {
          x->status = Status::Internal(std::string("WAL apply callback threw: ") + e.what());
        } catch (...) {
          x->status = Status::Internal("WAL apply callback threw");
        }
      }
      if (new_mark > old_mark) im.EmitGrowth(old_mark, new_mark, g.end);
    } else {
      log::Emit(log::Level::kError, log::kStorageTarget, "wal_write_failed",
                log::Fields()
                    .Add("collection", im.opts.collection)
                    .Add("path", im.path)
                    .Add("records", static_cast<unsigned long long>(g.writers.size()))
                    .Add("error", g.status.message())
                    .str());
      for (Writer* x : g.writers) {
        x->status = g.status;
        if (x->prepared) (*x->abort)();
      }
    }
    l.lock();
    im.applying = false;
    im.applied_seq = g.seq;
    im.unapplied.pop_front();
    // Wake the writers (the leader through the group's cv). Nothing of g is
    // touched after this: its leader may return once mu is released.
    g.finished = true;
    Writer* leader = g.writers.front();
    for (Writer* x : g.writers) {
      if (x == leader) continue;
      x->done = true;
      x->cv.notify_one();
    }
    g.cv.notify_one();
  }
}

Status Wal::Exclusive(const std::function<Status()>& fn) {
  Impl& im = *impl_;
  {
    std::unique_lock<std::mutex> l(im.mu);
    im.excl_cv.wait(l, [&] { return !im.exclusive; });
    im.exclusive = true;
    im.excl_cv.wait(l, [&] { return im.queue.empty() && im.inflight == 0 && !im.writing; });
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
  im.alloc_end = offset;
  im.synced_end = offset;
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
    im.alloc_end = 0;
    im.synced_end = 0;
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
  s.size_bytes = im.committed_end.load();  // records of completed commits
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
