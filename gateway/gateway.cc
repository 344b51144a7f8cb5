#include "gateway/gateway.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <cctype>
#include <future>

#include "common/credit.h"
#include "common/log.h"
#include "common/process.h"
#include "gateway/background.h"
#include "gateway/client_session.h"
#include "gateway/listener.h"
#include "gateway/metrics.h"
#include "gateway/shard.h"
#include "gateway/worker_pool.h"
#include "layer/in_memory_layer.h"
#include "layer/redis_layer.h"

namespace sluice::gateway {
namespace {

// The `<gateway>` of channel names: Channels allows letters, digits, '-', '_' and '.'.
std::string LayerGatewayId(std::string_view id) {
  std::string out(id.substr(0, 40));
  for (char& c : out) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') c = '_';
  }
  return out.empty() ? "gateway" : out;
}

std::unique_ptr<layer::ChannelLayer> MakeLayer(const Options& options,
                                               boost::asio::io_context& io) {
  layer::Options layer_options;
  layer_options.gateway_id = LayerGatewayId(options.gateway_id);
  layer_options.capacity = options.layer_capacity;
  layer_options.expiry = options.layer_expiry;
  layer_options.group_expiry = options.group_expiry;
  for (const auto& [pattern, capacity] : options.channel_capacity) {
    layer_options.channel_capacity.push_back(layer::CapacityRule::Glob(pattern, capacity));
  }
  if (options.layer == "memory") {
    return std::make_unique<layer::InMemoryLayer>(io.get_executor(), std::move(layer_options));
  }
  if (auto redis = layer::ParseRedisUrl(options.layer)) {
    std::string where =
        redis->host + ":" + std::to_string(redis->port) + "/" + std::to_string(redis->db);
    SLUICE_LOG(kInfo, "gateway") << "channel layer on redis " << where;
    layer_options.on_connection = [where](bool up) {
      if (up) {
        SLUICE_LOG(kInfo, "gateway") << "channel layer: connected to redis " << where;
      } else {
        SLUICE_LOG(kWarning, "gateway") << "channel layer: lost redis " << where
                                        << "; layer calls fail until it is back (reconnecting)";
      }
    };
    return std::make_unique<layer::RedisLayer>(io.get_executor(), std::move(layer_options), *redis);
  }
  return nullptr;
}

void AddLayerMetrics(MetricsRegistry& r, const layer::Stats& stats) {
  const auto counter = [&](const char* name, const char* help, const std::atomic<uint64_t>& value,
                           const std::string& labels = "") {
    r.AddCounterFunction(
        name, help, [&value] { return value.load(std::memory_order_relaxed); }, labels);
  };
  counter("sluice_gateway_layer_sent_total", "Channel-layer messages accepted by send", stats.sent);
  counter("sluice_gateway_layer_group_sends_total", "Channel-layer group sends accepted",
          stats.group_sends);
  counter("sluice_gateway_layer_received_total",
          "Channel-layer messages received for this gateway's channels and pullers",
          stats.received);
  constexpr char kErrors[] = "sluice_gateway_layer_errors_total";
  constexpr char kErrorsHelp[] = "Channel-layer operations refused, by reason";
  counter(kErrors, kErrorsHelp, stats.channel_full, R"(reason="channel_full")");
  counter(kErrors, kErrorsHelp, stats.too_large, R"(reason="too_large")");
  counter(kErrors, kErrorsHelp, stats.unavailable, R"(reason="unavailable")");
  counter(kErrors, kErrorsHelp, stats.invalid, R"(reason="invalid")");
  counter("sluice_gateway_layer_group_skipped_total",
          "Group members skipped by group sends because their channel was full",
          stats.group_skipped);
  counter("sluice_gateway_layer_expired_total", "Channel-layer messages expired unread",
          stats.expired);
  constexpr char kDropped[] = "sluice_gateway_layer_dropped_total";
  constexpr char kDroppedHelp[] = "Channel-layer messages dropped, by reason";
  counter(kDropped, kDroppedHelp, stats.dropped_closed, R"(reason="closed")");
  counter(kDropped, kDroppedHelp, stats.dropped_overflow, R"(reason="overflow")");
  counter("sluice_gateway_layer_decode_errors_total",
          "Messages read from Redis that were not msgpack maps", stats.decode_errors);
  counter("sluice_gateway_layer_reconnects_total", "Connections to Redis made after the first",
          stats.reconnects);
  constexpr char kRestored[] = "sluice_gateway_layer_restored_total";
  constexpr char kRestoredHelp[] =
      "Redis reconnects: group memberships of this gateway's channels added again, and group "
      "leaves made late";
  counter(kRestored, kRestoredHelp, stats.restored_memberships, R"(what="memberships")");
  counter(kRestored, kRestoredHelp, stats.restored_leaves, R"(what="leaves")");
  r.AddGaugeFunction("sluice_gateway_layer_connected", "1 while the channel layer is usable",
                     [&stats] { return stats.connected.load(std::memory_order_relaxed); });
}

}  // namespace

