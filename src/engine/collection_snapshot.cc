// Collection: snapshots (through storage's SnapshotWriter / SnapshotFile),
// load, restore.
#include "engine/collection.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/clock.h"
#include "core/log.h"
#include "engine/collection_state.h"
#include "storage/file.h"
#include "storage/snapshot.h"

namespace aidb::engine {

Status Collection::SnapshotLocked(const std::string& path) {
  // Runs inside the exclusive section: no writer can append or apply.
  uint64_t lsn;
  storage::SnapshotWriter writer;
  {
    std::shared_lock lock(mu_);
    const State& st = *state_;
    lsn = std::max(st.applied_lsn, wal_ ? wal_->last_lsn() : mem_lsn_);
    SnapshotMeta meta;
    meta.last_lsn = lsn;
    meta.created_unix_ns = UnixNowNs();
    meta.config = st.config;
    meta.count = st.id_to_slot.size();
    meta.slot_limit = st.index->SlotLimit();
    meta.nil_id_slot = st.nil_slot;
    AIDB_RETURN_IF_ERROR(writer.SetCollection(meta, st.slot_ids, st.payloads));
    AIDB_RETURN_IF_ERROR(
        st.index->Save([&](const IndexImage& image) { return writer.SetIndex(image); }));
  }
  AIDB_RETURN_IF_ERROR(writer.WriteFile(path));
  CheckpointHook hook;
  {
    std::lock_guard<std::mutex> lock(hook_mu_);
    hook = hook_;
  }
  if (hook) AIDB_RETURN_IF_ERROR(hook(path, lsn));
  if (wal_) AIDB_RETURN_IF_ERROR(wal_->Truncate());
  return Status::OK();
}

Status Collection::SnapshotTo(const std::string& path) {
  AIDB_RETURN_IF_ERROR(CheckUsable());
  if (path.empty()) return Status::InvalidArgument("snapshot path is empty");
  return Exclusive([&] { return SnapshotLocked(path); });
}

namespace {

bool NilId(const PointChunkImage& pc, uint32_t i) {
  const uint8_t* id = pc.ids.data() + static_cast<size_t>(i) * 16;
  return std::all_of(id, id + 16, [](uint8_t b) { return b == 0; });
}

bool BitSet(std::span<const uint8_t> bits, uint32_t i) {
  return i / 8 < bits.size() && (bits[i / 8] >> (i % 8) & 1) != 0;
}

// Snapshots written before nilIdSlot existed (AIDB 0.2.0 and earlier) hold a
// point stored under the nil UUID with an all-zero id, like a free slot, and
// count it: such a file has one point more than non-nil ids. The caller has
// seen exactly that, with well-formed chunks, and no nilIdSlot. Finds the
// point's slot: the only all-zero slot; else the one the index's own records
// hold (an HNSW node neither deleted nor free, a slot in a trained IVF
// list); else (flat, untrained IVF) the only all-zero slot with a payload (a
// free slot has none). Corruption when the point cannot be told from the
// free slots.
Status LegacyNilSlot(const SnapshotImage& image, const std::string& path, uint32_t* slot) {
  std::vector<uint32_t> zero, with_payload;  // all-zero slots; those with a payload
  for (const PointChunkImage& pc : image.points) {
    for (uint32_t i = 0; i < pc.count; ++i) {
      if (!NilId(pc, i)) continue;
      zero.push_back(pc.first_slot + i);
      if (pc.payload_ends[i] > (i > 0 ? pc.payload_ends[i - 1] : 0)) {
        with_payload.push_back(pc.first_slot + i);
      }
    }
  }
  if (zero.empty()) return Status::Corruption("snapshot " + path + ": point count mismatch");
  std::sort(zero.begin(), zero.end());
  std::vector<uint32_t> held;  // all-zero slots the index holds a point in
  bool index_knows = true;
  const IndexImage& ix = image.index;
  if (ix.kind == IndexKind::kHnsw) {
    for (const HnswChunkImage& ch : ix.hnsw.chunks) {
      for (uint32_t s : zero) {
        if (s < ch.first_slot || s - ch.first_slot >= ch.count) continue;
        const uint32_t i = s - ch.first_slot;
        if (!BitSet(ch.deleted, i) && !BitSet(ch.free, i)) held.push_back(s);
      }
    }
  } else if (ix.kind == IndexKind::kIvf && ix.ivf.trained) {
    for (const IvfListImage& list : ix.ivf.lists) {
      for (uint32_t s : list.slots) {
        if (std::binary_search(zero.begin(), zero.end(), s)) held.push_back(s);
      }
    }
  } else {
    index_knows = false;
  }
  const std::vector<uint32_t>& found = zero.size() == 1 ? zero : index_knows ? held : with_payload;
  if (found.size() != 1) {
    return Status::Corruption(
        "snapshot " + path +
        " was written by AIDB 0.2.0 or earlier and holds a point stored under the nil UUID, "
        "that cannot be told apart from its " +
        std::to_string(zero.size() - 1) +
        " free slots (neither the index nor a payload marks it); restore an earlier snapshot");
  }
  *slot = found.front();
  log::Emit(log::Level::kWarn, log::kStorageTarget, "snapshot_legacy_nil_id",
            log::Fields().Add("path", path).Add("slot", *slot).str());
  return Status::OK();
}

}  // namespace

Status Collection::BuildStateFromSnapshot(const std::string& path,
                                          std::unique_ptr<State>* out) const {
  std::unique_ptr<storage::SnapshotFile> file;
  AIDB_RETURN_IF_ERROR(storage::SnapshotFile::Open(path, &file));
  CollectionConfig cfg = file->meta().config;
  {
    std::shared_lock lock(mu_);
    // Where the vectors live and what the walk scores are the collection's
    // choice, not the snapshot's: they change no data.
    cfg.index.quantization = state_->config.index.quantization;
    cfg.index.vectors_on_disk = state_->config.index.vectors_on_disk;
    if (cfg.index.dim != state_->config.index.dim) {
      return Status::DimensionMismatch("snapshot " + path + " has dimension " +
                                       std::to_string(cfg.index.dim) + ", collection '" + name_ +
                                       "' has " + std::to_string(state_->config.index.dim));
    }
  }
  cfg.name = name_;
  Status s = ValidateConfig(cfg);
  if (!s.ok()) return Status::Corruption("snapshot " + path + ": " + s.message());
  std::unique_ptr<State> st;
  // Builds st from image; the count is checked by the caller.
  auto build = [&](const SnapshotImage& image) -> Status {
    AIDB_RETURN_IF_ERROR(NewState(cfg, &st));
    AIDB_RETURN_IF_ERROR(st->index->Load(image, file->keepalive()).WithContext("snapshot " + path));
    const uint32_t limit = image.meta.slot_limit;
    // The index validated its own slot limit against the data it loaded; the
    // root's must agree before it sizes anything.
    if (limit != st->index->SlotLimit()) {
      return Status::Corruption("snapshot " + path + ": slot limit " + std::to_string(limit) +
                                " but the index holds " + std::to_string(st->index->SlotLimit()));
    }
    st->slot_ids.resize(limit);
    st->payloads.resize(limit);
    // The header's count is checked against the ids at the end; as a sizing
    // hint it cannot exceed the slots the index just loaded.
    st->id_to_slot.Reserve(std::min<uint64_t>(image.meta.count, limit));
    for (const PointChunkImage& pc : image.points) {
      const uint32_t first = pc.first_slot, n = pc.count;
      if (pc.ids.size() != static_cast<size_t>(n) * 16 || pc.payload_ends.size() != n ||
          static_cast<uint64_t>(first) + n > limit) {
        return Status::Corruption("snapshot " + path + ": malformed point chunk");
      }
      uint32_t pos = 0;
      for (uint32_t i = 0; i < n; ++i) {
        const uint32_t end = pc.payload_ends[i];
        if (end < pos || end > pc.payloads.size()) {
          return Status::Corruption("snapshot " + path + ": bad payload offsets");
        }
        Uuid id;
        std::memcpy(id.bytes.data(), pc.ids.data() + static_cast<size_t>(i) * 16, 16);
        const uint32_t slot = first + i;
        if (SlotHoldsPoint(pc, i, image.meta)) {
          if (!st->id_to_slot.TryEmplace(id, slot).second) {
            return Status::Corruption("snapshot " + path + ": duplicate id " + id.ToString());
          }
          if (id.IsNil()) st->nil_slot = slot;
          st->slot_ids[slot] = id;
          st->payloads[slot].Assign(std::string_view(pc.payloads.data() + pos, end - pos));
        }
        pos = end;
      }
    }
    return Status::OK();
  };
  const SnapshotImage& image = file->image();
  AIDB_RETURN_IF_ERROR(build(image));
  if (st->id_to_slot.size() + 1 == image.meta.count && image.meta.nil_id_slot == UINT32_MAX) {
    // One point short and no nilIdSlot: an older snapshot's nil-UUID point,
    // which its ids cannot show. Built again, as if the file named its slot
    // (the index, too, reads the slot as a point): once, on upgrade.
    SnapshotImage legacy = image;
    AIDB_RETURN_IF_ERROR(LegacyNilSlot(image, path, &legacy.meta.nil_id_slot));
    AIDB_RETURN_IF_ERROR(build(legacy));
  }
  if (st->id_to_slot.size() != image.meta.count) {
    return Status::Corruption("snapshot " + path + ": point count mismatch");
  }
  st->applied_lsn = image.meta.last_lsn;
  *out = std::move(st);
  return Status::OK();
}

Status Collection::LoadSnapshot(const std::string& path) {
  AIDB_RETURN_IF_ERROR(CheckUsable());
  return Exclusive([&] {
    std::unique_ptr<State> st;
    AIDB_RETURN_IF_ERROR(BuildStateFromSnapshot(path, &st));
    const uint64_t lsn = st->applied_lsn;
    {
      std::unique_lock lock(mu_);
      state_.swap(st);
    }
    if (wal_) wal_->AdvanceLsn(lsn);
    mem_lsn_ = std::max(mem_lsn_, lsn);
    return Status::OK();
  });
}

Status Collection::Restore(const std::string& snapshot_path, const std::string& baseline) {
  AIDB_RETURN_IF_ERROR(CheckUsable());
  return Exclusive([&] {
    std::unique_ptr<State> st;
    AIDB_RETURN_IF_ERROR(BuildStateFromSnapshot(snapshot_path, &st));
    if (wal_) {
      RecoverStats rstats;
      AIDB_RETURN_IF_ERROR(ReplayInto(*st, false, RecoverOptions{}, &rstats));
      wal_->AdvanceLsn(st->applied_lsn);
    }
    {
      std::unique_lock lock(mu_);
      state_.swap(st);
    }
    Status s = SnapshotLocked(baseline);
    if (!s.ok()) {
      // Put the previous state back: the WAL and the old baseline still
      // describe it (the failed snapshot did not truncate anything), unless
      // the failure came after the new baseline was recorded.
      if (!storage::FileExists(baseline)) {
        std::unique_lock lock(mu_);
        state_.swap(st);
      }
      return s;
    }
    return Status::OK();
  });
}

Status ReadSnapshotInfo(const std::string& path, SnapshotInfo* info) {
  std::unique_ptr<storage::SnapshotFile> file;
  AIDB_RETURN_IF_ERROR(storage::SnapshotFile::Open(path, &file));
  const SnapshotMeta& m = file->meta();
  info->path = path;
  info->lsn = m.last_lsn;
  info->size_bytes = file->file_size();
  info->created_unix_ns = m.created_unix_ns;
  info->count = m.count;
  info->config = m.config;
  return Status::OK();
}

}  // namespace aidb::engine
