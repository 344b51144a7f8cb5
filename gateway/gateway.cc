#include "gateway/gateway.h"

#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>

#include "gateway/listener.h"
#include "gateway/shard.h"
#include "gateway/worker_pool.h"

namespace sluice::gateway {

Options::Options() {
  receive_window.set_events(16);
  receive_window.set_bytes(1 << 20);
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  gateway_id = std::string(host) + "-" + std::to_string(getpid());
}

Gateway::Gateway(Options options) : options_(std::move(options)) {
  unsigned threads = options_.threads;
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  std::vector<Shard*> shards;
  for (unsigned i = 0; i < threads; ++i) {
    shards_.push_back(std::make_unique<Shard>(static_cast<uint16_t>(i)));
    shards.push_back(shards_.back().get());
  }
  pool_ = std::make_unique<WorkerPool>(options_, shards, shards.front()->io());
  context_ = std::make_unique<Context>(Context{options_, *pool_});
  listener_ = std::make_shared<Listener>(*context_, shards);
}

Gateway::~Gateway() { Stop(); }

absl::Status Gateway::Start() {
  if (absl::Status status = listener_->Open(options_.listen); !status.ok()) return status;
  port_ = listener_->local_endpoint().port();
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
  listener_->Stop();
  pool_->Stop();
  for (auto& shard : shards_) shard->io().stop();
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
}

uint16_t Gateway::port() const { return port_; }

}  // namespace sluice::gateway
