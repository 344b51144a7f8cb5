#include "gateway/websocket_session.h"

#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/websocket/error.hpp>

#include "common/log.h"
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
                                   net::ip::tcp::socket socket, Request&& request)
    : shard_(shard),
      context_(context),
      ws_(std::move(socket)),
      request_(std::make_unique<Request>(std::move(request))) {}

std::shared_ptr<WebSocketSession> WebSocketSession::self() {
  return std::static_pointer_cast<WebSocketSession>(shared_from_this());
}

void WebSocketSession::Start(v1::Scope&& scope) {
  link_ = context_.pool.Pick();
  if (!link_) return Deny(503, "Service Unavailable: no worker has room\n");
  id_ = shard_.Register(shared_from_this(), link_.get());
  credit_.emplace(link_->worker_window());
  window_.emplace(context_.options.receive_window);
  v1::Envelope open;
  open.set_connection_id(id_);
  *open.mutable_open()->mutable_scope() = std::move(scope);
  if (!link_->Send(std::move(open))) return;  // the link is ending: OnLinkLost follows
  v1::Event connect;
  connect.mutable_websocket_connect();
  SendEvent(std::move(connect));

  handshake_timer_ = std::make_unique<net::steady_timer>(ws_.get_executor());
  handshake_timer_->expires_after(context_.options.ws_handshake_timeout);
  handshake_timer_->async_wait([self = self()](beast::error_code ec) {
    if (ec || !self->AwaitingApplication()) return;
    SLUICE_LOG(kWarning, "gateway") << "connection " << self->id_
                                    << ": the application neither accepted nor denied in time";
    self->Deny(504, "Gateway Timeout: the application did not answer the handshake\n");
  });
}

void WebSocketSession::OnEnvelope(v1::Envelope& envelope) {
  if (state_ == State::kDone || envelope.connection_id() != id_) return;
  switch (envelope.body_case()) {
    case v1::Envelope::kCredit:
      credit_->Grant(envelope.credit());
      Read();
      break;
    case v1::Envelope::kEvent:
      HandleEvent(*envelope.mutable_event());
      break;
    case v1::Envelope::kClose: {
      worker_done_ = true;
      shard_.Unregister(id_);
      const auto reason = envelope.close().reason();
      if (AwaitingApplication()) {
        // Ended before accepting: a refusal (full), a failure, or a plain denial.
        if (reason == v1::Close::REASON_REJECTED) {
          Deny(503, "Service Unavailable: no worker has room\n");
        } else if (reason == v1::Close::REASON_APP_ERROR) {
          Deny(500, "Internal Server Error\n");
        } else {
          Deny(403, "Forbidden\n");
        }
      } else if (reason == v1::Close::REASON_APP_ERROR) {
        Queue({"application error", false, true, 1011});
      } else {
        Queue({{}, false, true, 1000});
      }
      break;
    }
    default:
      break;
  }
}

void WebSocketSession::HandleEvent(v1::Event& event) {
  const auto fail = [this](std::string_view why) {
    SLUICE_LOG(kError, "gateway") << "connection " << id_ << ": " << why;
    if (!worker_done_) {
      v1::Event gone;
      gone.mutable_websocket_disconnect()->set_code(1011);
      SendEvent(std::move(gone));
      worker_done_ = true;
      shard_.Unregister(id_);
    }
    if (AwaitingApplication()) {
      Deny(500, "Internal Server Error\n");
    } else {
      Queue({"application error", false, true, 1011});
    }
  };
  if (SpendsCredit(event) && !window_->OnReceived(EventBytes(event))) {
    return fail("the worker overran its credit");
  }
  switch (event.kind_case()) {
    case v1::Event::kWebsocketAccept:
      if (!AwaitingApplication()) return fail("websocket.accept twice");
      if (!ValidHeaders(event.websocket_accept().headers())) return fail("invalid header");
      Grant(0);
      Accept(*event.mutable_websocket_accept());
      break;
    case v1::Event::kWebsocketSend: {
      if (AwaitingApplication()) return fail("websocket.send before websocket.accept");
      auto& message = *event.mutable_websocket_send();
      Queue({std::move(*message.mutable_data()), message.binary(), false, 0});
      break;
    }
    case v1::Event::kWebsocketClose: {
      const auto& close = event.websocket_close();
      if (AwaitingApplication()) {
        Grant(0);
        return Deny(403, "Forbidden\n");
      }
      Queue({close.reason(), false, true,
             static_cast<uint16_t>(close.code() == 0 ? 1000 : close.code())});
      break;
    }
    default:
      fail("event not valid for a WebSocket");
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
    self->Read();
    self->Write();
  });
}

