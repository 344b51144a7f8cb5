#include "worker/runtime.h"

#include <grpcpp/health_check_service_interface.h>

#include <boost/asio/executor_work_guard.hpp>

#include "common/credit.h"
#include "common/log.h"
#include "common/process.h"
#include "common/protocol.h"
#include "sluice/sync.h"
#include "sluice/v1/link.grpc.pb.h"
#include "worker/link_session.h"

namespace sluice::worker {

Options::Options() {
  receive_window = DefaultWindow();
  worker_id = DefaultProcessId();
}

namespace {

std::vector<std::unique_ptr<boost::asio::io_context>> MakeLoops(unsigned threads) {
  if (threads == 0) threads = UsableCores();
  std::vector<std::unique_ptr<boost::asio::io_context>> loops;
  for (unsigned i = 0; i < threads; ++i)
    loops.push_back(std::make_unique<boost::asio::io_context>(1));
  return loops;
}

std::vector<boost::asio::io_context*> Pointers(
    const std::vector<std::unique_ptr<boost::asio::io_context>>& loops) {
  std::vector<boost::asio::io_context*> out;
  out.reserve(loops.size());
  for (const auto& loop : loops) out.push_back(loop.get());
  return out;
}

}  // namespace

class Runtime::Service final : public v1::Link::CallbackService {
 public:
  explicit Service(Runtime& runtime) : runtime_(runtime) {}

  grpc::ServerBidiReactor<v1::Frame, v1::Frame>* Connect(
      grpc::CallbackServerContext* context) override {
    return new LinkReactor(runtime_, context);
  }

 private:
  Runtime& runtime_;
};

Runtime::Runtime(Application& app, Options options)
    : app_(app),
      options_(std::move(options)),
      loops_(MakeLoops(options_.threads)),
      tick_(*loops_.front()),
      watchdog_(Pointers(loops_), options_.stall_threshold, metrics_.loop_stalls) {}

Runtime::~Runtime() { Stop(); }

absl::Status Runtime::Start() {
  grpc::EnableDefaultHealthCheckService(true);
  service_ = std::make_unique<Service>(*this);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options_.listen, LinkServerCredentials(options_.link_tls), &port_);
  builder.RegisterService(service_.get());
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, kKeepaliveTimeMs);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, kKeepaliveTimeoutMs);
  // Accept the gateway's keepalive pings (sent at kKeepaliveTimeMs) without calling them abuse.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                             kKeepaliveTimeMs / 2);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0) {
    return absl::UnavailableError("cannot listen on " + options_.listen);
  }
  registry_.AddGaugeFunction("sluice_worker_instances", "Application instances running",
                             [this] { return static_cast<int64_t>(active()); });
  registry_.AddGaugeFunction("sluice_worker_capacity", "Most instances at once",
                             [this] { return static_cast<int64_t>(options_.capacity); });
  // The SyncPool's, once a consumer started it (sdk/src/sync.cc).
  const auto pool = [](auto read) {
    return [read] {
      const SyncPool* pool = SyncPool::DefaultIfStarted();
      return pool == nullptr ? 0 : read(*pool);
    };
  };
  registry_.AddGaugeFunction(
      "sluice_worker_sync_running", "Blocking calls running on the SyncPool's threads",
      pool([](const SyncPool& p) { return static_cast<int64_t>(p.running()); }));
  registry_.AddGaugeFunction(
      "sluice_worker_sync_queued", "Blocking calls waiting for a SyncPool thread",
      pool([](const SyncPool& p) { return static_cast<int64_t>(p.queued()); }));
  registry_.AddCounterFunction("sluice_worker_sync_rejected_total",
                               "Blocking calls refused: the SyncPool's queue was full",
                               pool([](const SyncPool& p) { return p.rejected(); }));
  if (options_.admin) {
    admin_.Route("/metrics", [this] {
      return AdminServer::Response{200, "text/plain; version=0.0.4", registry_.Render()};
    });
    admin_.Route("/healthz", [] { return AdminServer::Response{200, "text/plain", "ok\n"}; });
    // As gRPC health on the link port, for probes that cannot speak TLS to it.
    admin_.Route("/readyz", [this] {
      return draining() ? AdminServer::Response{503, "text/plain", "draining\n"}
                        : AdminServer::Response{200, "text/plain", "ready\n"};
    });
    if (absl::Status status = admin_.Start(*options_.admin); !status.ok()) return status;
  }
  ScheduleTick();
  watchdog_.Start();
  for (unsigned i = 0; i < loops_.size(); ++i) {
    threads_.emplace_back([&io = *loops_[i], &watch = watchdog_.watch(i)] {
      LoopWatchdog::SetCurrent(&watch);
      sluice::internal::MarkEventLoopThread(true);  // AsyncToSync refuses to block it
      auto work = boost::asio::make_work_guard(io);
      io.run();
    });
  }
  return absl::OkStatus();
}

