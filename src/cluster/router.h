// aidbd's cluster mode: the HTTP handler every node runs when started with
// --kafka. It serves the standalone routes from any node by routing writes to
// Kafka and fanning reads out to the nodes holding the shards, and it feeds
// this node's shard replicas from their partitions. See src/cluster/README.md.
#pragma once

#include <aidb.h>

#include <cstdint>
#include <memory>
#include <string>

#include "api.h"
#include "http_server.h"

namespace aidbd::cluster {

struct ClusterOptions {
  std::string brokers;
  std::string node_id;
  std::string advertise;  // empty: the bound --listen address
  int replica_group = 0;
  uint64_t consistency_timeout_ms = 5000;
  std::string data_dir;  // the node's --data-dir (canonical)
  std::string api_key;
  // Periodic shard snapshots: after this many applied records or this many
  // seconds with at least one (AIDB_CLUSTER_SNAPSHOT_RECORDS / _SECONDS).
  uint64_t snapshot_every_records = 100000;
  uint64_t snapshot_every_seconds = 300;
};

class Router : public Handler {
 public:
  // `local` serves the shard replicas, which live in `shard_db`
  // (<data-dir>/shards); both outlive the router.
  Router(Api* local, aidb_db* shard_db, ClusterOptions options);
  ~Router() override;

  // Connects to Kafka, reads the metadata topic, registers the node, opens
  // the local shards and joins its replica group.
  bool Start(const std::string& bound_addr, std::string* error);
  // Leaves Kafka (snapshotting the shards that changed); idempotent.
  void Stop();

  bool Prepare(HttpRequest* req, HttpResponse* resp) override;
  void Execute(HttpRequest* req, HttpResponse* resp) override;
  void Completed(const HttpRequest& req, int status, double seconds) override;
  void ConnectionRefused(const char* reason) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace aidbd::cluster
