#include "cluster/router.h"

#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <simdjson.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <limits>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>

#include "cluster/http_client.h"
#include "cluster/kafka.h"
#include "cluster/logic.h"
#include "metrics.h"
#include "request.h"
#include "util.h"

namespace aidbd::cluster {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

namespace {

constexpr const char* kMetaTopic = "aidb.__meta";
constexpr const char* kTopicPrefix = "aidb.";
constexpr int kMaxShards = 1024;
// The largest record a collection's topic takes (its max.message.bytes): a
// point with the largest payload the library stores (16 MiB) and a vector of
// the largest dimension in text, with room to spare. Kafka's default, ~1 MB,
// refused points that a standalone node stores.
constexpr const char* kMaxRecordBytes = "33554432";  // 32 MiB

std::string Dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::vector<std::string> Split(std::string_view p) {
  std::vector<std::string> seg;
  for (std::string_view s : PathSegments(p)) seg.emplace_back(s);
  return seg;
}

bool ParseIntStr(const std::string& s, int64_t* out) {
  if (s.empty() || s.size() > 18) return false;
  size_t i = s[0] == '-' ? 1 : 0;
  if (i == s.size()) return false;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
  }
  *out = std::strtoll(s.c_str(), nullptr, 10);
  return true;
}

std::string BodyError(const std::string& body) {
  Json j = Json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("error") && j["error"].is_string()) return j["error"];
  return body;
}

std::string ErrorOf(const HttpResponse& r) { return BodyError(r.body); }

void WriteFileAtomically(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << text;
    f.flush();
    if (!f) Fail(500, "cannot write " + tmp);
  }
  int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) Fail(500, "cannot rename " + tmp);
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  if (!f) return std::string();
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// Streams a file in 1 MiB pieces (a snapshot download).
class FileStream : public BodyStream {
 public:
  explicit FileStream(int fd) : fd_(fd) {}
  ~FileStream() override { ::close(fd_); }
  bool Next(std::string* out) override {
    size_t old = out->size();
    out->resize(old + (1 << 20));
    ssize_t n;
    do {
      n = ::read(fd_, out->data() + old, 1 << 20);
    } while (n < 0 && errno == EINTR);
    out->resize(old + static_cast<size_t>(std::max<ssize_t>(n, 0)));
    return n > 0;
  }

 private:
  int fd_;
};

}  // namespace

// A collection's configuration, as recorded in the metadata topic under
// `collection/<name>`.
struct CollConfig {
  std::string name;
  std::string incarnation;  // a UUID per creation: a re-created name is another topic
  uint32_t dim = 0;
  std::string metric = "cosine";
  std::string index = "flat";
  uint32_t m = 16, ef_construction = 200, ef_search = 0;
  // IVF: configured values (0 = automatic); nprobe changes through params.
  uint32_t ivf_nlist = 0, ivf_nprobe = 0, ivf_rerank = 0;
  std::string quantization = "sq8";
  bool vectors_on_disk = false;
  int shards = 1;
  int replication = 1;

  std::string Topic() const { return kTopicPrefix + name; }
  // What POST .../params sets: HNSW's ef_search, IVF's default nprobe.
  uint32_t EfSearch() const { return index == "ivf" ? ivf_nprobe : ef_search; }
  Json ToJson() const {
    Json j;
    j["name"] = name;
    j["incarnation"] = incarnation;
    j["dim"] = dim;
    j["metric"] = metric;
    j["index"] = index;
    j["hnsw"] = {{"m", m}, {"ef_construction", ef_construction}, {"ef_search", ef_search}};
    j["ivf"] = {{"nlist", ivf_nlist}, {"nprobe", ivf_nprobe}, {"rerank", ivf_rerank}};
    j["quantization"] = quantization;
    j["vectors_on_disk"] = vectors_on_disk;
    j["shards"] = shards;
    j["replication"] = replication;
    return j;
  }
  static bool FromJson(const Json& j, CollConfig* c) {
    try {
      c->name = j.at("name");
      c->incarnation = j.at("incarnation");
      c->dim = j.at("dim");
      c->metric = j.at("metric");
      c->index = j.at("index");
      c->m = j.at("hnsw").at("m");
      c->ef_construction = j.at("hnsw").at("ef_construction");
      c->ef_search = j.at("hnsw").at("ef_search");
      // Absent in records written before 0.3: the defaults they were made with.
      if (j.contains("ivf") && j["ivf"].is_object()) {
        c->ivf_nlist = j["ivf"].value("nlist", 0u);
        c->ivf_nprobe = j["ivf"].value("nprobe", 0u);
        c->ivf_rerank = j["ivf"].value("rerank", 0u);
      }
      c->quantization = j.value("quantization", std::string("sq8"));
      c->vectors_on_disk = j.value("vectors_on_disk", false);
      c->shards = j.at("shards");
      c->replication = j.at("replication");
      return c->shards >= 1 && c->shards <= kMaxShards && c->replication >= 1;
    } catch (const std::exception&) {
      return false;
    }
  }
  // The body that creates the same collection with the standalone API.
  Json CreateBody(const std::string& as_name) const {
    Json j{{"name", as_name}, {"dim", dim}, {"metric", metric}, {"index", index}};
    if (index == "hnsw") {
      j["hnsw"] = {{"m", m}, {"ef_construction", ef_construction}, {"ef_search", ef_search}};
    }
    if (index == "ivf") {
      j["ivf"] = {{"nlist", ivf_nlist}, {"nprobe", ivf_nprobe}, {"rerank", ivf_rerank}};
    }
    j["quantization"] = quantization;
    j["vectors_on_disk"] = vectors_on_disk;
    return j;
  }
};

// A node's registration, `node/<id>` in the metadata topic.
struct NodeInfo {
  std::string id;
  std::string address;
  int replica_group = 0;
  std::vector<std::pair<std::string, int>> shards;  // assigned (collection, shard)
  bool Has(const std::string& c, int p) const {
    return std::find(shards.begin(), shards.end(), std::make_pair(c, p)) != shards.end();
  }
};

// One local shard replica: the local collection fed from partition `p`.
struct Shard {
  std::string coll;
  std::string incarnation;
  int p = 0;
  std::string local;  // the local collection's name
  std::string dir;    // <data>/cluster/shards/<local>: shard.json, snap-<offset>.aidb
  aidb_collection* h = nullptr;
  uint32_t dim = 0;
  std::atomic<int64_t> next{0};  // every record below this offset is applied
  std::atomic<bool> assigned{false};
  std::atomic<int64_t> high_watermark{-1};
  // Apply thread only.
  uint64_t since_snapshot = 0;
  int64_t last_snapshot_ms = 0;
  ~Shard() { aidb_collection_close(h); }
};

