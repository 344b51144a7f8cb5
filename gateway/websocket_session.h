#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "gateway/context.h"
#include "gateway/endpoint.h"
#include "gateway/instance_link.h"
#include "gateway/stall_timer.h"

namespace sluice::gateway {

class Shard;

/// One WebSocket client. The upgrade request opens an instance (websocket.connect); the
/// handshake completes only when the application accepts (subprotocol, extra headers) and is
/// answered 403 when it closes first, 503 when no worker has room. Once open, messages flow
/// both ways under credit: with no credit the gateway stops reading (TCP pushes back on the
/// client); the client-bound queue holds at most the granted window. Ping/pong keep-alive and
/// close codes are handled here.
/// Thread-safety: lives on its shard's thread. Lifetime: held by the shard's registry while
/// its instance is open, and by its pending operations.
class WebSocketSession final : public Endpoint {
 public:
  using Request = boost::beast::http::request<boost::beast::http::empty_body>;

  WebSocketSession(Shard& shard, const Context& context, boost::asio::ip::tcp::socket socket,
                   Request&& request, GaugeShare connection);
  /// Opens the instance for `scope` (built by the HttpSession that read the upgrade).
  void Start(v1::Scope&& scope);

  void OnEnvelope(v1::Envelope& envelope) override;
  void OnLinkLost() override;

 private:
  enum class State { kConnecting, kOpen, kClosing, kDone };
  struct Outgoing {
    std::string data;
    bool binary = false;
    bool close = false;  // a close frame: data is the reason
    uint16_t code = 0;
  };

  std::shared_ptr<WebSocketSession> self();
  /// The upgrade is waiting for the application to accept or deny it.
  bool AwaitingApplication() const { return request_ && !accepting_; }
  void HandleEvent(v1::Event& event);
  void Accept(v1::WebSocketAccept& accept);
  void Deny(unsigned status, std::string_view body);
  /// Ends the instance and closes with 1011 after an application failure or protocol break.
  void Fail(std::string_view why);
  /// The client-bound queue stayed full for --slow-client-timeout: drop what is queued and
  /// close with 1008; if even the close frame cannot go out in as long again, cut the socket.
  void SlowClient();
  void Read();
  void OnRead(boost::beast::error_code ec, size_t bytes);
  void Queue(Outgoing&& message);
  /// Queues the close frame after what is already queued; reading stops. If the close
  /// cannot be written within --slow-client-timeout, the socket is cut.
  void StartClose(uint16_t code, std::string reason);
  void ArmCloseDeadline();
  void Write();
  void OnWrite(boost::beast::error_code ec);
  void Grant(size_t bytes);
  /// Sends websocket.disconnect unless the instance has ended or already had it.
  void TellDisconnected(uint16_t code, std::string_view reason);
  /// Forgets the instance (unregistering its id): nothing more is sent to it.
  void DropInstance();
  /// The socket is finished (closed by either side or lost): tell the instance, once.
  void Gone(uint16_t code, std::string_view reason);

  Shard& shard_;
  const Context& context_;
  GaugeShare connection_;    // in sluice_gateway_connections
  GaugeShare open_;          // in sluice_gateway_websockets once accepted
  GaugeShare queued_bytes_;  // client-bound payload in outgoing_
  StallTimer stall_;         // armed while the worker has no credit left (client slow)
  bool read_stalled_ = false;
  bool closing_ = false;  // a close frame is queued: nothing more is read or sent
  uint16_t close_code_ = 0;
  boost::beast::websocket::stream<boost::beast::tcp_stream> ws_;
  boost::beast::flat_buffer buffer_;  // released after each message
  std::unique_ptr<Request> request_;  // until the handshake is answered
  bool accepting_ = false;            // the application accepted; the handshake is underway
  std::unique_ptr<boost::asio::steady_timer> handshake_timer_;
  State state_ = State::kConnecting;
  std::optional<InstanceLink> instance_;
  std::string path_;  // for log lines
  bool reading_ = false;
  bool writing_ = false;
  bool worker_done_ = false;
  std::vector<Outgoing> outgoing_;  // FIFO, bounded by the worker's credit + a close
  size_t out_head_ = 0;
};

}  // namespace sluice::gateway
