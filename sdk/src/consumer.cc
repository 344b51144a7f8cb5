#include "sluice/consumer.h"

#include <stdexcept>

#include "sluice/channel_consumer.h"
#include "sluice/layer.h"

namespace sluice {

std::string EncodeLayerMessage(const Message& message) {
  const auto type = message.is_object() ? message.find("type") : message.end();
  if (type == message.end() || !type->is_string()) {
    throw std::invalid_argument("a channel-layer message is an object with a string \"type\"");
  }
  const std::vector<uint8_t> bytes = Message::to_msgpack(message);
  if (bytes.size() > kMaxLayerMessageBytes) {
    throw MessageTooLarge("channel-layer message of " + std::to_string(bytes.size()) +
                          " bytes; the limit is " + std::to_string(kMaxLayerMessageBytes));
  }
  return {bytes.begin(), bytes.end()};
}

// Not coroutines: they hand back the connection's awaitable, so a call costs no frame of
// theirs. A message that cannot be sent throws here, before anything goes to the gateway.
Task<void> Consumer::GroupAdd(std::string group) {
  LayerCall call;
  call.kind = LayerCall::Kind::kGroupAdd;
  call.target = std::move(group);
  return connection_->Layer(std::move(call));
}

Task<void> Consumer::GroupDiscard(std::string group) {
  LayerCall call;
  call.kind = LayerCall::Kind::kGroupDiscard;
  call.target = std::move(group);
  return connection_->Layer(std::move(call));
}

Task<void> Consumer::GroupSend(std::string group, const Message& message) {
  LayerCall call;
  call.kind = LayerCall::Kind::kGroupSend;
  call.target = std::move(group);
  call.message = EncodeLayerMessage(message);
  return connection_->Layer(std::move(call));
}

Task<void> Consumer::ChannelSend(std::string channel, const Message& message) {
  LayerCall call;
  call.kind = LayerCall::Kind::kSend;
  call.target = std::move(channel);
  call.message = EncodeLayerMessage(message);
  return connection_->Layer(std::move(call));
}

void Consumer::On(std::string type, MessageHandler handler) {
  handlers_.insert_or_assign(std::move(type), std::move(handler));
}

Task<void> Consumer::Dispatch(const LayerMessage& message) {
  const auto type = message.message.find("type");
  if (type != message.message.end() && type->is_string()) {
    const auto handler = handlers_.find(type->get_ref<const std::string&>());
    if (handler != handlers_.end()) {
      co_await handler->second(message.message);
      co_return;
    }
  }
  connection_->Unhandled(message);
}

Task<void> Consumer::JoinGroups() {
  for (std::string& group : Groups()) co_await GroupAdd(std::move(group));
}

Task<void> ChannelConsumer::Run() {
  Event event = co_await Receive();
  if (std::holds_alternative<HttpDisconnect>(event)) throw Disconnected("link lost");
  auto* message = std::get_if<LayerMessage>(&event);
  if (message == nullptr) {
    throw std::logic_error("unexpected event for a channel consumer: " +
                           std::string(TypeName(event)));
  }
  delivery_id_ = message->delivery_id;
  co_await Dispatch(*message);
}

}  // namespace sluice
