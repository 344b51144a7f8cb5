#include "gateway/worker_pool.h"

#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <set>

#include "common/log.h"
#include "common/process.h"
#include "common/protocol.h"
#include "gateway/shard.h"

namespace sluice::gateway {
// ---- LinkCall ----------------------------------------------------------------------------

namespace {
std::atomic<uint64_t> g_next_generation{1};
}  // namespace

LinkCall::LinkCall(WorkerLink& owner, const Options& options, std::vector<Shard*> shards)
    : owner_(owner),
      options_(options),
      shards_(std::move(shards)),
      generation_(g_next_generation.fetch_add(1, std::memory_order_relaxed)),
      writer_(nullptr, owner.traffic()),
      outboxes_(shards_.size()),
      last_read_ns_(MonotonicNanos()) {}

void LinkCall::Start(v1::Link::Stub& stub) {
  self_ = shared_from_this();
  stub.async()->Connect(&context_, this);
  // Writes come from connection threads, outside reactions: hold the call open for them
  // until the stream ends and the last such write has completed (MaybeRemoveHold).
  AddHold();
  v1::Frame hello;
  v1::Hello* h = hello.mutable_hello();
  h->set_protocol_version(kProtocolVersion);
  h->set_gateway_id(options_.gateway_id);
  *h->mutable_receive_window() = options_.receive_window;
  h->set_heartbeat_interval_ms(static_cast<uint32_t>(options_.heartbeat_interval.count()));
  if (writer_.PushFrame(std::move(hello))) StartWrite(writer_.frame());
  in_ = std::make_shared<InboundFrame>();
  StartRead(&in_->frame());
  StartCall();
}

bool LinkCall::Send(uint16_t shard, v1::Envelope&& envelope) {
  if (read_ended_.load(std::memory_order_acquire)) return false;
  if (outboxes_[shard].Add(std::move(envelope))) {
    // The first envelope of this turn: flush after what the shard has queued meanwhile.
    boost::asio::post(shards_[shard]->io(),
                      [self = shared_from_this(), shard] { self->Flush(shard); });
  }
  return true;
}

void LinkCall::Flush(uint16_t shard) {
  size_t bytes = 0;
  std::vector<v1::Frame> frames = outboxes_[shard].Take(&bytes);
  if (writer_.Push(std::move(frames), bytes)) StartWrite(writer_.frame());
}

int64_t LinkCall::FreeSlots() const {
  return capacity_.load(std::memory_order_relaxed) - assigned_.load(std::memory_order_relaxed) -
         elsewhere_.load(std::memory_order_relaxed);
}

void LinkCall::Tick() {
  // Before the Welcome our own interval applies: a worker that accepts the stream and never
  // answers does not hold the link forever.
  const bool ready = this->ready();
  if (ready && writer_.Heartbeat(options_.heartbeat_interval)) StartWrite(writer_.frame());
  const auto interval = ready ? worker_heartbeat_ : options_.heartbeat_interval;
  const auto silent = std::chrono::nanoseconds(MonotonicNanos() - last_read_ns_.load());
  if (silent > 4 * interval && !read_ended_.load()) {
    SLUICE_LOG(kWarning, "gateway")
        << "worker " << (ready ? worker_id_ : "(no Welcome yet)") << " at "
        << owner_.address().ToString() << " silent for "
        << std::chrono::duration_cast<std::chrono::milliseconds>(silent).count()
        << " ms; dropping the link";
    context_.TryCancel();
  }
}

void LinkCall::OnReadDone(bool ok) {
  if (!ok) {
    EndRead();
    return;
  }
  last_read_ns_.store(MonotonicNanos());
  // The next read gets a fresh Frame; this one goes to the shards, which free it.
  const std::shared_ptr<InboundFrame> frame = std::exchange(in_, std::make_shared<InboundFrame>());
  if (LinkTraffic* traffic = owner_.traffic()) {
    traffic->frames_received.Inc();
    traffic->envelopes_received.Inc(static_cast<uint64_t>(frame->frame().envelopes_size()));
  }
  if (!OnFrame(frame)) {
    context_.TryCancel();
    EndRead();
    return;
  }
  StartRead(&in_->frame());
}

bool LinkCall::OnFrame(const std::shared_ptr<InboundFrame>& inbound) {
  v1::Frame& frame = inbound->frame();
  if (!ready() && !HandleWelcome(frame)) return false;
  if (frame.has_capacity()) {
    const v1::Capacity& c = frame.capacity();
    capacity_.store(c.capacity(), std::memory_order_relaxed);
    elsewhere_.store(static_cast<int64_t>(c.active_total()) - c.active_link(),
                     std::memory_order_relaxed);
    draining_.store(c.draining(), std::memory_order_relaxed);
  }
  if (frame.envelopes_size() > 0) {
    std::vector<InboundBatch> batches(shards_.size());
    for (v1::Envelope& envelope : *frame.mutable_envelopes()) {
      const uint16_t shard = Shard::IndexOf(envelope.connection_id());
      if (shard >= shards_.size()) continue;  // not an id we issued
      if (envelope.has_close()) assigned_.fetch_sub(1, std::memory_order_relaxed);
      batches[shard].envelopes.push_back(&envelope);
    }
    for (size_t i = 0; i < batches.size(); ++i) {
      if (batches[i].envelopes.empty()) continue;
      batches[i].frame = inbound;
      shards_[i]->Deliver(std::move(batches[i]));
    }
  }
  return true;
}

bool LinkCall::Consumes(std::string_view channel) const {
  return std::find(channels_.begin(), channels_.end(), channel) != channels_.end();
}

bool LinkCall::HandleWelcome(const v1::Frame& frame) {
  if (!frame.has_welcome() || frame.welcome().protocol_version() != kProtocolVersion) {
    SLUICE_LOG(kError, "gateway") << "worker at " << owner_.address().ToString()
                                  << " did not answer with a Welcome of protocol version "
                                  << kProtocolVersion << "; dropping the link";
    return false;
  }
  const v1::Welcome& w = frame.welcome();
  worker_id_ = w.worker_id();
  worker_window_ = w.receive_window();
  if (w.heartbeat_interval_ms() > 0) {
    worker_heartbeat_ = std::chrono::milliseconds(w.heartbeat_interval_ms());
  }
  capacity_.store(w.capacity(), std::memory_order_relaxed);
  channels_.assign(w.channels().begin(), w.channels().end());
  ready_.store(true, std::memory_order_release);
  SLUICE_LOG(kInfo, "gateway") << "link up: worker " << worker_id_ << " at "
                               << owner_.address().ToString() << ", capacity " << w.capacity();
  return true;
}

void LinkCall::OnWriteDone(bool ok) {
  if (!ok) writer_.Close();
  if (writer_.WriteDone()) {
    StartWrite(writer_.frame());
  } else {
    MaybeRemoveHold();
  }
}

void LinkCall::EndRead() {
  if (read_ended_.load()) return;
  ready_.store(false, std::memory_order_release);
  writer_.Close();  // before read_ended_: no write may start once the hold can go
  read_ended_.store(true, std::memory_order_release);
  MaybeRemoveHold();
}

void LinkCall::MaybeRemoveHold() {
  // Only once the read side has ended (the writer is closed then) and no write is in flight:
  // a connection thread may have won the race to start one just before the close.
  if (!read_ended_.load() || writer_.writing()) return;
  if (!hold_removed_.exchange(true)) RemoveHold();
}

void LinkCall::OnDone(const grpc::Status& status) {
  const bool was_ready = !worker_id_.empty();
  for (Shard* shard : shards_) shard->LinkLost(generation_);
  owner_.CallEnded(this, std::move(self_), status, was_ready);
}

// ---- WorkerLink --------------------------------------------------------------------------

WorkerLink::WorkerLink(HostPort address, const Options& options, std::vector<Shard*> shards,
                       boost::asio::io_context& control, LinkTraffic* traffic,
                       std::atomic<uint64_t>* failures)
    : address_(std::move(address)),
      options_(options),
      shards_(std::move(shards)),
      traffic_(traffic),
      failures_(failures),
      retry_(control) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, kKeepaliveTimeMs);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, kKeepaliveTimeoutMs);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  if (options_.link_tls && !options_.link_tls_server_name.empty()) {
    args.SetSslTargetNameOverride(options_.link_tls_server_name);
  }
  channel_ = grpc::CreateCustomChannel(address_.ToString(),
                                       LinkChannelCredentials(options_.link_tls), args);
  stub_ = v1::Link::NewStub(channel_);
}

