#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/link_writer.h"
#include "common/metrics.h"
#include "sluice/v1/link.pb.h"

namespace sluice::worker {

class Instance;
class Runtime;

/// The worker's end of one gateway's link: a gRPC server reactor that answers the handshake,
/// starts an Instance per Open (or rejects it when the worker is full), routes events and
/// credit to instances, and batches what they send. Reactions never block: instances are
/// reached by posting to their strands. Lifetime: owns itself from Connect until OnDone;
/// instances keep it alive (as a dead link) after that.
class LinkSession final : public grpc::ServerBidiReactor<v1::Frame, v1::Frame>,
                          public std::enable_shared_from_this<LinkSession> {
 public:
  static LinkSession* Start(Runtime& runtime, grpc::CallbackServerContext* context);

  // Thread-safe.
  void Enqueue(v1::Envelope&& envelope);
  void InstanceEnded(uint64_t id, v1::Close::Reason reason, std::string detail);
  /// From the runtime's timer: a heartbeat when idle; gives up on a silent gateway.
  void Tick();
  /// Ends the stream (the worker is stopping): instances are told their client is gone.
  void End(grpc::Status status) { EndStream(std::move(status)); }
  /// After the runtime's threads have stopped: forgets the instances that never ended, so
  /// they and this link (which point at each other) can be freed.
  void Abandon();

 private:
  LinkSession(Runtime& runtime, grpc::CallbackServerContext* context);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnDone() override;

  bool HandleHello(const v1::Frame& frame);
  void HandleEnvelope(v1::Envelope& envelope);
  void Open(uint64_t id, v1::Scope&& scope);
  std::shared_ptr<Instance> Find(uint64_t id);
  /// Stops reading and ends the stream with `status` once no write is in flight.
  void EndStream(grpc::Status status);
  void MaybeFinish();

  Runtime& runtime_;
  grpc::CallbackServerContext* const context_;
  const std::string peer_;  // for log lines, readable from any thread
  LinkWriter writer_;
  v1::Frame in_;  // owned by the read in flight
  std::shared_ptr<LinkSession> self_;

  // Set from the gateway's Hello before greeted_ (release); Tick reads them after it.
  std::atomic<bool> greeted_ = false;
  std::string gateway_id_;
  v1::Window send_window_;
  std::chrono::milliseconds gateway_heartbeat_{1000};

  std::atomic<int64_t> last_read_ns_;
  std::atomic<uint32_t> active_ = 0;  // instances of this link, for capacity adverts
  GaugeShare link_gauge_;

  absl::Mutex mu_;
  std::unordered_map<uint64_t, std::shared_ptr<Instance>> instances_ ABSL_GUARDED_BY(mu_);
  bool ending_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sluice::worker
