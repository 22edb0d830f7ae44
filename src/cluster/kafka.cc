#include "cluster/kafka.h"

#include <chrono>
#include <cstdlib>

#include "util.h"

namespace aidbd::cluster {

// Waits for the delivery reports of a set of records.
struct Pending {
  std::mutex mu;
  std::condition_variable cv;
  size_t left = 0;
  std::vector<int64_t> offsets;
  std::string error;
};

namespace {

// How long the controller may take to create or delete a topic.
constexpr int kTopicOpTimeoutMs = 15000;

struct MsgRef {
  Pending* pending;
  size_t index;
};

void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void*) {
  auto* ref = static_cast<MsgRef*>(m->_private);
  if (!ref) return;
  Pending* p = ref->pending;
  {
    std::lock_guard<std::mutex> lock(p->mu);
    if (m->err) {
      if (p->error.empty()) p->error = rd_kafka_err2str(m->err);
    } else {
      p->offsets[ref->index] = m->offset;
    }
    --p->left;
  }
  p->cv.notify_all();
  delete ref;
}

void OnLog(const rd_kafka_t*, int level, const char* fac, const char* buf) {
  LogLevel l = level <= 3 ? LogLevel::kError : level <= 5 ? LogLevel::kWarn : LogLevel::kDebug;
  if (LogEnabled(l)) {
    LogLine(static_cast<int>(l), "rdkafka", "log",
            KV().Add("facility", fac).Add("message", buf).str());
  }
}

void OnError(rd_kafka_t*, int err, const char* reason, void*) {
  Log(LogLevel::kWarn, "kafka_error",
      KV().Add("error", rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)))
          .Add("reason", reason));
}

bool Set(rd_kafka_conf_t* c, const char* k, const std::string& v, std::string* error) {
  char errstr[512];
  if (rd_kafka_conf_set(c, k, v.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
    *error = std::string(k) + ": " + errstr;
    return false;
  }
  return true;
}

std::string ErrorText(rd_kafka_error_t* e) {
  std::string s = rd_kafka_error_string(e);
  return s;
}

}  // namespace

Kafka::~Kafka() { Stop(); }

rd_kafka_conf_t* Kafka::BaseConf() const {
  rd_kafka_conf_t* c = rd_kafka_conf_new();
  std::string err;
  Set(c, "bootstrap.servers", brokers_, &err);
  Set(c, "client.id", "aidbd-" + node_id_, &err);
  // Every topic is created by a node, with its own configuration. A
  // metadata request for a topic that a drop deleted must not re-create it
  // with the broker's defaults: brokers auto-create by default, and
  // librdkafka's producers (unlike its consumers) ask them to.
  Set(c, "allow.auto.create.topics", "false", &err);
  rd_kafka_conf_set_log_cb(c, OnLog);
  rd_kafka_conf_set_error_cb(c, OnError);
  return c;
}

rd_kafka_t* Kafka::NewProducer(const std::string& txn_id, std::string* error) {
  rd_kafka_conf_t* c = BaseConf();
  bool ok = Set(c, "enable.idempotence", "true", error) && Set(c, "acks", "all", error) &&
            Set(c, "linger.ms", "2", error) && Set(c, "message.timeout.ms", "30000", error) &&
            // A point as large as the collection topics take (32 MiB + the
            // request's own bytes); librdkafka's default is ~1 MB.
            Set(c, "message.max.bytes", "34603008", error);
  if (ok && !txn_id.empty()) {
    ok = Set(c, "transactional.id", txn_id, error) &&
         Set(c, "transaction.timeout.ms", "60000", error);
  }
  if (!ok) {
    rd_kafka_conf_destroy(c);
    return nullptr;
  }
  rd_kafka_conf_set_dr_msg_cb(c, OnDelivery);
  char errstr[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, errstr, sizeof errstr);
  if (!rk) {
    *error = errstr;
    return nullptr;
  }
  return rk;
}

void Kafka::StartPoller(rd_kafka_t* rk, std::thread* t, std::atomic<bool>* stop) {
  *t = std::thread([rk, stop] {
    while (!stop->load()) rd_kafka_poll(rk, 100);
  });
}