void WorkerLink::Connect() {
  auto call = std::make_shared<LinkCall>(*this, options_, shards_);
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    call_ = call;
  }
  call->Start(*stub_);
}

std::shared_ptr<LinkCall> WorkerLink::admitting_call() {
  absl::MutexLock lock(&mu_);
  if (call_ && !retired_ && call_->admitting()) return call_;
  return nullptr;
}

std::shared_ptr<LinkCall> WorkerLink::call() {
  absl::MutexLock lock(&mu_);
  return call_;
}

void WorkerLink::Tick() {
  if (auto current = call()) current->Tick();
}

void WorkerLink::CancelRetry() { retry_.cancel(); }

void WorkerLink::Stop() {
  std::shared_ptr<LinkCall> call;
  {
    absl::MutexLock lock(&mu_);
    stopped_ = true;
    call = call_;
  }
  if (call) call->Cancel();
}

void WorkerLink::Retire() {
  {
    absl::MutexLock lock(&mu_);
    retired_ = true;
    stopped_ = true;  // no reconnect once the current call ends
  }
  retry_.cancel();  // on the control loop, where the retry timer lives
}

void WorkerLink::AwaitEnded() {
  absl::MutexLock lock(&mu_);
  if (!mu_.AwaitWithTimeout(absl::Condition(this, &WorkerLink::ended), absl::Seconds(2))) {
    SLUICE_LOG(kWarning, "gateway")
        << "link to " << address_.ToString() << " still ending after 2 s; waiting for gRPC";
    mu_.Await(absl::Condition(this, &WorkerLink::ended));
  }
}

