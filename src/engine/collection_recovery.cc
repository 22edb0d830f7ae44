// Collection: recovery, the replay of the WAL into a state.
#include "engine/collection.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/collection_state.h"
#include "storage/wal_codec.h"

namespace aidb::engine {

using storage::WalOp;

Status Collection::ReplayInto(State& st, bool live, const RecoverOptions& opts,
                              RecoverStats* stats) {
  // Pass 1 checks every checksum without applying anything, so a corrupt
  // record leaves the state as it was.
  // It also counts the upserted points, so the id map and slot arrays are
  // sized once instead of rehashing and regrowing all through the replay.
  storage::WalReadStats verify;
  uint64_t upserted = 0;
  AIDB_RETURN_IF_ERROR(storage::ReadWal(
      wal_path_, wal_opts_.mmap_threshold,
      [&](const storage::WalRecord& r) {
        if (r.op == static_cast<uint8_t>(WalOp::kUpsert) && r.lsn > st.applied_lsn) {
          upserted += storage::UpsertCountHint(r.body);  // a sizing hint only
        }
        return Status::OK();
      },
      &verify));
  if (upserted > 0) {
    std::unique_lock<RwLock> lock(mu_, std::defer_lock);
    if (live) lock.lock();
    const size_t want = st.id_to_slot.size() + std::min<uint64_t>(upserted, 1u << 30);
    st.id_to_slot.Reserve(want);
    st.slot_ids.reserve(want);
    st.payloads.reserve(want);
  }
  bool stopped = false;
  storage::WalReadStats rs;
  Status s = wal_->Replay(
      [&](const storage::WalRecord& r) -> Status {
        bool skip = r.lsn <= st.applied_lsn;
        if (!skip && opts.target == RecoverTarget::kToLsn && r.lsn > opts.lsn) skip = true;
        if (!skip && opts.target == RecoverTarget::kToTime &&
            (stopped || r.timestamp_ns > opts.timestamp_ns)) {
          stopped = true;
          skip = true;
        }
        if (skip) {
          ++stats->records_skipped;
          return Status::OK();
        }
        Status applied = ApplyRecord(st, live, r.op, r.body, r.lsn);
        if (!applied.ok()) {
          // Name the record's place in the file, as checksum errors do.
          return applied.WithContext("WAL " + wal_path_ + ": record at offset " +
                                     std::to_string(r.offset) + " (lsn " + std::to_string(r.lsn) +
                                     ")");
        }
        ++stats->records_applied;
        return Status::OK();
      },
      &rs);
  stats->bytes_read = rs.valid_bytes;
  stats->torn_tail = rs.torn_tail;
  stats->torn_tail_bytes = rs.torn_tail_bytes;
  stats->used_mmap = rs.used_mmap;
  stats->last_lsn = st.applied_lsn;
  return s;
}

Status Collection::Recover(const RecoverOptions& opts, RecoverStats* stats) {
  AIDB_RETURN_IF_ERROR(CheckUsable());
  RecoverStats local;
  if (stats == nullptr) stats = &local;
  *stats = RecoverStats{};
  if (!wal_) {
    std::shared_lock lock(mu_);
    stats->last_lsn = state_->applied_lsn;
    return Status::OK();
  }
  return Exclusive([&] { return ReplayInto(*state_, true, opts, stats); });
}

}  // namespace aidb::engine
