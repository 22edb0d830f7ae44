#include "storage/snapshot.h"

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <capnp/any.h>
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "core/coding.h"
#include "storage/crc32c.h"
#include "storage/file.h"
#include "storage/snapshot.capnp.h"

namespace aidb::storage {
namespace {

uint32_t HeaderCrc(const uint8_t* h) {
  uint32_t crc = crc32c::Extend(0, h, 12);
  return crc32c::Extend(crc, h + 16, 16);
}

// Buffers small pieces and writes large ones straight through, keeping a
// running CRC32C of everything written after the header.
class CrcWriter {
 public:
  CrcWriter(int fd, const std::string& path) : fd_(fd), path_(path) { buf_.reserve(kBuf); }
  Status Write(const void* data, size_t n) {
    crc_ = crc32c::Extend(crc_, data, n);
    bytes_ += n;
    if (n >= kBuf) {
      AIDB_RETURN_IF_ERROR(Flush());
      return WriteAll(fd_, data, n, path_);
    }
    if (buf_.size() + n > kBuf) AIDB_RETURN_IF_ERROR(Flush());
    const auto* p = static_cast<const uint8_t*>(data);
    buf_.insert(buf_.end(), p, p + n);
    return Status::OK();
  }
  Status Flush() {
    if (buf_.empty()) return Status::OK();
    Status s = WriteAll(fd_, buf_.data(), buf_.size(), path_);
    buf_.clear();
    return s;
  }
  uint32_t crc() const { return crc_; }
  uint64_t bytes() const { return bytes_; }

 private:
  static constexpr size_t kBuf = 1 << 20;
  int fd_;
  const std::string& path_;
  std::vector<uint8_t> buf_;
  uint32_t crc_ = 0;
  uint64_t bytes_ = 0;
};

// Snapshot chunking (format rules, see snapshot.capnp).
constexpr uint32_t kPointChunkSlots = 1u << 16;
constexpr uint64_t kPointChunkPayloadBytes = 256ull << 20;
constexpr uint32_t kGraphChunkSlots = 1u << 16;  // slots per HnswChunk

schema::Metric ToSchema(Metric m) {
  switch (m) {
    case Metric::kCosine: return schema::Metric::COSINE;
    case Metric::kEuclidean: return schema::Metric::EUCLIDEAN;
    case Metric::kDot: return schema::Metric::DOT;
  }
  return schema::Metric::COSINE;
}

Metric FromSchema(schema::Metric m) {
  switch (m) {
    case schema::Metric::COSINE: return Metric::kCosine;
    case schema::Metric::EUCLIDEAN: return Metric::kEuclidean;
    case schema::Metric::DOT: return Metric::kDot;
  }
  return Metric::kCosine;
}

void WriteConfig(const CollectionConfig& c, schema::CollectionConfig::Builder b) {
  b.setName(c.name);
  b.setDim(c.index.dim);
  b.setMetric(ToSchema(c.index.metric));
  if (c.index.kind == IndexKind::kHnsw) {
    auto h = b.getIndex().initHnsw();
    h.setM(c.index.hnsw.m);
    h.setEfConstruction(c.index.hnsw.ef_construction);
    h.setEfSearch(c.index.hnsw.ef_search);
  } else if (c.index.kind == IndexKind::kIvf) {
    auto v = b.getIndex().initIvf();
    v.setNlist(c.index.ivf.nlist);
    v.setNprobe(c.index.ivf.nprobe);
    v.setRerank(c.index.ivf.rerank);
  } else {
    b.getIndex().setFlat();
  }
  b.setQuantization(c.index.quantization == aidb::Quantization::kNone ? schema::Quantization::NONE
                                                                      : schema::Quantization::SQ8);
  b.setVectorsOnDisk(c.index.vectors_on_disk);
}

CollectionConfig ReadConfig(schema::CollectionConfig::Reader r) {
  CollectionConfig c;
  c.name = r.getName().cStr();
  c.index.dim = r.getDim();
  c.index.metric = FromSchema(r.getMetric());
  if (r.getIndex().isHnsw()) {
    c.index.kind = IndexKind::kHnsw;
    auto h = r.getIndex().getHnsw();
    c.index.hnsw.m = h.getM();
    c.index.hnsw.ef_construction = h.getEfConstruction();
    c.index.hnsw.ef_search = h.getEfSearch();
  } else if (r.getIndex().isIvf()) {
    c.index.kind = IndexKind::kIvf;
    auto v = r.getIndex().getIvf();
    c.index.ivf.nlist = v.getNlist();
    c.index.ivf.nprobe = v.getNprobe();
    c.index.ivf.rerank = v.getRerank();
  } else {
    c.index.kind = IndexKind::kFlat;
  }
  c.index.quantization = r.getQuantization() == schema::Quantization::NONE
                             ? aidb::Quantization::kNone
                             : aidb::Quantization::kSq8;
  c.index.vectors_on_disk = r.getVectorsOnDisk();
  return c;
}

Status KjError(const kj::Exception& e) {
  return Status::IOError(std::string("snapshot: ") + e.getDescription().cStr());
}

}  // namespace

// ---- writing ---------------------------------------------------------------

namespace {

Status WriteMessageFile(const std::string& path, capnp::MessageBuilder& message) {
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IOErrorFromErrno("snapshot: cannot create " + tmp, errno);

  auto fail = [&](Status s) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return s;
  };

