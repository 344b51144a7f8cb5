#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/inbound.h"
#include "common/link_writer.h"
#include "common/metrics.h"
#include "common/outbox.h"
#include "sluice/v1/link.pb.h"
#include "worker/instance.h"

namespace sluice::worker {

class Runtime;

/// The worker's end of one gateway's link, without gRPC: the handshake, admission of each
/// Open (or REJECTED when full or draining), routing of envelopes to instances, and batched
/// output. Each instance lives on one of the runtime's loops: a received Frame is split by
/// loop and handed over with one post per loop; what instances send gathers in a per-loop
/// Outbox and reaches the writer once per turn of that loop. The stream under it (gRPC, or a
/// recorder in tests) is a Wire.
/// Thread-safety: OnFrame/OnWriteDone/OnReadEnded from the stream's callbacks (one at a
/// time); Tick/End/Drain/Abandon from any thread; Enqueue/InstanceEnded on the named loop.
/// Lifetime: shared by its Wire and its instances.
class LinkSession final : public InstanceHost, public std::enable_shared_from_this<LinkSession> {
 public:
  /// The stream a session writes to.
  class Wire {
   public:
    virtual ~Wire() = default;
    virtual void StartWrite(const v1::Frame* frame) = 0;
    /// Ends the stream; called once, when no write is in flight.
    virtual void Finish(const grpc::Status& status) = 0;
  };

  LinkSession(Runtime& runtime, std::string peer, Wire* wire);
  ~LinkSession() override;

  // From the stream.
  /// Everything a received Frame does. A protocol violation ends the stream.
  void OnFrame(const std::shared_ptr<InboundFrame>& inbound);
  void OnWriteDone(bool ok);
  /// The read side has ended (the gateway closed or the stream broke).
  void OnReadEnded() { EndStream(grpc::Status::OK); }
  /// The Wire is gone (gRPC is done with the stream).
  void Detach();
  bool ending() const;
  /// The process's link counters (the reactor counts what it reads).
  LinkTraffic& traffic();

  // From any thread.
  /// A heartbeat when idle; gives up on a silent gateway.
  void Tick();
  /// Ends the stream (the worker is stopping): instances are told their client is gone.
  void End(grpc::Status status) { EndStream(std::move(status)); }
  /// The worker is draining: says so at once (the next Frame is sent now), and drains every
  /// instance (see Instance::Drain).
  void Drain();
  /// After the runtime's loops have stopped: forgets the instances that never ended, so
  /// they and this session (which point at each other) can be freed.
  void Abandon();
  uint32_t active() const { return active_.load(std::memory_order_relaxed); }

  // InstanceHost, on the instance's loop.
  void Enqueue(unsigned loop, v1::Envelope&& envelope) override;
  void InstanceEnded(unsigned loop, uint64_t id, v1::Close::Reason reason,
                     std::string detail) override;

 private:
  struct LoopState {
    std::unordered_map<uint64_t, std::shared_ptr<Instance>> instances;
    Outbox outbox;
  };

  bool HandleHello(const v1::Frame& frame);
  /// On loop `loop`: the envelopes of one Frame for instances there.
  void HandleOnLoop(unsigned loop, const InboundBatch& batch);
  void Reject(uint64_t id, std::string_view why);
  void Flush(unsigned loop);
  void StartWrite();
  /// Stops reading and ends the stream with `status` once no write is in flight.
  void EndStream(grpc::Status status);
  void MaybeFinish();

  Runtime& runtime_;
  const std::string peer_;  // for log lines
  LinkWriter writer_;
  std::vector<LoopState> loops_;  // index: loop; each touched only on its loop's thread
  unsigned next_loop_ = 0;        // round robin for Opens (stream callbacks only)

  // Set from the gateway's Hello before greeted_ (release); Tick reads them after it.
  std::atomic<bool> greeted_ = false;
  std::string gateway_id_;
  v1::Window send_window_;
  std::chrono::milliseconds gateway_heartbeat_{1000};

  std::atomic<int64_t> last_read_ns_;
  std::atomic<uint32_t> active_ = 0;  // instances of this link, for capacity adverts
  GaugeShare link_gauge_;

  mutable absl::Mutex mu_;
  Wire* wire_ ABSL_GUARDED_BY(mu_);
  std::unordered_map<uint64_t, unsigned> routes_ ABSL_GUARDED_BY(mu_);  // connection → loop
  bool ending_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
};

/// The gRPC server reactor under a LinkSession: reads Frames into it, writes what it asks.
/// Lifetime: created per stream by the service, deletes itself in OnDone.
class LinkReactor final : public grpc::ServerBidiReactor<v1::Frame, v1::Frame>,
                          public LinkSession::Wire {
 public:
  LinkReactor(Runtime& runtime, grpc::CallbackServerContext* context);

  void StartWrite(const v1::Frame* frame) override {
    grpc::ServerBidiReactor<v1::Frame, v1::Frame>::StartWrite(frame);
  }
  void Finish(const grpc::Status& status) override {
    grpc::ServerBidiReactor<v1::Frame, v1::Frame>::Finish(status);
  }

 private:
  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override { session_->OnWriteDone(ok); }
  void OnDone() override;

  std::shared_ptr<LinkSession> session_;
  std::shared_ptr<InboundFrame> in_ = std::make_shared<InboundFrame>();  // the read in flight
};

}  // namespace sluice::worker
