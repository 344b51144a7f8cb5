#include "worker/instance.h"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <stdexcept>
#include <utility>

#include "common/log.h"
#include "common/protocol.h"
#include "common/text.h"
#include "worker/codec.h"
#include "worker/watchdog.h"

namespace sluice::worker {
namespace net = boost::asio;

static_assert(kMaxStateBytes == kMaxSavedStateBytes, "the SDK's limit is the link's");

namespace {

void CheckHeaders(const Headers& headers) {
  for (const auto& [name, value] : headers) {
    if (!ValidHeaderField(name, value)) throw std::invalid_argument("invalid header: " + name);
  }
}

// How log lines name an instance: "consumer for /path (connection 7, request 3f2a…)"; the
// request id is there when RequestIdMiddleware gave it one.
std::string Describe(const Scope& scope, uint64_t id) {
  std::string out = "consumer for " + scope.path + " (connection " + std::to_string(id);
  if (!scope.request_id.empty()) out += ", request " + scope.request_id;
  return out + ")";
}

bool IsDisconnect(const Event& event) {
  return std::holds_alternative<HttpDisconnect>(event) ||
         std::holds_alternative<WebSocketDisconnect>(event);
}

}  // namespace

Instance::Instance(uint64_t id, Scope scope, std::string channel_name,
                   std::shared_ptr<InstanceHost> host, unsigned loop, net::io_context& io,
                   const v1::Window& receive_window, const v1::Window& send_window,
                   std::chrono::milliseconds close_timeout, Metrics& metrics)
    : id_(id),
      scope_(std::move(scope)),
      channel_name_(std::move(channel_name)),
      host_(std::move(host)),
      loop_(loop),
      io_(io),
      wake_(io, net::steady_timer::time_point::max()),
      inbox_(receive_window.events() + 1),  // + the one disconnect
      close_timeout_(close_timeout),
      metrics_(metrics),
      inbox_bytes_(metrics.queued_bytes),
      receive_window_(receive_window),
      send_credit_(send_window) {}

void Instance::Start(Application& app) {
  net::co_spawn(io_, Main(app),
                net::bind_cancellation_slot(
                    cancel_.slot(), [self = shared_from_this()](const std::exception_ptr&) {}));
}

Task<void> Instance::Main(Application& app) {
  v1::Close::Reason reason = v1::Close::REASON_DONE;
  std::string detail;
  NoteRunning();
  try {
    std::unique_ptr<Consumer> consumer = app.Create(scope_);
    consumer->Bind(&scope_, this);
    co_await consumer->Run();
  } catch (const HandedOver&) {
    reason = v1::Close::REASON_MOVED;  // the gateway moves the connection
    metrics_.handed_over.Inc();
  } catch (const Disconnected&) {
    // The client left; nothing to report.
  } catch (const std::exception& e) {
    reason = v1::Close::REASON_APP_ERROR;
    detail = e.what();
  } catch (...) {
    reason = v1::Close::REASON_APP_ERROR;
    detail = "an exception not derived from std::exception";
  }
  NoteRunning();  // names this consumer if it blocked its loop
  ended_ = true;
  close_timer_.reset();
  if (cancelled_) {  // whatever it threw, it was our cancellation that ended it
    reason = v1::Close::REASON_DONE;
    detail = "cancelled: no return within the close timeout";
  }
  if (reason == v1::Close::REASON_APP_ERROR) {
    metrics_.app_errors.Inc();
    SLUICE_LOG(kError, "worker") << Describe(scope_, id_) << " failed: " << detail;
  }
  inbox_.clear();
  inbox_bytes_.Sub(inbox_bytes_.held());
  host_->InstanceEnded(loop_, id_, reason, std::move(detail));
}

void Instance::Deliver(v1::Event&& event, uint64_t seq) {
  if (gone_ || ended_) return;  // after a disconnect nothing else is delivered
  const size_t bytes = EventBytes(event);
  if (SpendsCredit(event) && !receive_window_.OnReceived(bytes)) {
    metrics_.protocol_errors.Inc();
    SLUICE_LOG(kError, "worker") << "gateway overran the credit of connection " << id_
                                 << "; disconnecting it";
    return PushDisconnect(ws_close::kAbnormal);
  }
  auto converted = FromProto(std::move(event));
  if (!converted.ok()) {
    metrics_.protocol_errors.Inc();
    SLUICE_LOG(kError, "worker") << "connection " << id_ << ": " << converted.status();
    return PushDisconnect(ws_close::kAbnormal);
  }
  gone_ = IsDisconnect(*converted);
  if (std::holds_alternative<WebSocketResume>(*converted)) {
    started_ = true;  // accepted by its predecessor
    metrics_.resumed.Inc();
  }
  if (!inbox_.push(Inbound{*std::move(converted), bytes, seq})) {  // cannot happen within credit
    metrics_.protocol_errors.Inc();
    gone_ = false;
    return PushDisconnect(ws_close::kAbnormal);
  }
  inbox_bytes_.Add(static_cast<int64_t>(bytes));
  Wake();
  if (gone_) ArmCloseTimeout();
}

void Instance::PushDisconnect(int code) {
  if (gone_ || ended_) return;
  gone_ = true;
  // The inbox always has room for the disconnect: its capacity is the window plus one.
  if (scope_.type == Scope::Type::kWebSocket) {
    (void)inbox_.push(Inbound{WebSocketDisconnect{code, {}}, 0, 0});
  } else {
    (void)inbox_.push(Inbound{HttpDisconnect{}, 0, 0});
  }
  Wake();
  ArmCloseTimeout();
}

void Instance::ArmCloseTimeout() {
  if (ended_ || close_timer_) return;
  close_timer_ = std::make_unique<net::steady_timer>(io_, close_timeout_);
  close_timer_->async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (ec || self->ended_) return;
    self->metrics_.close_timeouts.Inc();
    SLUICE_LOG(kWarning, "worker")
        << Describe(self->scope_, self->id_) << " did not return within "
        << self->close_timeout_.count() << " ms of its disconnect; cancelling it";
    self->cancelled_ = true;
    self->cancel_.emit(net::cancellation_type::terminal);
  });
}