void WorkerLink::CallEnded(LinkCall* call, std::shared_ptr<LinkCall> self,
                           const grpc::Status& status, bool was_ready) {
  std::chrono::milliseconds delay;
  bool first_failure = false;
  {
    absl::MutexLock lock(&mu_);
    // The call's last references are let go on the control loop, never on this gRPC thread
    // (destroying its context may drop a channel's last reference, which frees the completion
    // queue under the thread running this callback). Posted before the call counts as ended:
    // by the time Stop sees that, nothing of ours is left for a gRPC thread to touch, and
    // the gateway tears the loop down before the channels.
    std::shared_ptr<LinkCall> ended = call_.get() == call ? std::move(call_) : nullptr;
    boost::asio::post(retry_.get_executor(), [ended = std::move(ended), self = std::move(self)] {});
    if (stopped_) return;
    backoff_ = was_ready ? std::chrono::milliseconds(100)
                         : std::min(backoff_ * 2, std::chrono::milliseconds(2000));
    // Jittered (between half and all of it): gateways that lost a worker together do not
    // all knock at once when it comes back.
    const int64_t low = backoff_.count() / 2;
    delay = std::chrono::milliseconds(
        low + static_cast<int64_t>(jitter_() % static_cast<uint64_t>(backoff_.count() - low + 1)));
    if (was_ready) {
      last_failure_.clear();
    } else if (status.error_message() != last_failure_) {
      last_failure_ = status.error_message();
      first_failure = true;
    }
  }
  if (!was_ready && failures_) failures_->fetch_add(1, std::memory_order_relaxed);
  if (was_ready) {
    SLUICE_LOG(kWarning, "gateway")
        << "link down: worker at " << address_.ToString() << ": " << status.error_message()
        << " (code " << status.error_code() << "); reconnecting";
  } else {
    // A worker that is not up yet, or one that refuses us (TLS): said once, then counted.
    if (first_failure) {
      SLUICE_LOG(kWarning, "gateway")
          << "no link to " << address_.ToString() << ": " << status.error_message() << " (code "
          << status.error_code() << "); retrying (backoff up to 2 s)";
    } else {
      SLUICE_LOG(kDebug, "gateway")
          << "no link to " << address_.ToString() << ": " << status.error_message() << "; retry in "
          << delay.count() << " ms";
    }
  }
  boost::asio::post(retry_.get_executor(), [this, delay] {
    retry_.expires_after(delay);
    retry_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) Connect();
    });
  });
}

