@0xad2da683093a3a96;
# AIDB collection snapshot. Field numbers are append-only: never renumber or
# reuse one. Lists hold < 2^29 elements and Data blobs < 2^29 bytes, so large
# collections are split into chunks.
#
# On disk a snapshot file is a 32-byte header of our own (see snapshot.h: magic,
# format version, message size, CRC32C of the message) followed by one Cap'n
# Proto message in the standard serialization (segment table + segments).

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("aidb::storage::schema");

enum Metric {
  cosine @0;
  euclidean @1;
  dot @2;
}

struct CollectionConfig {
  name @0 :Text;
  dim @1 :UInt32;
  metric @2 :Metric;
  index :union {
    flat @3 :Void;
    hnsw :group {
      m @4 :UInt32;
      efConstruction @5 :UInt32;
      efSearch @6 :UInt32;        # 0 = adapt to k
    }
    ivf :group {                  # 0 = automatic, for each
      nlist @7 :UInt32;
      nprobe @8 :UInt32;
      rerank @9 :UInt32;
    }
  }
  # Since 0.3 (absent in older snapshots: sq8, vectors in RAM). A collection
  # that loads a snapshot keeps its own choice of both (they change no data).
  quantization @10 :Quantization;
  vectorsOnDisk @11 :Bool;
}

enum Quantization {
  sq8 @0;
  none @1;
}

# Ids and payloads of consecutive slots [firstSlot, firstSlot + count).
struct PointChunk {
  firstSlot @0 :UInt32;
  count @1 :UInt32;
  ids @2 :Data;                   # 16 bytes per slot; all zero = free slot (but Snapshot.nilIdSlot)
  payloadEnds @3 :List(UInt32);   # end offset in `payloads` per slot (count entries)
  payloads @4 :Data;              # concatenated JSON objects; empty = no payload
}

# Vectors of consecutive slots, dim float32 each (little-endian), cosine
# vectors normalised. A free slot's vector is unspecified.
struct VectorChunk {
  firstSlot @0 :UInt32;
  count @1 :UInt32;
  data @2 :Data;
}

# HNSW graph (see src/index/hnsw.h). Vectors are in Snapshot.vectors; this is
# the graph only, read back as is on load (never rebuilt).
struct HnswGraph {
  entryPoint @0 :UInt32;          # 0xFFFFFFFF = empty graph
  maxLevel @1 :Int32;             # level of the entry point, -1 = empty graph
  chunks @2 :List(HnswChunk);     # consecutive, covering [0, slotLimit)
  m @3 :UInt32;                   # max degree above level 0 (2m on level 0)
  slotLimit @4 :UInt32;           # slots [0, slotLimit) are described
  # 8-bit scalar quantiser of the base-layer walk (absent when not trained):
  # x_j ~ sqOffset_j + sqScale * code_j, sqOffset has dim entries. Codes are
  # recomputed from the vectors on load.
  sqOffset @5 :List(Float32);
  sqScale @6 :Float32;
}

# Nodes of consecutive slots [firstSlot, firstSlot + count), at most 2^16.
struct HnswChunk {
  firstSlot @0 :UInt32;
  count @1 :UInt32;
  levels @2 :Data;                # one byte per slot: top level of the node
  # Adjacency of every (slot, level) pair of this chunk in slot order, levels
  # 0..top: `offsets` has one entry per pair plus one; `neighbors` the slots.
  offsets @3 :List(UInt32);
  neighbors @4 :List(UInt32);
  deleted @5 :Data;               # bitmap, one bit per slot: tombstones
  free @6 :Data;                  # bitmap, one bit per slot: no node (level 0, no links)
}

# IVF index (see src/index/ivf.h): k-means centroids, 4-bit PQ codebooks of
# the residuals and the inverted lists with their codes, read back as is on
# load (never retrained). Vectors are in Snapshot.vectors. Untrained (an
# exact scan so far): trained = false and nothing else.
struct IvfIndex {
  trained @0 :Bool;
  nlist @1 :UInt32;
  subspaces @2 :UInt32;           # PQ subspaces, one 4-bit code each
  subDim @3 :UInt32;              # dimensions per subspace (the last may be shorter)
  trainedCount @4 :UInt64;        # live points at training (regrowth trigger)
  centroids @5 :List(Float32);    # nlist * dim
  codebooks @6 :List(Float32);    # subspaces * 16 * subDim
  lists @7 :List(IvfList);        # nlist entries
}

# One inverted list. Codes in blocks of 32 slots: per pair of subspaces 32
# bytes (see src/index/ivf_kernels.h); extra: one float per slot for
# Euclidean collections, else empty.
struct IvfList {
  slots @0 :List(UInt32);
  codes @1 :Data;
  extra @2 :List(Float32);
}

struct Snapshot {
  formatVersion @0 :UInt32;       # 1
  createdUnixNs @1 :Int64;
  lastLsn @2 :UInt64;             # every WAL record <= this is in the snapshot
  config @3 :CollectionConfig;
  count @4 :UInt64;               # live points
  slotLimit @5 :UInt32;           # slots [0, slotLimit) are described
  points @6 :List(PointChunk);
  vectors @7 :List(VectorChunk);
  index :union {
    flat @8 :Void;
    hnsw @9 :HnswGraph;
    ivf @10 :IvfIndex;
  }
  # The slot of the point whose id is the nil UUID (all zeros), which the
  # id lists cannot tell from a free slot; 0xffffffff: no such point.
  nilIdSlot @11 :UInt32 = 0xffffffff;
}