void Instance::Grant(const v1::Window& credit) {
  send_credit_.Grant(credit);
  Wake();
}

void Instance::LinkLost() { PushDisconnect(ws_close::kAbnormal); }

void Instance::Drain() {
  if (ended_ || gone_ || finished_ || scope_.type != Scope::Type::kWebSocket) return;
  handing_over_ = true;
  Wake();  // a consumer waiting in Receive hands over now
}

void Instance::CheckHandOver() {
  if (!handing_over_ || gone_) return;  // a client that left gets its disconnect instead
  handed_over_ = true;
  throw HandedOver("the worker is draining; the connection moves to another worker");
}

void Instance::Finish() {
  if (unfinished_ == 0) return;
  v1::Envelope envelope;
  // Usually one event; more when several coroutines take events at once.
  for (uint64_t bytes = std::exchange(unfinished_bytes_, 0); unfinished_ > 0; --unfinished_) {
    if (auto grant = receive_window_.OnConsumed(std::exchange(bytes, 0))) {
      v1::Window* credit = envelope.mutable_credit();
      credit->set_events(credit->events() + grant->events());
      credit->set_bytes(credit->bytes() + grant->bytes());
    }
  }
  if (envelope.has_credit() || taken_seq_ > acked_) SendAcked(std::move(envelope));
}

void Instance::SendAcked(v1::Envelope&& envelope) {
  envelope.set_connection_id(id_);
  if (taken_seq_ > acked_) {
    acked_ = taken_seq_;
    envelope.set_acked(acked_);
  }
  host_->Enqueue(loop_, std::move(envelope));
}

void Instance::SaveState(std::string state) {
  if (scope_.type != Scope::Type::kWebSocket) {
    throw std::logic_error("SaveState: only a WebSocket's consumer saves state");
  }
  if (state.size() > kMaxStateBytes) {
    throw std::length_error("SaveState: " + std::to_string(state.size()) + " bytes, over " +
                            std::to_string(kMaxStateBytes));
  }
  if (gone_ || handed_over_ || ended_) return;  // the gateway has forgotten the connection
  metrics_.states_saved.Inc();
  v1::Envelope envelope;
  envelope.mutable_state()->set_data(std::move(state));
  SendAcked(std::move(envelope));
}

Task<Event> Instance::Receive() {
  Finish();
  for (;;) {
    CheckHandOver();
    if (!inbox_.empty()) break;
    if (disconnect_received_ || cancelled_) throw Disconnected("receive after disconnect");
    if (scope_.type == Scope::Type::kHttp && finished_) {
      // ASGI: once the response is sent, receive() reports the end of the connection.
      disconnect_received_ = true;
      co_return HttpDisconnect{};
    }
    co_await wake_.async_wait(net::as_tuple(net::use_awaitable));
  }
  NoteRunning();
  co_return Take();
}

