#include "worker/link_session.h"

#include <boost/asio/post.hpp>

#include "common/credit.h"
#include "common/log.h"
#include "common/process.h"
#include "common/protocol.h"
#include "worker/codec.h"
#include "worker/runtime.h"

namespace sluice::worker {
namespace net = boost::asio;

LinkSession::LinkSession(Runtime& runtime, std::string peer, Wire* wire)
    : runtime_(runtime),
      peer_(std::move(peer)),
      writer_(
          [this](v1::Frame& frame) {
            v1::Capacity* capacity = frame.mutable_capacity();
            capacity->set_capacity(runtime_.options().capacity);
            capacity->set_active_total(runtime_.active());
            capacity->set_active_link(active_.load(std::memory_order_relaxed));
            capacity->set_draining(runtime_.draining());
          },
          &runtime.metrics().link),
      loops_(runtime.loops()),
      last_read_ns_(MonotonicNanos()),
      link_gauge_(runtime.metrics().links, 1),
      wire_(wire) {}

LinkSession::~LinkSession() = default;

void LinkSession::Detach() {
  absl::MutexLock lock(&mu_);
  wire_ = nullptr;
}

LinkTraffic& LinkSession::traffic() { return runtime_.metrics().link; }

bool LinkSession::ending() const {
  absl::MutexLock lock(&mu_);
  return ending_;
}

void LinkSession::StartWrite() {
  // A write starts only while the writer is open, and the writer closes before the stream
  // finishes: the Wire is there. Not under mu_: gRPC may run OnWriteDone inline.
  Wire* wire;
  {
    absl::MutexLock lock(&mu_);
    wire = wire_;
  }
  if (wire) wire->StartWrite(writer_.frame());
}

void LinkSession::Enqueue(unsigned loop, v1::Envelope&& envelope) {
  if (loops_[loop].outbox.Add(std::move(envelope))) {
    // The first envelope of this turn: flush after what the loop has queued meanwhile.
    net::post(runtime_.loop(loop), [self = shared_from_this(), loop] { self->Flush(loop); });
  }
}

void LinkSession::Flush(unsigned loop) {
  size_t bytes = 0;
  std::vector<v1::Frame> frames = loops_[loop].outbox.Take(&bytes);
  if (writer_.Push(std::move(frames), bytes)) StartWrite();
}

void LinkSession::InstanceEnded(unsigned loop, uint64_t id, v1::Close::Reason reason,
                                std::string detail) {
  loops_[loop].instances.erase(id);
  {
    absl::MutexLock lock(&mu_);
    routes_.erase(id);
  }
  active_.fetch_sub(1, std::memory_order_relaxed);
  runtime_.Release();
  v1::Envelope envelope;
  envelope.set_connection_id(id);
  envelope.mutable_close()->set_reason(reason);
  envelope.mutable_close()->set_detail(std::move(detail));
  Enqueue(loop, std::move(envelope));
}

void LinkSession::Tick() {
  // Before the Hello the worker's own interval applies: a peer that opens the stream and
  // never speaks does not hold it forever.
  const bool greeted = greeted_.load(std::memory_order_acquire);
  const auto interval = greeted ? gateway_heartbeat_ : runtime_.options().heartbeat_interval;
  if (greeted && writer_.Heartbeat(runtime_.options().heartbeat_interval)) StartWrite();
  const auto silent = std::chrono::nanoseconds(MonotonicNanos() - last_read_ns_.load());
  if (silent > 4 * interval && !ending()) {
    SLUICE_LOG(kWarning, "worker")
        << "gateway " << (greeted ? gateway_id_ : "(no Hello yet)") << " at " << peer_
        << " silent for " << std::chrono::duration_cast<std::chrono::milliseconds>(silent).count()
        << " ms; dropping its link";
    EndStream(grpc::Status(grpc::StatusCode::UNAVAILABLE, "heartbeat timeout"));
  }
}

void LinkSession::OnFrame(const std::shared_ptr<InboundFrame>& inbound) {
  v1::Frame& frame = inbound->frame();
  last_read_ns_.store(MonotonicNanos());
  if (!greeted_.load(std::memory_order_acquire) && !HandleHello(frame)) return;
  if (frame.envelopes_size() == 0) return;
  std::vector<InboundBatch> batches(loops_.size());
  std::vector<std::pair<uint64_t, const char*>> rejected;
  {
    absl::MutexLock lock(&mu_);
    if (ending_) return;
    for (v1::Envelope& envelope : *frame.mutable_envelopes()) {
      const uint64_t id = envelope.connection_id();
      unsigned loop;
      if (envelope.has_open()) {
        if (runtime_.draining()) {
          rejected.emplace_back(id, "worker draining");
          continue;
        }
        if (!runtime_.TryAdmit()) {
          rejected.emplace_back(id, "worker at capacity");
          continue;
        }
        if (!routes_.emplace(id, next_loop_).second) {
          SLUICE_LOG(kError, "worker") << "gateway " << gateway_id_ << " reused connection id "
                                       << id << "; ignoring the second Open";
          runtime_.metrics().protocol_errors.Inc();
          runtime_.Release();
          continue;
        }
        loop = next_loop_;
        next_loop_ = (next_loop_ + 1) % loops_.size();
        active_.fetch_add(1, std::memory_order_relaxed);
      } else {
        const auto it = routes_.find(id);
        if (it == routes_.end()) continue;  // its instance ended; this crossed its Close
        loop = it->second;
      }
      batches[loop].envelopes.push_back(&envelope);
    }
  }
  for (const auto& [id, why] : rejected) Reject(id, why);
  for (unsigned loop = 0; loop < batches.size(); ++loop) {
    if (batches[loop].envelopes.empty()) continue;
    batches[loop].frame = inbound;
    net::post(runtime_.loop(loop),
              [self = shared_from_this(), loop, batch = std::move(batches[loop])] {
                self->HandleOnLoop(loop, batch);
              });
  }
}

void LinkSession::HandleOnLoop(unsigned loop, const InboundBatch& batch) {
  LoopState& state = loops_[loop];
  const Options& options = runtime_.options();
  for (v1::Envelope* pointer : batch.envelopes) {
    v1::Envelope& envelope = *pointer;
    const uint64_t id = envelope.connection_id();
    std::shared_ptr<Instance> instance;
    if (envelope.has_open()) {
      v1::Open& open = *envelope.mutable_open();
      instance = std::make_shared<Instance>(
          id, FromProto(std::move(*open.mutable_scope())), std::move(*open.mutable_channel_name()),
          shared_from_this(), loop, runtime_.loop(loop), options.receive_window, send_window_,
          options.close_timeout, runtime_.metrics());
      state.instances.emplace(id, instance);
      runtime_.metrics().instances_started.Inc();
      if (ending()) instance->LinkLost();
      instance->Start(runtime_.app());
    } else {
      const auto it = state.instances.find(id);
      if (it == state.instances.end()) continue;
      instance = it->second;
    }
    if (envelope.has_credit()) instance->Grant(envelope.credit());
    for (const v1::LayerResult& result : envelope.layer_results()) instance->OnLayerResult(result);
    uint64_t seq = envelope.seq();
    for (v1::Event& event : *envelope.mutable_events()) {
      const bool numbered = seq != 0 && Numbered(event);
      instance->Deliver(std::move(event), numbered ? seq++ : 0);
    }
  }
}

void LinkSession::Reject(uint64_t id, std::string_view why) {
  runtime_.metrics().rejected.Inc();
  v1::Envelope rejected;
  rejected.set_connection_id(id);
  rejected.mutable_close()->set_reason(v1::Close::REASON_REJECTED);
  rejected.mutable_close()->set_detail(std::string(why));
  if (writer_.Push(std::move(rejected))) StartWrite();
}

bool LinkSession::HandleHello(const v1::Frame& frame) {
  const Options& options = runtime_.options();
  if (!frame.has_hello() || frame.hello().protocol_version() != kProtocolVersion) {
    runtime_.metrics().protocol_errors.Inc();
    SLUICE_LOG(kError, "worker") << "link refused: no Hello with protocol version "
                                 << kProtocolVersion;
    EndStream(
        grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                     "expected Hello with protocol_version " + std::to_string(kProtocolVersion)));
    return false;
  }
  gateway_id_ = frame.hello().gateway_id();
  send_window_ = frame.hello().receive_window();
  if (frame.hello().heartbeat_interval_ms() > 0) {
    gateway_heartbeat_ = std::chrono::milliseconds(frame.hello().heartbeat_interval_ms());
  }
  greeted_.store(true, std::memory_order_release);
  SLUICE_LOG(kInfo, "worker") << "link up: gateway " << gateway_id_ << " from " << peer_;
  v1::Frame welcome;
  v1::Welcome* w = welcome.mutable_welcome();
  w->set_protocol_version(kProtocolVersion);
  w->set_worker_id(options.worker_id);
  w->set_capacity(options.capacity);
  *w->mutable_receive_window() = options.receive_window;
  w->set_heartbeat_interval_ms(static_cast<uint32_t>(options.heartbeat_interval.count()));
  for (std::string& channel : runtime_.app().Channels()) w->add_channels(std::move(channel));
  if (writer_.PushFrame(std::move(welcome))) StartWrite();
  return true;
}