  // Header placeholder; filled in once the message size and CRC are known.
  uint8_t header[kSnapshotHeaderSize] = {};
  Status s = WriteAll(fd, header, sizeof(header), tmp);
  if (!s.ok()) return fail(s);

  // Standard Cap'n Proto stream framing: segment count - 1, segment sizes
  // (words), padding to a word, then the segments.
  kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments = message.getSegmentsForOutput();
  std::vector<uint32_t> table;
  table.push_back(static_cast<uint32_t>(segments.size() - 1));
  for (const auto& seg : segments) table.push_back(static_cast<uint32_t>(seg.size()));
  if (table.size() % 2 != 0) table.push_back(0);

  CrcWriter w(fd, tmp);
  s = w.Write(table.data(), table.size() * sizeof(uint32_t));
  for (size_t i = 0; s.ok() && i < segments.size(); ++i) {
    s = w.Write(segments[i].begin(), segments[i].size() * sizeof(capnp::word));
  }
  if (s.ok()) s = w.Flush();
  if (!s.ok()) return fail(s.WithContext("snapshot: write failed"));

  std::memcpy(header, kSnapshotMagic, 8);
  EncodeFixed32(header + 8, kSnapshotFileVersion);
  EncodeFixed64(header + 16, w.bytes());
  EncodeFixed32(header + 24, w.crc());
  EncodeFixed32(header + 28, 0);
  EncodeFixed32(header + 12, HeaderCrc(header));
  s = PWriteAll(fd, header, sizeof(header), 0, tmp);
  if (s.ok()) s = Fsync(fd, tmp);
  if (!s.ok()) return fail(s.WithContext("snapshot: write failed"));
  if (::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Status::IOErrorFromErrno("snapshot: close " + tmp, err);
  }
  s = RenameDurable(tmp, path);
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s.WithContext("snapshot: publish failed");
  }
  return Status::OK();
}

}  // namespace

struct SnapshotWriter::Rep {
  capnp::MallocMessageBuilder msg{1 << 20, capnp::AllocationStrategy::GROW_HEURISTICALLY};
  schema::Snapshot::Builder root{nullptr};
  uint32_t dim = 0;
  bool has_root = false;

  void WriteVectors(uint32_t slot_limit,
                    const std::function<void(uint32_t, uint32_t, float*)>& fill);
  void WriteHnsw(const HnswGraphImage& g);
  Status WriteIvf(const IvfImage& v);
};

void SnapshotWriter::Rep::WriteVectors(
    uint32_t slot_limit, const std::function<void(uint32_t, uint32_t, float*)>& fill) {
  const uint32_t per_chunk = 1u << VectorChunkShift(dim);
  const uint32_t nchunks = (slot_limit + per_chunk - 1) / per_chunk;
  auto chunks = root.initVectors(nchunks);
  for (uint32_t c = 0; c < nchunks; ++c) {
    const uint32_t first = c * per_chunk;
    const uint32_t n = std::min(per_chunk, slot_limit - first);
    auto chunk = chunks[c];
    chunk.setFirstSlot(first);
    chunk.setCount(n);
    auto data = chunk.initData(static_cast<size_t>(n) * dim * sizeof(float));
    fill(first, n, reinterpret_cast<float*>(data.begin()));
  }
}

