#include "layer/message.h"

#include <cstdint>
#include <vector>

namespace sluice::layer {
namespace {

constexpr size_t kMaxDepth = 64;  // nesting a message may have (the decoder recurses)

// Whether `bytes` nest arrays and maps at most kMaxDepth deep; false on a truncated header.
// Only the structure is walked: the decoder checks the rest.
bool ShallowEnough(std::string_view bytes) {
  std::vector<uint64_t> open;  // items left in each open array or map
  size_t at = 0;
  auto read = [&](size_t n, uint64_t& value) {
    if (bytes.size() - at < n) return false;
    value = 0;
    for (size_t i = 0; i < n; ++i) value = (value << 8) | static_cast<uint8_t>(bytes[at++]);
    return true;
  };
  while (at < bytes.size()) {
    const auto b = static_cast<uint8_t>(bytes[at++]);
    uint64_t skip = 0, items = 0, n = 0;
    if (b <= 0x7f || b >= 0xe0 || (b >= 0xc0 && b <= 0xc3)) {
    } else if (b <= 0x8f) {
      items = 2 * uint64_t{b & 0x0fu};
    } else if (b <= 0x9f) {
      items = b & 0x0fu;
    } else if (b <= 0xbf) {
      skip = b & 0x1fu;
    } else if (b >= 0xc4 && b <= 0xc6) {  // bin 8/16/32
      if (!read(size_t{1} << (b - 0xc4), skip)) return false;
    } else if (b >= 0xc7 && b <= 0xc9) {  // ext 8/16/32
      if (!read(size_t{1} << (b - 0xc7), skip)) return false;
      ++skip;
    } else if (b == 0xca || b == 0xcb) {
      skip = b == 0xca ? 4 : 8;
    } else if (b >= 0xcc && b <= 0xd3) {  // (u)int 8/16/32/64
      skip = size_t{1} << ((b - 0xcc) % 4);
    } else if (b >= 0xd4 && b <= 0xd8) {  // fixext
      skip = 1 + (size_t{1} << (b - 0xd4));
    } else if (b >= 0xd9 && b <= 0xdb) {  // str 8/16/32
      if (!read(size_t{1} << (b - 0xd9), skip)) return false;
    } else if (b == 0xdc || b == 0xdd) {
      if (!read(b == 0xdc ? 2 : 4, items)) return false;
    } else if (b == 0xde || b == 0xdf) {
      if (!read(b == 0xde ? 2 : 4, n)) return false;
      items = 2 * n;
    }
    if (skip > bytes.size() - at) return false;
    at += skip;
    // This item fills a slot of the innermost open container; a container opens a new level.
    if (!open.empty()) --open.back();
    if (items > 0) {
      if (open.size() == kMaxDepth) return false;
      open.push_back(items);
    }
    while (!open.empty() && open.back() == 0) open.pop_back();
  }
  return true;
}

}  // namespace

Status CheckMessage(const Message& message, std::string* encoded) {
  if (!message.is_object()) return Status::kInvalid;
  auto type = message.find("type");
  if (type == message.end() || !type->is_string()) return Status::kInvalid;
  if (message.contains(kChannelField)) return Status::kInvalid;
  std::string bytes = EncodeMsgpack(message);
  if (bytes.size() > kMaxMessageBytes) return Status::kTooLarge;
  if (!ShallowEnough(bytes)) return Status::kInvalid;  // receivers could not decode it
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
  if (!ShallowEnough(bytes)) return std::nullopt;
  Message message = Message::from_msgpack(bytes.begin(), bytes.end(), /*strict=*/true,
                                          /*allow_exceptions=*/false);
  if (!message.is_object()) return std::nullopt;
  return message;
}

}  // namespace sluice::layer
