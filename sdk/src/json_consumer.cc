#include "sluice/json_consumer.h"

namespace sluice {

std::optional<Message> ParseJson(std::string_view text, size_t max_depth) {
  // Depth first, outside strings: cheap, and nothing deep is ever built.
  size_t depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return std::nullopt;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  Message content = Message::parse(text, nullptr, /*allow_exceptions=*/false);
  if (content.is_discarded()) return std::nullopt;
  return content;
}

Task<void> JsonWebSocketConsumer::ReceiveJson(Message /*content*/) { co_return; }

Task<void> JsonWebSocketConsumer::SendJson(const Message& content) {
  // dump() never throws on invalid UTF-8 in strings: it substitutes U+FFFD.
  return SendText(content.dump(-1, ' ', false, Message::error_handler_t::replace));
}

Task<void> JsonWebSocketConsumer::OnText(std::string text) {
  std::optional<Message> content = ParseJson(text);
  if (!content) {
    co_await Close(1007, "invalid JSON");
    co_return;
  }
  co_await ReceiveJson(std::move(*content));
}

Task<void> JsonWebSocketConsumer::OnBinary(std::string /*bytes*/) {
  co_await Close(1003, "binary messages are not accepted: send JSON text");
}

}  // namespace sluice
