#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "common/credit.h"
#include "sluice/consumer.h"
#include "sluice/v1/link.pb.h"
#include "worker/metrics.h"

namespace sluice::worker {

class LinkSession;

/// The runtime's side of one application instance (one client connection): its inbox of
/// events from the gateway, its credit both ways, and the checks that keep what the consumer
/// sends valid ASGI. Everything runs on the instance's strand; the link reaches it only by
/// posting there. The inbox holds at most the receive window (see link.proto, Window) plus
/// one disconnect event. Lifetime: shared by the link's table and the running coroutine.
class Instance final : public Connection, public std::enable_shared_from_this<Instance> {
 public:
  Instance(uint64_t id, Scope scope, std::shared_ptr<LinkSession> link,
           boost::asio::any_io_executor strand, const v1::Window& receive_window,
           const v1::Window& send_window, std::chrono::milliseconds close_timeout,
           Metrics& metrics);

  /// Creates the consumer and runs it on the strand; tells the link when it has ended.
  void Start(Application& app);

  // From the link, any thread.
  void Deliver(v1::Event&& event);
  void Grant(const v1::Window& credit);
  /// The gateway is gone: the consumer sees a disconnect, and its sends fail.
  void LinkLost();

  Task<Event> Receive() override;
  Task<void> Send(Event event) override;

 private:
  Task<void> Main(Application& app);
  void DeliverOnStrand(v1::Event&& event);
  void PushDisconnect();
  /// The consumer has been told its client is gone; if it has not returned within the close
  /// timeout, its coroutine is cancelled (its pending wait throws operation_aborted).
  void ArmCloseTimeout();
  void Check(const Event& event) const;

  const uint64_t id_;
  Scope scope_;
  const std::shared_ptr<LinkSession> link_;
  boost::asio::any_io_executor strand_;
  boost::asio::steady_timer receive_wake_;
  boost::asio::steady_timer send_wake_;
  std::vector<Event> inbox_;  // FIFO; small: bounded by the receive window
  size_t inbox_head_ = 0;
  const std::chrono::milliseconds close_timeout_;
  boost::asio::cancellation_signal cancel_;
  std::unique_ptr<boost::asio::steady_timer> close_timer_;  // only once disconnected
  bool cancelled_ = false;
  bool ended_ = false;
  Metrics& metrics_;
  GaugeShare inbox_bytes_;
  ReceiveWindow receive_window_;
  SendCredit send_credit_;
  bool gone_ = false;                 // a disconnect is in the inbox or was received
  bool disconnect_received_ = false;  // the consumer has seen it
  // What the consumer has sent, for Check().
  bool started_ = false;   // http.response.start or websocket.accept
  bool finished_ = false;  // last http.response.body or websocket.close
};

}  // namespace sluice::worker
