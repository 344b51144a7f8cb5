#include "gateway/websocket_session.h"

#include "common/log.h"
#include "common/protocol.h"
#include "gateway/link.h"
#include "gateway/metrics.h"
#include "gateway/response.h"
#include "gateway/shard.h"

namespace sluice::gateway {

namespace {

constexpr uint8_t kPongTag = 1;

v1::Event Disconnect(uint16_t code, std::string_view reason) {
  v1::Event event;
  auto* gone = event.mutable_websocket_disconnect();
  gone->set_code(code);
  gone->set_reason(std::string(reason));
  return event;
}

}  // namespace

WebSocketSession::WebSocketSession(Shard& shard, const Context& context,
                                   std::unique_ptr<Transport> transport, GaugeShare connection,
                                   std::string pending)
    : ClientSession(shard, context, std::move(transport), std::move(connection),
                    std::move(pending)),
      reader_(context.options.max_ws_message_bytes),
      open_(context.metrics.websockets) {}

std::string WebSocketSession::Name() const { return "WebSocket " + ScopePath(); }

v1::Event WebSocketSession::AbnormalDisconnect() const { return Disconnect(ws::kAbnormal, {}); }

void WebSocketSession::Start(const Request& request, v1::Scope&& scope) {
  auto& metrics = context_.metrics;
  auto key = ws::AcceptKey(request);
  if (!key.ok()) {
    SLUICE_LOG(kInfo, "gateway") << "WebSocket " << scope.path()
                                 << ": bad handshake: " << key.status();
    if (absl::IsFailedPrecondition(key.status())) {
      return Deny(426, "Upgrade Required: WebSocket version 13\n", &metrics.rejected_bad_request,
                  "sec-websocket-version: 13\r\n");
    }
    return Deny(400, "Bad Request\n", &metrics.rejected_bad_request);
  }
  accept_key_ = std::make_unique<std::string>(*std::move(key));
  auto link = context_.picker.Pick();
  if (!link)
    return Deny(503, "Service Unavailable: no worker has room\n", &metrics.rejected_no_worker);
  BindInstance(std::move(link));
  v1::Event connect;
  connect.mutable_websocket_connect();
  // The application must accept or deny in time; nothing is read until it has.
  SetReadDeadline(context_.options.ws_handshake_timeout);
  EnableReplay(scope.SerializeAsString());   // so that the connection can move
  OpenInstance(std::move(scope), &connect);  // false: OnLinkLost follows
}

bool WebSocketSession::WantsRead() const { return phase_ == Phase::kOpen && can_send_to_worker(); }

size_t WebSocketSession::OnBytes(std::string_view data) {
  if (phase_ != Phase::kOpen) return data.size();  // closing: what the client sends is dropped
  // Anything from the client shows it is alive: the idle clock starts again.
  SetReadDeadline(context_.options.ws_idle_timeout / 2);
  ping_sent_ = false;
  std::string_view in = data;
  while (phase_ == Phase::kOpen) {
    if (!can_send_to_worker()) {
      // The consumer is behind: stop here; TCP pushes back on the client.
      if (!read_stalled_) context_.metrics.credit_stalls_to_worker.Inc();
      read_stalled_ = true;
      break;
    }
    read_stalled_ = false;
    const auto result = reader_.Next(in);
    if (result == ws::FrameReader::Result::kNeedMore) break;
    switch (result) {
      case ws::FrameReader::Result::kMessage: {
        v1::Event event;
        auto* message = event.mutable_websocket_receive();
        message->set_data(reader_.TakeMessage());
        message->set_binary(reader_.binary());
        SendToWorker(std::move(event));
        break;
      }
      case ws::FrameReader::Result::kPing:
        // Answered in order with what is queued; a client that pings faster than it reads
        // gets at most two pongs outstanding.
        if (pongs_queued_ < 2) {
          ++pongs_queued_;
          QueueControl(ws::Opcode::kPong, reader_.control());
        }
        break;
      case ws::FrameReader::Result::kPong:
        break;
      case ws::FrameReader::Result::kClose: {
        const uint16_t code = reader_.close_code();
        TellDisconnected(Disconnect(code, reader_.close_reason()));
        StartClose(code == ws::kNoStatus ? 0 : code, {});  // echo the client's code
        break;
      }
      case ws::FrameReader::Result::kError:
        ClientError(reader_.error_code(), reader_.error());
        return data.size();
      case ws::FrameReader::Result::kNeedMore:
        break;
    }
  }
  return phase_ == Phase::kOpen ? data.size() - in.size() : data.size();
}

void WebSocketSession::ClientError(uint16_t code, const char* why) {
  auto& metrics = context_.metrics;
  if (code == ws::kTooBig) {
    metrics.limit_ws_message_too_big.Inc();
  } else if (code == ws::kInvalidPayload) {
    metrics.limit_ws_invalid_utf8.Inc();
  } else {
    metrics.limit_ws_protocol_error.Inc();
  }
  SLUICE_LOG(kInfo, "gateway") << Name() << ": closing with " << code << ": " << why;
  TellDisconnected(Disconnect(code, {}));
  StartClose(code, {});
}

void WebSocketSession::HandleEvent(v1::Event& event) {
  switch (event.kind_case()) {
    case v1::Event::kWebsocketAccept:
      if (phase_ != Phase::kConnecting) return HandleWorkerError("websocket.accept twice");
      if (!ValidHeaders(event.websocket_accept().headers())) {
        return HandleWorkerError("invalid handshake header");
      }
      return Accept(*event.mutable_websocket_accept());
    case v1::Event::kWebsocketSend: {
      if (phase_ == Phase::kConnecting) {
        return HandleWorkerError("websocket.send before websocket.accept");
      }
      auto& message = *event.mutable_websocket_send();
      const uint64_t bytes = message.data().size();
      if (phase_ == Phase::kClosing) return CreditBack(bytes);  // dropped: closing
      Chunk chunk{
          .head =
              ws::FrameHeader(message.binary() ? ws::Opcode::kBinary : ws::Opcode::kText, bytes),
          .body = Take(message, &v1::WebSocketMessage::data, &v1::WebSocketMessage::mutable_data),
          .credit_bytes = bytes,
          .credit = true};
      if (!Queue(std::move(chunk))) return HandleWorkerError("client-bound queue overflow");
      return;
    }
    case v1::Event::kWebsocketClose: {
      const auto& close = event.websocket_close();
      if (phase_ == Phase::kConnecting) {
        return Deny(403, "Forbidden\n", &context_.metrics.websocket_denied);
      }
      const uint32_t code = close.code() == 0 ? ws::kNormal : close.code();
      if (!SendableCloseCode(static_cast<int>(code))) {
        return HandleWorkerError("close code may not be sent: " + std::to_string(code));
      }
      return StartClose(static_cast<uint16_t>(code), close.reason());
    }
    default:
      HandleWorkerError("event not valid for a WebSocket: " + std::to_string(event.kind_case()));
  }
}

void WebSocketSession::Accept(v1::WebSocketAccept& accept) {
  // The 101 is queued like any message: it spent one event of credit, given back once written.
  Queue({.head = ws::HandshakeResponse(*accept_key_, accept), .credit = true});
  accept_key_.reset();
  phase_ = Phase::kOpen;
  open_.Add(1);
  SetReadDeadline(context_.options.ws_idle_timeout / 2);
  Resume();
}

void WebSocketSession::Deny(unsigned status, std::string_view body, Counter* reason,
                            std::string_view extra_headers) {
  if (phase_ != Phase::kConnecting) return;
  if (reason) reason->Inc();
  if (status == 503) context_.metrics.unavailable.Inc();
  TellDisconnected(Disconnect(ws::kAbnormal, {}));
  phase_ = Phase::kClosing;
  accept_key_.reset();
  ClearReadDeadline();
  Queue({.head = CannedResponse(status, body, /*keep_alive=*/false, status == 503, extra_headers),
         .last = true});
  CloseGracefully();
}

void WebSocketSession::StartClose(uint16_t code, std::string_view reason) {
  if (phase_ != Phase::kOpen) return;
  phase_ = Phase::kClosing;
  open_.Sub(1);
  ClearReadDeadline();
  TellDisconnected(Disconnect(code == 0 ? ws::kNoStatus : code, reason));
  std::string payload = code == 0 ? std::string() : ws::ClosePayload(code, reason);
  const uint64_t size = payload.size();
  Queue({.head = ws::FrameHeader(ws::Opcode::kClose, size),
         .body = std::move(payload),
         .last = true});
  CloseGracefully();
}

void WebSocketSession::QueueControl(ws::Opcode opcode, std::string payload) {
  const uint64_t size = payload.size();
  Queue({.head = ws::FrameHeader(opcode, size),
         .body = std::move(payload),
         .tag = opcode == ws::Opcode::kPong ? kPongTag : uint8_t{0}});
}

void WebSocketSession::OnWritten(const Chunk& chunk) {
  if (chunk.tag == kPongTag && pongs_queued_ > 0) --pongs_queued_;
}

void WebSocketSession::HandleClose(const v1::Close& close) {
  auto& metrics = context_.metrics;
  if (close.reason() == v1::Close::REASON_MOVED) {
    metrics.handed_over.Inc();
    return Move();
  }
  // A refusal means the worker filled up or began draining as the Open crossed: no instance
  // saw it, so an open connection moves on and a handshake starts again on the next worker.
  if (close.reason() == v1::Close::REASON_REJECTED) return Move();
  if (phase_ == Phase::kConnecting) {
    // Ended before accepting: a failure or a plain denial.
    if (close.reason() == v1::Close::REASON_APP_ERROR) {
      return Deny(500, "Internal Server Error\n", &metrics.app_errors);
    }
    return Deny(403, "Forbidden\n", &metrics.websocket_denied);
  }
  if (close.reason() == v1::Close::REASON_APP_ERROR) {
    metrics.app_errors.Inc();
    return StartClose(ws::kInternalError, "application error");
  }
  StartClose(ws::kNormal, {});
}

void WebSocketSession::HandleLinkLost() { Move(); }

void WebSocketSession::Move() {
  if (phase_ == Phase::kClosing) return;
  // An open connection resumes; a handshake not answered yet starts again elsewhere.
  const MoveResult result = MoveInstance(/*resume=*/phase_ == Phase::kOpen);
  if (result == MoveResult::kMoved) return;
  if (phase_ == Phase::kConnecting) {
    return Deny(503, "Service Unavailable: no worker has room\n",
                &context_.metrics.rejected_no_worker);
  }
  if (result == MoveResult::kTooOften) {
    SLUICE_LOG(kWarning, "gateway") << Name() << ": moved " << Replay::kMaxMoves
                                    << " times within a minute; closing "
                                       "it with 1011";
    return StartClose(ws::kInternalError, "moved too often");
  }
  SLUICE_LOG(kWarning, "gateway") << Name()
                                  << ": its worker is gone and no other can take it; closing "
                                     "it with 1012";
  StartClose(ws::kServiceRestart, "no worker available");
}

void WebSocketSession::HandleWorkerError(std::string_view why) {
  SLUICE_LOG(kError, "gateway") << Name() << ": the worker broke the protocol: " << why;
  context_.metrics.worker_protocol_errors.Inc();
  TellDisconnected(Disconnect(ws::kInternalError, {}));
  if (phase_ == Phase::kConnecting) {
    return Deny(500, "Internal Server Error\n", &context_.metrics.app_errors);
  }
  context_.metrics.app_errors.Inc();
  StartClose(ws::kInternalError, "application error");
}

void WebSocketSession::OnReadEnd(boost::system::error_code /*ec*/) {
  // The client vanished without a close frame (or the socket failed).
  if (phase_ == Phase::kOpen) open_.Sub(1);
  phase_ = Phase::kClosing;
  TellDisconnected(Disconnect(ws::kAbnormal, {}));
  CloseNow();
}

void WebSocketSession::OnReadDeadline() {
  auto& metrics = context_.metrics;
  switch (phase_) {
    case Phase::kConnecting:
      SLUICE_LOG(kWarning, "gateway")
          << Name() << ": the application neither accepted nor denied in time";
      return Deny(504, "Gateway Timeout: the application did not answer the handshake\n",
                  &metrics.limit_ws_handshake_timeout);
    case Phase::kOpen:
      if (!ping_sent_) {
        ping_sent_ = true;
        QueueControl(ws::Opcode::kPing, {});
        SetReadDeadline(context_.options.ws_idle_timeout / 2);
        return;
      }
      metrics.limit_ws_ping_timeout.Inc();
      return OnReadEnd({});
    case Phase::kClosing:
      return;
  }
}

void WebSocketSession::OnSlowClient() {
  if (phase_ != Phase::kOpen) return CloseNow();  // not even the close frame moves
  context_.metrics.slow_client_closes.Inc();
  SLUICE_LOG(kInfo, "gateway") << Name() << ": client read nothing for "
                               << context_.options.slow_client_timeout.count()
                               << " s with its queue full; closing it with 1008";
  DropQueued();  // what waits behind the write in flight
  StartClose(ws::kPolicyViolation, "client too slow");
}

void WebSocketSession::Drain() {
  if (phase_ == Phase::kConnecting) {
    context_.metrics.drained.Inc();
    Deny(503, "Service Unavailable: the gateway is shutting down\n", nullptr);
  }
}

void WebSocketSession::Retire() {
  if (phase_ != Phase::kOpen) return;
  context_.metrics.drained.Inc();
  StartClose(ws::kGoingAway, "gateway shutting down");
}

}  // namespace sluice::gateway
