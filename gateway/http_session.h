#pragma once

#include <memory>
#include <optional>
#include <string_view>
#include <utility>

#include "gateway/client_session.h"
#include "gateway/request_parser.h"
#include "gateway/response.h"

namespace sluice::gateway {

/// One HTTP/1.1 client connection. Each request is one ASGI instance on a worker the pool
/// picks. The request body streams to it under credit, 64 KiB per event at most, and a
/// request that arrives whole travels as one envelope with its Open. The response is written
/// as it streams back (ResponseFramer). Keep-alive; a pipelined request waits in the buffer
/// for its turn. An upgrade becomes a WebSocketSession.
///
/// The connection's phase is one state machine:
///
///   kIdle ──first byte──► kHeader ──header──► kBody ──body read──► kWaiting
///     ▲                      │                  │                     │
///     │                      │ upgrade          │ response written    │ response written
///     │                      ▼                  ▼ early               │
///     │                  kUpgraded          kClosing ◄── own answer ──┤ (not keep-alive)
///     └───────────── keep-alive ──────────────────────────────────────┘
///
/// kClosing: the last answer is queued; once written the connection closes gracefully (FIN,
/// then what the client still sends is dropped, bounded), so the client reads the answer
/// (413, 431, 503, an early response) instead of a reset. Deadlines: --header-timeout
/// (kHeader; and kIdle before the first request), --http-idle-timeout (kIdle between
/// requests), --body-timeout (kBody while waiting for the client: 408).
/// Thread-safety and lifetime: as ClientSession.
class HttpSession final : public ClientSession {
 public:
  /// `over_limit`: the gateway is at --max-connections; the first request gets 503.
  HttpSession(Shard& shard, const Context& context, std::unique_ptr<Transport> transport,
              bool over_limit);
  /// Times one request is sent again after losing its worker.
  static constexpr uint8_t kMaxRetries = 2;

  void Start();
  void Drain() override;

 private:
  enum class Phase { kIdle, kHeader, kBody, kWaiting, kClosing, kUpgraded };

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

  /// Returns the bytes used; the header may end inside them.
  size_t ParseHeader(std::string_view data);
  void BeginRequest();
  /// Returns the bytes used of the body (and only of the body).
  size_t ParseBody(std::string_view data);
  void SendBody(v1::Event&& event);
  void BodyError(boost::system::error_code ec);
  void Upgrade(v1::Scope&& scope, std::string_view rest);
  /// A response of the gateway's own (400, 408, 413, 431, 500, 502, 503). When the response
  /// has already started, the connection is cut instead.
  void Answer(unsigned status, std::string_view body, Counter* reason);
  void EndResponse();
  void ClientGone();
  /// Sends the request to another worker, when no response byte reached the client and it was
  /// kept whole: after a refusal (`refused`: no instance saw it) whatever its method, after a
  /// lost worker only if it is idempotent. False when it cannot (then 503 or 502).
  bool Retry(bool refused);

  const bool over_limit_;
  Phase phase_ = Phase::kIdle;
  bool served_ = false;       // a request was read: later ones are keep-alive
  bool keep_alive_ = false;   // the client asked for it (and it may still be granted)
  bool close_after_ = false;  // the answer being written says connection: close
  bool draining_ = false;
  bool read_stalled_ = false;  // counted once per stall
  // The request is kept whole (its header in parser_, its body in retry_body_: only a body
  // read whole before the Open), so it can be sent again; idempotent_: also after a lost worker.
  bool resendable_ = false;
  bool idempotent_ = false;
  uint8_t retries_ = 0;
  std::string retry_body_;
  // The client's and our address as scopes carry them, made once per connection.
  std::optional<std::pair<v1::Address, v1::Address>> addresses_;
  std::optional<RequestParser> parser_;     // while a request is read (and, resendable, answered)
  std::optional<v1::Scope> unsent_open_;    // until the first body piece goes with it
  std::optional<ResponseFramer> response_;  // while a request is open
};

}  // namespace sluice::gateway
