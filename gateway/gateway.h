#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <memory>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "common/admin_server.h"
#include "common/metrics.h"
#include "gateway/context.h"
#include "gateway/options.h"
#include "layer/channel_layer.h"

namespace sluice::gateway {

class Background;
class Listener;
struct Metrics;
class Shard;
class WorkerPool;

/// A gateway process's engine: one Shard (event loop thread) per core holding client
/// sockets, the listener, the worker pool with its links, and the channel layer on a loop
/// (and thread) of its own, with the background-channel pullers on shard 0.
/// Thread-safety: Start and Stop from one thread. Lifetime: owns everything it starts; the
/// members are declared so that sessions (inside the shards) go before the pool whose links
/// they hold, and the pool only once no gRPC callback can reach a shard.
class Gateway final {
 public:
  explicit Gateway(Options options);
  ~Gateway();

  /// Binds the client port and starts linking to workers.
  absl::Status Start();
  /// Fails readiness, keeps serving for --drain-delay, stops accepting, lets requests in
  /// progress finish for at most --drain-timeout (open WebSockets stay that long, then get
  /// 1001 and kRetireGrace to close), cuts what is left, ends the links, joins.
  void Stop();
  /// The bound client port (useful with port 0).
  uint16_t port() const;
  uint16_t admin_port() const { return admin_.port(); }

 private:
  size_t Sessions() const;
  void OnEveryShard(void (*fn)(Shard&));

  const Options options_;
  MetricsRegistry registry_;
  std::unique_ptr<Metrics> metrics_;
  AdminServer admin_;
  std::unique_ptr<WorkerPool> pool_;
  std::unique_ptr<Context> context_;
  std::vector<std::unique_ptr<Shard>> shards_;  // destroyed before the pool
  // After the shards: the layer's pending handlers hold sessions, which leave their shard's
  // list when they go. The layer goes after its loop stopped, before the loop.
  boost::asio::io_context layer_io_{1};
  std::unique_ptr<layer::ChannelLayer> layer_;
  std::thread layer_thread_;
  std::unique_ptr<Background> background_;  // its timer is on shard 0
  std::shared_ptr<Listener> listener_;
  std::vector<std::thread> threads_;
  std::atomic<bool> draining_ = false;
  uint16_t port_ = 0;
};

}  // namespace sluice::gateway
