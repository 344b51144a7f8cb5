#include "gateway/instance_link.h"

namespace sluice::gateway {

InstanceLink::InstanceLink(uint64_t id, uint16_t shard, std::shared_ptr<Link> link,
                           const v1::Window& receive_window)
    : id_(id),
      shard_(shard),
      link_(std::move(link)),
      credit_(link_->worker_window()),
      window_(receive_window) {}

bool InstanceLink::Open(v1::Scope&& scope, v1::Event* first, std::string channel_name) {
  v1::Envelope envelope;
  envelope.set_connection_id(id_);
  *envelope.mutable_open()->mutable_scope() = std::move(scope);
  envelope.mutable_open()->set_channel_name(std::move(channel_name));
  if (first) {
    if (SpendsCredit(*first)) credit_.Spend(EventBytes(*first));
    envelope.add_events()->Swap(first);
  }
  return link_->Send(shard_, std::move(envelope));
}

void InstanceLink::Send(v1::Event&& event, uint64_t seq) {
  if (SpendsCredit(event)) credit_.Spend(EventBytes(event));
  v1::Envelope envelope;
  envelope.set_connection_id(id_);
  envelope.set_seq(seq);
  envelope.add_events()->Swap(&event);
  link_->Send(shard_, std::move(envelope));  // a failed send is followed by OnLinkLost
}

void InstanceLink::SendLayerResult(uint64_t op_id, v1::LayerResult::Status status) {
  v1::Envelope envelope;
  envelope.set_connection_id(id_);
  v1::LayerResult* result = envelope.add_layer_results();
  result->set_op_id(op_id);
  result->set_status(status);
  link_->Send(shard_, std::move(envelope));
}

bool InstanceLink::OnReceived(const v1::Event& event) {
  return !SpendsCredit(event) || window_.OnReceived(EventBytes(event));
}

bool InstanceLink::Consumed(size_t bytes) {
  auto grant = window_.OnConsumed(bytes);
  if (!grant) return false;
  v1::Envelope envelope;
  envelope.set_connection_id(id_);
  *envelope.mutable_credit() = *grant;
  link_->Send(shard_, std::move(envelope));
  return true;
}

}  // namespace sluice::gateway