Options::Options() {
  receive_window = DefaultWindow();
  gateway_id = DefaultProcessId();
}

Gateway::Gateway(Options options)
    : options_(std::move(options)), metrics_(std::make_unique<Metrics>(registry_)) {
  unsigned threads = options_.threads;
  if (threads == 0) threads = UsableCores();
  std::vector<Shard*> shards;
  for (unsigned i = 0; i < threads; ++i) {
    shards_.push_back(std::make_unique<Shard>(static_cast<uint16_t>(i)));
    shards.push_back(shards_.back().get());
  }
  pool_ = std::make_unique<WorkerPool>(options_, shards, &metrics_->link);
  layer_ = MakeLayer(options_, layer_io_);
  context_ = std::make_unique<Context>(Context{options_, *pool_, *metrics_, layer_.get()});
  if (layer_) {
    AddLayerMetrics(registry_, layer_->stats());
    constexpr char kBackground[] = "sluice_gateway_background_deliveries_total";
    constexpr char kBackgroundHelp[] = "Background-channel deliveries to workers, by outcome";
    background_ = std::make_unique<Background>(
        *shards_[0], *layer_, *pool_, LayerGatewayId(options_.gateway_id),
        Background::Counters{
            registry_.AddCounter(kBackground, kBackgroundHelp, R"(outcome="opened")"),
            registry_.AddCounter(kBackground, kBackgroundHelp, R"(outcome="redelivered")"),
            registry_.AddCounter(kBackground, kBackgroundHelp, R"(outcome="done")"),
            registry_.AddCounter(kBackground, kBackgroundHelp, R"(outcome="failed")"),
            registry_.AddGauge("sluice_gateway_background_in_flight",
                               "Background-channel messages pulled and not yet acknowledged")});
  }
  registry_.AddGaugeFunction("sluice_gateway_workers_ready",
                             "Worker links ready for new connections",
                             [this] { return static_cast<int64_t>(pool_->ready_links()); });
  constexpr char kDiscoveryHelp[] = "Worker discovery (--workers dns:NAME:PORT), by event";
  registry_.AddCounterFunction(
      "sluice_gateway_discovery_total", kDiscoveryHelp, [this] { return pool_->resolved(); },
      R"(event="resolved")");
  registry_.AddCounterFunction(
      "sluice_gateway_discovery_total", kDiscoveryHelp, [this] { return pool_->discovered(); },
      R"(event="added")");
  registry_.AddCounterFunction(
      "sluice_gateway_discovery_total", kDiscoveryHelp, [this] { return pool_->vanished(); },
      R"(event="removed")");
  registry_.AddCounterFunction(
      "sluice_gateway_discovery_total", kDiscoveryHelp,
      [this] { return pool_->discovery_errors(); }, R"(event="failed")");
  registry_.AddCounterFunction(
      "sluice_gateway_link_failures_total",
      "Worker link attempts that ended before the worker's Welcome (unreachable, refused, TLS "
      "handshake failed)",
      [this] { return pool_->link_failures(); });
  registry_.AddGaugeFunction("sluice_gateway_link_queued_bytes",
                             "Bytes queued on worker links, not yet written",
                             [this] { return static_cast<int64_t>(pool_->queued_bytes()); });
  registry_.AddGaugeFunction("sluice_gateway_instances",
                             "Connections with an application instance open on a worker", [this] {
                               size_t n = 0;
                               for (const auto& shard : shards_) n += shard->registered();
                               return static_cast<int64_t>(n);
                             });
  registry_.AddGaugeFunction("sluice_gateway_draining", "1 while the gateway drains",
                             [this] { return draining_.load() ? 1 : 0; });
  listener_ = std::make_shared<Listener>(*context_, shards);
}

Gateway::~Gateway() { Stop(); }