void Runtime::Drain() {
  if (draining_.exchange(true) || threads_.empty()) return;
  SLUICE_LOG(kInfo, "worker") << "draining: " << active() << " connections, at most "
                              << options_.drain_timeout.count() << " ms";
  if (server_) {
    server_->GetHealthCheckService()->SetServingStatus(false);
  }
  for (auto& link : LiveLinks()) link->Drain();
  stop_deadline_ = std::chrono::steady_clock::now() + options_.drain_timeout;
  const auto deadline = stop_deadline_ - kStopReserve;
  while (active() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (active() > 0) {
    SLUICE_LOG(kWarning, "worker") << active() << " connections still running after the drain";
  }
}

void Runtime::Stop() {
  Drain();
  // What is left of the drain's time, for each step below.
  const auto left = [this] {
    const auto now = std::chrono::steady_clock::now();
    return std::max<std::chrono::steady_clock::duration>(stop_deadline_ - now, kStopFloor);
  };
  admin_.Stop();
  // End every link ourselves: gateways see it at once (and send new connections elsewhere),
  // and gRPC's shutdown need not wait out its grace.
  for (auto& link : LiveLinks())
    link->End(grpc::Status(grpc::StatusCode::UNAVAILABLE, "worker stopping"));
  if (server_) {
    server_->Shutdown(
        std::chrono::system_clock::now() +
        std::min<std::chrono::system_clock::duration>(left(), std::chrono::seconds(2)));
    server_.reset();
  }
  // Instances have been told their client is gone; give them a moment to return.
  const auto deadline =
      std::chrono::steady_clock::now() +
      std::min<std::chrono::steady_clock::duration>(left(), std::chrono::seconds(2));
  while (active() > 0 && !threads_.empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  watchdog_.Stop();
  for (auto& loop : loops_) loop->stop();
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
  // Instances that never returned hold their link and it holds them: let go of both.
  for (auto& link : LiveLinks()) link->Abandon();
}

std::vector<std::shared_ptr<LinkSession>> Runtime::LiveLinks() {
  std::vector<std::shared_ptr<LinkSession>> live;
  absl::MutexLock lock(&links_mu_);
  std::erase_if(links_, [&](const std::weak_ptr<LinkSession>& weak) {
    auto link = weak.lock();
    if (!link) return true;
    live.push_back(std::move(link));
    return false;
  });
  return live;
}

bool Runtime::TryAdmit() {
  uint32_t now = active_.load(std::memory_order_relaxed);
  do {
    if (now >= options_.capacity) return false;
  } while (!active_.compare_exchange_weak(now, now + 1, std::memory_order_relaxed));
  return true;
}

void Runtime::Release() { active_.fetch_sub(1, std::memory_order_relaxed); }

void Runtime::AddLink(const std::shared_ptr<LinkSession>& link) {
  absl::MutexLock lock(&links_mu_);
  links_.push_back(link);
}

void Runtime::ScheduleTick() {
  tick_.expires_after(options_.heartbeat_interval / 2);
  tick_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    for (auto& link : LiveLinks()) link->Tick();
    ScheduleTick();
  });
}

}  // namespace sluice::worker
