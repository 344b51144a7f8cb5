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
#include "common/link_tls.h"
#include "common/metrics.h"
#include "sluice/consumer.h"
#include "sluice/v1/link.pb.h"
#include "worker/metrics.h"
#include "worker/watchdog.h"

namespace sluice::worker {

class LinkSession;

struct Options {
  std::string listen = "127.0.0.1:8001";
  std::string worker_id;  // default: hostname-pid
  /// Mutual TLS for gateway links (--link-tls-cert/-key/-ca): gateways must present a
  /// certificate the CA signed. Plaintext when unset.
  std::optional<LinkTls> link_tls;
  /// Most instances at once over all links; past it Opens are rejected (the gateway 503s).
  uint32_t capacity = 10000;
  /// Event loops running consumers, one thread each (the gRPC library keeps its own few
  /// threads for the link).
  unsigned threads = 0;  // 0: UsableCores()
  /// Initial per-connection credit granted to gateways: the bound of each instance's inbox.
  /// Default: kDefaultWindow (common/protocol.h).
  v1::Window receive_window;
  std::chrono::milliseconds heartbeat_interval{1000};
  /// A consumer that has not returned this long after its disconnect is cancelled (Daphne's
  /// application close timeout), so it cannot hold a capacity slot forever.
  std::chrono::milliseconds close_timeout{10000};
  /// Where /metrics and /healthz are served; none when unset.
  std::optional<HostPort> admin;
  /// On SIGTERM: how long requests in progress may take to finish (WebSockets are closed
  /// with 1012 at once) before the links end.
  std::chrono::milliseconds drain_timeout{10000};
  /// A loop blocked this long by a consumer is logged and counted (LoopWatchdog); 0: off.
  std::chrono::milliseconds stall_threshold{500};

  Options();
};

/// The worker process's engine: the gRPC server for links (plus grpc.health.v1), the event
/// loops consumers run on (one thread each; an instance stays on one loop), and the capacity
/// count shared by all links.
/// Thread-safety: Start/Drain/Stop from one thread; the rest is safe from any thread.
/// Lifetime: `app` must outlive it.
class Runtime final {
 public:
  Runtime(Application& app, Options options);
  ~Runtime();

  /// Binds and serves. Afterwards port() is the bound port.
  absl::Status Start();
  /// Admits nothing new (gateways are told at once, and health says NOT_SERVING), hands
  /// WebSockets back to their gateways (to move), and waits for the instances to end, up to
  /// --drain-timeout less kStopReserve.
  void Drain();
  /// Drains (unless done), ends the links, stops the server and joins the loops: within the
  /// drain's deadline (at least kStopFloor per step), so SIGTERM to exit is --drain-timeout.
  void Stop();
  static constexpr std::chrono::milliseconds kStopReserve{500};
  static constexpr std::chrono::milliseconds kStopFloor{100};
  int port() const { return port_; }
  uint16_t admin_port() const { return admin_.port(); }

  // For links and instances.
  bool TryAdmit();
  void Release();
  uint32_t active() const { return active_.load(std::memory_order_relaxed); }
  bool draining() const { return draining_.load(std::memory_order_relaxed); }
  Application& app() { return app_; }
  const Options& options() const { return options_; }
  unsigned loops() const { return static_cast<unsigned>(loops_.size()); }
  boost::asio::io_context& loop(unsigned i) { return *loops_[i]; }
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
  std::vector<std::unique_ptr<boost::asio::io_context>> loops_;
  boost::asio::steady_timer tick_;  // on loop 0
  LoopWatchdog watchdog_;           // after loops_: its timers go first
  std::vector<std::thread> threads_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::atomic<uint32_t> active_ = 0;
  std::atomic<bool> draining_ = false;
  std::chrono::steady_clock::time_point stop_deadline_;  // set by Drain
  absl::Mutex links_mu_;
  std::vector<std::weak_ptr<LinkSession>> links_ ABSL_GUARDED_BY(links_mu_);
};

}  // namespace sluice::worker