// ---- WorkerPool --------------------------------------------------------------------------

namespace {

// Resolves NAME to its addresses (IPv4 and IPv6, as the system resolver gives them) with
// Asio's resolver: the lookup runs on Asio's own thread, the answer comes on the control loop.
class DnsResolver final : public WorkerResolver {
 public:
  DnsResolver(boost::asio::io_context& control, std::string name, uint16_t port)
      : resolver_(control), name_(std::move(name)), port_(port) {}

  void Resolve(Done done) override {
    resolver_.async_resolve(
        name_, std::to_string(port_), boost::asio::ip::tcp::resolver::numeric_service,
        [this, done = std::move(done)](const boost::system::error_code& ec,
                                       const boost::asio::ip::tcp::resolver::results_type& found) {
          if (ec) {
            return done(absl::UnavailableError("resolving " + name_ + ": " + ec.message()));
          }
          std::vector<HostPort> addresses;
          for (const auto& entry : found) {
            const auto& endpoint = entry.endpoint();
            addresses.push_back(HostPort{endpoint.address().to_string(), endpoint.port()});
          }
          done(std::move(addresses));
        });
  }

 private:
  boost::asio::ip::tcp::resolver resolver_;
  const std::string name_;
  const uint16_t port_;
};

}  // namespace

WorkerPool::WorkerPool(
    const Options& options, const std::vector<Shard*>& shards, LinkTraffic* traffic,
    const std::function<std::unique_ptr<WorkerResolver>(boost::asio::io_context&)>& resolver)
    : options_(options),
      shards_(shards),
      traffic_(traffic),
      tick_(control_),
      interval_(options.heartbeat_interval),
      discovery_(control_) {
  absl::MutexLock lock(&links_mu_);
  for (const HostPort& address : options.workers) {
    links_.push_back(
        std::make_shared<WorkerLink>(address, options, shards, control_, traffic, &link_failures_));
  }
  if (options.discovery) {
    resolver_ = resolver ? resolver(control_)
                         : std::make_unique<DnsResolver>(control_, options.discovery->name,
                                                         options.discovery->port);
  }
}

WorkerPool::~WorkerPool() { Stop(); }

void WorkerPool::Start() {
  {
    absl::ReaderMutexLock lock(&links_mu_);
    for (auto& link : links_) link->Connect();
  }
  boost::asio::post(control_, [this] {
    ScheduleTick();
    if (resolver_) Discover();
  });
  thread_ = std::thread([this] {
    auto work = boost::asio::make_work_guard(control_);
    control_.run();
  });
}

void WorkerPool::Stop() {
  if (!thread_.joinable()) return;
  stopping_.store(true);  // discovery adds no link from now on
  std::vector<std::shared_ptr<WorkerLink>> links;
  {
    absl::ReaderMutexLock lock(&links_mu_);
    links = links_;
  }
  for (auto& link : links) link->Stop();
  // Nothing may be torn down while a call's OnDone can still run on a gRPC thread.
  for (auto& link : links) link->AwaitEnded();
  control_.stop();
  thread_.join();
  // What the control loop still holds (the ended calls' last references, timers' waits)
  // goes now, on this thread, while the channels are still there.
  control_.restart();
  tick_.cancel();
  discovery_.cancel();
  for (auto& link : links) link->CancelRetry();
  control_.poll();
}

void WorkerPool::Discover() {
  resolver_->Resolve([this](absl::StatusOr<std::vector<HostPort>> found) {
    if (stopping_.load()) return;
    OnResolved(std::move(found));
    discovery_.expires_after(options_.discovery->interval);
    discovery_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec && !stopping_.load()) Discover();
    });
  });
}

