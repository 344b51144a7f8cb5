#include "worker/link_session.h"

#include <boost/asio/strand.hpp>

#include "common/log.h"
#include "common/process.h"
#include "common/protocol.h"
#include "worker/codec.h"
#include "worker/instance.h"
#include "worker/runtime.h"

namespace sluice::worker {
LinkSession* LinkSession::Start(Runtime& runtime, grpc::CallbackServerContext* context) {
  auto link = std::shared_ptr<LinkSession>(new LinkSession(runtime, context));
  link->self_ = link;
  runtime.AddLink(link);
  link->StartRead(&link->in_);
  return link.get();
}

LinkSession::LinkSession(Runtime& runtime, grpc::CallbackServerContext* context)
    : runtime_(runtime),
      context_(context),
      peer_(context->peer()),
      writer_([this](v1::Frame& frame) {
        v1::Capacity* capacity = frame.mutable_capacity();
        capacity->set_capacity(runtime_.options().capacity);
        capacity->set_active_total(runtime_.active());
        capacity->set_active_link(active_.load(std::memory_order_relaxed));
      }),
      last_read_ns_(MonotonicNanos()),
      link_gauge_(runtime.metrics().links, 1) {}

void LinkSession::Enqueue(v1::Envelope&& envelope) {
  if (writer_.Push(std::move(envelope))) StartWrite(writer_.frame());
}

void LinkSession::InstanceEnded(uint64_t id, v1::Close::Reason reason, std::string detail) {
  {
    absl::MutexLock lock(&mu_);
    instances_.erase(id);
  }
  active_.fetch_sub(1, std::memory_order_relaxed);
  runtime_.Release();
  v1::Envelope envelope;
  envelope.set_connection_id(id);
  envelope.mutable_close()->set_reason(reason);
  envelope.mutable_close()->set_detail(std::move(detail));
  Enqueue(std::move(envelope));
}

void LinkSession::Tick() {
  // Before the Hello the worker's own interval applies: a peer that opens the stream and
  // never speaks does not hold it forever.
  const bool greeted = greeted_.load(std::memory_order_acquire);
  const auto interval = greeted ? gateway_heartbeat_ : runtime_.options().heartbeat_interval;
  if (greeted && writer_.Heartbeat(runtime_.options().heartbeat_interval)) {
    StartWrite(writer_.frame());
  }
  const auto silent = std::chrono::nanoseconds(MonotonicNanos() - last_read_ns_.load());
  if (silent > 4 * interval) {
    SLUICE_LOG(kWarning, "worker")
        << "gateway " << (greeted ? gateway_id_ : "(no Hello yet)") << " at " << peer_
        << " silent for " << std::chrono::duration_cast<std::chrono::milliseconds>(silent).count()
        << " ms; dropping its link";
    EndStream(grpc::Status(grpc::StatusCode::UNAVAILABLE, "heartbeat timeout"));
  }
}

void LinkSession::OnReadDone(bool ok) {
  if (!ok) {
    EndStream(grpc::Status::OK);
    return;
  }
  last_read_ns_.store(MonotonicNanos());
  if (!greeted_) {
    if (!HandleHello(in_)) return;
  }
  for (v1::Envelope& envelope : *in_.mutable_envelopes()) HandleEnvelope(envelope);
  in_.Clear();
  StartRead(&in_);
}

bool LinkSession::HandleHello(const v1::Frame& frame) {
  const Options& options = runtime_.options();
  if (!frame.has_hello() || frame.hello().protocol_version() != kProtocolVersion) {
    runtime_.metrics().protocol_errors.Inc();
    SLUICE_LOG(kError, "worker") << "link refused: no Hello with protocol version "
                                 << kProtocolVersion;
    EndStream(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                           "expected Hello with protocol_version 1"));
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
  if (writer_.PushFrame(std::move(welcome))) StartWrite(writer_.frame());
  return true;
}

void LinkSession::HandleEnvelope(v1::Envelope& envelope) {
  const uint64_t id = envelope.connection_id();
  switch (envelope.body_case()) {
    case v1::Envelope::kOpen:
      Open(id, std::move(*envelope.mutable_open()->mutable_scope()));
      break;
    case v1::Envelope::kEvent:
      // An instance that already ended may still get events that crossed its Close.
      if (auto instance = Find(id)) instance->Deliver(std::move(*envelope.mutable_event()));
      break;
    case v1::Envelope::kCredit:
      if (auto instance = Find(id)) instance->Grant(envelope.credit());
      break;
    default:
      SLUICE_LOG(kWarning, "worker")
          << "ignoring envelope kind " << envelope.body_case() << " from gateway " << gateway_id_;
  }
}

void LinkSession::Open(uint64_t id, v1::Scope&& scope) {
  if (!runtime_.TryAdmit()) {
    runtime_.metrics().rejected.Inc();
    v1::Envelope rejected;
    rejected.set_connection_id(id);
    rejected.mutable_close()->set_reason(v1::Close::REASON_REJECTED);
    rejected.mutable_close()->set_detail("worker at capacity");
    Enqueue(std::move(rejected));
    return;
  }
  auto instance = std::make_shared<Instance>(id, FromProto(std::move(scope)), shared_from_this(),
                                             boost::asio::make_strand(runtime_.io()),
                                             runtime_.options().receive_window, send_window_,
                                             runtime_.options().close_timeout, runtime_.metrics());
  {
    absl::MutexLock lock(&mu_);
    if (ending_) {  // the link is going: the instance would never hear of it
      runtime_.Release();
      return;
    }
    if (!instances_.emplace(id, instance).second) {
      SLUICE_LOG(kError, "worker") << "gateway " << gateway_id_ << " reused connection id " << id
                                   << "; ignoring the second Open";
      runtime_.Release();
      return;
    }
  }
  active_.fetch_add(1, std::memory_order_relaxed);
  runtime_.metrics().instances_started.Inc();
  instance->Start(runtime_.app());
}

std::shared_ptr<Instance> LinkSession::Find(uint64_t id) {
  absl::MutexLock lock(&mu_);
  const auto it = instances_.find(id);
  return it == instances_.end() ? nullptr : it->second;
}

void LinkSession::EndStream(grpc::Status status) {
  // Close the writer first: from here on nothing can start a write, so the Finish that
  // MaybeFinish may issue (here or in a racing OnWriteDone) is the stream's last operation.
  writer_.Close();
  std::unordered_map<uint64_t, std::shared_ptr<Instance>> orphans;
  {
    absl::MutexLock lock(&mu_);
    if (ending_) return;
    ending_ = true;
    status_ = std::move(status);
    orphans = instances_;
  }
  if (greeted_) {
    SLUICE_LOG(kInfo, "worker") << "link down: gateway " << gateway_id_ << ", " << orphans.size()
                                << " connections dropped";
  }
  for (auto& [id, instance] : orphans) instance->LinkLost();
  MaybeFinish();
}

void LinkSession::Abandon() {
  absl::MutexLock lock(&mu_);
  instances_.clear();
}

void LinkSession::MaybeFinish() {
  grpc::Status status;
  {
    absl::MutexLock lock(&mu_);
    if (!ending_ || finished_ || writer_.writing()) return;
    finished_ = true;
    status = status_;
  }
  Finish(status);
}

void LinkSession::OnWriteDone(bool ok) {
  if (!ok) {
    writer_.Close();
    (void)writer_.WriteDone();
    MaybeFinish();  // the read side fails too and ends the stream
    return;
  }
  if (writer_.WriteDone()) {
    StartWrite(writer_.frame());
  } else {
    MaybeFinish();
  }
}

void LinkSession::OnDone() {
  // gRPC is done with this reactor; instances may still hold it as a dead link.
  std::shared_ptr<LinkSession> self = std::move(self_);
}

}  // namespace sluice::worker