void LinkSession::Drain() {
  // Gateways learn at once: a Frame goes out now if none is being written (the next one
  // carries the draining flag otherwise).
  if (writer_.Heartbeat(std::chrono::steady_clock::duration::zero())) StartWrite();
  for (unsigned loop = 0; loop < loops_.size(); ++loop) {
    net::post(runtime_.loop(loop), [self = shared_from_this(), loop] {
      // Copied: a drained instance may end (and leave the table) at once.
      std::vector<std::shared_ptr<Instance>> instances;
      for (auto& [id, instance] : self->loops_[loop].instances) instances.push_back(instance);
      for (auto& instance : instances) instance->Drain();
    });
  }
}

void LinkSession::EndStream(grpc::Status status) {
  // Close the writer first: from here on nothing can start a write, so the Finish that
  // MaybeFinish may issue (here or in a racing OnWriteDone) is the stream's last operation.
  writer_.Close();
  {
    absl::MutexLock lock(&mu_);
    if (ending_) return;
    ending_ = true;
    status_ = std::move(status);
  }
  if (greeted_.load()) {
    SLUICE_LOG(kInfo, "worker") << "link down: gateway " << gateway_id_ << ", " << active_.load()
                                << " connections dropped";
  }
  for (unsigned loop = 0; loop < loops_.size(); ++loop) {
    net::post(runtime_.loop(loop), [self = shared_from_this(), loop] {
      std::vector<std::shared_ptr<Instance>> instances;
      for (auto& [id, instance] : self->loops_[loop].instances) instances.push_back(instance);
      for (auto& instance : instances) instance->LinkLost();
    });
  }
  MaybeFinish();
}

