#include "gateway/websocket_codec.h"

#include <boost/beast/core/detail/base64.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/websocket/detail/hybi13.hpp>
#include <cstring>

#include "common/protocol.h"

namespace sluice::gateway::ws {
namespace http = boost::beast::http;

namespace {

bool IsControl(Opcode opcode) { return static_cast<uint8_t>(opcode) >= 0x8; }

uint64_t BigEndian(const uint8_t* p, size_t n) {
  uint64_t value = 0;
  for (size_t i = 0; i < n; ++i) value = (value << 8) | p[i];
  return value;
}

}  // namespace

FrameReader::Result FrameReader::Fail(uint16_t code, const char* why) {
  error_code_ = code;
  error_ = why;
  message_ = std::string();
  control_ = std::string();
  return Result::kError;
}

FrameReader::Result FrameReader::Next(std::string_view& in) {
  if (error_code_ != 0) return Result::kError;
  for (;;) {
    if (!in_payload_) {
      while (header_size_ < 2) {
        if (in.empty()) return Result::kNeedMore;
        header_[header_size_++] = static_cast<uint8_t>(in.front());
        in.remove_prefix(1);
      }
      // Refuse an unmasked frame before waiting for the rest of its header.
      if ((header_[1] & 0x80) == 0) return Fail(kProtocolError, "unmasked client frame");
      const uint8_t length7 = header_[1] & 0x7F;
      const size_t need = 2 + (length7 == 126 ? 2 : length7 == 127 ? 8 : 0) + 4;
      const size_t take = std::min(need - header_size_, in.size());
      std::memcpy(header_ + header_size_, in.data(), take);
      header_size_ += static_cast<uint8_t>(take);
      in.remove_prefix(take);
      if (header_size_ < need) return Result::kNeedMore;
      if (HeaderDone() == Result::kError) return Result::kError;
    }
    if (remaining_ > 0) {
      if (in.empty()) return Result::kNeedMore;
      const size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, in.size()));
      std::string& out = IsControl(opcode_) ? control_ : message_;
      const size_t before = out.size();
      Unmask(in.data(), n, out);
      in.remove_prefix(n);
      remaining_ -= n;
      if (!IsControl(opcode_) && message_opcode_ == Opcode::kText &&
          !utf8_.Feed(std::string_view(out).substr(before))) {
        return Fail(kInvalidPayload, "text is not valid UTF-8");
      }
      if (remaining_ > 0) return Result::kNeedMore;
    }
    const Result done = FrameDone();
    if (done != Result::kNeedMore) return done;
  }
}

FrameReader::Result FrameReader::HeaderDone() {
  header_size_ = 0;
  const uint8_t b0 = header_[0];
  const uint8_t b1 = header_[1];
  fin_ = (b0 & 0x80) != 0;
  if ((b0 & 0x70) != 0) return Fail(kProtocolError, "reserved bits set (no extension agreed)");
  const uint8_t op = b0 & 0x0F;
  if (op > 0xA || (op > 0x2 && op < 0x8)) return Fail(kProtocolError, "reserved opcode");
  const auto opcode = static_cast<Opcode>(op);
  const uint8_t length7 = b1 & 0x7F;
  uint64_t length = length7;
  size_t at = 2;
  if (length7 == 126) {
    length = BigEndian(header_ + 2, 2);
    at = 4;
    if (length < 126) return Fail(kProtocolError, "length not in its shortest form");
  } else if (length7 == 127) {
    length = BigEndian(header_ + 2, 8);
    at = 10;
    if ((length >> 63) != 0) return Fail(kProtocolError, "length has its top bit set");
    if (length <= 0xFFFF) return Fail(kProtocolError, "length not in its shortest form");
  }
  std::memcpy(mask_, header_ + at, 4);
  mask_pos_ = 0;
  if (IsControl(opcode)) {
    if (!fin_) return Fail(kProtocolError, "fragmented control frame");
    if (length > kMaxControlPayload) return Fail(kProtocolError, "control frame too long");
    control_.clear();
  } else {
    if (opcode == Opcode::kContinuation) {
      if (!in_message_) return Fail(kProtocolError, "continuation outside a message");
    } else {
      if (in_message_) return Fail(kProtocolError, "new message inside a fragmented one");
      in_message_ = true;
      message_opcode_ = opcode;
      utf8_.Reset();
      message_.clear();
    }
    if (length > max_message_ - message_.size()) return Fail(kTooBig, "message too big");
    if (fin_ && message_.empty()) message_.reserve(static_cast<size_t>(length));
  }
  opcode_ = opcode;
  remaining_ = length;
  in_payload_ = true;
  return Result::kNeedMore;
}

