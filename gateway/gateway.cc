#include "gateway/gateway.h"

#include <boost/asio/executor_work_guard.hpp>

#include "common/process.h"
#include "gateway/listener.h"
#include "gateway/metrics.h"
#include "gateway/shard.h"
#include "gateway/worker_pool.h"

namespace sluice::gateway {

Options::Options() {
  receive_window.set_events(16);
  receive_window.set_bytes(1 << 20);
  gateway_id = DefaultProcessId();
}

Gateway::Gateway(Options options)
    : options_(std::move(options)), metrics_(std::make_unique<Metrics>(registry_)) {
  unsigned threads = options_.threads;
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  std::vector<Shard*> shards;
  for (unsigned i = 0; i < threads; ++i) {
    shards_.push_back(std::make_unique<Shard>(static_cast<uint16_t>(i)));
    shards.push_back(shards_.back().get());
  }
  pool_ = std::make_unique<WorkerPool>(options_, shards, shards.front()->io());
  context_ = std::make_unique<Context>(Context{options_, *pool_, *metrics_});
  registry_.AddGaugeFunction("sluice_gateway_workers_ready", "Worker links ready for connections",
                             [this] { return static_cast<int64_t>(pool_->ready_links()); });
  registry_.AddGaugeFunction("sluice_gateway_link_queued_bytes",
                             "Bytes queued on worker links, not yet written",
                             [this] { return static_cast<int64_t>(pool_->queued_bytes()); });
  listener_ = std::make_shared<Listener>(*context_, shards);
}

Gateway::~Gateway() { Stop(); }

absl::Status Gateway::Start() {
  if (absl::Status status = listener_->Open(options_.listen); !status.ok()) return status;
  port_ = listener_->local_endpoint().port();
  if (options_.admin) {
    admin_.Route("/metrics", [this] {
      return AdminServer::Response{200, "text/plain; version=0.0.4", registry_.Render()};
    });
    admin_.Route("/healthz", [] { return AdminServer::Response{200, "text/plain", "ok\n"}; });
    admin_.Route("/readyz", [this] {
      const size_t ready = pool_->ready_links();
      if (ready == 0) return AdminServer::Response{503, "text/plain", "no worker link ready\n"};
      return AdminServer::Response{200, "text/plain", std::to_string(ready) + " workers ready\n"};
    });
    if (absl::Status status = admin_.Start(*options_.admin); !status.ok()) return status;
  }
  pool_->Start();
  listener_->Start();
  for (auto& shard : shards_) {
    threads_.emplace_back([&io = shard->io()] {
      auto work = boost::asio::make_work_guard(io);
      io.run();
    });
  }
  return absl::OkStatus();
}

void Gateway::Stop() {
  if (threads_.empty()) return;
  admin_.Stop();
  listener_->Stop();
  pool_->Stop();
  for (auto& shard : shards_) shard->io().stop();
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
}

uint16_t Gateway::port() const { return port_; }

}  // namespace sluice::gateway
