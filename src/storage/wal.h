// The write-ahead log of one collection: the group-commit writer. The file
// format is in log_format.h, reading in wal_reader.h.
//
// Sidecar: "<path>.lsn" holds the last LSN before the latest truncation (8 bytes
// LE + CRC32C), written atomically before the truncation, so LSNs are never
// reused across truncation and restart.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/config.h"
#include "core/defaults.h"
#include "core/status.h"
#include "storage/log_format.h"
#include "storage/wal_reader.h"

namespace aidb::storage {

using aidb::Durability;

// Logs "wal_growth" (target aidb::storage) each time a WAL crosses a multiple
// of this many bytes.
inline constexpr uint64_t kWalGrowthStep = 64ull << 20;

// In kFsync mode the WAL keeps up to this many zero bytes, written and synced,
// ahead of its last record (bench/README.md, "fdatasync: append vs
// overwrite"): a commit that overwrites them syncs without an ext4 journal
// commit for a new file size. See WalOptions::prealloc_bytes.
inline constexpr uint64_t kWalPreallocBytes = 4ull << 20;

struct WalOptions {
  Durability durability = Durability::kFsync;
  uint32_t batch_interval_ms = kDefaultBatchIntervalMs;
  uint64_t mmap_threshold = kDefaultWalMmapThreshold;  // read files >= this through mmap
  std::string collection;                              // for log events
  uint64_t growth_step = kWalGrowthStep;  // wal_growth every this many bytes (tests lower it)
  // kFsync mode only (0: off). When a group of commits does not fit in the
  // zero space ahead of the last record, the group is written followed by
  // zero bytes (16 times the group, at least 256 KiB, at most this, rounded
  // up to 4 KiB), in the same pwritev and made durable by the same
  // fdatasync; the next groups overwrite those zeros.
  // Groups of more than half this size are appended without zeros (for them
  // the saved journal commit is worth less than writing the bytes twice).
  // The zeros are never counted as records: WalStats::size_bytes is the end
  // of the last record. Truncate() leaves a 0-byte file (the zeros come back
  // with the next commit), and closing the Wal cuts the file back to its
  // last record. A reader sees zeros from a record boundary to end of file
  // as a clean end (WalReadStats::zero_tail_bytes), not a torn tail.
  uint64_t prealloc_bytes = kWalPreallocBytes;
};

struct WalStats {
  uint64_t size_bytes = 0;                  // end of the last record (never preallocated zeros)
  std::optional<int64_t> last_truncate_ns;  // set by Truncate() in this process
  uint64_t bytes_since_truncate = 0;        // appended since Truncate() or Open()
  uint64_t last_lsn = 0;
};

// Appends records with group commit. Thread-safe.
class Wal {
 public:
  // Opens (creating if missing) the WAL at `path`. Reads only the ".lsn"
  // sidecar; the log itself is scanned lazily (Replay, or the first Commit).
  static Status Open(const std::string& path, const WalOptions& opts, std::unique_ptr<Wal>* out);
  // Syncs in batch mode, stops the background syncer, cuts preallocated zeros
  // off the end of the file (ftruncate + fdatasync), closes.
  ~Wal();
  Wal(const Wal&) = delete;
  Wal& operator=(const Wal&) = delete;

