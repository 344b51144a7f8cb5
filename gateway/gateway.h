#pragma once

#include <memory>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "common/admin_server.h"
#include "common/metrics.h"
#include "gateway/context.h"
#include "gateway/options.h"

namespace sluice::gateway {

class Listener;
struct Metrics;
class Shard;
class WorkerPool;

/// A gateway process's engine: one Shard (event loop thread) per core holding client
/// sockets, the listener, and the worker pool with its links.
/// Thread-safety: Start and Stop from one thread. Lifetime: owns everything it starts.
class Gateway final {
 public:
  explicit Gateway(Options options);
  ~Gateway();

  /// Binds the client port and starts linking to workers.
  absl::Status Start();
  void Stop();
  /// The bound client port (useful with port 0).
  uint16_t port() const;
  uint16_t admin_port() const { return admin_.port(); }

 private:
  const Options options_;
  MetricsRegistry registry_;
  std::unique_ptr<Metrics> metrics_;
  AdminServer admin_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::unique_ptr<WorkerPool> pool_;
  std::unique_ptr<Context> context_;
  std::shared_ptr<Listener> listener_;
  std::vector<std::thread> threads_;
  uint16_t port_ = 0;
};

}  // namespace sluice::gateway
