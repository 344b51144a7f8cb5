#include "gateway/background.h"

#include <boost/asio/bind_executor.hpp>
#include <optional>

#include "common/credit.h"
#include "common/log.h"
#include "common/protocol.h"
#include "gateway/endpoint.h"
#include "gateway/instance_link.h"
#include "gateway/layer_ops.h"
#include "gateway/shard.h"
#include "layer/message.h"

namespace sluice::gateway {
namespace net = boost::asio;

/// One message of a background channel on its way to a worker: an endpoint in the shard's
/// registry while its instance is open, re-opened (same delivery id) when it must go again.
class Background::Delivery final : public Endpoint {
 public:
  Delivery(std::shared_ptr<Background*> owner, std::string channel, std::string id,
           const layer::Message& message)
      : owner_(std::move(owner)),
        channel_(std::move(channel)),
        id_(std::move(id)),
        encoded_(layer::EncodeMsgpack(message)) {}

  const std::string& channel() const { return channel_; }
  const std::string& id() const { return id_; }

  /// Opens a TYPE_CHANNEL instance for the message on `link`, from the shard's thread.
  void Open(Shard& shard, std::shared_ptr<Link> link) {
    shard_ = &shard;
    const uint64_t connection = shard.Register(shared_from_this(), link->generation());
    instance_.emplace(connection, shard.index(), std::move(link), DefaultWindow());
    ops_ = 0;
    v1::Scope scope;
    scope.set_type(v1::Scope::TYPE_CHANNEL);
    scope.set_path(channel_);
    v1::Event event;
    event.mutable_layer_message()->set_message(encoded_);
    event.mutable_layer_message()->set_delivery_id(id_);
    // A link that is ending refuses it; the shard's LinkLost follows and redelivers.
    (void)instance_->Open(std::move(scope), &event, channel_);
  }

  void OnEnvelope(v1::Envelope& envelope) override {
    if (!instance_ || envelope.connection_id() != instance_->id()) return;
    // Credit and events mean nothing here: the instance only sends layer operations.
    for (v1::LayerOp& op : *envelope.mutable_layer_ops()) {
      Background* owner = *owner_;
      if (owner == nullptr) return;
      if (ops_ >= kMaxLayerOps) {
        instance_->SendLayerResult(op.op_id(), v1::LayerResult::STATUS_INVALID);
        continue;
      }
      ++ops_;
      // No channel of its own: group_add and group_discard are refused (INVALID).
      RunLayerOp(owner->layer_, {}, op, shard_->io().get_executor(),
                 [self = std::static_pointer_cast<Delivery>(shared_from_this()),
                  id = instance_->id(), op_id = op.op_id()](v1::LayerResult::Status status) {
                   if (!self->instance_ || self->instance_->id() != id) return;
                   --self->ops_;
                   self->instance_->SendLayerResult(op_id, status);
                 });
    }
    if (!envelope.has_close()) return;
    shard_->Unregister(instance_->id());
    instance_.reset();
    auto self = std::static_pointer_cast<Delivery>(shared_from_this());
    Background* owner = *owner_;
    if (owner == nullptr) return;
    switch (envelope.close().reason()) {
      case v1::Close::REASON_REJECTED:
        return owner->Redeliver(std::move(self));
      case v1::Close::REASON_APP_ERROR:
        SLUICE_LOG(kWarning, "gateway") << "background message " << id_ << " on " << channel_
                                        << " failed in its consumer: " << envelope.close().detail();
        return owner->Acknowledged(*this, true);
      default:
        return owner->Acknowledged(*this, false);
    }
  }

  void OnLinkLost() override {
    // The registry has already let go of this id.
    instance_.reset();
    if (Background* owner = *owner_) {
      owner->Redeliver(std::static_pointer_cast<Delivery>(shared_from_this()));
    }
  }

 private:
  const std::shared_ptr<Background*> owner_;
  const std::string channel_;
  const std::string id_;
  const std::string encoded_;
  Shard* shard_ = nullptr;
  std::optional<InstanceLink> instance_;
  uint32_t ops_ = 0;  // layer operations not yet answered
};

Background::Background(Shard& shard, layer::ChannelLayer& layer, LinkPicker& picker,
                       std::string gateway_id, Counters counters)
    : shard_(shard),
      layer_(layer),
      picker_(picker),
      gateway_id_(std::move(gateway_id)),
      counters_(counters),
      tick_(shard.io()),
      self_(std::make_shared<Background*>(this)) {}

Background::~Background() { *self_ = nullptr; }

void Background::Start() { Tick(); }

void Background::Stop() {
  stopped_ = true;
  tick_.cancel();
  for (auto& [channel, puller] : pullers_) {
    if (puller.receiving) layer_.CloseChannel(channel);  // cancels the pending Receive
  }
}

void Background::Tick() {
  if (stopped_) return;
  for (auto& [channel, puller] : pullers_) puller.consumed = false;
  for (const std::string& channel : picker_.Channels()) pullers_[channel].consumed = true;
  for (auto& [channel, puller] : pullers_) {
    while (!puller.waiting.empty() && Dispatch(puller.waiting.front())) {
      puller.waiting.pop_front();
    }
    Pull(channel);
  }
  tick_.expires_after(Shard::kSweep);
  tick_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) Tick();
  });
}

void Background::Pull(const std::string& channel) {
  Puller& puller = pullers_[channel];
  // Nothing is pulled that no worker would take now: it stays in the layer, where senders
  // meet the channel's capacity.
  if (stopped_ || puller.receiving || puller.in_flight >= kMaxDeliveriesPerChannel ||
      !puller.waiting.empty() || !puller.consumed) {
    return;
  }
  puller.receiving = true;
  layer_.Receive(channel, net::bind_executor(shard_.io(), [owner = self_, channel](
                                                              layer::Status status,
                                                              const layer::MessagePtr& message) {
                   if (Background* self = *owner) self->OnMessage(channel, status, message);
                 }));
}

void Background::OnMessage(const std::string& channel, layer::Status status,
                           const layer::MessagePtr& message) {
  Puller& puller = pullers_[channel];
  puller.receiving = false;
  if (status != layer::Status::kOk || !message) return;
  ++puller.in_flight;
  counters_.in_flight.Add();
  auto delivery = std::make_shared<Delivery>(
      self_, channel, gateway_id_ + "." + std::to_string(++next_delivery_), *message);
  if (!Dispatch(delivery)) puller.waiting.push_back(std::move(delivery));
  Pull(channel);
}

bool Background::Dispatch(const std::shared_ptr<Delivery>& delivery) {
  std::shared_ptr<Link> link = picker_.PickFor(delivery->channel());
  if (!link) return false;
  counters_.delivered.Inc();
  delivery->Open(shard_, std::move(link));
  return true;
}

void Background::Acknowledged(const Delivery& delivery, bool failed) {
  (failed ? counters_.failed : counters_.acknowledged).Inc();
  counters_.in_flight.Sub();
  Puller& puller = pullers_[delivery.channel()];
  --puller.in_flight;
  Pull(delivery.channel());
}

void Background::Redeliver(std::shared_ptr<Delivery> delivery) {
  counters_.redelivered.Inc();
  if (stopped_) return;
  SLUICE_LOG(kInfo, "gateway") << "background message " << delivery->id() << " on "
                               << delivery->channel() << " goes out again";
  // The next tick sends it: by then a lost link no longer admits, and a worker that
  // refused is not asked again in a tight loop.
  pullers_[delivery->channel()].waiting.push_back(std::move(delivery));
}

}  // namespace sluice::gateway