bool Kafka::Start(const std::string& brokers, const std::string& node_id, std::string* error) {
  brokers_ = brokers;
  node_id_ = node_id;
  producer_ = NewProducer("", error);
  if (!producer_) return false;
  StartPoller(producer_, &producer_poller_, &stop_);
  return true;
}

void Kafka::FenceTransactions(int timeout_ms) {
  // A node killed between a batch's records and its commit leaves that
  // transaction open, and read_committed consumers stop at it: every replica
  // of its partitions applies nothing newer (writes through the other nodes
  // included) until the coordinator aborts it (transaction.timeout.ms).
  // init_transactions with the same transactional.id aborts it now, so the
  // whole pool, whose ids are the same in every run of this node, is
  // created and initialised at start, in parallel.
  std::vector<TxnProducer*> created;
  {
    std::lock_guard<std::mutex> lock(txn_mu_);
    while (static_cast<int>(txn_all_.size()) < kMaxTxnProducers) {
      auto p = std::make_unique<TxnProducer>();
      p->id = "aidb-" + node_id_ + "-" + std::to_string(txn_next_id_);
      std::string error;
      p->rk = NewProducer(p->id, &error);
      if (!p->rk) {
        Log(LogLevel::kWarn, "kafka_producer_failed", KV().Add("error", error));
        break;
      }
      ++txn_next_id_;
      StartPoller(p->rk, &p->poller, &p->stop);
      created.push_back(p.get());
      txn_all_.push_back(std::move(p));
    }
  }
  std::vector<std::thread> threads;
  for (TxnProducer* p : created) {
    threads.emplace_back([p, timeout_ms] {
      if (rd_kafka_error_t* e = rd_kafka_init_transactions(p->rk, timeout_ms)) {
        // Not ready: the first batch through it initialises it again.
        Log(LogLevel::kWarn, "kafka_txn_fence_failed",
            KV().Add("transactional_id", p->id).Add("error", ErrorText(e)));
        rd_kafka_error_destroy(e);
        return;
      }
      p->ready = true;
    });
  }
  for (auto& t : threads) t.join();
  std::lock_guard<std::mutex> lock(txn_mu_);
  for (TxnProducer* p : created) txn_free_.push_back(p);
  txn_cv_.notify_all();
}

void Kafka::Stop() {
  if (!producer_) return;
  rd_kafka_flush(producer_, 10000);
  for (auto& p : txn_all_) rd_kafka_flush(p->rk, 10000);
  stop_ = true;
  if (producer_poller_.joinable()) producer_poller_.join();
  for (auto& p : txn_all_) {
    p->stop = true;
    if (p->poller.joinable()) p->poller.join();
    rd_kafka_destroy(p->rk);
  }
  txn_all_.clear();
  txn_free_.clear();
  rd_kafka_destroy(producer_);
  producer_ = nullptr;
}

int Kafka::BrokerCount(int timeout_ms, std::string* error) {
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(producer_, 0, nullptr, &md, timeout_ms);
  if (err) {
    *error = rd_kafka_err2str(err);
    return -1;
  }
  int n = md->broker_cnt;
  rd_kafka_metadata_destroy(md);
  return n;
}

int Kafka::CreateTopic(const std::string& name, int partitions, int replication,
                       const std::map<std::string, std::string>& configs, std::string* error) {
  char errstr[512];
  rd_kafka_NewTopic_t* nt =
      rd_kafka_NewTopic_new(name.c_str(), partitions, replication, errstr, sizeof errstr);
  if (!nt) {
    *error = "creating topic " + name + ": " + errstr;
    return -1;
  }
  for (const auto& [k, v] : configs) rd_kafka_NewTopic_set_config(nt, k.c_str(), v.c_str());
  const std::string what = "creating topic " + name;
  rd_kafka_event_t* ev = Admin(
      RD_KAFKA_ADMIN_OP_CREATETOPICS, what, kTopicOpTimeoutMs,
      [&](rd_kafka_AdminOptions_t* o, rd_kafka_queue_t* q) {
        rd_kafka_CreateTopics(producer_, &nt, 1, o, q);
      },
      error);
  rd_kafka_NewTopic_destroy(nt);
  if (!ev) return -1;
  size_t n = 0;
  const rd_kafka_topic_result_t** topics =
      rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
  int rc = -1;
  if (n != 1) {
    *error = what + ": no result";
  } else if (rd_kafka_resp_err_t e = rd_kafka_topic_result_error(topics[0]);
             e == RD_KAFKA_RESP_ERR_NO_ERROR) {
    rc = 0;
  } else if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
    rc = 1;
  } else {
    const char* s = rd_kafka_topic_result_error_string(topics[0]);
    *error = what + ": " + (s ? s : rd_kafka_err2str(e));
  }
  rd_kafka_event_destroy(ev);
  return rc;
}