void LinkSession::Abandon() {
  for (LoopState& state : loops_) state.instances.clear();
}

void LinkSession::MaybeFinish() {
  grpc::Status status;
  Wire* wire;
  {
    absl::MutexLock lock(&mu_);
    if (!ending_ || finished_ || writer_.writing() || !wire_) return;
    finished_ = true;
    status = status_;
    wire = wire_;
  }
  wire->Finish(status);
}

void LinkSession::OnWriteDone(bool ok) {
  if (!ok) {
    writer_.Close();
    (void)writer_.WriteDone();
    MaybeFinish();  // the read side fails too and ends the stream
    return;
  }
  if (writer_.WriteDone()) {
    StartWrite();
  } else {
    MaybeFinish();
  }
}

// ---- LinkReactor ---------------------------------------------------------------------------

LinkReactor::LinkReactor(Runtime& runtime, grpc::CallbackServerContext* context)
    : session_(std::make_shared<LinkSession>(runtime, context->peer(), this)) {
  runtime.AddLink(session_);
  StartRead(&in_->frame());
}

void LinkReactor::OnReadDone(bool ok) {
  if (!ok) return session_->OnReadEnded();
  // The next read gets a fresh Frame; this one goes to the loops, which free it.
  const std::shared_ptr<InboundFrame> frame = std::exchange(in_, std::make_shared<InboundFrame>());
  LinkTraffic& traffic = session_->traffic();
  traffic.frames_received.Inc();
  traffic.envelopes_received.Inc(static_cast<uint64_t>(frame->frame().envelopes_size()));
  session_->OnFrame(frame);
  if (!session_->ending()) StartRead(&in_->frame());
}

void LinkReactor::OnDone() {
  session_->Detach();
  delete this;
}

}  // namespace sluice::worker