Task<std::optional<Event>> Instance::ReceiveUntil(std::chrono::steady_clock::time_point deadline) {
  // A timer of its own wakes every waiter at the deadline; each re-checks.
  net::steady_timer timer(io_, deadline);
  bool expired = false;
  timer.async_wait([this, &expired](const boost::system::error_code& ec) {
    if (ec) return;
    expired = true;
    Wake();
  });
  Finish();
  for (;;) {
    CheckHandOver();
    if (!inbox_.empty()) break;
    if (disconnect_received_ || cancelled_) throw Disconnected("receive after disconnect");
    if (scope_.type == Scope::Type::kHttp && finished_) {
      disconnect_received_ = true;
      co_return HttpDisconnect{};
    }
    if (expired || std::chrono::steady_clock::now() >= deadline) co_return std::nullopt;
    co_await wake_.async_wait(net::as_tuple(net::use_awaitable));
  }
  NoteRunning();
  co_return Take();
}

Event Instance::Take() {
  Inbound inbound = inbox_.take();
  if (IsDisconnect(inbound.event)) {
    disconnect_received_ = true;
  } else {
    inbox_bytes_.Sub(static_cast<int64_t>(inbound.bytes));
    // Its credit goes back, and it is acknowledged, once the consumer has finished with it.
    ++unfinished_;
    unfinished_bytes_ += inbound.bytes;
    if (inbound.seq != 0) taken_seq_ = inbound.seq;
  }
  return std::move(inbound.event);
}

Task<void> Instance::Layer(LayerCall call) {
  if (handed_over_) throw HandedOver("layer call after the connection was handed over");
  const auto gone = [&] {
    // The gateway left the connection's groups when it forgot it.
    if (call.kind == LayerCall::Kind::kGroupDiscard) return;
    throw Disconnected("channel-layer call after the client left");
  };
  if (layer_calls_.size() >= kMaxLayerOps) metrics_.layer_stalls.Inc();
  while (!gone_ && !cancelled_ && layer_calls_.size() >= kMaxLayerOps) {
    co_await wake_.async_wait(net::as_tuple(net::use_awaitable));
  }
  if (gone_ || cancelled_) {
    gone();
    co_return;
  }
  const uint64_t op_id = ++next_op_;
  v1::Envelope envelope;
  envelope.set_connection_id(id_);
  v1::LayerOp* op = envelope.add_layer_ops();
  op->set_op_id(op_id);
  switch (call.kind) {
    case LayerCall::Kind::kSend:
      op->mutable_send()->set_channel(std::move(call.target));
      op->mutable_send()->set_message(std::move(call.message));
      break;
    case LayerCall::Kind::kGroupAdd:
      op->mutable_group_add()->set_group(std::move(call.target));
      break;
    case LayerCall::Kind::kGroupDiscard:
      op->mutable_group_discard()->set_group(std::move(call.target));
      break;
    case LayerCall::Kind::kGroupSend:
      op->mutable_group_send()->set_group(std::move(call.target));
      op->mutable_group_send()->set_message(std::move(call.message));
      break;
  }
  layer_calls_.emplace(op_id, std::nullopt);
  metrics_.layer_calls.Inc();
  host_->Enqueue(loop_, std::move(envelope));
  for (;;) {
    const auto it = layer_calls_.find(op_id);
    if (it->second) break;
    if (gone_ || cancelled_) {
      layer_calls_.erase(it);
      Wake();  // a call waiting for room may go (and find the client gone too)
      gone();
      co_return;
    }
    co_await wake_.async_wait(net::as_tuple(net::use_awaitable));
  }
  NoteRunning();
  const auto it = layer_calls_.find(op_id);
  const v1::LayerResult::Status status = *it->second;
  layer_calls_.erase(it);
  Wake();  // room for a call waiting at the bound
  switch (status) {
    case v1::LayerResult::STATUS_OK:
      co_return;
    case v1::LayerResult::STATUS_CHANNEL_FULL:
      throw ChannelFull("channel layer: channel full");
    case v1::LayerResult::STATUS_TOO_LARGE:
      throw MessageTooLarge("channel layer: message too large");
    case v1::LayerResult::STATUS_UNAVAILABLE:
      throw LayerUnavailable("channel layer unavailable");
    default:
      throw InvalidLayerCall("channel layer: invalid call (a bad name or message)");
  }
}

void Instance::OnLayerResult(const v1::LayerResult& result) {
  const auto it = layer_calls_.find(result.op_id());
  if (it == layer_calls_.end() || it->second) return;  // its caller gave up (client gone)
  it->second = result.status();
  Wake();
}

