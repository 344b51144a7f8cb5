#pragma once

#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>

#include "common/metrics.h"
#include "gateway/link.h"
#include "layer/channel_layer.h"

namespace sluice::gateway {

class Shard;

/// Background channels (Channels' runworker) at the gateway. For every named channel that
/// some ready worker consumes (its Welcome listed it), a puller keeps one Receive pending on
/// the layer while fewer than kMaxDeliveriesPerChannel of the channel's messages are in
/// flight. Each message becomes a delivery: a TYPE_CHANNEL instance opened on a worker that
/// consumes the channel, carrying the message as its one layer_message event with a
/// delivery id. The instance's Close acknowledges it (REASON_DONE, and REASON_APP_ERROR too:
/// a message that makes its consumer fail would fail again). A delivery whose worker
/// rejects it (full, draining) or whose link is lost before the Close goes out again, to any
/// worker that consumes the channel, with the same delivery id: at least once. Deliveries
/// with no worker to go to wait, bounded by the same count, and are retried each tick.
/// A gateway that stops loses what it pulled and had not seen acknowledged.
/// Thread-safety: the shard's thread only (Start and Stop are posted there by the caller).
/// Lifetime: owned by the gateway; deliveries in flight hold what they need of it.
class Background final {
 public:
  struct Counters {
    Counter& delivered;    // instances opened (first deliveries and redeliveries)
    Counter& redelivered;  // deliveries sent again after a rejection or a lost link
    Counter& acknowledged;
    Counter& failed;  // acknowledged by a Close with REASON_APP_ERROR
    Gauge& in_flight;
  };

  Background(Shard& shard, layer::ChannelLayer& layer, LinkPicker& picker, std::string gateway_id,
             Counters counters);
  ~Background();

  /// Starts the tick (every Shard::kSweep) that starts pullers and retries waiting
  /// deliveries. On the shard's thread.
  void Start();
  /// Stops pulling: pending Receives are cancelled. On the shard's thread.
  void Stop();

 private:
  class Delivery;
  struct Puller {
    bool consumed = false;  // some ready worker consumes the channel (as of the last tick)
    bool receiving = false;
    size_t in_flight = 0;                           // pulled and not yet acknowledged
    std::deque<std::shared_ptr<Delivery>> waiting;  // no worker took them yet
  };

  void Tick();
  void Pull(const std::string& channel);
  void OnMessage(const std::string& channel, layer::Status status,
                 const layer::MessagePtr& message);
  /// Opens the delivery on a worker; false when none consumes its channel or has room.
  bool Dispatch(const std::shared_ptr<Delivery>& delivery);
  /// From a Delivery: acknowledged (done) or to be delivered again.
  void Acknowledged(const Delivery& delivery, bool failed);
  void Redeliver(std::shared_ptr<Delivery> delivery);

  Shard& shard_;
  layer::ChannelLayer& layer_;
  LinkPicker& picker_;
  const std::string gateway_id_;
  Counters counters_;
  boost::asio::steady_timer tick_;
  std::unordered_map<std::string, Puller> pullers_;
  uint64_t next_delivery_ = 0;
  bool stopped_ = false;
  // Deliveries call back through this; it is cleared when the Background goes.
  std::shared_ptr<Background*> self_;
};

}  // namespace sluice::gateway