void SnapshotWriter::Rep::WriteHnsw(const HnswGraphImage& g) {
  auto graph = root.initIndex().initHnsw();
  graph.setEntryPoint(g.entry_point);
  graph.setMaxLevel(g.max_level);
  graph.setM(g.m);
  graph.setSlotLimit(g.slot_limit);
  if (g.has_quantizer) {
    auto off = graph.initSqOffset(static_cast<unsigned>(g.sq_offset.size()));
    for (size_t j = 0; j < g.sq_offset.size(); ++j)
      off.set(static_cast<unsigned>(j), g.sq_offset[j]);
    graph.setSqScale(g.sq_scale);
  }
  const uint32_t limit = g.slot_limit;
  const uint32_t nchunks = (limit + kGraphChunkSlots - 1) / kGraphChunkSlots;
  auto chunks = graph.initChunks(nchunks);
  HnswChunkImage img;
  for (uint32_t c = 0; c < nchunks; ++c) {
    const uint32_t first = c * kGraphChunkSlots;
    const uint32_t count = std::min(kGraphChunkSlots, limit - first);
    img = HnswChunkImage();
    g.fill_chunk(first, count, &img);
    auto ch = chunks[c];
    ch.setFirstSlot(first);
    ch.setCount(count);
    ch.setLevels(kj::arrayPtr(img.levels.data(), img.levels.size()));
    ch.setDeleted(kj::arrayPtr(img.deleted.data(), img.deleted.size()));
    ch.setFree(kj::arrayPtr(img.free.data(), img.free.size()));
    auto off = ch.initOffsets(static_cast<unsigned>(img.offsets.size()));
    for (size_t i = 0; i < img.offsets.size(); ++i)
      off.set(static_cast<unsigned>(i), img.offsets[i]);
    auto nb = ch.initNeighbors(static_cast<unsigned>(img.neighbors.size()));
    for (size_t i = 0; i < img.neighbors.size(); ++i)
      nb.set(static_cast<unsigned>(i), img.neighbors[i]);
  }
}

Status SnapshotWriter::Rep::WriteIvf(const IvfImage& v) {
  auto out = root.initIndex().initIvf();
  out.setTrained(v.trained);
  if (!v.trained) return Status::OK();
  constexpr size_t kMaxList = size_t{1} << 29;  // Cap'n Proto list/blob limit
  if (v.centroids.size() >= kMaxList || v.codebooks.size() >= kMaxList)
    return Status::InvalidArgument("snapshot: ivf model too large for one list");
  out.setNlist(v.nlist);
  out.setSubspaces(v.subspaces);
  out.setSubDim(v.sub_dim);
  out.setTrainedCount(v.trained_count);
  auto c = out.initCentroids(static_cast<unsigned>(v.centroids.size()));
  for (size_t i = 0; i < v.centroids.size(); ++i) c.set(static_cast<unsigned>(i), v.centroids[i]);
  auto cb = out.initCodebooks(static_cast<unsigned>(v.codebooks.size()));
  for (size_t i = 0; i < v.codebooks.size(); ++i) cb.set(static_cast<unsigned>(i), v.codebooks[i]);
  auto lists = out.initLists(v.nlist);
  IvfListImage li;
  for (uint32_t l = 0; l < v.nlist; ++l) {
    li = IvfListImage();
    v.fill_list(l, &li);
    if (li.slots.size() >= kMaxList || li.codes.size() >= kMaxList)
      return Status::InvalidArgument("snapshot: ivf list too large for one list");
    auto L = lists[l];
    auto sl = L.initSlots(static_cast<unsigned>(li.slots.size()));
    for (size_t i = 0; i < li.slots.size(); ++i) sl.set(static_cast<unsigned>(i), li.slots[i]);
    L.setCodes(kj::arrayPtr(li.codes.data(), li.codes.size()));
    auto ex = L.initExtra(static_cast<unsigned>(li.extra.size()));
    for (size_t i = 0; i < li.extra.size(); ++i) ex.set(static_cast<unsigned>(i), li.extra[i]);
  }
  return Status::OK();
}

SnapshotWriter::SnapshotWriter() : rep_(std::make_unique<Rep>()) {}
SnapshotWriter::~SnapshotWriter() = default;