bool Kafka::DeleteTopic(const std::string& name, std::string* error) {
  rd_kafka_DeleteTopic_t* dt = rd_kafka_DeleteTopic_new(name.c_str());
  const std::string what = "deleting topic " + name;
  rd_kafka_event_t* ev = Admin(
      RD_KAFKA_ADMIN_OP_DELETETOPICS, what, kTopicOpTimeoutMs,
      [&](rd_kafka_AdminOptions_t* o, rd_kafka_queue_t* q) {
        rd_kafka_DeleteTopics(producer_, &dt, 1, o, q);
      },
      error);
  rd_kafka_DeleteTopic_destroy(dt);
  if (!ev) return false;
  size_t n = 0;
  const rd_kafka_topic_result_t** topics =
      rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &n);
  // A topic already gone is what the caller wanted.
  rd_kafka_resp_err_t e =
      n == 1 ? rd_kafka_topic_result_error(topics[0]) : RD_KAFKA_RESP_ERR_NO_ERROR;
  const bool ok = e == RD_KAFKA_RESP_ERR_NO_ERROR || e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
  if (!ok) *error = what + ": " + rd_kafka_err2str(e);
  rd_kafka_event_destroy(ev);
  return ok;
}

rd_kafka_event_t* Kafka::Admin(
    rd_kafka_admin_op_t op, const std::string& what, int operation_timeout_ms,
    const std::function<void(rd_kafka_AdminOptions_t*, rd_kafka_queue_t*)>& start,
    std::string* error) {
  char errstr[512];
  rd_kafka_AdminOptions_t* opts = rd_kafka_AdminOptions_new(producer_, op);
  rd_kafka_AdminOptions_set_request_timeout(opts, 20000, errstr, sizeof errstr);
  if (operation_timeout_ms > 0) {
    rd_kafka_AdminOptions_set_operation_timeout(opts, operation_timeout_ms, errstr, sizeof errstr);
  }
  rd_kafka_queue_t* q = rd_kafka_queue_new(producer_);
  start(opts, q);
  rd_kafka_event_t* ev = rd_kafka_queue_poll(q, 30000);
  if (!ev) {
    *error = "timed out " + what;
  } else if (rd_kafka_event_error(ev)) {
    *error = what + ": " + rd_kafka_event_error_string(ev);
    rd_kafka_event_destroy(ev);
    ev = nullptr;
  }
  rd_kafka_queue_destroy(q);
  rd_kafka_AdminOptions_destroy(opts);
  return ev;
}

namespace {

// The one resource of a Describe/AlterConfigs result, or null with *error.
const rd_kafka_ConfigResource_t* OneResource(const rd_kafka_ConfigResource_t** rs, size_t n,
                                             const std::string& what, std::string* error) {
  if (n != 1) {
    *error = what + ": no result";
    return nullptr;
  }
  if (rd_kafka_ConfigResource_error(rs[0]) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    const char* s = rd_kafka_ConfigResource_error_string(rs[0]);
    *error = what + ": " + (s ? s : rd_kafka_err2str(rd_kafka_ConfigResource_error(rs[0])));
    return nullptr;
  }
  return rs[0];
}

}  // namespace

