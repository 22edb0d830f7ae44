// The Kafka side of aidbd's cluster mode, over librdkafka's C API: one
// idempotent producer (acks=all) for single writes and the metadata topic, a
// small pool of transactional producers for batch upserts, and the admin API
// (topics, broker count). Delivery reports carry the records' offsets.
#pragma once

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace aidbd::cluster {

struct KafkaRecord {
  std::string topic;
  int partition = 0;
  std::string key;
  std::string value;
  bool tombstone = false;  // null value
};

class Kafka {
 public:
  Kafka() = default;
  ~Kafka();
  Kafka(const Kafka&) = delete;
  Kafka& operator=(const Kafka&) = delete;

  bool Start(const std::string& brokers, const std::string& node_id, std::string* error);
  void Stop();

  // Base configuration every client of this node shares (brokers, client id,
  // logging). The caller owns the result.
  rd_kafka_conf_t* BaseConf() const;

  int BrokerCount(int timeout_ms, std::string* error);
  // Creates the transactional producers and initialises them (in parallel,
  // each within timeout_ms), which aborts the transactions an earlier run of
  // this node left open. Call once, after Start, with the brokers reachable.
  void FenceTransactions(int timeout_ms);
  // 0: created, 1: it existed already, -1: error (*error starts "creating
  // topic <name>").
  int CreateTopic(const std::string& name, int partitions, int replication,
                  const std::map<std::string, std::string>& configs, std::string* error);
  // True when the topic is gone (also when it was missing); *error starts
  // "deleting topic <name>".
  bool DeleteTopic(const std::string& name, std::string* error);
  // Makes the topic's integer config `key` at least `value`, keeping its
  // other overrides. *raised: it was lower and is now `value`. False (with
  // *error) when the config cannot be read or changed.
  bool RaiseTopicConfig(const std::string& topic, const std::string& key, int64_t value,
                        bool* raised, std::string* error);

  // Produces one record with the idempotent producer and waits for the ack.
  bool Produce(const KafkaRecord& r, int64_t* offset, std::string* error);
  // Produces the records in one transaction (read_committed consumers see
  // all or none) and waits for the commit; offsets[i] is record i's offset.
  bool ProduceTransaction(const std::vector<KafkaRecord>& records, std::vector<int64_t>* offsets,
                          std::string* error);

 private:
  struct TxnProducer {
    rd_kafka_t* rk = nullptr;
    std::string id;  // transactional.id
    std::thread poller;
    std::atomic<bool> stop{false};
    bool ready = false;  // init_transactions done
  };
  rd_kafka_t* NewProducer(const std::string& transactional_id, std::string* error);
  bool ProduceOn(rd_kafka_t* rk, const std::vector<KafkaRecord>& records,
                 std::vector<int64_t>* offsets, bool wait, struct Pending* pending,
                 std::string* error);
  // Runs one admin request: start(options, queue) issues it on the
  // producer's handle. operation_timeout_ms > 0: how long the controller may
  // take to apply it (topic creation and deletion). Its result event (the
  // caller destroys it), or null with *error ("<what>: <reason>", or "timed
  // out <what>") when it failed or timed out.
  rd_kafka_event_t* Admin(
      rd_kafka_admin_op_t op, const std::string& what, int operation_timeout_ms,
      const std::function<void(rd_kafka_AdminOptions_t*, rd_kafka_queue_t*)>& start,
      std::string* error);
  TxnProducer* AcquireTxn(std::string* error);
  void ReleaseTxn(TxnProducer* p, bool broken);
  void StartPoller(rd_kafka_t* rk, std::thread* t, std::atomic<bool>* stop);

  std::string brokers_;
  std::string node_id_;
  rd_kafka_t* producer_ = nullptr;
  std::thread producer_poller_;
  std::atomic<bool> stop_{false};

  std::mutex txn_mu_;
  std::condition_variable txn_cv_;
  std::vector<std::unique_ptr<TxnProducer>> txn_all_;
  std::vector<TxnProducer*> txn_free_;
  int txn_next_id_ = 0;
  static constexpr int kMaxTxnProducers = 4;
};

}  // namespace aidbd::cluster
