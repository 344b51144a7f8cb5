#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/host_port.h"
#include "common/inbound.h"
#include "common/link_writer.h"
#include "common/outbox.h"
#include "gateway/link.h"
#include "gateway/options.h"
#include "sluice/v1/link.grpc.pb.h"

namespace sluice::gateway {

class Shard;
class WorkerLink;

/// One link stream to one worker (a gRPC client reactor): the handshake, batched writes,
/// demultiplexing received Frames to shards (one post per shard per Frame), heartbeats, and
/// the worker's load as last advertised. A new LinkCall is made for each (re)connection.
/// Sessions send through a per-shard Outbox: a shard's envelopes of one turn of its loop
/// reach the writer as one batch, and envelopes of one connection are merged.
/// Thread-safety: Send from the named shard's thread; the rest from any thread.
/// Lifetime: keeps itself alive until OnDone; connections hold it while they use it.
class LinkCall final : public Link,
                       public grpc::ClientBidiReactor<v1::Frame, v1::Frame>,
                       public std::enable_shared_from_this<LinkCall> {
 public:
  LinkCall(WorkerLink& owner, const Options& options, std::vector<Shard*> shards);
  void Start(v1::Link::Stub& stub);

  bool Send(uint16_t shard, v1::Envelope&& envelope) override;
  const v1::Window& worker_window() const override { return worker_window_; }
  uint64_t generation() const override { return generation_; }

  /// Everything a received Frame does: the Welcome, the worker's load, the envelopes
  /// handed to their shards. False when the link must be dropped (no Welcome first).
  bool OnFrame(const std::shared_ptr<InboundFrame>& inbound);
  void Tick();
  void Cancel() { context_.TryCancel(); }

  /// The worker welcomed us and is not draining: it may get new connections.
  bool admitting() const {
    return ready_.load(std::memory_order_acquire) && !draining_.load(std::memory_order_relaxed);
  }
  bool ready() const { return ready_.load(std::memory_order_acquire); }
  /// Free slots the worker should still have, as far as this gateway knows.
  int64_t FreeSlots() const;
  /// Counts a connection this gateway is about to open on the worker.
  void Reserve() { assigned_.fetch_add(1, std::memory_order_relaxed); }
  const std::string& worker_id() const { return worker_id_; }
  /// The named channels the worker consumes (from its Welcome; valid once ready()).
  const std::vector<std::string>& channels() const { return channels_; }
  bool Consumes(std::string_view channel) const;
  size_t queued_bytes() const { return writer_.queued_bytes(); }

 private:
  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;
  bool HandleWelcome(const v1::Frame& frame);
  void Flush(uint16_t shard);
  /// No read is outstanding any more: the stream is ending.
  void EndRead();
  void MaybeRemoveHold();

  WorkerLink& owner_;
  const Options& options_;
  const std::vector<Shard*> shards_;
  const uint64_t generation_;
  grpc::ClientContext context_;
  LinkWriter writer_;
  std::vector<Outbox> outboxes_;      // one per shard, touched only on its thread
  std::shared_ptr<InboundFrame> in_;  // owned by the read in flight
  std::shared_ptr<LinkCall> self_;
  std::atomic<bool> read_ended_ = false;
  std::atomic<bool> hold_removed_ = false;
  std::atomic<int64_t> last_read_ns_;

  // Set from the Welcome, before ready_ (release).
  std::string worker_id_;
  v1::Window worker_window_;
  std::chrono::milliseconds worker_heartbeat_{1000};
  std::vector<std::string> channels_;
  std::atomic<bool> ready_ = false;

  std::atomic<bool> draining_ = false;
  std::atomic<int64_t> capacity_ = 0;
  std::atomic<int64_t> assigned_ = 0;   // our connections with an instance (or an Open) there
  std::atomic<int64_t> elsewhere_ = 0;  // the worker's instances for other gateways
};

/// The gateway's relationship with one worker address: a gRPC channel and the current
/// LinkCall, re-made with backoff (100 ms doubling to 2 s) whenever it ends.
/// Thread-safety: all methods from any thread.
class WorkerLink final {
 public:
  /// `traffic` (optional) counts what its calls carry; `failures` (optional) the calls that
  /// ended before the worker's Welcome (unreachable, refused, a TLS handshake that failed).
  WorkerLink(HostPort address, const Options& options, std::vector<Shard*> shards,
             boost::asio::io_context& control, LinkTraffic* traffic = nullptr,
             std::atomic<uint64_t>* failures = nullptr);
  void Connect();
  /// The current call if it takes new connections.
  std::shared_ptr<LinkCall> admitting_call();
  std::shared_ptr<LinkCall> call();
  void Tick();
  /// Ends the current call and stops reconnecting.
  void Stop();
  /// The address left discovery: no new connections and no reconnecting; the current call
  /// serves the connections it has until it ends (the worker drains or goes away).
  void Retire();
  bool retired() const {
    absl::MutexLock lock(&mu_);
    return retired_;
  }
  /// No call is running (nothing of gRPC's refers to this link any more).
  bool idle() const {
    absl::MutexLock lock(&mu_);
    return call_ == nullptr;
  }
  /// A pending reconnect wait ends (control loop stopped; the calling thread owns it).
  void CancelRetry();
  /// After Stop: waits until the call has finished (its OnDone ran). gRPC always finishes
  /// a cancelled call; nothing the call touches may be torn down before.
  void AwaitEnded();
  const HostPort& address() const { return address_; }
  LinkTraffic* traffic() const { return traffic_; }

