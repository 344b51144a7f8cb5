#include "gateway/instance_link.h"

#include "gateway/worker_pool.h"

namespace sluice::gateway {

InstanceLink::InstanceLink(uint64_t id, std::shared_ptr<LinkCall> link,
                           const v1::Window& receive_window)
    : id_(id), link_(std::move(link)), credit_(link_->worker_window()), window_(receive_window) {}

bool InstanceLink::Open(v1::Scope&& scope) {
  v1::Envelope envelope;
  envelope.set_connection_id(id_);
  *envelope.mutable_open()->mutable_scope() = std::move(scope);
  return link_->Send(std::move(envelope));
}

void InstanceLink::Send(v1::Event&& event) {
  if (SpendsCredit(event)) credit_.Spend(EventBytes(event));
  v1::Envelope envelope;
  envelope.set_connection_id(id_);
  *envelope.mutable_event() = std::move(event);
  link_->Send(std::move(envelope));  // a failed send is followed by the session's OnLinkLost
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
  link_->Send(std::move(envelope));
  return true;
}

}  // namespace sluice::gateway
