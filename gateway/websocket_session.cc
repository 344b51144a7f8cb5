#include "gateway/websocket_session.h"

#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/websocket/error.hpp>

#include "common/log.h"
#include "common/protocol.h"
#include "gateway/metrics.h"
#include "gateway/response.h"
#include "gateway/shard.h"
#include "gateway/worker_pool.h"

namespace sluice::gateway {
namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace websocket = beast::websocket;

namespace {

// The close code an ended read means, as websocket.disconnect reports it.
uint16_t CodeFor(beast::error_code ec, const websocket::close_reason& reason) {
  if (ec == websocket::error::closed) return reason.code != 0 ? reason.code : 1005;
  if (ec == websocket::error::message_too_big) return 1009;
  if (ec == websocket::error::bad_frame_payload) return 1007;
  if (ec.category() == make_error_code(websocket::error::bad_opcode).category()) return 1002;
  return 1006;
}

}  // namespace

WebSocketSession::WebSocketSession(Shard& shard, const Context& context,
                                   net::ip::tcp::socket socket, Request&& request,
                                   GaugeShare connection)
    : shard_(shard),
      context_(context),
      connection_(std::move(connection)),
      open_(context.metrics.websockets),
      queued_bytes_(context.metrics.queued_bytes),
      ws_(std::move(socket)),
      request_(std::make_unique<Request>(std::move(request))) {}

std::shared_ptr<WebSocketSession> WebSocketSession::self() {
  return std::static_pointer_cast<WebSocketSession>(shared_from_this());
}

void WebSocketSession::Start(v1::Scope&& scope) {
  path_ = scope.path();
  auto link = context_.pool.Pick();
  if (!link) {
    context_.metrics.rejected_no_worker.Inc();
    return Deny(503, "Service Unavailable: no worker has room\n");
  }
  instance_.emplace(shard_.Register(shared_from_this(), link.get()), link,
                    context_.options.receive_window);
  if (!instance_->Open(std::move(scope))) return;  // the link is ending: OnLinkLost follows
  v1::Event connect;
  connect.mutable_websocket_connect();
  instance_->Send(std::move(connect));

  handshake_timer_ = std::make_unique<net::steady_timer>(ws_.get_executor());
  handshake_timer_->expires_after(context_.options.ws_handshake_timeout);
  handshake_timer_->async_wait([self = self()](beast::error_code ec) {
    if (ec || !self->AwaitingApplication()) return;
    SLUICE_LOG(kWarning, "gateway")
        << "WebSocket " << self->path_ << ": the application neither accepted nor denied in time";
    self->context_.metrics.limit_ws_handshake_timeout.Inc();
    self->Deny(504, "Gateway Timeout: the application did not answer the handshake\n");
  });
}

void WebSocketSession::OnEnvelope(v1::Envelope& envelope) {
  if (state_ == State::kDone || !instance_ || envelope.connection_id() != instance_->id()) return;
  switch (envelope.body_case()) {
    case v1::Envelope::kCredit:
      instance_->OnCredit(envelope.credit());
      Read();
      break;
    case v1::Envelope::kEvent:
      HandleEvent(*envelope.mutable_event());
      break;
    case v1::Envelope::kClose: {
      worker_done_ = true;
      DropInstance();
      const auto reason = envelope.close().reason();
      if (AwaitingApplication()) {
        // Ended before accepting: a refusal (full), a failure, or a plain denial.
        if (reason == v1::Close::REASON_REJECTED) {
          context_.metrics.rejected_worker_full.Inc();
          Deny(503, "Service Unavailable: no worker has room\n");
        } else if (reason == v1::Close::REASON_APP_ERROR) {
          Deny(500, "Internal Server Error\n");
        } else {
          context_.metrics.websocket_denied.Inc();
          Deny(403, "Forbidden\n");
        }
      } else if (reason == v1::Close::REASON_APP_ERROR) {
        context_.metrics.app_errors.Inc();
        StartClose(1011, "application error");
      } else {
        StartClose(1000, {});
      }
      break;
    }
    default:
      break;
  }
}

void WebSocketSession::Fail(std::string_view why) {
  SLUICE_LOG(kError, "gateway") << "WebSocket " << path_ << ": " << why;
  context_.metrics.app_errors.Inc();
  TellDisconnected(1011, {});
  DropInstance();
  if (AwaitingApplication()) {
    Deny(500, "Internal Server Error\n");
  } else {
    StartClose(1011, "application error");
  }
}

void WebSocketSession::HandleEvent(v1::Event& event) {
  if (!instance_->OnReceived(event)) return Fail("the worker overran its credit");
  if (instance_->worker_blocked() && !stall_.armed()) {
    context_.metrics.credit_stalls_to_client.Inc();
    stall_.Arm(ws_.get_executor(), context_.options.slow_client_timeout,
               [self = self()] { self->SlowClient(); });
  }
  switch (event.kind_case()) {
    case v1::Event::kWebsocketAccept:
      if (!AwaitingApplication()) return Fail("websocket.accept twice");
      if (!ValidHeaders(event.websocket_accept().headers())) return Fail("invalid header");
      Grant(0);
      Accept(*event.mutable_websocket_accept());
      break;
    case v1::Event::kWebsocketSend: {
      if (AwaitingApplication()) return Fail("websocket.send before websocket.accept");
      auto& message = *event.mutable_websocket_send();
      Queue({std::move(*message.mutable_data()), message.binary(), false, 0});
      break;
    }
    case v1::Event::kWebsocketClose: {
      const auto& close = event.websocket_close();
      if (AwaitingApplication()) {
        Grant(0);
        context_.metrics.websocket_denied.Inc();
        return Deny(403, "Forbidden\n");
      }
      const uint32_t code = close.code() == 0 ? 1000 : close.code();
      if (!SendableCloseCode(static_cast<int>(code))) return Fail("reserved close code");
      StartClose(static_cast<uint16_t>(code), close.reason());
      break;
    }
    default:
      Fail("event not valid for a WebSocket");
  }
}

void WebSocketSession::Accept(v1::WebSocketAccept& accept) {
  accepting_ = true;
  handshake_timer_.reset();
  websocket::stream_base::timeout timeout;
  timeout.handshake_timeout = context_.options.ws_handshake_timeout;
  timeout.idle_timeout = context_.options.ws_idle_timeout;
  timeout.keep_alive_pings = true;
  ws_.set_option(timeout);
  ws_.read_message_max(context_.options.max_ws_message_bytes);
  ws_.set_option(websocket::stream_base::decorator(
      [subprotocol = std::move(*accept.mutable_subprotocol()),
       headers = std::move(*accept.mutable_headers())](websocket::response_type& response) {
        response.set(http::field::server, "sluice");
        if (!subprotocol.empty()) response.set(http::field::sec_websocket_protocol, subprotocol);
        for (const v1::Header& header : headers) response.insert(header.name(), header.value());
      }));
  beast::get_lowest_layer(ws_).expires_never();
  ws_.async_accept(*request_, [self = self()](beast::error_code ec) {
    self->request_.reset();
    self->ws_.set_option(websocket::stream_base::decorator([](websocket::response_type&) {}));
    if (ec) return self->Gone(1006, {});
    if (self->state_ != State::kConnecting) return;
    self->state_ = State::kOpen;
    self->open_.Add(1);
    self->Read();
    self->Write();
  });
}

void WebSocketSession::Deny(unsigned status, std::string_view body) {
  if (state_ == State::kDone) return;
  handshake_timer_.reset();
  if (status == 503) context_.metrics.unavailable.Inc();
  Gone(1006, {});  // the request is still held, so the socket stays open for the answer
  request_.reset();
  auto response = std::make_shared<std::string>(
      CannedResponse(status, body, /*keep_alive=*/false, /*retry_after=*/status == 503));
  net::async_write(beast::get_lowest_layer(ws_), net::buffer(*response),
                   [self = self(), response](beast::error_code, size_t) {
                     auto& stream = beast::get_lowest_layer(self->ws_);
                     beast::error_code ignored;
                     stream.socket().shutdown(net::ip::tcp::socket::shutdown_send, ignored);
                     stream.close();
                   });
}

void WebSocketSession::Read() {
  if (reading_ || state_ != State::kOpen || closing_ || !instance_) return;
  if (!instance_->CanSend()) {
    // The consumer is behind: stop reading; TCP pushes back on the client.
    if (!read_stalled_) context_.metrics.credit_stalls_to_worker.Inc();
    read_stalled_ = true;
    return;
  }
  read_stalled_ = false;
  reading_ = true;
  ws_.async_read(buffer_,
                 [self = self()](beast::error_code ec, size_t bytes) { self->OnRead(ec, bytes); });
}

void WebSocketSession::OnRead(beast::error_code ec, size_t /*bytes*/) {
  reading_ = false;
  if (ec) {
    const uint16_t code = CodeFor(ec, ws_.reason());
    auto& metrics = context_.metrics;
    if (code == 1009) metrics.limit_ws_message_too_big.Inc();
    if (code == 1007) metrics.limit_ws_invalid_utf8.Inc();
    if (ec == beast::error::timeout) metrics.limit_ws_ping_timeout.Inc();
    const auto& reason = ws_.reason().reason;
    return Gone(code, ec == websocket::error::closed
                          ? std::string_view(reason.data(), reason.size())
                          : std::string_view());
  }
  if (state_ != State::kOpen || closing_ || !instance_) {
    buffer_.consume(buffer_.size());  // closing: what the client still sends is dropped
    return;
  }
  v1::Event event;
  auto* message = event.mutable_websocket_receive();
  message->set_data(beast::buffers_to_string(buffer_.data()));
  message->set_binary(!ws_.got_text());
  buffer_.consume(buffer_.size());
  buffer_.shrink_to_fit();  // an idle socket holds no read buffer
  instance_->Send(std::move(event));
  Read();
}

void WebSocketSession::Queue(Outgoing&& message) {
  if (state_ == State::kDone || closing_) {
    Grant(message.data.size());  // dropped: the connection is closing
    return;
  }
  queued_bytes_.Add(static_cast<int64_t>(message.data.size()));
  outgoing_.push_back(std::move(message));
  Write();
}

void WebSocketSession::Write() {
  if (writing_ || state_ != State::kOpen || out_head_ == outgoing_.size()) return;
  Outgoing& message = outgoing_[out_head_];
  writing_ = true;
  if (message.close) {
    state_ = State::kClosing;
    websocket::close_reason reason(message.code);
    reason.reason.assign(message.data.data(), std::min<size_t>(message.data.size(), 123));
    ws_.async_close(reason, [self = self(), code = message.code](beast::error_code) {
      self->writing_ = false;
      self->Gone(code, {});
    });
    return;
  }
  ws_.text(!message.binary);
  ws_.async_write(net::buffer(message.data),
                  [self = self()](beast::error_code ec, size_t) { self->OnWrite(ec); });
}

void WebSocketSession::OnWrite(beast::error_code ec) {
  writing_ = false;
  if (state_ == State::kDone) return;  // Gone() already dropped the queue
  if (ec) return Gone(1006, {});
  const size_t bytes = outgoing_[out_head_++].data.size();
  queued_bytes_.Sub(static_cast<int64_t>(bytes));
  if (out_head_ == outgoing_.size()) {
    outgoing_.clear();
    out_head_ = 0;
  }
  Grant(bytes);
  if (closing_) ArmCloseDeadline();  // progress: the deadline starts again
  Write();
}

void WebSocketSession::Grant(size_t bytes) {
  if (worker_done_ || !instance_) return;
  if (instance_->Consumed(bytes) && !closing_) stall_.Disarm();
}

void WebSocketSession::TellDisconnected(uint16_t code, std::string_view reason) {
  if (!instance_ || worker_done_) return;
  worker_done_ = true;
  v1::Event event;
  auto* gone = event.mutable_websocket_disconnect();
  gone->set_code(code);
  gone->set_reason(std::string(reason));
  instance_->Send(std::move(event));
}

void WebSocketSession::DropInstance() {
  if (!instance_) return;
  shard_.Unregister(instance_->id());
  instance_.reset();
}

void WebSocketSession::StartClose(uint16_t code, std::string reason) {
  if (state_ == State::kDone || closing_) return;
  closing_ = true;
  close_code_ = code;
  outgoing_.push_back({std::move(reason), false, true, code});
  ArmCloseDeadline();
  Write();
}

void WebSocketSession::ArmCloseDeadline() {
  // The close frame waits behind what is queued; if the queue makes no progress for the
  // slow-client timeout (the client reads nothing), the socket is cut.
  stall_.Disarm();
  stall_.Arm(ws_.get_executor(), context_.options.slow_client_timeout, [self = self()] {
    beast::error_code ignored;
    beast::get_lowest_layer(self->ws_).socket().close(ignored);
    self->Gone(self->close_code_, "close timed out");
  });
}

void WebSocketSession::SlowClient() {
  if (state_ != State::kOpen || closing_) return;
  context_.metrics.slow_client_closes.Inc();
  SLUICE_LOG(kInfo, "gateway") << "WebSocket " << path_ << ": client read nothing for "
                               << context_.options.slow_client_timeout.count()
                               << " s with its queue full; closing it with 1008";
  // Drop what waits behind the write in flight, then queue the close frame.
  const size_t keep = out_head_ + (writing_ ? 1 : 0);
  for (size_t i = keep; i < outgoing_.size(); ++i) {
    queued_bytes_.Sub(static_cast<int64_t>(outgoing_[i].data.size()));
  }
  outgoing_.resize(keep);
  StartClose(1008, "client too slow");
}

void WebSocketSession::OnLinkLost() {
  // The registry has already let go of this id.
  worker_done_ = true;
  instance_.reset();
  context_.metrics.worker_lost.Inc();
  if (AwaitingApplication()) return Deny(502, "Bad Gateway: the worker went away\n");
  StartClose(1011, "worker lost");
}

void WebSocketSession::Gone(uint16_t code, std::string_view reason) {
  if (state_ == State::kDone) return;
  state_ = State::kDone;
  stall_.Disarm();
  TellDisconnected(code, reason);
  DropInstance();
  outgoing_.clear();
  out_head_ = 0;
  if (!request_) {
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);
  }
}

}  // namespace sluice::gateway
