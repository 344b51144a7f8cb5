#pragma once

#include <boost/beast/http/message.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/protocol.h"
#include "common/text.h"
#include "sluice/v1/link.pb.h"

namespace sluice::gateway::ws {

/// The server side of RFC 6455, without extensions: what the WebSocket session needs to
/// read a client's frames and to write its own. Pure functions and a byte-driven parser: no
/// I/O, so it is unit-tested and fuzzed directly.

enum class Opcode : uint8_t {
  kContinuation = 0x0,
  kText = 0x1,
  kBinary = 0x2,
  kClose = 0x8,
  kPing = 0x9,
  kPong = 0xA,
};

using namespace ::sluice::ws_close;  // ws::kNormal, ws::kProtocolError, ...

/// Largest payload of a control frame (ping, pong, close).
inline constexpr size_t kMaxControlPayload = 125;

/// Reads what a client sends, a byte stream in, messages and control frames out. Checks
/// every rule a server must (RFC 6455 5.1-5.5, 7.4): frames masked, no reserved bits or
/// opcodes, control frames short and unfragmented, continuations only inside a message,
/// lengths in their shortest form, text valid UTF-8 (checked as it arrives, so a bad message
/// fails before it is read whole), close codes and reasons valid, messages at most
/// `max_message` bytes. Payload is unmasked straight into the message being assembled: one
/// copy from the read buffer, none afterwards.
/// Thread-safety: none; one per connection.
class FrameReader final {
 public:
  enum class Result {
    kNeedMore,  // `in` was used up; call again with more
    kMessage,   // a whole message: TakeMessage(), binary()
    kPing,      // control(): the ping's payload
    kPong,
    kClose,  // close_code() (kNoStatus when none), close_reason()
    kError,  // error_code(): the close code to fail the connection with; error()
  };

  explicit FrameReader(uint64_t max_message) : max_message_(max_message) {}

  /// Consumes bytes from the front of `in`, up to the first thing to act on. After kError
  /// it consumes nothing more.
  Result Next(std::string_view& in);

  std::string TakeMessage();
  bool binary() const { return message_opcode_ == Opcode::kBinary; }
  const std::string& control() const { return control_; }
  uint16_t close_code() const { return close_code_; }
  std::string_view close_reason() const;
  uint16_t error_code() const { return error_code_; }
  const char* error() const { return error_; }
  /// Whether a message is partly received (its bytes are held here).
  bool in_message() const { return in_message_; }

 private:
  Result Fail(uint16_t code, const char* why);
  Result HeaderDone();
  Result FrameDone();
  void Unmask(const char* data, size_t n, std::string& out);

  const uint64_t max_message_;
  uint8_t header_[14];
  uint8_t header_size_ = 0;  // bytes of the current header received
  uint8_t mask_[4] = {};
  uint8_t mask_pos_ = 0;
  bool in_payload_ = false;
  bool fin_ = false;
  Opcode opcode_ = Opcode::kContinuation;  // of the current frame
  uint64_t remaining_ = 0;                 // payload bytes of the current frame still due
  bool in_message_ = false;                // a data message has begun and not ended
  Opcode message_opcode_ = Opcode::kText;
  std::string message_;
  Utf8Validator utf8_;
  std::string control_;
  uint16_t close_code_ = kNoStatus;
  uint16_t error_code_ = 0;
  const char* error_ = nullptr;
};

/// The header of an unmasked, unfragmented server frame carrying `payload_size` bytes.
std::string FrameHeader(Opcode opcode, uint64_t payload_size);

/// A close frame's payload: the code, then the reason cut to fit in a control frame (on a
/// UTF-8 character boundary).
std::string ClosePayload(uint16_t code, std::string_view reason);

/// Whether a client may send `code` in a close frame (RFC 6455 7.4; the IANA registry).
bool ValidCloseCode(uint16_t code);

/// Checks a WebSocket upgrade request (RFC 6455 4.2.1) and returns its Sec-WebSocket-Accept
/// value. InvalidArgument for a malformed key (400); FailedPrecondition for a version other
/// than 13 (426 with Sec-WebSocket-Version: 13).
absl::StatusOr<std::string> AcceptKey(const boost::beast::http::request_header<>& request);

/// The 101 response that completes the handshake, with the application's subprotocol and
/// extra headers.
std::string HandshakeResponse(std::string_view accept_key, const v1::WebSocketAccept& accept);

}  // namespace sluice::gateway::ws
