#include "gateway/websocket_codec.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sluice::gateway::ws {
namespace {

using Result = FrameReader::Result;

// A client frame: masked. `length_form` forces a longer length encoding than needed.
std::string Frame(uint8_t first_byte, std::string_view payload, bool masked = true,
                  int length_form = 0) {
  std::string frame;
  frame.push_back(static_cast<char>(first_byte));
  const uint8_t mask_bit = masked ? 0x80 : 0;
  const size_t n = payload.size();
  if (length_form == 0 && n < 126) {
    frame.push_back(static_cast<char>(mask_bit | n));
  } else if (length_form <= 16 && n <= 0xFFFF) {
    frame.push_back(static_cast<char>(mask_bit | 126));
    frame.push_back(static_cast<char>(n >> 8));
    frame.push_back(static_cast<char>(n & 0xFF));
  } else {
    frame.push_back(static_cast<char>(mask_bit | 127));
    for (int shift = 56; shift >= 0; shift -= 8)
      frame.push_back(static_cast<char>((n >> shift) & 0xFF));
  }
  const uint8_t mask[4] = {0xA1, 0x02, 0xF3, 0x44};
  if (masked) frame.append(reinterpret_cast<const char*>(mask), 4);
  for (size_t i = 0; i < n; ++i) frame.push_back(masked ? payload[i] ^ mask[i % 4] : payload[i]);
  return frame;
}

std::string Text(std::string_view payload, bool fin = true) {
  return Frame((fin ? 0x80 : 0) | 0x1, payload);
}

struct Seen {
  std::vector<std::string> messages;
  std::vector<std::string> pings;
  std::vector<uint16_t> closes;
  uint16_t error = 0;
};

// Feeds `bytes` in pieces of `step` and collects what the reader reports.
Seen Read(const std::string& bytes, size_t step = std::string::npos, uint64_t max = 1 << 20) {
  FrameReader reader(max);
  Seen seen;
  for (size_t at = 0; at < bytes.size() && seen.error == 0;) {
    std::string_view in = std::string_view(bytes).substr(at, step);
    const size_t offered = in.size();
    for (;;) {
      const Result result = reader.Next(in);
      if (result == Result::kNeedMore) break;
      if (result == Result::kMessage) seen.messages.push_back(reader.TakeMessage());
      if (result == Result::kPing) seen.pings.push_back(reader.control());
      if (result == Result::kClose) seen.closes.push_back(reader.close_code());
      if (result == Result::kError) {
        seen.error = reader.error_code();
        break;
      }
    }
    at += offered - in.size();
    if (in.size() == offered && seen.error == 0 && !in.empty()) break;  // no progress
  }
  return seen;
}

TEST(FrameReaderTest, MessagesAtEveryPieceSize) {
  const std::string long_text(70000, 'L');  // a 64-bit length
  const std::string medium(300, 'm');       // a 16-bit length
  const std::string bytes = Text("hello") + Frame(0x82, std::string("\0\xFF", 2)) + Text(medium) +
                            Text(long_text) + Text("");
  for (size_t step : {size_t{1}, size_t{2}, size_t{3}, size_t{7}, size_t{64}, std::string::npos}) {
    const Seen seen = Read(bytes, step);
    ASSERT_EQ(seen.error, 0) << step;
    ASSERT_EQ(seen.messages.size(), 5u) << step;
    EXPECT_EQ(seen.messages[0], "hello");
    EXPECT_EQ(seen.messages[1], std::string("\0\xFF", 2));
    EXPECT_EQ(seen.messages[2], medium);
    EXPECT_EQ(seen.messages[3], long_text);
    EXPECT_EQ(seen.messages[4], "");
  }
}

TEST(FrameReaderTest, FragmentsWithAControlFrameBetween) {
  const Seen seen = Read(Text("frag", false) + Frame(0x89, "ping!") + Frame(0x80, "ment"), 1);
  ASSERT_EQ(seen.error, 0);
  ASSERT_EQ(seen.messages.size(), 1u);
  EXPECT_EQ(seen.messages[0], "fragment");
  ASSERT_EQ(seen.pings.size(), 1u);
  EXPECT_EQ(seen.pings[0], "ping!");
}

TEST(FrameReaderTest, BinaryFlagOfTheFirstFragmentHolds) {
  FrameReader reader(100);
  std::string bytes = Frame(0x02, "ab") + Frame(0x80, "cd");
  std::string_view in = bytes;
  EXPECT_EQ(reader.Next(in), Result::kMessage);
  EXPECT_TRUE(reader.binary());
  EXPECT_EQ(reader.TakeMessage(), "abcd");
}

TEST(FrameReaderTest, CloseCodesAndReasons) {
  auto close = [](std::string payload) { return Read(Frame(0x88, payload)); };
  EXPECT_EQ(close("").closes, std::vector<uint16_t>{kNoStatus});
  for (uint16_t ok : {1000, 1001, 1003, 1007, 1011, 1012, 3000, 3999, 4000, 4999}) {
    std::string payload{static_cast<char>(ok >> 8), static_cast<char>(ok & 0xFF)};
    EXPECT_EQ(close(payload + "why").closes, std::vector<uint16_t>{ok}) << ok;
  }
  for (uint16_t bad : {0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535}) {
    std::string payload{static_cast<char>(bad >> 8), static_cast<char>(bad & 0xFF)};
    EXPECT_EQ(close(payload).error, kProtocolError) << bad;
  }
  EXPECT_EQ(close("x").error, kProtocolError) << "a one-byte close payload";
  EXPECT_EQ(close(std::string("\x03\xe8\xC0\xAF", 4)).error, kInvalidPayload)
      << "a reason that is not UTF-8";
}

TEST(FrameReaderTest, ProtocolErrors) {
  EXPECT_EQ(Read(Frame(0x81, "x", /*masked=*/false)).error, kProtocolError);
  EXPECT_EQ(Read(Frame(0xC1, "x")).error, kProtocolError) << "RSV1 without an extension";
  EXPECT_EQ(Read(Frame(0xA1, "x")).error, kProtocolError) << "RSV2";
  EXPECT_EQ(Read(Frame(0x83, "x")).error, kProtocolError) << "reserved data opcode";
  EXPECT_EQ(Read(Frame(0x8B, "x")).error, kProtocolError) << "reserved control opcode";
  EXPECT_EQ(Read(Frame(0x09, "x")).error, kProtocolError) << "fragmented ping";
  EXPECT_EQ(Read(Frame(0x89, std::string(126, 'p'))).error, kProtocolError) << "long ping";
  EXPECT_EQ(Read(Frame(0x80, "x")).error, kProtocolError) << "continuation with no message";
  EXPECT_EQ(Read(Text("a", false) + Text("b")).error, kProtocolError) << "message inside one";
  EXPECT_EQ(Read(Frame(0x81, "short", true, 16)).error, kProtocolError) << "16-bit length < 126";
  EXPECT_EQ(Read(Frame(0x81, std::string(200, 'x'), true, 64)).error, kProtocolError)
      << "64-bit length < 65536";
}

TEST(FrameReaderTest, InvalidUtf8FailsBeforeTheMessageIsWhole) {
  FrameReader reader(1 << 20);
  // The first fragment already holds an impossible byte: refused without the rest.
  const std::string first = Text("fine \xFF", false);
  std::string_view in = first;
  EXPECT_EQ(reader.Next(in), Result::kError);
  EXPECT_EQ(reader.error_code(), kInvalidPayload);
  // Split characters across fragments are fine; an unfinished one at the end is not.
  EXPECT_EQ(Read(Text("caf\xC3", false) + Frame(0x80, "\xA9")).messages,
            std::vector<std::string>{"caf\xC3\xA9"});
  EXPECT_EQ(Read(Text("caf\xC3")).error, kInvalidPayload);
  EXPECT_EQ(Read(Frame(0x82, "\xFF")).error, 0) << "binary is not checked";
}

TEST(FrameReaderTest, TooBigCountsEveryFragment) {
  EXPECT_EQ(Read(Text(std::string(11, 'x')), std::string::npos, 10).error, kTooBig);
  EXPECT_EQ(Read(Text(std::string(10, 'x')), std::string::npos, 10).error, 0);
  EXPECT_EQ(Read(Text("123456", false) + Frame(0x80, "12345"), std::string::npos, 10).error,
            kTooBig);
}

TEST(FrameReaderTest, AfterAnErrorNothingMoreIsRead) {
  FrameReader reader(100);
  std::string bytes = Frame(0x81, "x", false) + Text("later");
  std::string_view in = bytes;
  EXPECT_EQ(reader.Next(in), Result::kError);
  EXPECT_EQ(reader.Next(in), Result::kError);
}

TEST(FrameHeaderTest, LengthForms) {
  EXPECT_EQ(FrameHeader(Opcode::kText, 5), std::string("\x81\x05", 2));
  EXPECT_EQ(FrameHeader(Opcode::kBinary, 126), std::string("\x82\x7E\x00\x7E", 4));
  EXPECT_EQ(FrameHeader(Opcode::kText, 65535), std::string("\x81\x7E\xFF\xFF", 4));
  EXPECT_EQ(FrameHeader(Opcode::kText, 65536),
            std::string("\x81\x7F\x00\x00\x00\x00\x00\x01\x00\x00", 10));
  EXPECT_EQ(FrameHeader(Opcode::kClose, 0), std::string("\x88\x00", 2));
}

TEST(ClosePayloadTest, CodeThenReasonCutOnACharacterBoundary) {
  EXPECT_EQ(ClosePayload(1000, "bye"), std::string("\x03\xE8", 2) + "bye");
  std::string long_reason;
  for (int i = 0; i < 60; ++i) long_reason += "\xC3\xA9";  // 120 bytes of é
  long_reason += "\xE2\x82\xAC";                           // 123: fits exactly
  EXPECT_EQ(ClosePayload(1000, long_reason).size(), 125u);
  long_reason += "\xE2\x82\xAC";
  const std::string cut = ClosePayload(1000, long_reason);
  EXPECT_LE(cut.size(), 125u);
  EXPECT_TRUE(IsValidUtf8(cut.substr(2)));
}

TEST(HandshakeTest, AcceptKeyOfTheRfcExample) {
  boost::beast::http::request_header<> request;
  request.set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
  request.set("Sec-WebSocket-Version", "13");
  auto key = AcceptKey(request);
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(*key, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(HandshakeTest, BadKeysAndVersions) {
  boost::beast::http::request_header<> request;
  request.set("Sec-WebSocket-Version", "13");
  request.set("Sec-WebSocket-Key", "short");
  EXPECT_TRUE(absl::IsInvalidArgument(AcceptKey(request).status()));
  request.set("Sec-WebSocket-Key", "!!!!!!!!!!!!!!!!!!!!!!!!");
  EXPECT_TRUE(absl::IsInvalidArgument(AcceptKey(request).status()));
  request.set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
  request.set("Sec-WebSocket-Version", "8");
  EXPECT_TRUE(absl::IsFailedPrecondition(AcceptKey(request).status()));
}

TEST(HandshakeTest, ResponseKeepsOurHeadersOurs) {
  v1::WebSocketAccept accept;
  accept.set_subprotocol("chat");
  auto* header = accept.add_headers();
  header->set_name("x-app");
  header->set_value("1");
  header = accept.add_headers();
  header->set_name("Sec-WebSocket-Extensions");
  header->set_value("permessage-deflate");
  const std::string response = HandshakeResponse("KEY", accept);
  EXPECT_EQ(response,
            "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
            "sec-websocket-accept: KEY\r\nsec-websocket-protocol: chat\r\nx-app: 1\r\n"
            "server: sluice\r\n\r\n");
}

}  // namespace
}  // namespace sluice::gateway::ws
