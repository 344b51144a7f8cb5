#pragma once

#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "common/bounded_fifo.h"
#include "common/credit.h"
#include "sluice/consumer.h"
#include "sluice/v1/link.pb.h"
#include "worker/metrics.h"

namespace sluice::worker {

/// Where an instance's output goes: the worker's end of its link (LinkSession), or a fake in
/// tests. Called on the instance's loop thread, which the instance names.
class InstanceHost {
 public:
  virtual ~InstanceHost() = default;
  virtual void Enqueue(unsigned loop, v1::Envelope&& envelope) = 0;
  /// The instance has ended; sends its Close. Called once.
  virtual void InstanceEnded(unsigned loop, uint64_t id, v1::Close::Reason reason,
                             std::string detail) = 0;
};

/// The runtime's side of one application instance (one client connection): its inbox of
/// events from the gateway, its credit both ways, and the checks that keep what the consumer
/// sends valid ASGI. It lives on one loop thread (the link hands it events there), so its
/// consumer's coroutines run one at a time without a strand or a lock. The inbox is a
/// BoundedFifo of the receive window's events plus one disconnect; a gateway that overruns
/// its credit is a protocol error. Any number of the consumer's coroutines may wait in
/// Receive() and Send() at once: one timer, never re-armed, wakes them all.
/// Channel layer: the instance's channel name comes with its Open; layer messages arrive as
/// events (within credit, like websocket.receive); layer calls go out as layer_ops with an
/// op id and wait for the gateway's layer_result. At most kMaxLayerOps are outstanding: a
/// further call waits for one to be answered. Once the client is gone the gateway has
/// forgotten the connection: waiting calls throw Disconnected (a GroupDiscard returns).
/// Moving (WebSocket, docs/failover.md): events come numbered (Deliver's `seq`). An event is
/// acknowledged, and its credit granted back, once the consumer has finished with it: it
/// asks for the next one (Receive), or saves state while handling it (SaveState). A draining
/// worker hands the connection back: the consumer's next Receive throws HandedOver and the
/// instance ends with REASON_MOVED, its acknowledgements sent before.
/// Lifetime: shared by the link's table and the running coroutine.
class Instance final : public Connection, public std::enable_shared_from_this<Instance> {
 public:
  Instance(uint64_t id, Scope scope, std::string channel_name, std::shared_ptr<InstanceHost> host,
           unsigned loop, boost::asio::io_context& io, const v1::Window& receive_window,
           const v1::Window& send_window, std::chrono::milliseconds close_timeout,
           Metrics& metrics);

  /// Creates the consumer and runs it; tells the host when it has ended.
  void Start(Application& app);

  // From the link, on the instance's loop thread.
  /// `seq`: the event's number (0: not numbered).
  void Deliver(v1::Event&& event, uint64_t seq = 0);
  void Grant(const v1::Window& credit);
  /// The gateway answered a layer call.
  void OnLayerResult(const v1::LayerResult& result);
  /// The gateway is gone: the consumer sees a disconnect, and its sends fail.
  void LinkLost();
  /// The worker is draining: a WebSocket is handed back to the gateway (to move) once its
  /// consumer has finished its event; an HTTP request finishes as usual.
  void Drain();

  Task<Event> Receive() override;
  Task<void> Send(Event event) override;
  Task<std::optional<Event>> ReceiveUntil(std::chrono::steady_clock::time_point deadline) override;
  const std::string& ChannelName() const override { return channel_name_; }
  Task<void> Layer(LayerCall call) override;
  void Unhandled(const LayerMessage& message) override;
  void SaveState(std::string state) override;

  uint64_t id() const { return id_; }
  bool ended() const { return ended_; }

 private:
  struct Inbound {
    Event event;
    size_t bytes;  // what it spent of the receive window's bytes
    uint64_t seq;  // its number, 0: none
  };

  Task<void> Main(Application& app);
  /// Tells the loop's watchdog this connection runs now (and names its consumer if the
  /// watchdog saw it block the loop).
  void NoteRunning();
  /// The next event, taken from the inbox.
  Event Take();
  /// The consumer has finished the event it took last (it asks for another): acknowledges
  /// it and grants its credit back when due.
  void Finish();
  /// Throws HandedOver once the worker drains (the consumer has finished its event).
  void CheckHandOver();
  /// Sends `envelope` with the acknowledgement of the event taken last, if that is news.
  void SendAcked(v1::Envelope&& envelope);
  void PushDisconnect(int code);
  void Wake() { wake_.cancel(); }
  /// The consumer has been told its client is gone; if it has not returned within the close
  /// timeout, its coroutine is cancelled (its pending wait throws operation_aborted).
  void ArmCloseTimeout();
  void Check(const Event& event) const;
  void Emit(v1::Event&& event);

  const uint64_t id_;
  Scope scope_;
  const std::string channel_name_;
  const std::shared_ptr<InstanceHost> host_;
  const unsigned loop_;
  boost::asio::io_context& io_;
  boost::asio::steady_timer wake_;  // expires never; cancel() wakes every waiting coroutine
  BoundedFifo<Inbound> inbox_;
  const std::chrono::milliseconds close_timeout_;
  boost::asio::cancellation_signal cancel_;
  std::unique_ptr<boost::asio::steady_timer> close_timer_;  // only once disconnected
  Metrics& metrics_;
  GaugeShare inbox_bytes_;
  ReceiveWindow receive_window_;
  SendCredit send_credit_;
  // Layer calls sent and not yet answered: op id → the answer, once it came.
  std::unordered_map<uint64_t, std::optional<v1::LayerResult::Status>> layer_calls_;
  uint64_t next_op_ = 0;
  // Events taken and not finished (normally at most one), and their bytes: their credit.
  uint64_t unfinished_bytes_ = 0;
  uint32_t unfinished_ = 0;
  uint64_t taken_seq_ = 0;     // the number of the newest event taken
  uint64_t acked_ = 0;         // acknowledged up to here
  bool handing_over_ = false;  // draining: hand the connection back at the next Receive
  bool handed_over_ = false;   // HandedOver was thrown
  bool cancelled_ = false;
  bool ended_ = false;
  bool gone_ = false;                 // a disconnect is in the inbox or was received
  bool disconnect_received_ = false;  // the consumer has seen it
  // What the consumer has sent, for Check().
  bool started_ = false;   // http.response.start or websocket.accept
  bool finished_ = false;  // last http.response.body or websocket.close
};

}  // namespace sluice::worker
