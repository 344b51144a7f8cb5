#include "layer/message.h"

#include <cstdint>
#include <vector>

namespace sluice::layer {

Status CheckMessage(const Message& message, std::string* encoded) {
  if (!message.is_object()) return Status::kInvalid;
  auto type = message.find("type");
  if (type == message.end() || !type->is_string()) return Status::kInvalid;
  if (message.contains(kChannelField)) return Status::kInvalid;
  std::string bytes = EncodeMsgpack(message);
  if (bytes.size() > kMaxMessageBytes) return Status::kTooLarge;
  if (encoded) *encoded = std::move(bytes);
  return Status::kOk;
}

std::string EncodeMsgpack(const Message& message) {
  std::string out;
  Message::to_msgpack(message, nlohmann::detail::output_adapter<char>(out));
  return out;
}

std::optional<Message> DecodeMsgpack(std::string_view bytes) {
  // Untrusted: anyone who can write to Redis can put anything in a queue.
  Message message = Message::from_msgpack(bytes.begin(), bytes.end(), /*strict=*/true,
                                          /*allow_exceptions=*/false);
  if (!message.is_object()) return std::nullopt;
  return message;
}

}  // namespace sluice::layer