bool Kafka::RaiseTopicConfig(const std::string& topic, const std::string& key, int64_t value,
                             bool* raised, std::string* error) {
  *raised = false;
  rd_kafka_ConfigResource_t* res =
      rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic.c_str());
  std::string what = "describing the configs of topic " + topic;
  rd_kafka_event_t* ev = Admin(
      RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS, what, 0,
      [&](rd_kafka_AdminOptions_t* o, rd_kafka_queue_t* q) {
        rd_kafka_DescribeConfigs(producer_, &res, 1, o, q);
      },
      error);
  rd_kafka_ConfigResource_destroy(res);
  if (!ev) return false;
  // The topic's own overrides: AlterConfigs replaces all of them, so the
  // request carries every one it keeps.
  std::map<std::string, std::string> overrides;
  int64_t have = -1;
  size_t n = 0;
  const rd_kafka_ConfigResource_t** rs =
      rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev), &n);
  const rd_kafka_ConfigResource_t* r = OneResource(rs, n, what, error);
  if (r) {
    size_t m = 0;
    const rd_kafka_ConfigEntry_t** entries = rd_kafka_ConfigResource_configs(r, &m);
    for (size_t i = 0; i < m; ++i) {
      const char* name = rd_kafka_ConfigEntry_name(entries[i]);
      const char* v = rd_kafka_ConfigEntry_value(entries[i]);
      if (!name || !v) continue;
      if (key == name) have = std::strtoll(v, nullptr, 10);
      if (rd_kafka_ConfigEntry_source(entries[i]) == RD_KAFKA_CONFIG_SOURCE_DYNAMIC_TOPIC_CONFIG) {
        overrides[name] = v;
      }
    }
  }
  rd_kafka_event_destroy(ev);
  if (!r) return false;
  if (have >= value) return true;
  overrides[key] = std::to_string(value);
  res = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic.c_str());
  for (const auto& [k, v] : overrides)
    rd_kafka_ConfigResource_set_config(res, k.c_str(), v.c_str());
  what = "setting " + key + " of topic " + topic;
  ev = Admin(
      RD_KAFKA_ADMIN_OP_ALTERCONFIGS, what, 0,
      [&](rd_kafka_AdminOptions_t* o, rd_kafka_queue_t* q) {
        rd_kafka_AlterConfigs(producer_, &res, 1, o, q);
      },
      error);
  rd_kafka_ConfigResource_destroy(res);
  if (!ev) return false;
  rs = rd_kafka_AlterConfigs_result_resources(rd_kafka_event_AlterConfigs_result(ev), &n);
  r = OneResource(rs, n, what, error);
  rd_kafka_event_destroy(ev);
  *raised = r != nullptr;
  return *raised;
}

bool Kafka::ProduceOn(rd_kafka_t* rk, const std::vector<KafkaRecord>& records,
                      std::vector<int64_t>* offsets, bool wait, Pending* p, std::string* error) {
  {
    std::lock_guard<std::mutex> lock(p->mu);
    p->offsets.assign(records.size(), -1);
    p->left = records.size();
  }
  for (size_t i = 0; i < records.size(); ++i) {
    const KafkaRecord& r = records[i];
    auto* ref = new MsgRef{p, i};
    rd_kafka_resp_err_t err;
    for (;;) {
      err = rd_kafka_producev(
          rk, RD_KAFKA_V_TOPIC(r.topic.c_str()), RD_KAFKA_V_PARTITION(r.partition),
          RD_KAFKA_V_KEY(r.key.data(), r.key.size()),
          RD_KAFKA_V_VALUE(r.tombstone ? nullptr : const_cast<char*>(r.value.data()),
                           r.tombstone ? 0 : r.value.size()),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(ref), RD_KAFKA_V_END);
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) break;
      rd_kafka_poll(rk, 10);
    }
    if (err) {
      delete ref;
      std::lock_guard<std::mutex> lock(p->mu);
      p->left -= records.size() - i;
      if (p->error.empty()) p->error = rd_kafka_err2str(err);
      break;
    }
  }
  if (wait) {
    std::unique_lock<std::mutex> lock(p->mu);
    p->cv.wait(lock, [&] { return p->left == 0; });
    if (!p->error.empty()) {
      *error = p->error;
      return false;
    }
    *offsets = p->offsets;
    return true;
  }
  std::lock_guard<std::mutex> lock(p->mu);
  if (!p->error.empty()) {
    *error = p->error;
    return false;
  }
  return true;
}