absl::Status Gateway::Start() {
  if (!layer_ && options_.layer != "none") {
    return absl::InvalidArgumentError(
        "--layer must be memory, redis://HOST[:PORT][/DB] or none, not " + options_.layer);
  }
  if (absl::Status status = listener_->Open(options_.listen); !status.ok()) return status;
  port_ = listener_->local_endpoint().port();
  if (options_.admin) {
    admin_.Route("/metrics", [this] {
      return AdminServer::Response{200, "text/plain; version=0.0.4", registry_.Render()};
    });
    admin_.Route("/healthz", [] { return AdminServer::Response{200, "text/plain", "ok\n"}; });
    admin_.Route("/readyz", [this] {
      if (draining_.load()) return AdminServer::Response{503, "text/plain", "draining\n"};
      const size_t ready = pool_->ready_links();
      if (ready == 0) return AdminServer::Response{503, "text/plain", "no worker link ready\n"};
      return AdminServer::Response{200, "text/plain", std::to_string(ready) + " workers ready\n"};
    });
    if (absl::Status status = admin_.Start(*options_.admin); !status.ok()) return status;
  }
  layer_thread_ = std::thread([this] {
    auto work = boost::asio::make_work_guard(layer_io_);
    layer_io_.run();
  });
  pool_->Start();
  if (background_) boost::asio::post(shards_[0]->io(), [this] { background_->Start(); });
  listener_->Start();
  for (auto& shard : shards_) {
    shard->StartSweep();
    threads_.emplace_back([&io = shard->io()] {
      auto work = boost::asio::make_work_guard(io);
      io.run();
    });
  }
  return absl::OkStatus();
}

void Gateway::OnEveryShard(void (*fn)(Shard&)) {
  std::vector<std::future<void>> done;
  for (auto& shard : shards_) {
    auto task = std::make_shared<std::packaged_task<void()>>([&shard = *shard, fn] { fn(shard); });
    done.push_back(task->get_future());
    boost::asio::post(shard->io(), [task] { (*task)(); });
  }
  for (auto& future : done) future.wait();
}

size_t Gateway::Sessions() const {
  size_t n = 0;
  for (const auto& shard : shards_) n += shard->sessions();
  return n;
}

// After the drain timeout, how long WebSockets closed with 1001 get to finish their close
// handshake before they are cut.
constexpr std::chrono::seconds kRetireGrace{2};

void Gateway::Stop() {
  if (threads_.empty()) return;
  draining_.store(true);  // /readyz fails from now on
  if (options_.drain_delay.count() > 0) {
    SLUICE_LOG(kInfo, "gateway") << "draining: /readyz fails; serving "
                                 << options_.drain_delay.count() << " s more before the drain";
    std::this_thread::sleep_for(options_.drain_delay);
  }
  listener_->Stop();
  // No new background messages are pulled; deliveries in flight finish with the drain.
  if (background_) boost::asio::post(shards_[0]->io(), [this] { background_->Stop(); });
  // Requests in progress finish (their responses say connection: close), idle connections
  // close; open WebSockets stay until the drain timeout, then get 1001. The links stay up.
  OnEveryShard(
      [](Shard& shard) { shard.ForEachSession([](ClientSession& session) { session.Drain(); }); });
  const auto wait_until = [this](std::chrono::steady_clock::time_point deadline) {
    size_t left = 0;
    while ((left = Sessions()) > 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return left;
  };
  size_t left = wait_until(std::chrono::steady_clock::now() + options_.drain_timeout);
  if (left > 0) {
    OnEveryShard([](Shard& shard) {
      shard.ForEachSession([](ClientSession& session) { session.Retire(); });
    });
    // Their close handshakes, bounded like any close.
    left = wait_until(std::chrono::steady_clock::now() + kRetireGrace);
  }
  if (left > 0) {
    SLUICE_LOG(kWarning, "gateway") << left << " connections still open after the drain timeout ("
                                    << options_.drain_timeout.count() << " s); closing them";
    OnEveryShard(
        [](Shard& shard) { shard.ForEachSession([](ClientSession& session) { session.Cut(); }); });
  }
  admin_.Stop();
  pool_->Stop();  // ends the links and waits until gRPC is done with each
  for (auto& shard : shards_) shard->io().stop();
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
  layer_io_.stop();
  layer_thread_.join();
}

uint16_t Gateway::port() const { return port_; }

}  // namespace sluice::gateway
