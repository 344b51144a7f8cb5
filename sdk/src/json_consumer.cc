#include "sluice/json_consumer.h"

namespace sluice {

Task<void> JsonWebSocketConsumer::ReceiveJson(Message /*content*/) { co_return; }

Task<void> JsonWebSocketConsumer::SendJson(const Message& content) {
  // dump() never throws on invalid UTF-8 in strings: it substitutes U+FFFD.
  return SendText(content.dump(-1, ' ', false, Message::error_handler_t::replace));
}

Task<void> JsonWebSocketConsumer::OnText(std::string text) {
  Message content = Message::parse(text, nullptr, /*allow_exceptions=*/false);
  if (content.is_discarded()) {
    co_await Close(1007, "invalid JSON");
    co_return;
  }
  co_await ReceiveJson(std::move(content));
}

Task<void> JsonWebSocketConsumer::OnBinary(std::string /*bytes*/) {
  co_await Close(1003, "binary messages are not accepted: send JSON text");
}

}  // namespace sluice