Status SnapshotWriter::SetCollection(const SnapshotMeta& meta, std::span<const Uuid> ids,
                                     std::span<const PayloadSlot> payloads) {
  try {
    Rep& r = *rep_;
    r.root = r.msg.initRoot<schema::Snapshot>();
    r.has_root = true;
    r.dim = meta.config.index.dim;
    auto root = r.root;
    root.setFormatVersion(kSnapshotFormatVersion);
    root.setCreatedUnixNs(meta.created_unix_ns);
    root.setLastLsn(meta.last_lsn);
    WriteConfig(meta.config, root.initConfig());
    root.setCount(meta.count);
    root.setNilIdSlot(meta.nil_id_slot);
    const uint32_t limit = meta.slot_limit;
    root.setSlotLimit(limit);

    // Point chunks: at most kPointChunkSlots slots and ~256 MiB of payloads.
    std::vector<std::pair<uint32_t, uint32_t>> ranges;
    for (uint32_t first = 0; first < limit;) {
      uint32_t n = 0;
      uint64_t bytes = 0;
      while (first + n < limit && n < kPointChunkSlots) {
        uint32_t s = first + n;
        uint64_t b = s < payloads.size() ? payloads[s].size() : 0;
        if (n > 0 && bytes + b > kPointChunkPayloadBytes) break;
        bytes += b;
        ++n;
      }
      ranges.emplace_back(first, n);
      first += n;
    }
    auto chunks = root.initPoints(static_cast<unsigned>(ranges.size()));
    for (size_t c = 0; c < ranges.size(); ++c) {
      auto [first, n] = ranges[c];
      auto pc = chunks[c];
      pc.setFirstSlot(first);
      pc.setCount(n);
      auto idb = pc.initIds(static_cast<size_t>(n) * 16);
      auto ends = pc.initPayloadEnds(n);
      uint64_t total = 0;
      for (uint32_t i = 0; i < n; ++i) {
        uint32_t s = first + i;
        if (s < ids.size()) {
          std::memcpy(idb.begin() + static_cast<size_t>(i) * 16, ids[s].bytes.data(), 16);
          if (s < payloads.size()) total += payloads[s].size();
        } else {
          std::memset(idb.begin() + static_cast<size_t>(i) * 16, 0, 16);
        }
        ends.set(i, static_cast<uint32_t>(total));
      }
      auto blob = pc.initPayloads(total);
      uint64_t pos = 0;
      for (uint32_t i = 0; i < n; ++i) {
        uint32_t s = first + i;
        if (s < ids.size() && s < payloads.size() && !payloads[s].empty()) {
          std::memcpy(blob.begin() + pos, payloads[s].data(), payloads[s].size());
          pos += payloads[s].size();
        }
      }
    }
  } catch (const kj::Exception& e) {
    return KjError(e);
  }
  return Status::OK();
}

Status SnapshotWriter::SetIndex(const IndexImage& index) {
  Rep& r = *rep_;
  if (!r.has_root) return Status::Internal("snapshot: SetIndex before SetCollection");
  try {
    if (index.kind == IndexKind::kHnsw) {
      r.WriteVectors(index.vector_slots, index.fill_vectors);
      r.WriteHnsw(index.hnsw);
    } else if (index.kind == IndexKind::kIvf) {
      r.WriteVectors(index.vector_slots, index.fill_vectors);
      AIDB_RETURN_IF_ERROR(r.WriteIvf(index.ivf));
    } else {
      r.root.getIndex().setFlat();
      r.WriteVectors(index.vector_slots, index.fill_vectors);
    }
  } catch (const kj::Exception& e) {
    return KjError(e);
  }
  return Status::OK();
}

Status SnapshotWriter::WriteFile(const std::string& path) {
  if (!rep_->has_root) return Status::Internal("snapshot: WriteFile before SetCollection");
  try {
    return WriteMessageFile(path, rep_->msg);
  } catch (const kj::Exception& e) {
    return KjError(e);
  }
}

// ---- reading ---------------------------------------------------------------

struct SnapshotFile::Rep {
  std::shared_ptr<MappedFile> map;
  std::unique_ptr<capnp::FlatArrayMessageReader> reader;
  // Lists whose encoding is not a plain array of 32-bit values (legal Cap'n
  // Proto, never written by us): decoded copies the image's spans point at.
  std::vector<std::vector<uint32_t>> u32_copies;
  std::vector<std::vector<float>> f32_copies;
};