// Snapshot files of a shard, newest last.
std::vector<std::pair<int64_t, std::string>> SnapshotFiles(const std::string& dir) {
  std::vector<std::pair<int64_t, std::string>> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string f = e.path().filename().string();
    if (auto off = ParseSnapshotFileName(f)) out.emplace_back(*off, e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

struct Router::Impl {
  Router* self;
  Api* local;
  aidb_db* db;
  ClusterOptions o;
  std::string advertise;
  std::string cluster_dir;  // <data>/cluster
  std::unique_ptr<Kafka> kafka_owner = std::make_unique<Kafka>();
  Kafka& kafka = *kafka_owner;

  aidb_db* scratch_db = nullptr;
  std::unique_ptr<Api> scratch;  // validates requests exactly as standalone
  std::mutex scratch_mu;
  std::map<std::string, uint64_t> scratch_writes;

  rd_kafka_t* meta = nullptr;  // metadata consumer
  std::mutex wm_mu;
  std::shared_ptr<rd_kafka_t> wm;  // watermark queries (WatermarkClient)
  int64_t wm_created_ms = 0;
  std::thread meta_thread;
  rd_kafka_t* rep = nullptr;  // replica-group consumer
  std::thread apply_thread;
  std::atomic<bool> stopping{false};
  bool started = false;

  std::mutex meta_mu;
  std::condition_variable meta_cv;
  int64_t meta_next = 0;
  std::map<std::string, std::shared_ptr<const CollConfig>> colls;
  std::map<std::string, NodeInfo> nodes;

  std::mutex shards_mu;
  std::map<std::pair<std::string, int>, std::shared_ptr<Shard>> shards;

  std::mutex apply_mu;  // guards the waits below and `tasks`
  std::condition_variable apply_cv;
  std::deque<std::function<void()>> tasks;
  std::atomic<bool> resubscribe{true};

  Impl(Router* r, Api* l, aidb_db* d, ClusterOptions opts)
      : self(r), local(l), db(d), o(std::move(opts)) {
    int64_t v = 0;
    if (const char* e = std::getenv("AIDB_CLUSTER_SNAPSHOT_RECORDS");
        e && ParseIntStr(e, &v) && v > 0) {
      o.snapshot_every_records = static_cast<uint64_t>(v);
    }
    if (const char* e = std::getenv("AIDB_CLUSTER_SNAPSHOT_SECONDS");
        e && ParseIntStr(e, &v) && v > 0) {
      o.snapshot_every_seconds = static_cast<uint64_t>(v);
    }
  }

  // ---------------------------------------------------------------- helpers

  HttpResponse CallLocal(Api* api, const std::string& method, const std::string& path,
                         const std::string& query, const std::string& body) {
    HttpRequest r;
    r.method = method;
    r.path = path;
    r.query = query;
    r.url = query.empty() ? path : path + "?" + query;
    r.body = body;
    if (api == local && !o.api_key.empty()) r.headers.emplace_back("api-key", o.api_key);
    HttpResponse resp;
    if (!api->Prepare(&r, &resp)) api->Execute(&r, &resp);
    return resp;
  }

  std::vector<std::string> AuthHeaders() const {
    std::vector<std::string> h;
    if (!o.api_key.empty()) h.push_back("api-key: " + o.api_key);
    return h;
  }

  static std::string Url(const NodeInfo& n, const std::string& path) {
    return "http://" + n.address + path;
  }

  std::shared_ptr<const CollConfig> Config(const std::string& name) {
    std::lock_guard<std::mutex> lock(meta_mu);
    auto it = colls.find(name);
    return it == colls.end() ? nullptr : it->second;
  }

  std::shared_ptr<const CollConfig> MustConfig(const std::string& name) {
    auto c = Config(name);
    if (!c && CatchUpMeta()) c = Config(name);
    if (!c) Fail(404, "collection '" + name + "' not found");
    return c;
  }

  // Reads the metadata topic up to its high watermark as of now (bounded by
  // the consistency timeout). A create is answered once the node that took
  // it has read its config back; another node's metadata consumer may be a
  // moment behind, and a client that creates through one node and writes
  // through another must not get a 404 for it.
  bool CatchUpMeta() {
    int64_t hi = 0;
    if (HighWatermark(kMetaTopic, 0, &hi, 2000) != RD_KAFKA_RESP_ERR_NO_ERROR) return false;
    return hi <= 0 || WaitMeta(hi - 1, o.consistency_timeout_ms);
  }

  std::vector<NodeInfo> Nodes() {
    std::lock_guard<std::mutex> lock(meta_mu);
    std::vector<NodeInfo> out;
    for (auto& [id, n] : nodes) out.push_back(n);
    return out;
  }

  std::shared_ptr<Shard> FindShard(const std::string& coll, int p) {
    std::lock_guard<std::mutex> lock(shards_mu);
    auto it = shards.find({coll, p});
    return it == shards.end() ? nullptr : it->second;
  }

  std::vector<std::shared_ptr<Shard>> ShardsOf(const std::string& coll) {
    std::lock_guard<std::mutex> lock(shards_mu);
    std::vector<std::shared_ptr<Shard>> out;
    for (auto& [k, s] : shards) {
      if (coll.empty() || k.first == coll) out.push_back(s);
    }
    return out;
  }

  void Notify() {
    { std::lock_guard<std::mutex> lock(apply_mu); }
    apply_cv.notify_all();
  }

  // ---------------------------------------------------------------- metadata

  bool ProduceMeta(const std::string& key, const Json* value, int64_t* offset, std::string* error) {
    KafkaRecord r;
    r.topic = kMetaTopic;
    r.partition = 0;
    r.key = key;
    if (value) {
      r.value = Dump(*value);
    } else {
      r.tombstone = true;
    }
    return kafka.Produce(r, offset, error);
  }

  // Waits until this node's metadata consumer has applied `offset`.
  bool WaitMeta(int64_t offset, uint64_t timeout_ms) {
    std::unique_lock<std::mutex> lock(meta_mu);
    return meta_cv.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                            [&] { return meta_next > offset; });
  }

  Json NodeJson() {
    Json shards_json = Json::array();
    for (auto& s : ShardsOf("")) {
      if (s->assigned) shards_json.push_back(Json::array({s->coll, s->p}));
    }
    return Json{{"id", o.node_id},
                {"address", advertise},
                {"replica_group", o.replica_group},
                {"shards", std::move(shards_json)},
                {"registered", FormatRfc3339(NowUnixNs())}};
  }

  bool PublishNode(std::string* error) {
    Json j = NodeJson();
    int64_t off = 0;
    return ProduceMeta("node/" + o.node_id, &j, &off, error);
  }

  void EnsureScratch(const CollConfig& c) {
    std::lock_guard<std::mutex> lock(scratch_mu);
    aidb_collection* h = nullptr;
    if (aidb_db_open_collection(scratch_db, c.name.c_str(), &h, nullptr) == AIDB_OK) {
      aidb_collection_info info;
      aidb_collection_info_init(&info);
      bool same = aidb_collection_get_info(h, &info, nullptr) == AIDB_OK && info.dim == c.dim &&
                  info.index_kind == AIDB_INDEX_FLAT &&
                  std::string(aidb_metric_name(info.metric)) == c.metric;
      aidb_collection_close(h);
      if (same) return;
      CallLocal(scratch.get(), "DELETE", "/collections/" + c.name, "", "");
    }
    // FLAT, whatever the real index: scratch upserts are deleted right away.
    CollConfig flat = c;
    flat.index = "flat";
    HttpResponse r =
        CallLocal(scratch.get(), "POST", "/collections", "", Dump(flat.CreateBody(c.name)));
    if (r.status / 100 != 2) {
      Log(LogLevel::kError, "cluster_scratch_failed",
          KV().Add("collection", c.name).Add("error", r.body));
    }
  }

  void DropScratch(const std::string& name) {
    std::lock_guard<std::mutex> lock(scratch_mu);
    CallLocal(scratch.get(), "DELETE", "/collections/" + name, "", "");
    scratch_writes.erase(name);
  }

  // Scratch collections log their (deleted) points: a snapshot now and then
  // truncates their WAL.
  void ScratchWritten(const std::string& name, size_t n) {
    bool snap = false;
    {
      std::lock_guard<std::mutex> lock(scratch_mu);
      uint64_t& w = scratch_writes[name];
      w += n;
      if (w >= 20000) {
        w = 0;
        snap = true;
      }
    }
    if (!snap) return;
    char* path = nullptr;
    if (aidb_db_snapshot(scratch_db, name.c_str(), &path, nullptr) == AIDB_OK) {
      std::string keep = path ? path : "";
      aidb_free(path);
      std::error_code ec;
      for (const auto& e : fs::directory_iterator(fs::path(keep).parent_path(), ec)) {
        if (e.path().string() != keep) fs::remove(e.path(), ec);
      }
    }
  }

  void ApplyMeta(const rd_kafka_message_t* m) {
    std::string key(static_cast<const char*>(m->key), m->key_len);
    bool tomb = m->payload == nullptr;
    Json v;
    if (!tomb) {
      v = Json::parse(static_cast<const char*>(m->payload),
                      static_cast<const char*>(m->payload) + m->len, nullptr, false);
      if (v.is_discarded()) return;
    }
    if (key.rfind("collection/", 0) == 0) {
      std::string name = key.substr(11);
      std::shared_ptr<const CollConfig> old;
      std::shared_ptr<CollConfig> c;
      if (!tomb) {
        c = std::make_shared<CollConfig>();
        if (!CollConfig::FromJson(v, c.get())) return;
      }
      {
        std::lock_guard<std::mutex> lock(meta_mu);
        auto it = colls.find(name);
        if (it != colls.end()) old = it->second;
        if (c) {
          colls[name] = c;
        } else {
          colls.erase(name);
        }
      }
      bool reborn = old && c && old->incarnation != c->incarnation;
      if (!c || reborn) {
        if (!c) DropScratch(name);
        RunOnApplyThread([this, name, inc = old ? old->incarnation : std::string()] {
          DropLocalShards(name, inc);
        });
      }
      if (c) {
        EnsureScratch(*c);
        RunOnApplyThread([this] { SyncShards(); });
      }
      resubscribe = true;
    } else if (key.rfind("node/", 0) == 0) {
      std::string id = key.substr(5);
      std::lock_guard<std::mutex> lock(meta_mu);
      if (tomb) {
        nodes.erase(id);
        return;
      }
      NodeInfo n;
      n.id = id;
      n.address = v.value("address", "");
      n.replica_group = v.value("replica_group", 0);
      if (v.contains("shards") && v["shards"].is_array()) {
        for (auto& s : v["shards"]) {
          if (s.is_array() && s.size() == 2) n.shards.emplace_back(s[0], s[1]);
        }
      }
      nodes[id] = std::move(n);
    }
  }

  void MetaLoop() {
    while (!stopping) {
      rd_kafka_message_t* m = rd_kafka_consumer_poll(meta, 200);
      if (!m) continue;
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        std::lock_guard<std::mutex> lock(meta_mu);
        meta_next = std::max(meta_next, m->offset);
      } else if (m->err) {
        Log(LogLevel::kWarn, "cluster_meta_error", KV().Add("error", rd_kafka_message_errstr(m)));
      } else {
        ApplyMeta(m);
        std::lock_guard<std::mutex> lock(meta_mu);
        meta_next = std::max(meta_next, m->offset + 1);
      }
      rd_kafka_message_destroy(m);
      meta_cv.notify_all();
    }
  }

  void RunOnApplyThread(std::function<void()> fn) {
    {
      std::lock_guard<std::mutex> lock(apply_mu);
      tasks.push_back(std::move(fn));
    }
  }

  // ---------------------------------------------------------------- shards

  std::string ShardDir(const std::string& local_name) const {
    return cluster_dir + "/shards/" + local_name;
  }

  // Drops the local shards of `coll` (all of them if `incarnation` is empty,
  // else those of that incarnation).
  void DropLocalShards(const std::string& coll, const std::string& incarnation) {
    std::vector<std::shared_ptr<Shard>> gone;
    {
      std::lock_guard<std::mutex> lock(shards_mu);
      for (auto it = shards.begin(); it != shards.end();) {
        if (it->first.first == coll &&
            (incarnation.empty() || it->second->incarnation == incarnation)) {
          gone.push_back(it->second);
          it = shards.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (auto& s : gone) {
      CallLocal(local, "DELETE", "/collections/" + s->local, "", "");
      std::error_code ec;
      fs::remove_all(s->dir, ec);
      Log(LogLevel::kInfo, "cluster_shard_dropped",
          KV().Add("collection", coll).Add("shard", s->p));
    }
    Notify();
  }

  // Opens the local shard collections found on disk that still belong to a
  // collection of the metadata (at start, before joining the group).
  void OpenLocalShards() {
    char** names = nullptr;
    size_t count = 0;
    if (aidb_db_list_collections(db, &names, &count, nullptr) != AIDB_OK) return;
    std::vector<std::string> list(names, names + count);
    aidb_free_string_array(names, count);
    for (const auto& name : list) {
      std::string dir = ShardDir(name);
      Json marker = Json::parse(ReadFile(dir + "/shard.json"), nullptr, false);
      std::shared_ptr<const CollConfig> c;
      if (marker.is_object()) c = Config(marker.value("collection", ""));
      if (!c || c->incarnation != marker.value("incarnation", "") ||
          marker.value("shard", -1) < 0 || marker.value("shard", -1) >= c->shards) {
        CallLocal(local, "DELETE", "/collections/" + name, "", "");
        std::error_code ec;
        fs::remove_all(dir, ec);
        Log(LogLevel::kInfo, "cluster_stale_shard_dropped", KV().Add("local", name));
        continue;
      }
      auto s = std::make_shared<Shard>();
      s->coll = c->name;
      s->incarnation = c->incarnation;
      s->p = marker.value("shard", 0);
      s->local = name;
      s->dir = dir;
      s->dim = c->dim;
      if (aidb_db_open_collection(db, name.c_str(), &s->h, nullptr) != AIDB_OK) continue;
      auto snaps = SnapshotFiles(dir);
      // The local collection came back from its own snapshot + WAL; records
      // after the newest offset-named snapshot are applied again, which
      // yields the same state (each record sets or deletes its key).
      s->next = snaps.empty() ? 0 : snaps.back().first + 1;
      s->last_snapshot_ms = NowMs();
      std::lock_guard<std::mutex> lock(shards_mu);
      shards[{s->coll, s->p}] = s;
      Log(LogLevel::kInfo, "cluster_shard_opened",
          KV().Add("collection", s->coll)
              .Add("shard", s->p)
              .Add("next_offset", static_cast<long long>(s->next.load())));
    }
  }

  // Creates the shard's local collection empty: a leftover of the same name
  // is dropped first (creating an existing collection again with the same
  // configuration succeeds and keeps its points).
  bool CreateLocal(const CollConfig& c, const std::string& local_name, std::string* error) {
    CallLocal(local, "DELETE", "/collections/" + local_name, "", "");
    HttpResponse r = CallLocal(local, "POST", "/collections", "", Dump(c.CreateBody(local_name)));
    if (r.status / 100 != 2) {
      *error = ErrorOf(r);
      return false;
    }
    return true;
  }

  // A shard this node does not hold: the newest snapshot any live replica
  // has (streamed over HTTP, loaded as is: the graph is not rebuilt), else
  // empty. Sets *next to the first offset to consume.
  bool TakeOver(const CollConfig& c, int p, const std::string& local_name, const std::string& dir,
                int64_t* next) {
    *next = 0;
    std::vector<NodeInfo> peers;
    for (auto& n : Nodes()) {
      if (n.id != o.node_id && !n.address.empty()) peers.push_back(n);
    }
    std::vector<HttpCall> calls(peers.size());
    std::vector<HttpCall*> ptrs;
    for (size_t i = 0; i < peers.size(); ++i) {
      calls[i].url = Url(peers[i], "/internal/snapshots/" + c.name + "/" + std::to_string(p) +
                                       "?incarnation=" + c.incarnation);
      calls[i].headers = AuthHeaders();
      calls[i].timeout_ms = 2000;
      ptrs.push_back(&calls[i]);
    }
    PerformAll(ptrs);
    int best = -1;
    int64_t best_off = INT64_MIN;
    for (size_t i = 0; i < calls.size(); ++i) {
      if (calls[i].status != 200) continue;
      Json j = Json::parse(calls[i].answer, nullptr, false);
      if (!j.is_object() || !j.contains("offset") || !j["offset"].is_number_integer()) continue;
      int64_t off = j["offset"];
      if (off >= -1 && off > best_off) {
        best_off = off;
        best = static_cast<int>(i);
      }
    }
    std::string error;
    if (!CreateLocal(c, local_name, &error)) {
      Log(LogLevel::kError, "cluster_shard_create_failed",
          KV().Add("collection", c.name).Add("shard", p).Add("error", error));
      return false;
    }
    if (best < 0) {
      Log(LogLevel::kInfo, "cluster_shard_from_topic",
          KV().Add("collection", c.name)
              .Add("shard", p)
              .Add("reason", "no snapshot on any live node"));
      return true;
    }
    std::string tmp = dir + "/download.tmp";
    int status = 0;
    int64_t t0 = NowMs();
    std::string url = Url(peers[best], "/internal/snapshot-file/" + c.name + "/" +
                                           std::to_string(p) + "/" + std::to_string(best_off));
    if (!Download(url, AuthHeaders(), tmp, 600000, &status, &error)) {
      Log(LogLevel::kWarn, "cluster_snapshot_download_failed",
          KV().Add("collection", c.name)
              .Add("shard", p)
              .Add("from", peers[best].id)
              .Add("error", error));
      std::error_code ec;
      fs::remove(tmp, ec);
      return true;
    }
    char* err = nullptr;
    int st = aidb_db_restore(db, local_name.c_str(), tmp.c_str(), &err);
    if (st != AIDB_OK) {
      Log(LogLevel::kWarn, "cluster_snapshot_load_failed",
          KV().Add("collection", c.name)
              .Add("shard", p)
              .Add("error", err ? err : aidb_status_name(st)));
      aidb_free(err);
      std::error_code ec;
      fs::remove(tmp, ec);
      // Start over from an empty collection.
      CreateLocal(c, local_name, &error);
      return true;
    }
    std::string final_path = dir + "/" + SnapshotFileName(best_off);
    ::rename(tmp.c_str(), final_path.c_str());
    *next = best_off + 1;
    Log(LogLevel::kInfo, "cluster_shard_taken_over",
        KV().Add("collection", c.name)
            .Add("shard", p)
            .Add("from", peers[best].id)
            .Add("offset", static_cast<long long>(best_off))
            .Add("seconds", static_cast<double>(NowMs() - t0) / 1e3));
    return true;
  }

  std::shared_ptr<Shard> EnsureShard(const CollConfig& c, int p) {
    if (auto s = FindShard(c.name, p)) {
      if (s->incarnation == c.incarnation) return s;
      DropLocalShards(c.name, s->incarnation);
    }
    std::string local_name = LocalShardName(c.name, p);
    std::string dir = ShardDir(local_name);
    std::error_code ec;
    fs::remove_all(dir, ec);
    fs::create_directories(dir, ec);
    int64_t next = 0;
    if (!TakeOver(c, p, local_name, dir, &next)) return nullptr;
    auto s = std::make_shared<Shard>();
    s->coll = c.name;
    s->incarnation = c.incarnation;
    s->p = p;
    s->local = local_name;
    s->dir = dir;
    s->dim = c.dim;
    s->next = next;
    s->last_snapshot_ms = NowMs();
    if (aidb_db_open_collection(db, local_name.c_str(), &s->h, nullptr) != AIDB_OK) return nullptr;
    if (c.index == "hnsw" || c.index == "ivf") {
      aidb_collection_set_ef_search(s->h, c.EfSearch(), nullptr);
    }
    try {
      WriteFileAtomically(
          dir + "/shard.json",
          Dump(Json{{"collection", c.name}, {"shard", p}, {"incarnation", c.incarnation}}));
    } catch (const ApiError& e) {
      Log(LogLevel::kError, "cluster_shard_marker_failed", KV().Add("error", e.message));
    }
    std::lock_guard<std::mutex> lock(shards_mu);
    shards[{c.name, p}] = s;
    return s;
  }

  // Applies metadata changes to the local shards (ef_search).
  void SyncShards() {
    for (auto& s : ShardsOf("")) {
      auto c = Config(s->coll);
      if (!c || c->incarnation != s->incarnation || (c->index != "hnsw" && c->index != "ivf")) {
        continue;
      }
      aidb_collection_info info;
      aidb_collection_info_init(&info);
      if (aidb_collection_get_info(s->h, &info, nullptr) != AIDB_OK) continue;
      uint32_t have = c->index == "ivf" ? info.ivf_nprobe : info.hnsw_ef_search;
      if (have != c->EfSearch()) {
        CallLocal(local, "POST", "/collections/" + s->local + "/params", "",
                  Dump(Json{{"ef_search", c->EfSearch()}}));
      }
    }
  }

  void Resubscribe() {
    rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(8);
    {
      std::lock_guard<std::mutex> lock(meta_mu);
      for (auto& [name, c] : colls) {
        if (c->replication > o.replica_group) {
          rd_kafka_topic_partition_list_add(topics, c->Topic().c_str(), RD_KAFKA_PARTITION_UA);
        }
      }
    }
    rd_kafka_resp_err_t err =
        topics->cnt == 0 ? rd_kafka_unsubscribe(rep) : rd_kafka_subscribe(rep, topics);
    if (err)
      Log(LogLevel::kWarn, "cluster_subscribe_failed", KV().Add("error", rd_kafka_err2str(err)));
    rd_kafka_topic_partition_list_destroy(topics);
  }

  void OnAssign(rd_kafka_topic_partition_list_t* parts) {
    for (int i = 0; i < parts->cnt; ++i) {
      rd_kafka_topic_partition_t& tp = parts->elems[i];
      std::string topic = tp.topic;
      std::shared_ptr<Shard> s;
      if (topic.rfind(kTopicPrefix, 0) == 0) {
        if (auto c = Config(topic.substr(std::strlen(kTopicPrefix))))
          s = EnsureShard(*c, tp.partition);
      }
      if (s) {
        int64_t next = s->next;
        tp.offset = next > 0 ? next : RD_KAFKA_OFFSET_BEGINNING;
        s->assigned = true;
        Log(LogLevel::kInfo, "cluster_shard_assigned",
            KV().Add("collection", s->coll)
                .Add("shard", s->p)
                .Add("next_offset", static_cast<long long>(next)));
      } else {
        tp.offset = RD_KAFKA_OFFSET_END;  // unknown collection: nothing to apply
      }
    }
    rd_kafka_assign(rep, parts);
    std::string error;
    if (!PublishNode(&error))
      Log(LogLevel::kWarn, "cluster_register_failed", KV().Add("error", error));
    Notify();
  }

  void OnRevoke(rd_kafka_topic_partition_list_t* parts) {
    for (int i = 0; i < parts->cnt; ++i) {
      std::string topic = parts->elems[i].topic;
      if (topic.rfind(kTopicPrefix, 0) != 0) continue;
      if (auto s = FindShard(topic.substr(std::strlen(kTopicPrefix)), parts->elems[i].partition)) {
        s->assigned = false;
      }
    }
    rd_kafka_assign(rep, nullptr);
    Notify();
  }

  // Applies polled records: runs of upserts to one shard go to the engine
  // as one batch; tombstones delete.
  void ApplyBatch(std::vector<rd_kafka_message_t*>& msgs) {
    thread_local simdjson::dom::parser parser;
    std::shared_ptr<Shard> run_shard;
    std::vector<std::string> ids;
    std::vector<std::string> payloads;
    std::vector<float> vectors;
    int64_t run_last = -1;
    auto flush = [&] {
      if (!run_shard || ids.empty()) return;
      std::vector<const char*> idp, pp;
      bool any_payload = false;
      for (size_t i = 0; i < ids.size(); ++i) {
        idp.push_back(ids[i].c_str());
        pp.push_back(payloads[i].empty() ? nullptr : payloads[i].c_str());
        any_payload |= !payloads[i].empty();
      }
      char* err = nullptr;
      int st =
          aidb_collection_upsert_batch(run_shard->h, ids.size(), idp.data(), vectors.data(),
                                       run_shard->dim, any_payload ? pp.data() : nullptr, &err);
      if (st != AIDB_OK) {
        Log(LogLevel::kError, "cluster_apply_failed",
            KV().Add("collection", run_shard->coll)
                .Add("shard", run_shard->p)
                .Add("error", err ? err : aidb_status_name(st)));
        aidb_free(err);
      }
      run_shard->since_snapshot += ids.size();
      run_shard->next = std::max(run_shard->next.load(), run_last + 1);
      ids.clear();
      payloads.clear();
      vectors.clear();
    };
    for (rd_kafka_message_t* m : msgs) {
      const char* tn = rd_kafka_topic_name(m->rkt);
      std::string topic = tn ? tn : "";
      std::shared_ptr<Shard> s;
      if (topic.rfind(kTopicPrefix, 0) == 0) {
        s = FindShard(topic.substr(std::strlen(kTopicPrefix)), m->partition);
      }
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (s) {
          if (s == run_shard) flush();
          s->next = std::max(s->next.load(), m->offset);
        }
        continue;
      }
      if (m->err) {
        Log(LogLevel::kWarn, "cluster_consume_error",
            KV().Add("error", rd_kafka_message_errstr(m)));
        continue;
      }
      if (!s) continue;
      if (s != run_shard) {
        flush();
        run_shard = s;
      }
      std::string key(static_cast<const char*>(m->key), m->key_len);
      if (!m->payload) {
        flush();
        aidb_collection_delete(s->h, key.c_str(), nullptr);  // NOT_FOUND: already gone
        s->since_snapshot++;
        s->next = std::max(s->next.load(), m->offset + 1);
        continue;
      }
      auto doc = parser.parse(static_cast<const char*>(m->payload), m->len);
      bool ok = !doc.error();
      if (ok) {
        simdjson::dom::element root = doc.value_unsafe();
        auto pts = root["points"].get_array();
        ok = !pts.error();
        if (ok) {
          for (simdjson::dom::element pt : pts.value_unsafe()) {
            auto id = pt["id"].get_string();
            auto vec = pt["vector"].get_array();
            if (id.error() || vec.error()) {
              ok = false;
              break;
            }
            size_t n = 0;
            for (simdjson::dom::element x : vec.value_unsafe()) {
              vectors.push_back(static_cast<float>(x.get_double().value_unsafe()));
              ++n;
            }
            if (n != s->dim) {
              vectors.resize(vectors.size() - n);
              ok = false;
              break;
            }
            ids.emplace_back(id.value_unsafe());
            auto pl = pt["payload"];
            payloads.push_back(!pl.error() && pl.value_unsafe().is_object()
                                   ? simdjson::to_string(pl.value_unsafe())
                                   : std::string());
          }
        }
      }
      if (!ok)
        Log(LogLevel::kError, "cluster_bad_record",
            KV().Add("topic", topic).Add("offset", static_cast<long long>(m->offset)));
      run_last = m->offset;
      if (ids.empty()) s->next = std::max(s->next.load(), m->offset + 1);
    }
    flush();
    Notify();
  }

  // Takes a snapshot of a shard (on the apply thread: nothing is applied
  // meanwhile) and names it after the last offset it covers.
  bool SnapshotShard(Shard& s, std::string* file, int64_t* offset, std::string* error) {
    int64_t off = s.next.load() - 1;  // -1: an empty shard, still worth a snapshot
    *offset = off;
    auto snaps = SnapshotFiles(s.dir);
    if (!snaps.empty() && snaps.back().first == off && s.since_snapshot == 0) {
      *file = fs::path(snaps.back().second).filename().string();
      return true;
    }
    HttpResponse r = CallLocal(local, "POST", "/collections/" + s.local + "/snapshot", "", "");
    if (r.status != 200) {
      *error = ErrorOf(r);
      return false;
    }
    Json j = Json::parse(r.body, nullptr, false);
    std::string path = j.is_object() ? j.value("path", "") : "";
    std::string target = s.dir + "/" + SnapshotFileName(off);
    std::string tmp = target + ".tmp";
    ::unlink(tmp.c_str());
    if (::link(path.c_str(), tmp.c_str()) != 0 || ::rename(tmp.c_str(), target.c_str()) != 0) {
      *error = "cannot link " + path + " to " + target + ": " + std::strerror(errno);
      return false;
    }
    int dfd = ::open(s.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
    // Keep the two newest, here and in the collection's own snapshot folder.
    snaps = SnapshotFiles(s.dir);
    std::error_code ec;
    for (size_t i = 0; i + 2 < snaps.size(); ++i) fs::remove(snaps[i].second, ec);
    std::vector<std::string> own;
    for (const auto& e : fs::directory_iterator(fs::path(path).parent_path(), ec)) {
      if (e.path().extension() == ".aidbsnap") own.push_back(e.path().string());
    }
    std::sort(own.begin(), own.end());
    for (size_t i = 0; i + 2 < own.size(); ++i) fs::remove(own[i], ec);
    s.since_snapshot = 0;
    s.last_snapshot_ms = NowMs();
    *file = SnapshotFileName(off);
    Log(LogLevel::kInfo, "cluster_shard_snapshot",
        KV().Add("collection", s.coll)
            .Add("shard", s.p)
            .Add("offset", static_cast<long long>(off)));
    return true;
  }

  void MaybeSnapshot(bool all) {
    int64_t now = NowMs();
    for (auto& s : ShardsOf("")) {
      bool due =
          s->since_snapshot > 0 &&
          (all || s->since_snapshot >= o.snapshot_every_records ||
           now - s->last_snapshot_ms >= static_cast<int64_t>(o.snapshot_every_seconds) * 1000);
      if (!due) continue;
      std::string file, error;
      int64_t off = 0;
      if (!SnapshotShard(*s, &file, &off, &error)) {
        Log(LogLevel::kWarn, "cluster_snapshot_failed",
            KV().Add("collection", s->coll).Add("shard", s->p).Add("error", error));
        s->last_snapshot_ms = now;
      }
    }
  }

  void ApplyLoop() {
    std::vector<rd_kafka_message_t*> msgs;
    int64_t last_hw = 0;
    while (!stopping) {
      std::deque<std::function<void()>> run;
      {
        std::lock_guard<std::mutex> lock(apply_mu);
        run.swap(tasks);
      }
      for (auto& t : run) t();
      if (resubscribe.exchange(false)) Resubscribe();
      rd_kafka_message_t* m = rd_kafka_consumer_poll(rep, 100);
      while (m) {
        msgs.push_back(m);
        if (msgs.size() >= 1000) break;
        m = rd_kafka_consumer_poll(rep, 0);
      }
      if (!msgs.empty()) {
        ApplyBatch(msgs);
        for (auto* x : msgs) rd_kafka_message_destroy(x);
        msgs.clear();
      }
      int64_t now = NowMs();
      if (now - last_hw >= 1000) {
        last_hw = now;
        for (auto& s : ShardsOf("")) {
          int64_t lo = 0, hi = 0;
          if (s->assigned &&
              rd_kafka_get_watermark_offsets(rep, (kTopicPrefix + s->coll).c_str(), s->p, &lo,
                                             &hi) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            s->high_watermark = hi;
          }
        }
        MaybeSnapshot(false);
      }
    }
    MaybeSnapshot(true);
  }

  // ---------------------------------------------------------------- reads

  // A client for watermark queries. It reads the high watermark itself
  // (read_uncommitted), not the last stable offset: right after a batch's
  // commit returns, the transaction markers may not be written yet and the
  // LSO still lies before its records, so a strong read would miss them; the
  // replica (read_committed) reaches the high watermark only once they are
  // committed and applied. librdkafka may keep asking a partition's old
  // leader after a broker died or came back (its cached leader is not
  // refreshed on NOT_LEADER for these queries): then the client is replaced.
  std::shared_ptr<rd_kafka_t> WatermarkClient(bool renew) {
    std::lock_guard<std::mutex> lock(wm_mu);
    int64_t now = NowMs();
    if (wm && !(renew && now - wm_created_ms >= 1000)) return wm;
    rd_kafka_conf_t* c = kafka.BaseConf();
    char errstr[512];
    rd_kafka_conf_set(c, "group.id", ("aidb.watermarks." + o.node_id).c_str(), errstr,
                      sizeof errstr);
    rd_kafka_conf_set(c, "isolation.level", "read_uncommitted", errstr, sizeof errstr);
    rd_kafka_conf_set(c, "enable.auto.commit", "false", errstr, sizeof errstr);
    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, errstr, sizeof errstr);
    if (!rk) return wm;
    wm = std::shared_ptr<rd_kafka_t>(
        rk, [](rd_kafka_t* k) { rd_kafka_destroy_flags(k, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE); });
    wm_created_ms = now;
    return wm;
  }

  // The high watermark of a partition, retrying transient errors (a new
  // topic's metadata propagating, a leader moving) within `timeout_ms`.
  rd_kafka_resp_err_t HighWatermark(const std::string& topic, int p, int64_t* hi, int timeout_ms) {
    const int64_t start = NowMs();
    int64_t deadline = start + timeout_ms;
    bool renew = false;
    for (;;) {
      int64_t lo = 0;
      std::shared_ptr<rd_kafka_t> client = WatermarkClient(renew);
      if (!client) return RD_KAFKA_RESP_ERR__STATE;
      int left =
          static_cast<int>(std::max<int64_t>(100, std::min<int64_t>(2000, deadline - NowMs())));
      rd_kafka_resp_err_t err =
          rd_kafka_query_watermark_offsets(client.get(), topic.c_str(), p, &lo, hi, left);
      if (!err || NowMs() >= deadline || stopping) return err;
      if (err != RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION &&
          err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART &&
          err != RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC &&
          err != RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE &&
          err != RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION &&
          err != RD_KAFKA_RESP_ERR__TRANSPORT && err != RD_KAFKA_RESP_ERR__TIMED_OUT &&
          err != RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT &&
          err != RD_KAFKA_RESP_ERR_OFFSET_NOT_AVAILABLE &&
          err != RD_KAFKA_RESP_ERR_FENCED_LEADER_EPOCH &&
          err != RD_KAFKA_RESP_ERR_UNKNOWN_LEADER_EPOCH) {
        return err;
      }
      // A new topic's metadata normally reaches the client within a few
      // retries; a client whose cached metadata still lacks the partition
      // after a second (seen on a loaded machine right after a create) is
      // replaced, so that a fresh one asks the brokers again.
      const bool unknown = err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION ||
                           err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                           err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
      renew = !unknown || NowMs() - start >= 1000;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  struct Consistency {
    std::string level = "eventual";
    std::vector<std::string> tokens;
  };

  Consistency ReadConsistency(HttpRequest* req, bool body_json) {
    Consistency c;
    bool level_set = false;
    if (body_json) {
      Json b = Json::parse(req->body, nullptr, false);
      if (b.is_object()) {
        if (b.contains("consistency")) {
          if (!b["consistency"].is_string()) Fail(400, "'consistency' must be a string");
          c.level = b["consistency"];
          level_set = true;
        }
        if (b.contains("write_token")) {
          const Json& t = b["write_token"];
          if (t.is_string()) {
            c.tokens.push_back(t);
          } else if (t.is_array()) {
            for (auto& x : t) {
              if (!x.is_string())
                Fail(400, "'write_token' must be a string or an array of strings");
              c.tokens.push_back(x);
            }
          } else if (!t.is_null()) {
            Fail(400, "'write_token' must be a string or an array of strings");
          }
        }
      }
    }
    std::string v;
    if (!level_set && req->QueryParam("consistency", &v)) c.level = v;
    if (req->QueryParam("write_token", &v) && !v.empty()) c.tokens.push_back(v);
    for (auto& [k, val] : req->headers) {
      if (k == "aidb-write-token" && !val.empty()) c.tokens.push_back(val);
    }
    if (c.level != "eventual" && c.level != "session" && c.level != "strong") {
      Fail(400, "unknown consistency level '" + c.level + "': use eventual, session or strong");
    }
    return c;
  }

  // The offset each partition must have applied before it answers (0: none).
  std::vector<int64_t> WaitTargets(const CollConfig& cfg, const Consistency& c,
                                   const std::vector<int>& parts) {
    std::vector<int64_t> wait(cfg.shards, 0);
    for (const auto& text : c.tokens) {
      WriteToken t;
      std::string error;
      if (!ParseToken(text, &t, &error)) Fail(400, error);
      if (t.collection != cfg.name) {
        Fail(400, "write token '" + text + "' belongs to collection '" + t.collection + "', not '" +
                      cfg.name + "'");
      }
      for (auto& [p, off] : t.offsets) {
        if (p < 0 || p >= cfg.shards) {
          Fail(400, "write token '" + text + "' names shard " + std::to_string(p) + ", but '" +
                        cfg.name + "' has " + std::to_string(cfg.shards));
        }
        wait[p] = std::max(wait[p], off + 1);
      }
    }
    if (c.level == "strong") {
      for (int p : parts) {
        int64_t hi = 0;
        rd_kafka_resp_err_t err =
            HighWatermark(cfg.Topic(), p, &hi, static_cast<int>(o.consistency_timeout_ms));
        if (err) {
          Fail(503, "cannot read the high watermark of shard " + std::to_string(p) + " of '" +
                        cfg.name + "': " + rd_kafka_err2str(err));
        }
        wait[p] = std::max(wait[p], hi);
      }
    }
    return wait;
  }

  HttpResponse ServeShard(const std::string& coll, int p, const std::string& method,
                          const std::string& rest, const std::string& query,
                          const std::string& body, int64_t wait_offset, uint64_t wait_ms) {
    HttpResponse resp;
    auto s = FindShard(coll, p);
    if (!s) {
      resp.status = 503;
      resp.body = ErrorBody("shard " + std::to_string(p) + " of '" + coll + "' is not on node " +
                            o.node_id);
      return resp;
    }
    if (wait_offset > 0 && s->next < wait_offset) {
      if (!s->assigned) {
        resp.status = 503;
        resp.body = ErrorBody("shard " + std::to_string(p) + " of '" + coll +
                              "' is behind and not assigned to node " + o.node_id);
        return resp;
      }
      std::unique_lock<std::mutex> lock(apply_mu);
      apply_cv.wait_for(lock, std::chrono::milliseconds(wait_ms),
                        [&] { return s->next >= wait_offset || stopping; });
      if (s->next < wait_offset) {
        resp.status = 504;
        resp.body = ErrorBody("consistency wait timed out after " + std::to_string(wait_ms) +
                              " ms: shard " + std::to_string(p) + " of '" + coll +
                              "' has applied offsets below " + std::to_string(s->next.load()) +
                              ", the request needs " + std::to_string(wait_offset - 1));
        return resp;
      }
    }
    return CallLocal(local, method, "/collections/" + s->local + rest, query, body);
  }

  struct Candidate {
    bool self = false;
    NodeInfo node;
  };

  std::vector<Candidate> Candidates(const CollConfig& cfg, int p) {
    static thread_local std::mt19937 rng(std::random_device{}());
    std::vector<Candidate> owners, others, out;
    for (auto& n : Nodes()) {
      if (n.id == o.node_id || n.replica_group >= cfg.replication || n.address.empty()) continue;
      (n.Has(cfg.name, p) ? owners : others).push_back(Candidate{false, n});
    }
    std::shuffle(owners.begin(), owners.end(), rng);
    std::shuffle(others.begin(), others.end(), rng);
    auto mine = FindShard(cfg.name, p);
    bool have = mine && mine->incarnation == cfg.incarnation;
    if (have && mine->assigned) out.push_back(Candidate{true, {}});
    out.insert(out.end(), owners.begin(), owners.end());
    if (have && !mine->assigned) out.push_back(Candidate{true, {}});
    out.insert(out.end(), others.begin(), others.end());
    return out;
  }

  // Sends a request to one replica of each partition in `parts`, retrying
  // another replica when one fails or does not answer in time.
  std::vector<HttpResponse> FanOut(const CollConfig& cfg, const std::vector<int>& parts,
                                   const std::string& method, const std::string& rest,
                                   const std::string& query, const std::string& body,
                                   const std::vector<int64_t>& wait) {
    struct Target {
      int p;
      std::vector<Candidate> cands;
      size_t next = 0;
      bool done = false;
      HttpResponse resp;
      std::string last_error;
    };
    int64_t wait_deadline = NowMs() + static_cast<int64_t>(o.consistency_timeout_ms);
    std::vector<Target> targets;
    for (int p : parts) {
      Target t;
      t.p = p;
      t.cands = Candidates(cfg, p);
      targets.push_back(std::move(t));
    }
    for (;;) {
      std::vector<HttpCall> calls;
      std::vector<size_t> call_target;
      calls.reserve(targets.size());
      bool pending = false;
      bool backoff = false;
      std::vector<std::pair<size_t, std::future<HttpResponse>>> local_calls;
      for (size_t i = 0; i < targets.size(); ++i) {
        Target& t = targets[i];
        if (t.done) continue;
        pending = true;
        if (t.next >= t.cands.size()) {
          // Every replica refused (a rebalance moving the shard, a new
          // collection not assigned yet): ask again until the deadline.
          if (NowMs() < wait_deadline && !stopping) {
            t.cands = Candidates(cfg, t.p);
            t.next = 0;
            backoff = true;
            continue;
          }
          bool waiting = wait[t.p] > 0;
          Fail(waiting ? 504 : 503,
               std::string(waiting ? "consistency wait timed out after " +
                                         std::to_string(o.consistency_timeout_ms) + " ms: "
                                   : "") +
                   "no replica of shard " + std::to_string(t.p) + " of collection '" + cfg.name +
                   "' answered" + (t.last_error.empty() ? "" : ": " + t.last_error));
        }
        const Candidate& cand = t.cands[t.next++];
        int64_t w = wait[t.p];
        uint64_t wait_ms = static_cast<uint64_t>(std::max<int64_t>(0, wait_deadline - NowMs()));
        if (cand.self) {
          // This node's replica, in process, while the remote calls run.
          local_calls.emplace_back(
              i, std::async(std::launch::async, [this, &cfg, &t, &method, &rest, &query, &body, w,
                                                 wait_ms] {
                return ServeShard(cfg.name, t.p, method, rest, query, body, w, wait_ms);
              }));
          continue;
        }
        HttpCall c;
        c.method = method;
        c.url = Url(cand.node, "/internal/shard/" + cfg.name + "/" + std::to_string(t.p) + rest +
                                   (query.empty() ? "" : "?" + query));
        c.body = body;
        c.headers = AuthHeaders();
        c.headers.push_back("Content-Type: application/json");
        if (w > 0) {
          c.headers.push_back("AIDB-Wait-Offset: " + std::to_string(w));
          c.headers.push_back("AIDB-Wait-Ms: " + std::to_string(wait_ms));
        }
        c.timeout_ms = static_cast<long>(wait_ms + o.consistency_timeout_ms);
        calls.push_back(std::move(c));
        call_target.push_back(i);
      }
      if (!pending) break;
      if (backoff) std::this_thread::sleep_for(std::chrono::milliseconds(200));
      std::vector<HttpCall*> ptrs;
      for (auto& c : calls) ptrs.push_back(&c);
      PerformAll(ptrs);
      for (auto& [i, fut] : local_calls) {
        Target& t = targets[i];
        HttpResponse r = fut.get();
        if (r.status == 503 || (r.status >= 500 && r.status != 504)) {
          t.last_error = o.node_id + ": " + ErrorOf(r);
        } else {
          t.resp = std::move(r);
          t.done = true;
        }
      }
      for (size_t k = 0; k < calls.size(); ++k) {
        Target& t = targets[call_target[k]];
        const HttpCall& c = calls[k];
        const std::string& who = t.cands[t.next - 1].node.id;
        if (c.status == 0) {
          t.last_error = who + ": " + c.error;
        } else if (c.status == 503 || (c.status >= 500 && c.status != 504)) {
          t.last_error = who + ": " + BodyError(c.answer);
        } else {
          t.resp.status = c.status;
          t.resp.body = c.answer;
          t.done = true;
        }
      }
    }
    std::vector<HttpResponse> out;
    for (auto& t : targets) out.push_back(std::move(t.resp));
    return out;
  }

  std::vector<int> AllParts(const CollConfig& c) {
    std::vector<int> parts(c.shards);
    for (int p = 0; p < c.shards; ++p) parts[p] = p;
    return parts;
  }

  // The first answer that is not a success, verbatim, else nothing.
  static bool FirstError(const std::vector<HttpResponse>& rs, HttpResponse* resp) {
    for (const auto& r : rs) {
      if (r.status != 200) {
        resp->status = r.status;
        resp->body = r.body;
        return true;
      }
    }
    return false;
  }

  Json InfoJson(const CollConfig& c, const std::vector<HttpResponse>& rs) {
    Json j;
    j["name"] = c.name;
    j["dim"] = c.dim;
    j["metric"] = c.metric;
    j["index"] = c.index;
    if (c.index == "hnsw") {
      j["hnsw"] = {{"m", c.m}, {"ef_construction", c.ef_construction}, {"ef_search", c.ef_search}};
    } else {
      j["hnsw"] = nullptr;  // as standalone: always present
    }
    // As standalone: null unless IVF.
    j["ivf"] = nullptr;
    if (c.index == "ivf") {
      j["ivf"] = {{"nlist", c.ivf_nlist}, {"nprobe", c.ivf_nprobe}, {"rerank", c.ivf_rerank}};
    }
    j["quantization"] = c.quantization;
    j["vectors_on_disk"] = c.vectors_on_disk;
    uint64_t len = 0, wal = 0, since = 0, lsn = 0;
    std::string durability = "fsync";
    Json oldest_truncate = nullptr;
    bool any_never = false;
    for (const auto& r : rs) {
      Json s = Json::parse(r.body, nullptr, false);
      if (!s.is_object()) continue;
      len += s.value("len", uint64_t{0});
      wal += s.value("wal_size_bytes", uint64_t{0});
      since += s.value("wal_bytes_since_truncate", uint64_t{0});
      lsn += s.value("wal_last_lsn", uint64_t{0});
      durability = s.value("durability", durability);
      if (!s.contains("wal_last_truncate") || s["wal_last_truncate"].is_null()) {
        any_never = true;
      } else if (oldest_truncate.is_null() ||
                 s["wal_last_truncate"].get<std::string>() < oldest_truncate.get<std::string>()) {
        oldest_truncate = s["wal_last_truncate"];
      }
    }
    j["durability"] = durability;
    j["len"] = len;
    j["wal_size_bytes"] = wal;
    j["wal_last_truncate"] = any_never ? Json() : oldest_truncate;
    j["wal_bytes_since_truncate"] = since;
    j["wal_last_lsn"] = lsn;
    j["shards"] = c.shards;
    j["replication"] = c.replication;
    return j;
  }

  Json Info(const CollConfig& c, HttpRequest* req) {
    std::vector<int64_t> wait(c.shards, 0);
    if (req) wait = WaitTargets(c, ReadConsistency(req, false), AllParts(c));
    auto rs = FanOut(c, AllParts(c), "GET", "", "", "", wait);
    HttpResponse err;
    if (FirstError(rs, &err)) Fail(err.status, ErrorOf(err));
    return InfoJson(c, rs);
  }

  // ---------------------------------------------------------------- writes

  static void AppendFloats(simdjson::dom::element v, std::string* out) {
    out->push_back('[');
    bool first = true;
    simdjson::dom::array arr = v.get_array().value_unsafe();
    for (simdjson::dom::element x : arr) {
      if (!first) out->push_back(',');
      first = false;
      char buf[32];
      float f = static_cast<float>(x.get_double().value_unsafe());
      if (f == 0 && std::signbit(f)) {  // "-0" would be read back as the integer 0
        out->append("-0.0");
        continue;
      }
      auto r = std::to_chars(buf, buf + sizeof buf, f);
      out->append(buf, r.ptr);
    }
    out->push_back(']');
  }

  // The record value of one point: the change-feed form of an upsert.
  static std::string PointRecord(const std::string& id, simdjson::dom::element point) {
    std::string v = "{\"op\":\"upsert\",\"points\":[{\"id\":\"" + id + "\",\"vector\":";
    AppendFloats(point["vector"].value_unsafe(), &v);
    v += ",\"payload\":";
    auto pl = point["payload"];
    if (!pl.error() && pl.value_unsafe().is_object()) {
      v += simdjson::to_string(pl.value_unsafe());
    } else {
      v += "null";
    }
    v += "}]}";
    return v;
  }

  // Runs produce (a write to c's topic); when the topic refused a record
  // for its size and is one made before topics took kMaxRecordBytes (0.2.0
  // and earlier kept Kafka's ~1 MB), raises the topic's limit and runs it
  // again (the broker may take a moment to apply the new limit). Else fails
  // as FailWrite says.
  void ProduceOrFail(const CollConfig& c, const std::function<bool(std::string*)>& produce) {
    std::string error;
    if (produce(&error)) return;
    if (error != rd_kafka_err2str(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE)) FailWrite(c, error);
    bool raised = false;
    std::string why;
    if (!kafka.RaiseTopicConfig(c.Topic(), "max.message.bytes", std::atoll(kMaxRecordBytes),
                                &raised, &why)) {
      Log(LogLevel::kWarn, "cluster_topic_limit_unchanged",
          KV().Add("topic", c.Topic()).Add("error", why));
    }
    if (!raised) FailWrite(c, error);
    Log(LogLevel::kInfo, "cluster_topic_limit_raised",
        KV().Add("topic", c.Topic()).Add("max_message_bytes", kMaxRecordBytes));
    for (int attempt = 0; attempt < 20; ++attempt) {
      error.clear();
      if (produce(&error)) return;
      if (error != rd_kafka_err2str(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE)) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    FailWrite(c, error);
  }

  // A write Kafka refused: a record larger than the topic takes is the
  // client's (413, as a body over --max-body-bytes); a write that raced a
  // drop made through another node (its topic is gone) is a 404 as it would
  // be a moment later; anything else 503.
  [[noreturn]] void FailWrite(const CollConfig& c, const std::string& error) {
    if (error == rd_kafka_err2str(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE)) {
      Fail(413,
           "kafka: " + error + ": a point's record is larger than the topic's max.message.bytes");
    }
    if (CatchUpMeta()) {
      auto now = Config(c.name);
      if (!now || now->incarnation != c.incarnation) {
        Fail(404, "collection '" + c.name + "' not found");
      }
    }
    Fail(503, "kafka: " + error);
  }

  void ForgetScratch(const std::string& name, const std::vector<std::string>& ids) {
    aidb_collection* h = nullptr;
    if (aidb_db_open_collection(scratch_db, name.c_str(), &h, nullptr) == AIDB_OK) {
      for (const auto& id : ids) aidb_collection_delete(h, id.c_str(), nullptr);
      aidb_collection_close(h);
    }
    ScratchWritten(name, ids.size() * 2);
  }

  // A write's answer in the standalone shape. The write token travels in the
  // AIDB-Write-Token header; an object answer carries it as "write_token"
  // too, a bare value (an id, an array of ids, true) cannot.
  static void WithToken(HttpResponse* resp, Json j, const WriteToken& t) {
    std::string token = FormatToken(t);
    if (j.is_object()) j["write_token"] = token;
    resp->status = 200;
    resp->body = Dump(j);
    resp->headers.emplace_back("AIDB-Write-Token", token);
  }

  // The id the standalone upsert answered: a bare JSON string.
  static std::string AnsweredId(const std::string& body) {
    Json j = Json::parse(body, nullptr, false);
    if (j.is_string()) return j.get<std::string>();
    Fail(500, "unexpected upsert answer: " + body);
  }

  // The ids the standalone batch upsert answered: a bare JSON array.
  static std::vector<std::string> AnsweredIds(const std::string& body) {
    Json j = Json::parse(body, nullptr, false);
    if (!j.is_array()) Fail(500, "unexpected batch upsert answer: " + body);
    std::vector<std::string> ids;
    for (auto& x : j) {
      if (!x.is_string()) Fail(500, "unexpected batch upsert answer: " + body);
      ids.push_back(x);
    }
    return ids;
  }

  void Upsert(HttpRequest* req, HttpResponse* resp) {
    auto c = MustConfig(req->params[0]);
    HttpResponse v = CallLocal(scratch.get(), req->method, req->path, req->query, req->body);
    if (v.status != 200) {
      *resp = std::move(v);
      return;
    }
    std::string id = AnsweredId(v.body);
    ForgetScratch(c->name, {id});
    simdjson::dom::parser parser;
    simdjson::dom::element body = parser.parse(req->body).value();
    KafkaRecord r;
    r.topic = c->Topic();
    r.partition = PartitionFor(id, c->shards);
    r.key = id;
    r.value = PointRecord(id, body);
    int64_t off = 0;
    ProduceOrFail(*c, [&](std::string* error) { return kafka.Produce(r, &off, error); });
    WriteToken t{c->name, {{r.partition, off}}};
    WithToken(resp, Json(id), t);
  }

  void UpsertBatch(HttpRequest* req, HttpResponse* resp) {
    auto c = MustConfig(req->params[0]);
    HttpResponse v = CallLocal(scratch.get(), req->method, req->path, req->query, req->body);
    if (v.status != 200) {
      *resp = std::move(v);
      return;
    }
    std::vector<std::string> ids = AnsweredIds(v.body);
    ForgetScratch(c->name, ids);
    if (ids.empty()) {  // nothing written: no token
      resp->status = 200;
      resp->body = "[]";
      return;
    }
    simdjson::dom::parser parser;
    simdjson::dom::element body = parser.parse(req->body).value();
    std::vector<KafkaRecord> records;
    size_t i = 0;
    simdjson::dom::array points = body["points"].get_array().value_unsafe();
    for (simdjson::dom::element p : points) {
      KafkaRecord r;
      r.topic = c->Topic();
      r.partition = PartitionFor(ids[i], c->shards);
      r.key = ids[i];
      r.value = PointRecord(ids[i], p);
      records.push_back(std::move(r));
      ++i;
    }
    std::vector<int64_t> offsets;
    ProduceOrFail(
        *c, [&](std::string* error) { return kafka.ProduceTransaction(records, &offsets, error); });
    WriteToken t{c->name, {}};
    for (size_t k = 0; k < records.size(); ++k) {
      int64_t& slot = t.offsets[records[k].partition];
      slot = std::max(slot, offsets[k]);
    }
    WithToken(resp, Json(ids), t);
  }

  // The canonical id of a request's point, or the standalone answer for a bad one.
  bool PointId(HttpRequest* req, std::string* id, HttpResponse* resp) {
    char out[37];
    if (aidb_uuid_canonical(req->params[1].c_str(), out, nullptr) != AIDB_OK) {
      *resp = CallLocal(scratch.get(), req->method == "HEAD" ? "GET" : req->method, req->path,
                        req->query, req->body);
      return false;
    }
    *id = std::string(out, 36);
    return true;
  }

  void GetPoint(HttpRequest* req, HttpResponse* resp) {
    auto c = MustConfig(req->params[0]);
    std::string id;
    if (!PointId(req, &id, resp)) return;
    int p = PartitionFor(id, c->shards);
    auto wait = WaitTargets(*c, ReadConsistency(req, false), {p});
    auto rs = FanOut(*c, {p}, "GET", "/points/" + id, "", "", wait);
    resp->status = rs[0].status;
    resp->body = rs[0].body;
  }

  void DeletePoint(HttpRequest* req, HttpResponse* resp) {
    auto c = MustConfig(req->params[0]);
    std::string id;
    if (!PointId(req, &id, resp)) return;
    int p = PartitionFor(id, c->shards);
    // `false` as standalone for a point that does not exist (as of now):
    // nothing is written, so there is no token either.
    Consistency strong;
    strong.level = "strong";
    auto wait = WaitTargets(*c, strong, {p});
    auto rs = FanOut(*c, {p}, "GET", "/points/" + id, "", "", wait);
    if (rs[0].status == 404 && ErrorOf(rs[0]).rfind("point '", 0) == 0) {
      resp->status = 200;
      resp->body = "false";
      return;
    }
    if (rs[0].status != 200) {
      resp->status = rs[0].status;
      resp->body = rs[0].body;
      return;
    }
    KafkaRecord r;
    r.topic = c->Topic();
    r.partition = p;
    r.key = id;
    r.tombstone = true;
    int64_t off = 0;
    std::string error;
    if (!kafka.Produce(r, &off, &error)) FailWrite(*c, error);
    WithToken(resp, Json(true), WriteToken{c->name, {{p, off}}});
  }

  static uint32_t TopK(const Json& obj, uint32_t fallback) {
    for (const char* k : {"top_k", "k", "limit"}) {
      if (obj.contains(k) && obj[k].is_number()) return obj[k].get<uint32_t>();
    }
    return fallback;
  }

  // Merges one query's hit lists (one per shard) into the best `k`: the
  // lowest distances, ascending, as a single node answers.
  static std::string MergeHits(const std::vector<const Json*>& lists, uint32_t k) {
    std::vector<Hit> hits;
    for (size_t s = 0; s < lists.size(); ++s) {
      if (!lists[s] || !lists[s]->is_array()) continue;
      size_t rank = 0;
      for (const auto& h : *lists[s]) {
        double score = std::numeric_limits<double>::infinity();  // none: ranks last
        if (h.is_object() && h.contains("score") && h["score"].is_number()) score = h["score"];
        hits.push_back(Hit{score, s, rank++, Dump(h)});
      }
    }
    std::string out = "[";
    bool first = true;
    for (auto& h : MergeTopK(std::move(hits), k)) {
      if (!first) out.push_back(',');
      first = false;
      out += h.json;
    }
    out.push_back(']');
    return out;
  }

  void Search(HttpRequest* req, HttpResponse* resp, bool batch) {
    auto c = MustConfig(req->params[0]);
    HttpResponse v = CallLocal(scratch.get(), "POST", req->path, req->query, req->body);
    if (v.status != 200) {
      *resp = std::move(v);
      return;
    }
    auto parts = AllParts(*c);
    auto wait = WaitTargets(*c, ReadConsistency(req, true), parts);
    auto rs = FanOut(*c, parts, "POST", batch ? "/search:batch" : "/search", "", req->body, wait);
    if (FirstError(rs, resp)) return;
    std::vector<Json> answers;
    for (auto& r : rs) answers.push_back(Json::parse(r.body, nullptr, false));
    Json body = Json::parse(req->body, nullptr, false);
    uint32_t k = TopK(body, 10);
    std::string out = "{\"results\":";
    if (!batch) {
      std::vector<const Json*> lists;
      for (auto& a : answers)
        lists.push_back(a.is_object() && a.contains("results") ? &a["results"] : nullptr);
      out += MergeHits(lists, k);
    } else {
      const Json* items = body.contains("searches")  ? &body["searches"]
                          : body.contains("queries") ? &body["queries"]
                                                     : nullptr;
      size_t nq = items && items->is_array() ? items->size() : 0;
      out.push_back('[');
      for (size_t q = 0; q < nq; ++q) {
        if (q) out.push_back(',');
        const Json& item = (*items)[q];
        uint32_t kq = item.is_object() ? TopK(item, k) : k;
        std::vector<const Json*> lists;
        for (auto& a : answers) {
          bool ok = a.is_object() && a.contains("results") && a["results"].is_array() &&
                    a["results"].size() > q;
          lists.push_back(ok ? &a["results"][q] : nullptr);
        }
        out += MergeHits(lists, kq);
      }
      out.push_back(']');
    }
    out.push_back('}');
    resp->status = 200;
    resp->body = std::move(out);
  }

  // ---------------------------------------------------------------- collections

  int LiveReplicaGroups() {
    std::set<int> groups{o.replica_group};
    auto nodes = Nodes();
    std::vector<HttpCall> calls;
    std::vector<int> group_of;
    for (auto& n : nodes) {
      if (n.id == o.node_id || n.address.empty()) continue;
      HttpCall c;
      c.url = Url(n, "/health");
      c.timeout_ms = 1000;
      calls.push_back(c);
      group_of.push_back(n.replica_group);
    }
    std::vector<HttpCall*> ptrs;
    for (auto& c : calls) ptrs.push_back(&c);
    PerformAll(ptrs);
    for (size_t i = 0; i < calls.size(); ++i) {
      if (calls[i].status == 200) groups.insert(group_of[i]);
    }
    // Groups 0..n-1 must all be live for a replication of n.
    int n = 0;
    while (groups.count(n)) ++n;
    return n;
  }

  static int PositiveField(const Json& b, const char* key) {
    if (!b.contains(key) || b[key].is_null()) return 1;
    const Json& v = b[key];
    if (!v.is_number_integer() &&
        !(v.is_number_float() && v.get<double>() == static_cast<int64_t>(v.get<double>()))) {
      Fail(400, std::string("'") + key + "' must be a positive integer");
    }
    int64_t n = v.is_number_integer() ? v.get<int64_t>() : static_cast<int64_t>(v.get<double>());
    if (n < 1) Fail(400, std::string("'") + key + "' must be at least 1, not " + std::to_string(n));
    if (n > kMaxShards)
      Fail(400, std::string("'") + key + "' must be at most " + std::to_string(kMaxShards));
    return static_cast<int>(n);
  }

  // The configuration the standalone API makes of a create body (validated
  // exactly as standalone, on the scratch database), under `as_name`.
  bool ScratchConfig(const std::string& body, const std::string& as_name, CollConfig* c,
                     HttpResponse* error) {
    HttpResponse v, g;
    {
      std::lock_guard<std::mutex> lock(scratch_mu);
      v = CallLocal(scratch.get(), "POST", "/collections", "", body);
      if (v.status / 100 == 2)
        g = CallLocal(scratch.get(), "GET", "/collections/" + as_name, "", "");
    }
    if (v.status / 100 != 2) {
      *error = std::move(v);
      return false;
    }
    DropScratch(as_name);
    Json info = Json::parse(g.body, nullptr, false);
    if (g.status != 200 || !info.is_object())
      Fail(500, "cannot read back the new collection: " + g.body);
    c->name = info.at("name");
    c->dim = info.at("dim");
    c->metric = info.at("metric");
    c->index = info.at("index");
    if (info.contains("hnsw") && info["hnsw"].is_object()) {
      c->m = info["hnsw"].at("m");
      c->ef_construction = info["hnsw"].at("ef_construction");
      c->ef_search = info["hnsw"].at("ef_search");
    }
    if (info.contains("ivf") && info["ivf"].is_object()) {
      c->ivf_nlist = info["ivf"].at("nlist");
      c->ivf_nprobe = info["ivf"].at("nprobe");
      c->ivf_rerank = info["ivf"].at("rerank");
    }
    c->quantization = info.value("quantization", std::string("sq8"));
    c->vectors_on_disk = info.value("vectors_on_disk", false);
    return true;
  }

  // What differs between an existing collection and a create request for
  // the same name ("" if nothing): the request's own values are compared,
  // shards and replication only when it names them.
  static std::string ConfigDiff(const CollConfig& have, const CollConfig& want, const Json& b) {
    std::vector<std::string> diff;
    auto add = [&](const std::string& what, const std::string& h, const std::string& w) {
      if (h != w) diff.push_back(what + " " + h + " (requested " + w + ")");
    };
    add("dim", std::to_string(have.dim), std::to_string(want.dim));
    add("metric", have.metric, want.metric);
    add("index", have.index, want.index);
    if (have.index == "hnsw" && want.index == "hnsw") {
      add("hnsw.m", std::to_string(have.m), std::to_string(want.m));
      add("hnsw.ef_construction", std::to_string(have.ef_construction),
          std::to_string(want.ef_construction));
    }
    if (have.index == "ivf" && want.index == "ivf") {  // nprobe: as ef_search
      add("ivf.nlist", std::to_string(have.ivf_nlist), std::to_string(want.ivf_nlist));
      add("ivf.rerank", std::to_string(have.ivf_rerank), std::to_string(want.ivf_rerank));
    }
    add("quantization", have.quantization, want.quantization);
    add("vectors_on_disk", have.vectors_on_disk ? "true" : "false",
        want.vectors_on_disk ? "true" : "false");
    if (b.contains("shards") && !b["shards"].is_null()) {
      add("shards", std::to_string(have.shards), std::to_string(want.shards));
    }
    if (b.contains("replication") && !b["replication"].is_null()) {
      add("replication", std::to_string(have.replication), std::to_string(want.replication));
    }
    std::string out;
    for (auto& d : diff) out += (out.empty() ? "" : ", ") + d;
    return out;
  }

  // The answer to a create of a collection that exists: `{"ok":true}` for the
  // same configuration, else 409 naming what differs (as standalone).
  static void AnswerExisting(const CollConfig& have, const CollConfig& want, const Json& b,
                             HttpResponse* resp) {
    std::string diff = ConfigDiff(have, want, b);
    if (!diff.empty()) {
      Fail(409,
           "collection '" + have.name + "' already exists with another configuration: " + diff);
    }
    resp->status = 200;
    resp->body = Dump(Json{{"ok", true}});
  }

  void CreateCollection(HttpRequest* req, HttpResponse* resp) {
    Json b = Json::parse(req->body, nullptr, false);
    std::shared_ptr<const CollConfig> existing;
    if (b.is_object()) {
      // Bad shards/replication first: they need no scratch collection.
      PositiveField(b, "shards");
      PositiveField(b, "replication");
      if (b.contains("name") && b["name"].is_string() &&
          kTopicPrefix + b["name"].get<std::string>() == kMetaTopic) {
        // Its topic would be the metadata topic, which exists: the create
        // would wait for a config that never comes and answer 409.
        Fail(400, "collection name '" + b["name"].get<std::string>() +
                      "' is reserved in cluster mode: its topic would be " + kMetaTopic +
                      ", the cluster's metadata topic");
      }
      if (b.contains("name") && b["name"].is_string()) existing = Config(b["name"]);
    }
    if (existing) {
      // As standalone: the same configuration again changes nothing, another
      // one is a 409 that says what differs. The request is validated and
      // completed with its defaults under a name of its own (the scratch
      // database holds one of the existing name).
      char uuid[37];
      aidb_uuid_generate(uuid);
      std::string tmp = std::string("cluster_cmp_") + uuid;
      Json body = b;
      body["name"] = tmp;
      CollConfig want;
      HttpResponse err;
      if (!ScratchConfig(Dump(body), tmp, &want, &err)) {
        *resp = std::move(err);
        return;
      }
      want.name = existing->name;
      want.shards = PositiveField(b, "shards");
      want.replication = PositiveField(b, "replication");
      return AnswerExisting(*existing, want, b, resp);
    }
    CollConfig c;
    HttpResponse err;
    if (!ScratchConfig(req->body,
                       b.is_object() && b.contains("name") && b["name"].is_string()
                           ? b["name"].get<std::string>()
                           : std::string(),
                       &c, &err)) {
      *resp = std::move(err);
      return;
    }
    c.shards = PositiveField(b, "shards");
    c.replication = PositiveField(b, "replication");
    char uuid[37];
    aidb_uuid_generate(uuid);
    c.incarnation = uuid;
    int live = LiveReplicaGroups();
    if (c.replication > live) {
      Fail(400, "'replication' is " + std::to_string(c.replication) + " but only " +
                    std::to_string(live) + " replica group" + (live == 1 ? "" : "s") + " (0.." +
                    std::to_string(live - 1) +
                    ") have a live node: start nodes with --replica-group up to " +
                    std::to_string(c.replication - 1) + " first");
    }
    std::string error;
    int brokers = kafka.BrokerCount(10000, &error);
    if (brokers < 1) Fail(503, "kafka: " + error);
    int rf = std::min(3, brokers);
    std::map<std::string, std::string> cfg{{"cleanup.policy", "compact"},
                                           {"max.message.bytes", kMaxRecordBytes}};
    if (rf == 3) cfg["min.insync.replicas"] = "2";
    int rc = kafka.CreateTopic(c.Topic(), c.shards, rf, cfg, &error);
    if (rc == 1) {
      // Created meanwhile through another node (or its topic outlived a
      // drop): answered as an existing collection once its config arrives.
      std::shared_ptr<const CollConfig> now;
      {
        std::unique_lock<std::mutex> lock(meta_mu);
        meta_cv.wait_for(lock, std::chrono::seconds(10), [&] { return colls.count(c.name) > 0; });
        if (auto it = colls.find(c.name); it != colls.end()) now = it->second;
      }
      if (!now) {
        Fail(409, "collection '" + c.name + "' already exists (topic " + c.Topic() + ")");
      }
      return AnswerExisting(*now, c, b, resp);
    }
    if (rc < 0) Fail(503, "kafka: " + error);
    Json j = c.ToJson();
    int64_t off = 0;
    if (!ProduceMeta("collection/" + c.name, &j, &off, &error)) {
      kafka.DeleteTopic(c.Topic(), &error);
      Fail(503, "kafka: " + error);
    }
    WaitMeta(off, 10000);
    WaitAssigned(c, 15000);
    resp->status = 200;  // as standalone
    resp->body = Dump(Json{{"ok", true}});
  }

  // Waits (bounded) until the registrations in the metadata topic show every
  // shard of `c` assigned to a node of each of its replica groups. Kafka
  // assigns a new topic's partitions only after each group has seen the
  // topic and rebalanced (seconds on a fresh cluster); a read in between
  // found no replica to ask and answered 503, so a create is answered once
  // its collection can be read through any node.
  void WaitAssigned(const CollConfig& c, uint64_t timeout_ms) {
    std::unique_lock<std::mutex> lock(meta_mu);
    bool all = meta_cv.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] {
      if (stopping) return true;
      for (int g = 0; g < c.replication; ++g) {
        for (int p = 0; p < c.shards; ++p) {
          bool held = false;
          for (const auto& [id, n] : nodes) {
            if (n.replica_group == g && n.Has(c.name, p)) {
              held = true;
              break;
            }
          }
          if (!held) return false;
        }
      }
      return true;
    });
    if (!all) {
      Log(LogLevel::kWarn, "cluster_create_unassigned",
          KV().Add("collection", c.name).Add("waited_ms", static_cast<long long>(timeout_ms)));
    }
  }

  void DropCollection(HttpRequest* req, HttpResponse* resp) {
    auto c = MustConfig(req->params[0]);
    int64_t off = 0;
    std::string error;
    if (!ProduceMeta("collection/" + c->name, nullptr, &off, &error)) Fail(503, "kafka: " + error);
    WaitMeta(off, 10000);
    if (!kafka.DeleteTopic(c->Topic(), &error)) {
      Log(LogLevel::kWarn, "cluster_topic_delete_failed",
          KV().Add("topic", c->Topic()).Add("error", error));
    }
    resp->status = 200;
    resp->body = Dump(Json{{"name", c->name}, {"deleted", true}});
  }

  void ListCollections(HttpResponse* resp) {
    CatchUpMeta();  // the collections created through other nodes too
    std::vector<std::shared_ptr<const CollConfig>> list;
    {
      std::lock_guard<std::mutex> lock(meta_mu);
      for (auto& [n, c] : colls) list.push_back(c);
    }
    Json arr = Json::array();
    for (auto& c : list) {
      try {
        arr.push_back(Info(*c, nullptr));
      } catch (const ApiError& e) {
        Json j = InfoJson(*c, {});
        j["error"] = e.message;
        arr.push_back(j);
      }
    }
    resp->status = 200;
    resp->body = Dump(arr);  // a bare array, as standalone
  }

  void Params(HttpRequest* req, HttpResponse* resp) {
    auto c = MustConfig(req->params[0]);
    // Validated as standalone (the scratch is FLAT: it answers `false` for a
    // valid body, which is the answer of an exact index).
    *resp = CallLocal(scratch.get(), req->method, req->path, req->query, req->body);
    if (resp->status != 200 || (c->index != "hnsw" && c->index != "ivf")) return;
    *resp = HttpResponse();
    Json b = Json::parse(req->body, nullptr, false);
    if (!b.is_object()) Fail(400, "the body must be a JSON object");
    const Json* ef = b.contains("ef_search") ? &b["ef_search"] : nullptr;
    if ((!ef || ef->is_null()) && b.contains("hnsw") && b["hnsw"].is_object() &&
        b["hnsw"].contains("ef_search")) {
      ef = &b["hnsw"]["ef_search"];
    }
    if (!ef || ef->is_null()) {  // as standalone: nothing to change
      resp->status = 200;
      resp->body = "true";
      return;
    }
    if (!ef->is_number_unsigned() &&
        !(ef->is_number_float() && ef->get<double>() >= 0 &&
          ef->get<double>() == static_cast<double>(static_cast<uint64_t>(ef->get<double>())))) {
      Fail(400, "'ef_search' must be a non-negative integer");
    }
    uint64_t v =
        ef->is_number_unsigned() ? ef->get<uint64_t>() : static_cast<uint64_t>(ef->get<double>());
    if (v > 65536) Fail(400, "ef_search must be 0..65536");  // as the library says
    CollConfig n = *c;
    (n.index == "ivf" ? n.ivf_nprobe : n.ef_search) = static_cast<uint32_t>(v);
    Json j = n.ToJson();
    int64_t off = 0;
    std::string error;
    if (!ProduceMeta("collection/" + c->name, &j, &off, &error)) Fail(503, "kafka: " + error);
    WaitMeta(off, 10000);
    resp->status = 200;
    resp->body = "true";
  }

  // Runs `path` on every registered node (this one in process), in parallel.
  struct NodeAnswer {
    std::string node;
    int status = 0;
    std::string body;
    std::string error;
  };
  std::vector<NodeAnswer> Broadcast(const std::string& method, const std::string& path,
                                    long timeout_ms, const std::function<HttpResponse()>& self_fn) {
    std::vector<NodeAnswer> out;
    std::vector<HttpCall> calls;
    std::vector<std::string> ids;
    for (auto& n : Nodes()) {
      if (n.id == o.node_id || n.address.empty()) continue;
      HttpCall c;
      c.method = method;
      c.url = Url(n, path);
      c.headers = AuthHeaders();
      c.timeout_ms = timeout_ms;
      calls.push_back(c);
      ids.push_back(n.id);
    }
    std::vector<HttpCall*> ptrs;
    for (auto& c : calls) ptrs.push_back(&c);
    auto mine = std::async(std::launch::async, self_fn);
    PerformAll(ptrs);
    HttpResponse r = mine.get();
    out.push_back(NodeAnswer{o.node_id, r.status, r.body, ""});
    for (size_t i = 0; i < calls.size(); ++i) {
      out.push_back(NodeAnswer{ids[i], calls[i].status, calls[i].answer, calls[i].error});
    }
    return out;
  }

  // ---------------------------------------------------------------- snapshots

  // Snapshots this node's shards of `coll` on the apply thread.
  HttpResponse LocalSnapshot(const std::string& coll) {
    auto done = std::make_shared<std::promise<Json>>();
    auto fut = done->get_future();
    RunOnApplyThread([this, coll, done] {
      Json arr = Json::array();
      for (auto& s : ShardsOf(coll)) {
        std::string file, error;
        int64_t off = 0;
        Json j{{"node", o.node_id}, {"shard", s->p}};
        if (SnapshotShard(*s, &file, &off, &error)) {
          j["offset"] = off;
          j["file"] = file.empty() ? Json() : Json(file);
        } else {
          j["error"] = error;
        }
        arr.push_back(j);
      }
      done->set_value(arr);
    });
    HttpResponse r;
    if (fut.wait_for(std::chrono::seconds(300)) != std::future_status::ready) {
      r.status = 504;
      r.body = ErrorBody("snapshot timed out on node " + o.node_id);
      return r;
    }
    r.status = 200;
    r.body = Dump(Json{{"node", o.node_id}, {"snapshots", fut.get()}});
    return r;
  }

  HttpResponse LocalSnapshotList(const std::string& coll) {
    Json arr = Json::array();
    for (auto& s : ShardsOf(coll)) {
      for (auto& [off, path] : SnapshotFiles(s->dir)) {
        std::error_code ec;
        arr.push_back(Json{{"node", o.node_id},
                           {"shard", s->p},
                           {"offset", off},
                           {"file", fs::path(path).filename().string()},
                           {"size_bytes", fs::file_size(path, ec)}});
      }
    }
    HttpResponse r;
    r.status = 200;
    r.body = Dump(Json{{"node", o.node_id}, {"snapshots", arr}});
    return r;
  }

  HttpResponse LocalCompact(const std::string& coll) {
    for (auto& s : ShardsOf(coll))
      CallLocal(local, "POST", "/collections/" + s->local + "/compact", "", "");
    HttpResponse r;
    r.status = 200;
    r.body = Dump(Json{{"node", o.node_id}});
    return r;
  }

  void Snapshot(HttpRequest* req, HttpResponse* resp) {
    auto c = MustConfig(req->params[0]);
    Json b = Json::parse(req->body.empty() ? std::string("{}") : req->body, nullptr, false);
    if (!b.is_object()) {
      *resp = CallLocal(scratch.get(), "POST", req->path, "", req->body);
      return;
    }
    if (b.contains("path") && !b["path"].is_null()) {
      Fail(400,
           "'path' is not supported in cluster mode: every shard replica keeps its snapshots "
           "in its own node's data directory");
    }
    auto answers = Broadcast("POST", "/internal/snapshot/" + c->name, 300000,
                             [&] { return LocalSnapshot(c->name); });
    Json snaps = Json::array(), errors = Json::array();
    for (auto& a : answers) {
      Json j = Json::parse(a.body, nullptr, false);
      if (a.status == 200 && j.is_object()) {
        for (auto& s : j["snapshots"]) snaps.push_back(s);
      } else {
        errors.push_back(
            Json{{"node", a.node}, {"error", a.error.empty() ? BodyError(a.body) : a.error}});
      }
    }
    resp->status = 200;
    resp->body = Dump(Json{{"collection", c->name}, {"snapshots", snaps}, {"errors", errors}});
  }

  void ListSnapshots(HttpRequest* req, HttpResponse* resp) {
    auto c = MustConfig(req->params[0]);
    auto answers = Broadcast("GET", "/internal/snapshots/" + c->name, 5000,
                             [&] { return LocalSnapshotList(c->name); });
    Json snaps = Json::array();
    for (auto& a : answers) {
      Json j = Json::parse(a.body, nullptr, false);
      if (a.status == 200 && j.is_object()) {
        for (auto& s : j["snapshots"]) snaps.push_back(s);
      }
    }
    resp->status = 200;
    resp->body = Dump(Json{{"collection", c->name}, {"snapshots", snaps}});
  }

  void Compact(HttpRequest* req, HttpResponse* resp) {
    auto c = MustConfig(req->params[0]);
    // As standalone: true, false for an exact index (nothing to compact,
    // nothing is done).
    resp->status = 200;
    if (c->index != "hnsw") {
      resp->body = "false";
      return;
    }
    Broadcast("POST", "/internal/compact/" + c->name, 300000,
              [&] { return LocalCompact(c->name); });
    resp->body = "true";
  }

  // ---------------------------------------------------------------- cluster

  // Owned (assigned) shards under "shards"; local copies Kafka assigned to
  // another member of the group (kept warm for a quick return) under
  // "standby_shards".
  Json StatusJson() {
    Json shards_json = Json::array(), standby = Json::array();
    for (auto& s : ShardsOf("")) {
      int64_t next = s->next, hw = s->high_watermark;
      Json j{{"collection", s->coll},
             {"shard", s->p},
             {"applied_offset", next - 1},
             {"high_watermark", hw < 0 ? Json() : Json(hw)},
             {"lag", hw < 0 ? Json() : Json(std::max<int64_t>(0, hw - next))},
             {"assigned", s->assigned.load()}};
      (s->assigned ? shards_json : standby).push_back(j);
    }
    return Json{{"id", o.node_id}, {"address", advertise},  {"replica_group", o.replica_group},
                {"state", "up"},   {"shards", shards_json}, {"standby_shards", standby}};
  }

  void ClusterStatus(HttpResponse* resp) {
    auto answers = Broadcast("GET", "/internal/status", 1000, [&] {
      HttpResponse r;
      r.status = 200;
      r.body = Dump(StatusJson());
      return r;
    });
    std::map<std::string, NodeInfo> known;
    for (auto& n : Nodes()) known[n.id] = n;
    Json arr = Json::array();
    for (auto& a : answers) {
      Json j = Json::parse(a.body, nullptr, false);
      if (a.status == 200 && j.is_object()) {
        arr.push_back(j);
      } else {
        const NodeInfo& n = known[a.node];
        arr.push_back(Json{{"id", a.node},
                           {"address", n.address},
                           {"replica_group", n.replica_group},
                           {"state", "down"},
                           {"shards", Json::array()},
                           {"standby_shards", Json::array()}});
      }
    }
    std::sort(arr.begin(), arr.end(), [](const Json& x, const Json& y) {
      return x["id"].get<std::string>() < y["id"].get<std::string>();
    });
    resp->status = 200;
    resp->body = Dump(Json{{"node_id", o.node_id}, {"nodes", arr}});
  }

  void Metrics(HttpResponse* resp) {
    *resp = CallLocal(local, "GET", "/metrics", "", "");
    std::string& out = resp->body;
    auto shards_now = ShardsOf("");
    out +=
        "# HELP aidb_cluster_shard_applied_offset Offset of the last record of the shard's partition applied by this node's replica.\n";
    out += "# TYPE aidb_cluster_shard_applied_offset gauge\n";
    for (auto& s : shards_now) {
      out += "aidb_cluster_shard_applied_offset{collection=\"" + PromLabel(s->coll) +
             "\",shard=\"" + std::to_string(s->p) + "\"} " + std::to_string(s->next.load() - 1) +
             "\n";
    }
    out +=
        "# HELP aidb_cluster_shard_lag Records of the shard's partition not yet applied by this node's replica (high watermark - next offset).\n";
    out += "# TYPE aidb_cluster_shard_lag gauge\n";
    for (auto& s : shards_now) {
      int64_t hw = s->high_watermark;
      if (hw < 0) continue;
      out += "aidb_cluster_shard_lag{collection=\"" + PromLabel(s->coll) + "\",shard=\"" +
             std::to_string(s->p) + "\"} " + std::to_string(std::max<int64_t>(0, hw - s->next)) +
             "\n";
    }
    out +=
        "# HELP aidb_cluster_shard_assigned Whether Kafka assigns the shard's partition to this node (1) or it is a warm copy (0).\n";
    out += "# TYPE aidb_cluster_shard_assigned gauge\n";
    for (auto& s : shards_now) {
      out += "aidb_cluster_shard_assigned{collection=\"" + PromLabel(s->coll) + "\",shard=\"" +
             std::to_string(s->p) + "\"} " + (s->assigned ? "1" : "0") + "\n";
    }
  }

  // /internal/...: what nodes ask each other.
  void Internal(HttpRequest* req, HttpResponse* resp, const std::vector<std::string>& seg) {
    const std::string& what = seg.size() > 1 ? seg[1] : "";
    auto shard_no = [&](const std::string& s) {
      int64_t p = 0;
      if (!ParseIntStr(s, &p) || p < 0 || p > kMaxShards) Fail(400, "bad shard '" + s + "'");
      return static_cast<int>(p);
    };
    if (what == "status" && seg.size() == 2) {
      resp->body = Dump(StatusJson());
    } else if (what == "shard" && seg.size() >= 4) {
      std::string rest;
      for (size_t i = 4; i < seg.size(); ++i) rest += "/" + seg[i];
      int64_t wait = 0, wait_ms = 0;
      if (const std::string* h = req->Header("aidb-wait-offset")) ParseIntStr(*h, &wait);
      if (const std::string* h = req->Header("aidb-wait-ms")) ParseIntStr(*h, &wait_ms);
      wait_ms = std::min<int64_t>(wait_ms, static_cast<int64_t>(o.consistency_timeout_ms));
      *resp = ServeShard(seg[2], shard_no(seg[3]), req->method == "HEAD" ? "GET" : req->method,
                         rest, req->query, req->body, wait,
                         static_cast<uint64_t>(std::max<int64_t>(0, wait_ms)));
    } else if (what == "snapshots" && seg.size() == 3) {
      *resp = LocalSnapshotList(seg[2]);
    } else if (what == "snapshots" && seg.size() == 4) {
      auto s = FindShard(seg[2], shard_no(seg[3]));
      std::string inc;
      req->QueryParam("incarnation", &inc);
      auto snaps = s ? SnapshotFiles(s->dir) : decltype(SnapshotFiles("")){};
      if (!s || snaps.empty() || (!inc.empty() && inc != s->incarnation)) {
        Fail(404, "no snapshot of shard " + seg[3] + " of '" + seg[2] + "' on node " + o.node_id);
      }
      resp->body = Dump(Json{{"offset", snaps.back().first}});
    } else if (what == "snapshot-file" && seg.size() == 5) {
      auto s = FindShard(seg[2], shard_no(seg[3]));
      int64_t off = 0;
      if (!s || !ParseIntStr(seg[4], &off)) Fail(404, "no such snapshot");
      std::string path = s->dir + "/" + SnapshotFileName(off);
      int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0)
        Fail(404, "no snapshot " + SnapshotFileName(off) + " of shard " + seg[3] + " of '" +
                      seg[2] + "'");
      auto stream = std::make_unique<FileStream>(fd);
      resp->status = 200;
      resp->content_type = "application/octet-stream";
      stream->Next(&resp->body);
      resp->stream = std::move(stream);
    } else if (what == "snapshot" && seg.size() == 3 && req->method == "POST") {
      *resp = LocalSnapshot(seg[2]);
    } else if (what == "compact" && seg.size() == 3 && req->method == "POST") {
      *resp = LocalCompact(seg[2]);
    } else {
      Fail(404, "no route for " + req->method + " " + req->path);
    }
  }

  void Dispatch(HttpRequest* req, HttpResponse* resp) {
    std::vector<std::string> seg = Split(req->path);
    const std::string& label = req->route_label;
    std::string method = req->method == "HEAD" ? "GET" : req->method;
    if (label == "/cluster") return ClusterStatus(resp);
    if (!seg.empty() && seg[0] == "internal") return Internal(req, resp, seg);
    if (label == "/metrics") return Metrics(resp);
    if (label == "/collections") {
      return method == "GET" ? ListCollections(resp) : CreateCollection(req, resp);
    }
    if (label == "/collections/:name") {
      if (method == "GET") {
        auto c = MustConfig(req->params[0]);
        resp->body = Dump(Info(*c, req));
        return;
      }
      return DropCollection(req, resp);
    }
    if (label == "/collections/:name/points") return Upsert(req, resp);
    if (label == "/collections/:name/points:batch") return UpsertBatch(req, resp);
    if (label == "/collections/:name/points/:id") {
      return method == "GET" ? GetPoint(req, resp) : DeletePoint(req, resp);
    }
    if (label == "/collections/:name/search") return Search(req, resp, false);
    if (label == "/collections/:name/search:batch") return Search(req, resp, true);
    if (label == "/collections/:name/snapshot") return Snapshot(req, resp);
    if (label == "/collections/:name/snapshots") return ListSnapshots(req, resp);
    if (label == "/collections/:name/compact") return Compact(req, resp);
    if (label == "/collections/:name/params") return Params(req, resp);
    if (label == "/collections/:name/restore") {
      MustConfig(req->params[0]);
      Fail(501,
           "restore is not supported in cluster mode: a collection's Kafka topic is its log; "
           "shard replicas restart from their own snapshots");
    }
    if (label == "/collections/:name/wal") {
      MustConfig(req->params[0]);
      Fail(501,
           "the change feed is not served in cluster mode: read the collection's Kafka topic "
           "(aidb." +
               req->params[0] + ") instead");
    }
    Fail(404, "no route for " + req->method + " " + req->path);
  }

  // ---------------------------------------------------------------- start/stop

  bool Start(const std::string& bound, std::string* error) {
    advertise = o.advertise.empty() ? bound : o.advertise;
    cluster_dir = o.data_dir + "/cluster";
    std::error_code ec;
    fs::create_directories(cluster_dir + "/shards", ec);
    std::string scratch_dir = cluster_dir + "/scratch";
    fs::remove_all(scratch_dir, ec);
    aidb_db_options dbo;
    aidb_db_options_init(&dbo);
    dbo.durability = AIDB_DURABILITY_NONE;
    char* err = nullptr;
    if (aidb_db_open(scratch_dir.c_str(), &dbo, &scratch_db, &err) != AIDB_OK) {
      *error = std::string("cannot open ") + scratch_dir + ": " + (err ? err : "");
      aidb_free(err);
      return false;
    }
    ApiConfig scfg;
    scfg.data_dir = scratch_dir;
    // A create's "wal_dir" must name the node's --data-dir, as standalone.
    scfg.wal_dir = o.data_dir;
    scfg.start_unix_ns = NowUnixNs();
    scratch = std::make_unique<Api>(scratch_db, scfg);
    HttpGlobalInit();
    if (!kafka.Start(o.brokers, o.node_id, error)) return false;
    int brokers = kafka.BrokerCount(15000, error);
    if (brokers < 1) {
      *error = "cannot reach Kafka at " + o.brokers + ": " + *error;
      return false;
    }
    kafka.FenceTransactions(15000);
    int rf = std::min(3, brokers);
    std::map<std::string, std::string> topic_cfg{{"cleanup.policy", "compact"}};
    if (rf == 3) topic_cfg["min.insync.replicas"] = "2";
    // *error names the topic (cluster_start_failed logs it).
    if (kafka.CreateTopic(kMetaTopic, 1, rf, topic_cfg, error) < 0) return false;

    // The metadata consumer: the whole topic from the start, no group commits.
    rd_kafka_conf_t* mc = kafka.BaseConf();
    char errstr[512];
    for (auto [k, v] :
         std::vector<std::pair<std::string, std::string>>{{"group.id", "aidb.meta." + o.node_id},
                                                          {"enable.auto.commit", "false"},
                                                          {"enable.auto.offset.store", "false"},
                                                          {"enable.partition.eof", "true"},
                                                          {"isolation.level", "read_committed"},
                                                          {"auto.offset.reset", "earliest"}}) {
      rd_kafka_conf_set(mc, k.c_str(), v.c_str(), errstr, sizeof errstr);
    }
    meta = rd_kafka_new(RD_KAFKA_CONSUMER, mc, errstr, sizeof errstr);
    if (!meta) {
      *error = errstr;
      return false;
    }
    rd_kafka_poll_set_consumer(meta);
    rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, kMetaTopic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(meta, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    int64_t hi = 0;
    rd_kafka_resp_err_t kerr = HighWatermark(kMetaTopic, 0, &hi, 20000);
    if (kerr) {
      *error = std::string("cannot read ") + kMetaTopic + ": " + rd_kafka_err2str(kerr);
      return false;
    }
    meta_thread = std::thread([this] { MetaLoop(); });
    started = true;
    if (hi > 0 && !WaitMeta(hi - 1, 60000)) {
      *error = std::string("timed out reading ") + kMetaTopic;
      return false;
    }
    OpenLocalShards();
    if (!PublishNode(error)) {
      *error = "cannot register the node: " + *error;
      return false;
    }

    // The replica group's consumer.
    rd_kafka_conf_t* rc = kafka.BaseConf();
    for (auto [k, v] : std::vector<std::pair<std::string, std::string>>{
             {"group.id", "aidb.replicas." + std::to_string(o.replica_group)},
             {"group.instance.id", o.node_id},
             {"enable.auto.commit", "false"},
             {"enable.auto.offset.store", "false"},
             {"enable.partition.eof", "true"},
             {"isolation.level", "read_committed"},
             {"auto.offset.reset", "earliest"},
             {"session.timeout.ms", "10000"},
             {"heartbeat.interval.ms", "1000"},
             {"partition.assignment.strategy", "roundrobin"},
             {"topic.metadata.refresh.interval.ms", "5000"}}) {
      if (rd_kafka_conf_set(rc, k.c_str(), v.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
        *error = k + ": " + errstr;
        rd_kafka_conf_destroy(rc);
        return false;
      }
    }
    rd_kafka_conf_set_opaque(rc, this);
    rd_kafka_conf_set_rebalance_cb(rc, [](rd_kafka_t*, rd_kafka_resp_err_t err,
                                          rd_kafka_topic_partition_list_t* parts, void* opaque) {
      auto* impl = static_cast<Impl*>(opaque);
      if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        impl->OnAssign(parts);
      } else {
        impl->OnRevoke(parts);
      }
    });
    rep = rd_kafka_new(RD_KAFKA_CONSUMER, rc, errstr, sizeof errstr);
    if (!rep) {
      *error = errstr;
      return false;
    }
    rd_kafka_poll_set_consumer(rep);
    apply_thread = std::thread([this] { ApplyLoop(); });
    Log(LogLevel::kInfo, "cluster_started",
        KV().Add("node_id", o.node_id)
            .Add("advertise", advertise)
            .Add("replica_group", o.replica_group)
            .Add("brokers", brokers));
    return true;
  }

  // Runs `fn` on a thread of its own and waits at most `seconds` for it: a
  // Kafka client that cannot reach its brokers must not hold up the exit
  // (everything that matters, the shards' snapshots, is done by then).
  static bool Bounded(const char* what, int seconds, std::function<void()> fn) {
    auto done = std::make_shared<std::promise<void>>();
    std::future<void> f = done->get_future();
    std::thread([fn = std::move(fn), done] {
      fn();
      done->set_value();
    }).detach();
    if (f.wait_for(std::chrono::seconds(seconds)) != std::future_status::ready) {
      Log(LogLevel::kWarn, "cluster_stop_slow", KV().Add("step", what).Add("seconds", seconds));
      return false;
    }
    return true;
  }

  void Stop() {
    if (stopping.exchange(true)) return;
    Notify();
    if (apply_thread.joinable()) apply_thread.join();
    if (meta_thread.joinable()) meta_thread.join();
    // Static members do not leave their group (a restart within the session
    // timeout keeps the assignment), so the consumers are destroyed without
    // the consumer close, which would wait for the group coordinator.
    rd_kafka_t* r = rep;
    rd_kafka_t* m = meta;
    rep = meta = nullptr;
    std::shared_ptr<rd_kafka_t> w;
    {
      std::lock_guard<std::mutex> lock(wm_mu);
      w.swap(wm);
    }
    Bounded("consumers", 10, [r, m, w]() mutable {
      if (r) rd_kafka_destroy_flags(r, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
      if (m) rd_kafka_destroy_flags(m, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
      w.reset();
    });
    Kafka* k = kafka_owner.get();
    if (!Bounded("producers", 30, [k] { k->Stop(); })) {
      (void)kafka_owner.release();  // still in use by the stuck thread: left to the exit
    }
    {
      std::lock_guard<std::mutex> lock(shards_mu);
      shards.clear();
    }
    scratch.reset();
    aidb_db_close(scratch_db);
    scratch_db = nullptr;
  }
};

// -------------------------------------------------------------------- Router

Router::Router(Api* local, aidb_db* shard_db, ClusterOptions options)
    : impl_(std::make_unique<Impl>(this, local, shard_db, std::move(options))) {}

Router::~Router() { Stop(); }

bool Router::Start(const std::string& bound_addr, std::string* error) {
  return impl_->Start(bound_addr, error);
}

void Router::Stop() { impl_->Stop(); }

bool Router::Prepare(HttpRequest* req, HttpResponse* resp) {
  std::vector<std::string> seg = Split(req->path);
  bool internal = !seg.empty() && seg[0] == "internal";
  bool cluster = seg.size() == 1 && seg[0] == "cluster";
  if (!internal && !cluster) return impl_->local->Prepare(req, resp);
  req->route = 1000;
  req->route_label =
      cluster ? "/cluster" : "/internal/" + (seg.size() > 1 ? seg[1] : std::string());
  // The same check as the local Api's: one way to present the key.
  if (!Authorized(*req, impl_->o.api_key, resp)) return true;
  if (cluster && req->method != "GET" && req->method != "HEAD") {
    resp->status = 405;
    resp->body = ErrorBody("method " + req->method + " not allowed on /cluster");
    resp->headers.emplace_back("Allow", "GET");
    return true;
  }
  return false;
}

void Router::Execute(HttpRequest* req, HttpResponse* resp) {
  Answering(resp, [&] {
    if (!impl_->started || impl_->stopping) Fail(503, "the cluster node is not running");
    impl_->Dispatch(req, resp);
    return true;
  });
}

void Router::ConnectionRefused(const char* reason) { impl_->local->ConnectionRefused(reason); }

void Router::Completed(const HttpRequest& req, int status, double seconds) {
  impl_->local->Completed(req, status, seconds);
}

}  // namespace aidbd::cluster
