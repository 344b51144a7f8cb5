#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "sluice/v1/link.pb.h"

namespace sluice {

/// The default window (kDefaultWindowEvents / kDefaultWindowBytes).
v1::Window DefaultWindow();

/// Payload size of an event for byte credit: its body, text or bytes.
size_t EventBytes(const v1::Event& event);

/// Whether sending the event spends credit. Disconnect events do not: there is exactly one
/// per connection, so the receiver's bound still holds, and a client that leaves is never
/// stuck behind a consumer that stopped reading.
bool SpendsCredit(const v1::Event& event);

/// Whether the event carries a sequence number (Envelope.seq): a WebSocket's
/// websocket.receive and layer_message, the events a moved connection replays.
inline bool Numbered(const v1::Event& event) {
  return event.kind_case() == v1::Event::kWebsocketReceive ||
         event.kind_case() == v1::Event::kLayerMessage;
}

/// The sender's side of one connection's credit in one direction (see Window in link.proto).
/// Not thread-safe: owned by the connection's executor.
class SendCredit final {
 public:
  explicit SendCredit(const v1::Window& initial);

  bool CanSend() const { return events_ > 0 && bytes_ > 0; }
  void Spend(size_t bytes);
  void Grant(const v1::Window& grant);

  int64_t events() const { return events_; }
  int64_t bytes() const { return bytes_; }

 private:
  int64_t events_;
  int64_t bytes_;
};

/// The receiver's side: mirrors the sender's credit to catch a peer that overruns it, and
/// decides when to grant consumed credit back — once half the window (in events or bytes) is
/// consumed, so grants are few and a sender with credit never stalls waiting for one.
/// Not thread-safe: owned by the connection's executor.
class ReceiveWindow final {
 public:
  explicit ReceiveWindow(const v1::Window& window);

  /// An event of `bytes` arrived. False when the sender had no credit for it.
  [[nodiscard]] bool OnReceived(size_t bytes);
  /// The application consumed an event of `bytes`. Returns the grant to send, if one is due.
  std::optional<v1::Window> OnConsumed(size_t bytes);
  /// The sender has spent all its credit: it is waiting for us.
  bool peer_blocked() const { return !peer_.CanSend(); }

 private:
  uint32_t window_events_;
  uint64_t window_bytes_;
  SendCredit peer_;  // what the sender may still send, as far as we know
  uint32_t consumed_events_ = 0;
  uint64_t consumed_bytes_ = 0;
};

}  // namespace sluice