namespace {

// The elements of a List(UInt32)/List(Float32) in place when the message
// holds them as a plain 4-byte array (always, for files we write); otherwise
// a decoded copy kept in `copies`.
template <typename T, typename ListReader>
std::span<const T> ListSpan(ListReader list, std::vector<std::vector<T>>* copies) {
  static_assert(sizeof(T) == 4);
  capnp::AnyList::Reader any(list);
  if (any.getElementSize() == capnp::ElementSize::FOUR_BYTES) {
    auto raw = any.getRawBytes();
    if (raw.size() >= static_cast<size_t>(list.size()) * 4) {
      return std::span<const T>(reinterpret_cast<const T*>(raw.begin()), list.size());
    }
  }
  std::vector<T> v(list.size());
  for (unsigned i = 0; i < list.size(); ++i) v[i] = list[i];
  copies->push_back(std::move(v));
  return std::span<const T>(copies->back());
}

std::span<const uint8_t> DataSpan(capnp::Data::Reader d) {
  return std::span<const uint8_t>(d.begin(), d.size());
}

// Reads the message into *image (spans into the mapping). Structural limits
// of the lists are checked by Cap'n Proto (kj::Exception, caught by Open);
// what the data means is checked by its owners when they load it.
Status DecodeImage(schema::Snapshot::Reader root, const std::string& path,
                   std::vector<std::vector<uint32_t>>* u32_copies,
                   std::vector<std::vector<float>>* f32_copies, SnapshotImage* image) {
  SnapshotMeta& m = image->meta;
  m.last_lsn = root.getLastLsn();
  m.created_unix_ns = root.getCreatedUnixNs();
  m.config = ReadConfig(root.getConfig());
  m.count = root.getCount();
  m.slot_limit = root.getSlotLimit();
  m.nil_id_slot = root.getNilIdSlot();

  for (auto pc : root.getPoints()) {
    PointChunkImage p;
    p.first_slot = pc.getFirstSlot();
    p.count = pc.getCount();
    p.ids = DataSpan(pc.getIds());
    p.payload_ends = ListSpan<uint32_t>(pc.getPayloadEnds(), u32_copies);
    auto blob = pc.getPayloads();
    p.payloads = std::span<const char>(reinterpret_cast<const char*>(blob.begin()), blob.size());
    image->points.push_back(p);
  }

  IndexImage& idx = image->index;
  for (auto vc : root.getVectors()) {
    VectorChunkImage v;
    v.first_slot = vc.getFirstSlot();
    v.count = vc.getCount();
    auto data = vc.getData();
    if (data.size() != 0 && data.size() % sizeof(float) == 0) {
      // The mapping is MAP_PRIVATE and writable: writes are private copies.
      v.data = std::span<float>(reinterpret_cast<float*>(const_cast<capnp::byte*>(data.begin())),
                                data.size() / sizeof(float));
    }
    idx.vector_chunks.push_back(v);
  }

  auto index = root.getIndex();
  if (index.isFlat()) {
    idx.kind = IndexKind::kFlat;
  } else if (index.isHnsw()) {
    idx.kind = IndexKind::kHnsw;
    auto graph = index.getHnsw();
    HnswGraphImage& g = idx.hnsw;
    g.entry_point = graph.getEntryPoint();
    g.max_level = graph.getMaxLevel();
    g.m = graph.getM();
    g.slot_limit = graph.getSlotLimit();
    g.has_quantizer = graph.hasSqOffset();
    if (g.has_quantizer) g.sq_offset = ListSpan<float>(graph.getSqOffset(), f32_copies);
    g.sq_scale = graph.getSqScale();
    for (auto ch : graph.getChunks()) {
      HnswChunkImage c;
      c.first_slot = ch.getFirstSlot();
      c.count = ch.getCount();
      c.levels = DataSpan(ch.getLevels());
      c.offsets = ListSpan<uint32_t>(ch.getOffsets(), u32_copies);
      c.neighbors = ListSpan<uint32_t>(ch.getNeighbors(), u32_copies);
      c.deleted = DataSpan(ch.getDeleted());
      c.free = DataSpan(ch.getFree());
      g.chunks.push_back(c);
    }
  } else if (index.isIvf()) {
    idx.kind = IndexKind::kIvf;
    auto in = index.getIvf();
    IvfImage& v = idx.ivf;
    v.trained = in.getTrained();
    if (v.trained) {
      v.nlist = in.getNlist();
      v.subspaces = in.getSubspaces();
      v.sub_dim = in.getSubDim();
      v.trained_count = in.getTrainedCount();
      v.centroids = ListSpan<float>(in.getCentroids(), f32_copies);
      v.codebooks = ListSpan<float>(in.getCodebooks(), f32_copies);
      for (auto L : in.getLists()) {
        IvfListImage li;
        li.slots = ListSpan<uint32_t>(L.getSlots(), u32_copies);
        li.codes = DataSpan(L.getCodes());
        li.extra = ListSpan<float>(L.getExtra(), f32_copies);
        v.lists.push_back(li);
      }
    }
  } else {
    return Status::Corruption("snapshot " + path + ": unknown index kind");
  }
  return Status::OK();
}

}  // namespace

