// Pure helpers of the cluster mode (no Kafka, no I/O): the partitioner, write
// tokens, shard-local names, offset-named snapshot files and the top-k merge.
// Unit-tested in tests/cluster/unit/.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aidbd::cluster {

// The shard (Kafka partition) of a point: FNV-1a (32-bit) over the 16 bytes of
// the id, modulo the number of shards. `canonical_id` is the 36-character
// lower-case UUID text; returns -1 if it is not one.
int PartitionFor(std::string_view canonical_id, int shards);

// A write token "<collection>:<p>=<off>[,<p>=<off>...]": for each partition
// the offset of the last record of the write.
struct WriteToken {
  std::string collection;
  std::map<int, int64_t> offsets;  // partition -> offset
};
std::string FormatToken(const WriteToken& t);
// False with *error set if `text` is not a token.
bool ParseToken(std::string_view text, WriteToken* out, std::string* error);

// Name of the local AIDB collection holding shard `p` of `collection`:
// "<collection>-<p>", unique since collection names hold no '-'-digit suffix
// ambiguity (the last '-' splits). Names that would exceed 64 characters keep
// their first 40 characters plus '_' and a 16-hex-digit FNV-1a 64 hash of the
// whole name.
std::string LocalShardName(std::string_view collection, int p);

// "snap-<offset>.aidb": a snapshot covering every record of its partition up
// to and including <offset> ("snap--1.aidb": a shard that had applied none).
std::string SnapshotFileName(int64_t offset);
// The offset of a snapshot file name, or nullopt if it is not one.
std::optional<int64_t> ParseSnapshotFileName(std::string_view name);

// One search hit as the shards answer it: the score and the rendered hit.
// Scores are distances (lower is better), as every interface of AIDB answers
// them, so each shard's list is ascending.
struct Hit {
  double score;
  size_t source;  // shard index, for a stable order between equal scores
  size_t rank;    // position within its shard's list
  std::string json;
};
// The best `k` of all hits: the lowest distances, ascending (ties: shard,
// then rank), the order a single node answers in.
std::vector<Hit> MergeTopK(std::vector<Hit> hits, size_t k);

bool ValidNodeId(std::string_view id);

}  // namespace aidbd::cluster