void WorkerPool::OnResolved(absl::StatusOr<std::vector<HostPort>> found) {
  if (!found.ok()) {
    // Keep what we have: a DNS hiccup must not empty the pool.
    discovery_errors_.fetch_add(1, std::memory_order_relaxed);
    if (found.status().message() != last_discovery_error_) {
      last_discovery_error_ = std::string(found.status().message());
      SLUICE_LOG(kWarning, "gateway")
          << "worker discovery: " << found.status() << "; keeping the workers known";
    }
    return;
  }
  last_discovery_error_.clear();
  resolved_.fetch_add(1, std::memory_order_relaxed);
  std::set<std::string> wanted;
  for (const HostPort& address : *found) wanted.insert(address.ToString());
  std::vector<std::shared_ptr<WorkerLink>> added;
  std::vector<std::shared_ptr<WorkerLink>> gone;
  {
    absl::MutexLock lock(&links_mu_);
    std::set<std::string> have;
    for (auto& link : links_) {
      if (link->retired()) continue;
      const std::string address = link->address().ToString();
      if (wanted.contains(address)) {
        have.insert(address);
      } else {
        SLUICE_LOG(kInfo, "gateway")
            << "worker discovery: " << address << " is gone; draining its link";
        link->Retire();
        vanished_.fetch_add(1, std::memory_order_relaxed);
      }
    }
    for (const HostPort& address : *found) {
      const std::string key = address.ToString();
      if (have.contains(key)) continue;
      have.insert(key);
      SLUICE_LOG(kInfo, "gateway") << "worker discovery: linking to " << key;
      added.push_back(std::make_shared<WorkerLink>(address, options_, shards_, control_, traffic_,
                                                   &link_failures_));
      links_.push_back(added.back());
      discovered_.fetch_add(1, std::memory_order_relaxed);
    }
    // Retired links whose call has ended leave; they are destroyed after the tasks already
    // posted to this loop (their calls' last references) have run.
    std::erase_if(links_, [&](const std::shared_ptr<WorkerLink>& link) {
      if (!link->retired() || !link->idle()) return false;
      gone.push_back(link);
      return true;
    });
  }
  for (auto& link : added) link->Connect();
  if (!gone.empty()) boost::asio::post(control_, [gone = std::move(gone)] {});
}

void WorkerPool::ScheduleTick() {
  tick_.expires_after(interval_ / 2);
  tick_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    {
      absl::ReaderMutexLock lock(&links_mu_);
      for (auto& link : links_) link->Tick();
    }
    ScheduleTick();
  });
}

std::shared_ptr<Link> WorkerPool::Pick() {
  return PickWhere([](const LinkCall&) { return true; });
}

std::shared_ptr<Link> WorkerPool::PickFor(std::string_view channel) {
  return PickWhere([channel](const LinkCall& call) { return call.Consumes(channel); });
}

std::vector<std::string> WorkerPool::Channels() {
  std::vector<std::string> channels;
  absl::ReaderMutexLock lock(&links_mu_);
  for (auto& link : links_) {
    auto call = link->admitting_call();
    if (!call) continue;
    for (const std::string& channel : call->channels()) {
      if (std::find(channels.begin(), channels.end(), channel) == channels.end()) {
        channels.push_back(channel);
      }
    }
  }
  return channels;
}

std::shared_ptr<LinkCall> WorkerPool::PickWhere(const std::function<bool(const LinkCall&)>& fits) {
  std::shared_ptr<LinkCall> best;
  int64_t best_free = 0;
  absl::ReaderMutexLock lock(&links_mu_);
  const size_t n = links_.size();
  const size_t start = rotate_.fetch_add(1, std::memory_order_relaxed);
  for (size_t i = 0; i < n; ++i) {
    auto call = links_[(start + i) % n]->admitting_call();
    if (!call || !fits(*call)) continue;
    const int64_t free = call->FreeSlots();
    if (free > best_free) {
      best_free = free;
      best = std::move(call);
    }
  }
  if (best) best->Reserve();
  return best;
}

size_t WorkerPool::queued_bytes() {
  size_t bytes = 0;
  absl::ReaderMutexLock lock(&links_mu_);
  for (auto& link : links_) {
    if (auto call = link->call()) bytes += call->queued_bytes();
  }
  return bytes;
}

size_t WorkerPool::ready_links() {
  size_t n = 0;
  absl::ReaderMutexLock lock(&links_mu_);
  for (auto& link : links_) n += link->admitting_call() != nullptr;
  return n;
}

std::vector<std::string> WorkerPool::addresses() {
  std::vector<std::string> out;
  absl::ReaderMutexLock lock(&links_mu_);
  for (auto& link : links_) {
    if (!link->retired()) out.push_back(link->address().ToString());
  }
  return out;
}

}  // namespace sluice::gateway