  // Group commit. Appends one record (op, body) with the next LSN and the
  // current wall-clock time (clamped so timestamps never decrease within the
  // file, which keeps recovery "up to a timestamp" a prefix; one reading per
  // group), makes it durable per the durability mode, then
  // calls apply(lsn). Records of concurrent callers are written together with
  // one write(2) (a group) and made durable by one fdatasync; apply callbacks
  // run one at a time, in LSN order, before any later record's apply. The
  // thread that makes groups appliable (finishes a sync or an apply, or
  // readies its own group) applies every appliable group in order, so an
  // apply may run on another caller's thread; each caller returns once its
  // own apply ran, with its own outcome.
  // Pipelined: while one group's fdatasync runs, the next group is written
  // (its own fdatasync starts when the running one ends and covers every
  // group written by then, after waiting up to half a recent sync's time for
  // as many records as callers were recently inside Commit at once, so
  // concurrent writers share syncs; a lone writer never waits), and the
  // group before applies; in kFsync mode no
  // record is applied (visible to readers) or acknowledged before an
  // fdatasync that started after its write has succeeded. If the write or
  // sync fails, apply is not called for any record of the failed group; a
  // failed fdatasync fails every group written and not yet durable (all
  // their callers get its IOError), their bytes are cut off the file
  // (ftruncate to the end of the last durable group), and IOError returns. A
  // failed fsync is never retried as if it had succeeded. LSNs of a failed
  // group are not reused. The first Commit on a non-empty file scans it (as Replay) to
  // find the last LSN and cut off a torn tail; corruption fails the Commit.
  // Modes: kFsync syncs each group before its applies; kBatch applies once
  // written and a background thread fdatasyncs at most every
  // batch_interval_ms; kNone leaves it to the page cache. A failed background
  // sync (kBatch) makes the log unusable: every later Commit and Sync returns
  // that IOError (acknowledged records may be lost; reopen to recover). The
  // body is written straight from the caller's memory (no copy). An exception
  // thrown by apply becomes Status::Internal for that caller only.
  Status Commit(uint8_t op, std::string_view body, const std::function<void(uint64_t)>& apply);

  // Commit of a body given in parts (written from the callers' memory as
  // they are: the record's body is their concatenation), with a prepare step, the work of apply
  // that may run before the record is durable as long as it makes nothing visible (an index insert
  // into slots no reader can reach yet). When the record's group is the only
  // one in flight (no earlier group waits to apply), prepare(lsn) runs right
  // after the write, while the disk writes the group (kFsync: writeback is
  // started first, then fdatasync waits for it), in LSN order within the
  // group, never concurrently with another prepare or apply. If prepare ran,
  // exactly one of apply(lsn) (the commit succeeded) or abort() (it failed)
  // follows, in the apply stage's order. Otherwise only apply runs, as for
  // Commit above. prepare and abort must not throw.
  Status Commit(uint8_t op, std::span<const std::string_view> body,
                const std::function<void(uint64_t)>& apply,
                const std::function<void(uint64_t)>& prepare, const std::function<void()>& abort);

  // Runs fn while no Commit is in flight and none can start (the "write lock"
  // of docs/operations.md). Snapshots run under it; Truncate must be called inside.
  // fn must not call Commit or Exclusive (it would wait for itself). Returns
  // fn's status.
  Status Exclusive(const std::function<Status()>& fn);

  // Reads the whole file (ReadWal) calling fn for every valid record; then cuts
  // a torn tail off the file (ftruncate + fsync) so appends continue after the
  // last valid record, and raises the LSN counter past the last LSN read.
  // Must not run concurrently with Commit (call it before writers start or
  // inside Exclusive).
  Status Replay(const std::function<Status(const WalRecord&)>& fn, WalReadStats* stats);

  // Cuts the file back to `offset` bytes (ftruncate + fsync), dropping every
  // record from there on: the caller's recovery-mode decision after Replay
  // reported corruption (pass WalReadStats::valid_bytes to keep every record
  // before the damage). The next Replay or Commit rescans the file. Same rules
  // as Replay: before writers start or inside Exclusive.
  Status CutTail(uint64_t offset);

  // Reads the records of completed commits (the change feed: filter on
  // WalRecord::lsn / timestamp_ns in fn). Safe while Commit runs: it reads only
  // up to the end of the last successful group, and Truncate waits for it (fn
  // must not call Truncate or Exclusive). Same classification as ReadWal.
  Status Read(const std::function<Status(const WalRecord&)>& fn, WalReadStats* stats);

  // Writes the LSN sidecar, then ftruncate(0) + fsync of the log. Records the
  // time (Stats().last_truncate_ns), resets bytes_since_truncate and logs
  // event "wal_truncated" (target aidb::storage, fields collection=..
  // size_before=.. last_lsn=..). Call inside Exclusive().
  Status Truncate();

  // Makes the next LSN greater than `lsn` (after loading a snapshot).
  void AdvanceLsn(uint64_t lsn);

  // Syncs what was written (batch/none modes); no-op when nothing is pending.
  Status Sync();

  WalStats Stats() const;
  const std::string& path() const;
  uint64_t last_lsn() const;

 private:
  Wal() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  friend struct Impl;
};

}  // namespace aidb::storage
