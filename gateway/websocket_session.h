#pragma once

#include <boost/beast/http/message.hpp>
#include <memory>
#include <string>
#include <string_view>

#include "gateway/client_session.h"
#include "gateway/websocket_codec.h"

namespace sluice::gateway {

/// One WebSocket client (RFC 6455, server side, no extensions; the frames are read and
/// written here with ws::FrameReader and ws::FrameHeader). The upgrade request opens an
/// instance (websocket.connect); the handshake completes only when the application accepts
/// (subprotocol, extra headers) and is answered 403 when it closes first, 503 when no worker
/// has room, 504 when it does not answer within --ws-handshake-timeout. Once open, messages
/// flow both ways under credit: with no credit the gateway stops reading (TCP pushes back on
/// the client); the client-bound queue holds at most the granted window.
///
/// Phases: kConnecting ──accept──► kOpen ──close (either side), error, slow client──►
/// kClosing; a refusal goes from kConnecting to kClosing. In kClosing a close frame (or the
/// refusal) is queued; once written the connection closes gracefully. While open, a client
/// silent for half of --ws-idle-timeout is pinged, and closed if still silent at the end.
/// An idle connection holds no read buffer, no timer and no partial message.
/// When its worker is lost or drains, the connection moves to another worker (ClientSession::
/// MoveInstance); the client notices nothing but latency.
/// Thread-safety and lifetime: as ClientSession.
class WebSocketSession final : public ClientSession {
 public:
  using Request = boost::beast::http::request_header<>;

  /// `pending`: bytes the client sent after its upgrade request.
  WebSocketSession(Shard& shard, const Context& context, std::unique_ptr<Transport> transport,
                   GaugeShare connection, std::string pending);
  /// Opens the instance for `scope` (built by the HttpSession that read `request`, the
  /// upgrade).
  void Start(const Request& request, v1::Scope&& scope);
  void Drain() override;
  void Retire() override;

 private:
  enum class Phase { kConnecting, kOpen, kClosing };

  size_t OnBytes(std::string_view data) override;
  bool WantsRead() const override;
  void OnReadEnd(boost::system::error_code ec) override;
  void OnReadDeadline() override;
  void OnSlowClient() override;
  void OnWritten(const Chunk& chunk) override;
  void HandleEvent(v1::Event& event) override;
  void HandleClose(const v1::Close& close) override;
  void HandleLinkLost() override;
  void HandleWorkerError(std::string_view why) override;
  v1::Event AbnormalDisconnect() const override;

  /// The instance's worker is gone or handed the connection back: move it, or close it with
  /// 1012 (a handshake in progress: 503) when no worker can take it.
  void Move();
  void Accept(v1::WebSocketAccept& accept);
  /// Answers the upgrade with an HTTP error instead of 101, then closes.
  void Deny(unsigned status, std::string_view body, Counter* reason,
            std::string_view extra_headers = {});
  /// Queues the close frame after what is already queued, tells the instance (with `code`)
  /// and closes gracefully once it is written.
  void StartClose(uint16_t code, std::string_view reason);
  /// The client broke the protocol (or a limit): close with `code`.
  void ClientError(uint16_t code, const char* why);
  void QueueControl(ws::Opcode opcode, std::string payload);
  /// "WebSocket /path" for log lines (from the kept scope: an idle connection holds no copy).
  std::string Name() const;

  ws::FrameReader reader_;
  std::unique_ptr<std::string> accept_key_;  // until the handshake is answered
  GaugeShare open_;                          // in sluice_gateway_websockets while open
  Phase phase_ = Phase::kConnecting;
  uint8_t pongs_queued_ = 0;   // at most 2 unwritten pongs; more pings wait for them
  bool ping_sent_ = false;     // a keep-alive ping is out and unanswered
  bool read_stalled_ = false;  // counted once per stall
};

}  // namespace sluice::gateway