void WebSocketSession::Deny(unsigned status, std::string_view body) {
  if (state_ == State::kDone) return;
  handshake_timer_.reset();
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
  if (reading_ || state_ != State::kOpen || !credit_->CanSend()) return;
  reading_ = true;
  ws_.async_read(buffer_, [self = self()](beast::error_code ec, size_t bytes) {
    self->OnRead(ec, bytes);
  });
}

void WebSocketSession::OnRead(beast::error_code ec, size_t /*bytes*/) {
  reading_ = false;
  if (ec) {
    const uint16_t code = CodeFor(ec, ws_.reason());
    const auto& reason = ws_.reason().reason;
    return Gone(code, ec == websocket::error::closed
                          ? std::string_view(reason.data(), reason.size())
                          : std::string_view());
  }
  if (state_ != State::kOpen) return;
  v1::Event event;
  auto* message = event.mutable_websocket_receive();
  message->set_data(beast::buffers_to_string(buffer_.data()));
  message->set_binary(!ws_.got_text());
  buffer_.consume(buffer_.size());
  buffer_.shrink_to_fit();  // an idle socket holds no read buffer
  SendEvent(std::move(event));
  Read();
}

void WebSocketSession::Queue(Outgoing&& message) {
  if (state_ == State::kDone || state_ == State::kClosing) {
    if (!message.close) Grant(message.data.size());
    return;
  }
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
    ws_.async_close(reason,
                    [self = self(), code = message.code](beast::error_code) {
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
  if (ec) return Gone(1006, {});
  const size_t bytes = outgoing_[out_head_++].data.size();
  if (out_head_ == outgoing_.size()) {
    outgoing_.clear();
    out_head_ = 0;
  }
  Grant(bytes);
  Write();
}

void WebSocketSession::SendEvent(v1::Event&& event) {
  if (SpendsCredit(event)) credit_->Spend(EventBytes(event));
  v1::Envelope envelope;
  envelope.set_connection_id(id_);
  *envelope.mutable_event() = std::move(event);
  link_->Send(std::move(envelope));
}

void WebSocketSession::Grant(size_t bytes) {
  if (worker_done_ || !window_) return;
  if (auto grant = window_->OnConsumed(bytes)) {
    v1::Envelope envelope;
    envelope.set_connection_id(id_);
    *envelope.mutable_credit() = *grant;
    link_->Send(std::move(envelope));
  }
}

void WebSocketSession::OnLinkLost() {
  // The registry has already let go of this id.
  worker_done_ = true;
  if (AwaitingApplication()) return Deny(502, "Bad Gateway: the worker went away\n");
  Queue({"worker lost", false, true, 1011});
}

void WebSocketSession::Gone(uint16_t code, std::string_view reason) {
  if (state_ == State::kDone) return;
  state_ = State::kDone;
  if (id_ != 0 && !worker_done_) {
    v1::Event event;
    auto* gone = event.mutable_websocket_disconnect();
    gone->set_code(code);
    gone->set_reason(std::string(reason));
    SendEvent(std::move(event));
    worker_done_ = true;
  }
  if (id_ != 0) shard_.Unregister(id_);
  outgoing_.clear();
  out_head_ = 0;
  if (!request_) {
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);
  }
}

}  // namespace sluice::gateway
