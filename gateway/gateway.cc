#include "gateway/gateway.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <future>

#include "common/credit.h"
#include "common/log.h"
#include "common/process.h"
#include "gateway/client_session.h"
#include "gateway/listener.h"
#include "gateway/metrics.h"
#include "gateway/shard.h"
#include "gateway/worker_pool.h"

namespace sluice::gateway {

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
  context_ = std::make_unique<Context>(Context{options_, *pool_, *metrics_});
  registry_.AddGaugeFunction("sluice_gateway_workers_ready",
                             "Worker links ready for new connections",
                             [this] { return static_cast<int64_t>(pool_->ready_links()); });
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
  pool_->Start();
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

void Gateway::Stop() {
  if (threads_.empty()) return;
  draining_.store(true);
  listener_->Stop();
  // Requests in progress finish (their responses say connection: close), idle connections
  // close, WebSockets get 1001; the links stay up meanwhile.
  OnEveryShard(
      [](Shard& shard) { shard.ForEachSession([](ClientSession& session) { session.Drain(); }); });
  const auto deadline = std::chrono::steady_clock::now() + options_.drain_timeout;
  size_t left = 0;
  while ((left = Sessions()) > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
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
}

uint16_t Gateway::port() const { return port_; }

}  // namespace sluice::gateway
