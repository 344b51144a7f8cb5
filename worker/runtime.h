#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/admin_server.h"
#include "common/host_port.h"
#include "common/metrics.h"
#include "sluice/consumer.h"
#include "sluice/v1/link.pb.h"
#include "worker/metrics.h"

namespace sluice::worker {

class LinkSession;

struct Options {
  std::string listen = "127.0.0.1:8001";
  std::string worker_id;  // default: hostname-pid
  /// Most instances at once over all links; past it Opens are rejected (the gateway 503s).
  uint32_t capacity = 10000;
  /// Threads running consumers (the gRPC library keeps its own few for the link).
  unsigned threads = 0;  // 0: one per core
  /// Initial per-connection credit granted to gateways: the bound of each instance's inbox.
  v1::Window receive_window;
  std::chrono::milliseconds heartbeat_interval{1000};
  /// A consumer that has not returned this long after its disconnect is cancelled (Daphne's
  /// application close timeout), so it cannot hold a capacity slot forever.
  std::chrono::milliseconds close_timeout{10000};
  /// Where /metrics and /healthz are served; none when unset.
  std::optional<HostPort> admin;

  Options();
};

/// The worker process's engine: the gRPC server for links (plus grpc.health.v1), the thread
/// pool consumers run on, and the capacity count shared by all links.
/// Thread-safety: Start/Stop from one thread; the rest is safe from any thread.
/// Lifetime: `app` must outlive it.
class Runtime final {
 public:
  Runtime(Application& app, Options options);
  ~Runtime();

  /// Binds and serves. Afterwards port() is the bound port.
  absl::Status Start();
  /// Stops accepting links, ends the open ones (grace: 2 s), and joins the threads.
  void Stop();
  int port() const { return port_; }
  uint16_t admin_port() const { return admin_.port(); }

  // For links and instances.
  bool TryAdmit();
  void Release();
  uint32_t active() const { return active_.load(std::memory_order_relaxed); }
  Application& app() { return app_; }
  const Options& options() const { return options_; }
  boost::asio::io_context& io() { return io_; }
  Metrics& metrics() { return metrics_; }
  void AddLink(const std::shared_ptr<LinkSession>& link);

 private:
  class Service;
  void ScheduleTick();
  std::vector<std::shared_ptr<LinkSession>> LiveLinks();

  Application& app_;
  const Options options_;
  MetricsRegistry registry_;
  Metrics metrics_{registry_};
  AdminServer admin_;
  boost::asio::io_context io_;
  boost::asio::steady_timer tick_;
  std::vector<std::thread> threads_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::atomic<uint32_t> active_ = 0;
  absl::Mutex links_mu_;
  std::vector<std::weak_ptr<LinkSession>> links_ ABSL_GUARDED_BY(links_mu_);
};

}  // namespace sluice::worker