void Instance::NoteRunning() {
  LoopWatchdog::Watch* watch = LoopWatchdog::Current();
  if (watch == nullptr) return;
  // This instance's token: unique among live instances (ids are per gateway).
  const auto token = reinterpret_cast<uintptr_t>(this);
  if (watch->stalled.load(std::memory_order_relaxed) == token) {
    watch->stalled.store(0, std::memory_order_relaxed);
    SLUICE_LOG(kWarning, "worker") << Describe(scope_, id_)
                                   << " was the last to run before its event loop was blocked "
                                      "past the watchdog threshold";
  }
  watch->running.store(token, std::memory_order_relaxed);
}

void Instance::Unhandled(const LayerMessage& message) {
  metrics_.layer_unhandled.Inc();
  const auto type = message.message.find("type");
  SLUICE_LOG(kWarning, "worker") << Describe(scope_, id_)
                                 << " has no handler for channel-layer message type "
                                 << (type != message.message.end() ? type->dump() : "(none)")
                                 << "; dropped";
}

void Instance::Check(const Event& event) const {
  const bool http = scope_.type == Scope::Type::kHttp;
  const auto fail = [&](std::string_view why) {
    throw std::logic_error(std::string(TypeName(event)) + ": " + std::string(why));
  };
  if (scope_.type == Scope::Type::kChannel) fail("a background-channel consumer has no client");
  if (finished_) fail("the response or connection has already ended");
  if (const auto* start = std::get_if<HttpResponseStart>(&event)) {
    if (!http) fail("not an HTTP connection");
    if (started_) fail("response already started");
    if (start->status < 200 || start->status > 999) fail("status out of range (200-999)");
    CheckHeaders(start->headers);
  } else if (std::holds_alternative<HttpResponseBody>(event)) {
    if (!http) fail("not an HTTP connection");
    if (!started_) fail("no http.response.start yet");
  } else if (const auto* accept = std::get_if<WebSocketAccept>(&event)) {
    if (http) fail("not a WebSocket");
    if (started_) fail("already accepted");
    if (!accept->subprotocol.empty() &&
        std::find(scope_.subprotocols.begin(), scope_.subprotocols.end(), accept->subprotocol) ==
            scope_.subprotocols.end()) {
      fail("subprotocol was not offered by the client");
    }
    CheckHeaders(accept->headers);
  } else if (const auto* message = std::get_if<WebSocketSend>(&event)) {
    if (http) fail("not a WebSocket");
    if (!started_) fail("not accepted yet");
    if (!message->binary && !IsValidUtf8(message->data)) fail("text is not valid UTF-8");
  } else if (const auto* close = std::get_if<WebSocketClose>(&event)) {
    if (http) fail("not a WebSocket");
    if (!SendableCloseCode(close->code)) fail("close code may not be sent (RFC 6455 7.4)");
    if (close->reason.size() > 123 || !IsValidUtf8(close->reason)) fail("bad close reason");
  } else {
    fail("applications do not send this event");
  }
}

Task<void> Instance::Send(Event event) {
  if (handed_over_) throw HandedOver("send after the connection was handed over");
  Check(event);
  if (!gone_ && !send_credit_.CanSend()) metrics_.send_stalls.Inc();
  while (!gone_ && !send_credit_.CanSend()) {
    if (cancelled_) throw Disconnected("cancelled");
    co_await wake_.async_wait(net::as_tuple(net::use_awaitable));
  }
  NoteRunning();
  if (gone_) throw Disconnected("client disconnected");
  Check(event);  // another coroutine may have finished the connection while this one waited
  if (const auto* body = std::get_if<HttpResponseBody>(&event)) {
    finished_ = !body->more_body;
  } else if (std::holds_alternative<WebSocketClose>(event)) {
    finished_ = true;
  } else {
    started_ = started_ || std::holds_alternative<HttpResponseStart>(event) ||
               std::holds_alternative<WebSocketAccept>(event);
  }
  v1::Event proto = ToProto(std::move(event));
  send_credit_.Spend(EventBytes(proto));
  Emit(std::move(proto));
  if (finished_) Wake();  // a coroutine waiting in Receive() learns the connection is over
}

void Instance::Emit(v1::Event&& event) {
  v1::Envelope envelope;
  envelope.set_connection_id(id_);
  envelope.add_events()->Swap(&event);
  host_->Enqueue(loop_, std::move(envelope));
}

}  // namespace sluice::worker