 private:
  friend class LinkCall;
  void CallEnded(LinkCall* call, std::shared_ptr<LinkCall> self, const grpc::Status& status,
                 bool was_ready);
  bool ended() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return call_ == nullptr; }

  const HostPort address_;
  const Options& options_;
  const std::vector<Shard*> shards_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Link::Stub> stub_;
  LinkTraffic* const traffic_;
  std::atomic<uint64_t>* const failures_;
  boost::asio::steady_timer retry_;
  mutable absl::Mutex mu_;
  std::shared_ptr<LinkCall> call_ ABSL_GUARDED_BY(mu_);
  std::chrono::milliseconds backoff_ ABSL_GUARDED_BY(mu_){100};
  std::minstd_rand jitter_ ABSL_GUARDED_BY(mu_){std::random_device{}()};
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  bool retired_ ABSL_GUARDED_BY(mu_) = false;
  std::string last_failure_ ABSL_GUARDED_BY(mu_);  // logged once until it changes
};

/// Where discovered worker addresses come from (Options::discovery): DNS by default, a fake
/// in tests.
class WorkerResolver {
 public:
  using Done = std::function<void(absl::StatusOr<std::vector<HostPort>>)>;
  virtual ~WorkerResolver() = default;
  /// Resolves once; `done` runs on the pool's control loop.
  virtual void Resolve(Done done) = 0;
};

/// All workers this gateway links to, and admission: Pick() returns the ready link with the
/// most free slots (ties rotate), or null when none has room — the caller answers 503.
/// Its timers (heartbeat ticks, reconnect backoff) run on a control loop of its own, so the
/// shards can be torn down before it.
/// Thread-safety: all methods from any thread.
class WorkerPool final : public LinkPicker {
 public:
  /// `resolver` replaces DNS for Options::discovery (tests); it runs on control().
  WorkerPool(const Options& options, const std::vector<Shard*>& shards,
             LinkTraffic* traffic = nullptr,
             const std::function<std::unique_ptr<WorkerResolver>(boost::asio::io_context&)>&
                 resolver = nullptr);
  ~WorkerPool() override;
  void Start();
  /// Ends every link, waits until gRPC is done with each, and stops the control loop (the
  /// link calls' last references it held are let go here, on the calling thread).
  void Stop();
  std::shared_ptr<Link> Pick() override;
  std::shared_ptr<Link> PickFor(std::string_view channel) override;
  std::vector<std::string> Channels() override;
  size_t ready_links();
  size_t queued_bytes();
  /// The addresses linked to and taking connections (not retired).
  std::vector<std::string> addresses();
  /// Discovery: resolutions that succeeded and failed, addresses added and removed.
  uint64_t resolved() const { return resolved_.load(std::memory_order_relaxed); }
  uint64_t discovered() const { return discovered_.load(std::memory_order_relaxed); }
  uint64_t vanished() const { return vanished_.load(std::memory_order_relaxed); }
  uint64_t discovery_errors() const { return discovery_errors_.load(std::memory_order_relaxed); }
  /// Link calls that ended before the worker's Welcome.
  uint64_t link_failures() const { return link_failures_.load(std::memory_order_relaxed); }

 private:
  void ScheduleTick();
  void Discover();
  void OnResolved(absl::StatusOr<std::vector<HostPort>> found);
  /// The admitting link with the most free slots that `fits`, its slot reserved.
  std::shared_ptr<LinkCall> PickWhere(const std::function<bool(const LinkCall&)>& fits);

  boost::asio::io_context control_{1};  // first in, last out: the links' timers live on it
  const Options& options_;
  const std::vector<Shard*> shards_;
  LinkTraffic* const traffic_;
  // Read by every Pick; written by discovery (on the control loop). A link leaves the list
  // only once idle, and is destroyed on the control loop after its call's last references.
  absl::Mutex links_mu_;
  std::vector<std::shared_ptr<WorkerLink>> links_ ABSL_GUARDED_BY(links_mu_);
  boost::asio::steady_timer tick_;
  const std::chrono::milliseconds interval_;
  std::unique_ptr<WorkerResolver> resolver_;
  boost::asio::steady_timer discovery_;
  std::atomic<bool> stopping_ = false;
  std::string last_discovery_error_;  // the control loop's: logs a failure once
  std::atomic<uint64_t> resolved_ = 0;
  std::atomic<uint64_t> discovered_ = 0;
  std::atomic<uint64_t> vanished_ = 0;
  std::atomic<uint64_t> discovery_errors_ = 0;
  std::atomic<uint64_t> link_failures_ = 0;
  std::atomic<size_t> rotate_ = 0;
  std::thread thread_;
};

}  // namespace sluice::gateway