SnapshotFile::~SnapshotFile() = default;

KeepAlive SnapshotFile::keepalive() const { return rep_; }

uint64_t SnapshotFile::file_size() const { return rep_ && rep_->map ? rep_->map->size() : 0; }

Status SnapshotFile::Open(const std::string& path, std::unique_ptr<SnapshotFile>* out) {
  std::unique_ptr<SnapshotFile> f(new SnapshotFile());
  f->path_ = path;
  f->rep_ = std::make_shared<Rep>();
  Rep& rep = *f->rep_;
  Status s = MappedFile::Open(path, /*private_writable=*/true, &rep.map);
  if (!s.ok()) {
    if (s.IsNotFound()) return Status::NotFound("snapshot file not found: " + path);
    return s;
  }
  const uint8_t* p = rep.map->data();
  const uint64_t size = rep.map->size();
  auto corrupt = [&](const std::string& why) {
    return Status::Corruption("snapshot " + path + ": " + why);
  };
  if (size < kSnapshotHeaderSize) {
    return corrupt("file too short (" + std::to_string(size) + " bytes) for a snapshot header");
  }
  if (std::memcmp(p, kSnapshotMagic, 8) != 0) return corrupt("not an AIDB snapshot (bad magic)");
  if (DecodeFixed32(p + 12) != HeaderCrc(p)) return corrupt("header checksum mismatch at offset 0");
  const uint32_t version = DecodeFixed32(p + 8);
  if (version != kSnapshotFileVersion) {
    return corrupt("unsupported snapshot file version " + std::to_string(version));
  }
  const uint64_t msg_bytes = DecodeFixed64(p + 16);
  if (msg_bytes % 8 != 0 || msg_bytes == 0) return corrupt("invalid message size in header");
  if (kSnapshotHeaderSize + msg_bytes > size) {
    return corrupt("truncated: header announces " + std::to_string(msg_bytes) +
                   " message bytes, file holds " + std::to_string(size - kSnapshotHeaderSize));
  }
  if (kSnapshotHeaderSize + msg_bytes < size) {
    return corrupt("trailing bytes after the message at offset " +
                   std::to_string(kSnapshotHeaderSize + msg_bytes));
  }
  rep.map->AdviseSequential();
  const uint32_t crc = crc32c::Value(p + kSnapshotHeaderSize, msg_bytes);
  if (crc != DecodeFixed32(p + 24)) {
    return corrupt("message checksum mismatch (bytes " + std::to_string(kSnapshotHeaderSize) +
                   ".." + std::to_string(kSnapshotHeaderSize + msg_bytes) + ")");
  }
  try {
    kj::ArrayPtr<const capnp::word> words(
        reinterpret_cast<const capnp::word*>(p + kSnapshotHeaderSize), msg_bytes / 8);
    capnp::ReaderOptions opts;
    opts.traversalLimitInWords = msg_bytes / 8 * 4 + 1024;
    opts.nestingLimit = 64;
    rep.reader = std::make_unique<capnp::FlatArrayMessageReader>(words, opts);
    auto root = rep.reader->getRoot<schema::Snapshot>();
    if (root.getFormatVersion() != kSnapshotFormatVersion) {
      return corrupt("unsupported snapshot format version " +
                     std::to_string(root.getFormatVersion()));
    }
    AIDB_RETURN_IF_ERROR(DecodeImage(root, path, &rep.u32_copies, &rep.f32_copies, &f->image_));
  } catch (const kj::Exception& e) {
    return corrupt(std::string("invalid message: ") + e.getDescription().cStr());
  }
  *out = std::move(f);
  return Status::OK();
}

}  // namespace aidb::storage