bool Kafka::Produce(const KafkaRecord& r, int64_t* offset, std::string* error) {
  Pending p;
  std::vector<int64_t> offsets;
  if (!ProduceOn(producer_, {r}, &offsets, true, &p, error)) return false;
  *offset = offsets[0];
  return true;
}

Kafka::TxnProducer* Kafka::AcquireTxn(std::string* error) {
  std::unique_lock<std::mutex> lock(txn_mu_);
  for (;;) {
    if (!txn_free_.empty()) {
      TxnProducer* p = txn_free_.back();
      txn_free_.pop_back();
      return p;
    }
    if (static_cast<int>(txn_all_.size()) < kMaxTxnProducers) break;
    txn_cv_.wait(lock);
  }
  auto p = std::make_unique<TxnProducer>();
  p->id = "aidb-" + node_id_ + "-" + std::to_string(txn_next_id_++);
  p->rk = NewProducer(p->id, error);
  if (!p->rk) return nullptr;
  StartPoller(p->rk, &p->poller, &p->stop);
  txn_all_.push_back(std::move(p));
  return txn_all_.back().get();
}

void Kafka::ReleaseTxn(TxnProducer* p, bool broken) {
  if (broken) {
    // A fatal transactional error: replace the producer. The new one has the
    // same transactional.id, which fences the old one's transactions.
    p->stop = true;
    if (p->poller.joinable()) p->poller.join();
    rd_kafka_destroy(p->rk);
    std::string error;
    p->rk = NewProducer(p->id, &error);
    p->ready = false;
    p->stop = false;
    if (p->rk) {
      StartPoller(p->rk, &p->poller, &p->stop);
    } else {
      Log(LogLevel::kError, "kafka_producer_failed", KV().Add("error", error));
      std::lock_guard<std::mutex> lock(txn_mu_);
      for (auto it = txn_all_.begin(); it != txn_all_.end(); ++it) {
        if (it->get() == p) {
          txn_all_.erase(it);
          break;
        }
      }
      txn_cv_.notify_one();
      return;
    }
  }
  std::lock_guard<std::mutex> lock(txn_mu_);
  txn_free_.push_back(p);
  txn_cv_.notify_one();
}

bool Kafka::ProduceTransaction(const std::vector<KafkaRecord>& records,
                               std::vector<int64_t>* offsets, std::string* error) {
  TxnProducer* p = AcquireTxn(error);
  if (!p) return false;
  bool broken = false;
  auto fail = [&](rd_kafka_error_t* e) {
    *error = ErrorText(e);
    if (rd_kafka_error_is_fatal(e)) {
      broken = true;
    } else if (rd_kafka_error_txn_requires_abort(e)) {
      rd_kafka_error_t* a = rd_kafka_abort_transaction(p->rk, 30000);
      if (a) {
        if (rd_kafka_error_is_fatal(a)) broken = true;
        rd_kafka_error_destroy(a);
      }
    }
    rd_kafka_error_destroy(e);
    ReleaseTxn(p, broken);
    return false;
  };
  if (!p->ready) {
    if (rd_kafka_error_t* e = rd_kafka_init_transactions(p->rk, 30000)) return fail(e);
    p->ready = true;
  }
  if (rd_kafka_error_t* e = rd_kafka_begin_transaction(p->rk)) return fail(e);
  Pending pending;
  std::string perr;
  if (!ProduceOn(p->rk, records, offsets, false, &pending, &perr)) {
    rd_kafka_error_t* a = rd_kafka_abort_transaction(p->rk, 30000);
    if (a) {
      broken = rd_kafka_error_is_fatal(a);
      rd_kafka_error_destroy(a);
    }
    *error = perr;
    ReleaseTxn(p, broken);
    return false;
  }
  if (rd_kafka_error_t* e = rd_kafka_commit_transaction(p->rk, 60000)) return fail(e);
  {
    std::unique_lock<std::mutex> lock(pending.mu);
    pending.cv.wait(lock, [&] { return pending.left == 0; });
    if (!pending.error.empty()) {
      *error = pending.error;
      lock.unlock();
      ReleaseTxn(p, false);
      return false;
    }
    *offsets = pending.offsets;
  }
  ReleaseTxn(p, false);
  return true;
}

}  // namespace aidbd::cluster