FrameReader::Result FrameReader::FrameDone() {
  in_payload_ = false;
  switch (opcode_) {
    case Opcode::kContinuation:
    case Opcode::kText:
    case Opcode::kBinary:
      if (!fin_) return Result::kNeedMore;
      if (message_opcode_ == Opcode::kText && !utf8_.complete()) {
        return Fail(kInvalidPayload, "text is not valid UTF-8");
      }
      in_message_ = false;
      return Result::kMessage;
    case Opcode::kPing:
      return Result::kPing;
    case Opcode::kPong:
      return Result::kPong;
    case Opcode::kClose:
      if (control_.size() == 1) return Fail(kProtocolError, "close payload of one byte");
      close_code_ = kNoStatus;
      if (control_.size() >= 2) {
        const auto code =
            static_cast<uint16_t>(BigEndian(reinterpret_cast<const uint8_t*>(control_.data()), 2));
        if (!ValidCloseCode(code)) return Fail(kProtocolError, "invalid close code");
        if (!IsValidUtf8(close_reason())) return Fail(kInvalidPayload, "close reason not UTF-8");
        close_code_ = code;
      }
      return Result::kClose;
  }
  return Fail(kProtocolError, "reserved opcode");
}

std::string_view FrameReader::close_reason() const {
  return control_.size() > 2 ? std::string_view(control_).substr(2) : std::string_view();
}

std::string FrameReader::TakeMessage() {
  std::string out = std::move(message_);
  message_ = std::string();
  return out;
}

void FrameReader::Unmask(const char* data, size_t n, std::string& out) {
  const size_t start = out.size();
  out.append(data, n);
  auto* p = reinterpret_cast<uint8_t*>(out.data() + start);
  uint8_t rotated[8];
  for (size_t k = 0; k < 8; ++k) rotated[k] = mask_[(mask_pos_ + k) & 3];
  uint64_t mask;
  std::memcpy(&mask, rotated, 8);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t word;
    std::memcpy(&word, p + i, 8);
    word ^= mask;
    std::memcpy(p + i, &word, 8);
  }
  for (; i < n; ++i) p[i] ^= rotated[i & 7];
  mask_pos_ = static_cast<uint8_t>((mask_pos_ + n) & 3);
}

std::string FrameHeader(Opcode opcode, uint64_t payload_size) {
  std::string header;
  header.push_back(static_cast<char>(0x80 | static_cast<uint8_t>(opcode)));
  if (payload_size < 126) {
    header.push_back(static_cast<char>(payload_size));
  } else if (payload_size <= 0xFFFF) {
    header.push_back(static_cast<char>(126));
    header.push_back(static_cast<char>(payload_size >> 8));
    header.push_back(static_cast<char>(payload_size & 0xFF));
  } else {
    header.push_back(static_cast<char>(127));
    for (int shift = 56; shift >= 0; shift -= 8) {
      header.push_back(static_cast<char>((payload_size >> shift) & 0xFF));
    }
  }
  return header;
}

std::string ClosePayload(uint16_t code, std::string_view reason) {
  if (reason.size() > kMaxControlPayload - 2) {
    size_t cut = kMaxControlPayload - 2;
    while (cut > 0 && (static_cast<uint8_t>(reason[cut]) & 0xC0) == 0x80) --cut;
    reason = reason.substr(0, cut);
  }
  std::string payload;
  payload.push_back(static_cast<char>(code >> 8));
  payload.push_back(static_cast<char>(code & 0xFF));
  payload.append(reason);
  return payload;
}

bool ValidCloseCode(uint16_t code) { return SendableCloseCode(code); }

absl::StatusOr<std::string> AcceptKey(const http::request_header<>& request) {
  if (request[http::field::sec_websocket_version] != "13") {
    return absl::FailedPreconditionError("Sec-WebSocket-Version must be 13");
  }
  const auto key = request[http::field::sec_websocket_key];
  char decoded[18];
  if (key.size() != 24 ||
      boost::beast::detail::base64::decode(decoded, key.data(), key.size()).first != 16) {
    return absl::InvalidArgumentError("Sec-WebSocket-Key is not 16 bytes in base64");
  }
  boost::beast::websocket::detail::sec_ws_accept_type accept;
  boost::beast::websocket::detail::make_sec_ws_accept(accept, key);
  return std::string(accept.data(), accept.size());
}

std::string HandshakeResponse(std::string_view accept_key, const v1::WebSocketAccept& accept) {
  std::string out =
      "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
      "sec-websocket-accept: ";
  out += accept_key;
  out += "\r\n";
  if (!accept.subprotocol().empty()) {
    out += "sec-websocket-protocol: ";
    out += accept.subprotocol();
    out += "\r\n";
  }
  for (const v1::Header& header : accept.headers()) {
    const std::string& name = header.name();
    if (IEquals(name, "upgrade") || IEquals(name, "connection") ||
        IEquals(name, "sec-websocket-accept") || IEquals(name, "sec-websocket-protocol") ||
        IEquals(name, "sec-websocket-extensions")) {
      continue;  // ours to set; no extension is ever agreed
    }
    out += name;
    out += ": ";
    out += header.value();
    out += "\r\n";
  }
  out += "server: sluice\r\n\r\n";
  return out;
}

}  // namespace sluice::gateway::ws
