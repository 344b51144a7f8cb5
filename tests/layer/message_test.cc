#include "layer/message.h"

#include <gtest/gtest.h>

#include <string>

namespace sluice::layer {
namespace {

std::string Bytes(std::initializer_list<unsigned char> bytes) {
  return std::string(bytes.begin(), bytes.end());
}

// The bytes Python writes: msgpack.packb({"type": "x", ...}, use_bin_type=True).
TEST(MessageTest, EncodesAsPythonMsgpackWithBinTypes) {
  EXPECT_EQ(EncodeMsgpack(Message{{"type", "x"}}),
            Bytes({0x81, 0xa4, 't', 'y', 'p', 'e', 0xa1, 'x'}));
  Message bytes = {{"b", Message::binary({1, 2})}};
  EXPECT_EQ(EncodeMsgpack(bytes), Bytes({0x81, 0xa1, 'b', 0xc4, 0x02, 0x01, 0x02}));
  EXPECT_EQ(EncodeMsgpack(Message{{"n", 300}}), Bytes({0x81, 0xa1, 'n', 0xcd, 0x01, 0x2c}));
  EXPECT_EQ(EncodeMsgpack(Message{{"n", nullptr}}), Bytes({0x81, 0xa1, 'n', 0xc0}));
}

TEST(MessageTest, DecodesPythonBytesAndRoundTrips) {
  // {"type": "t", "data": b"\x00\xff", "list": [1, -1, 1.5, True, None]}
  const std::string python =
      Bytes({0x83, 0xa4, 't',  'y',  'p',  'e',  0xa1, 't', 0xa4, 'd', 'a',  't',
             'a',  0xc4, 0x02, 0x00, 0xff, 0xa4, 'l',  'i', 's',  't', 0x95, 0x01,
             0xff, 0xcb, 0x3f, 0xf8, 0,    0,    0,    0,   0,    0,   0xc3, 0xc0});
  std::optional<Message> message = DecodeMsgpack(python);
  ASSERT_TRUE(message);
  EXPECT_EQ((*message)["type"], "t");
  ASSERT_TRUE((*message)["data"].is_binary());
  EXPECT_EQ((*message)["data"], Message::binary({0x00, 0xff}));
  EXPECT_EQ((*message)["list"], Message::parse("[1, -1, 1.5, true, null]"));
  EXPECT_EQ(DecodeMsgpack(EncodeMsgpack(*message)), message);
}

TEST(MessageTest, RefusesWhatIsNotAMap) {
  EXPECT_FALSE(DecodeMsgpack(Bytes({0x93, 1, 2, 3})));     // an array
  EXPECT_FALSE(DecodeMsgpack(Bytes({0x82, 0xa1, 'a'})));   // truncated
  EXPECT_FALSE(DecodeMsgpack(Bytes({0x81, 0x01, 0x02})));  // an integer key
  EXPECT_FALSE(DecodeMsgpack(""));
}

TEST(MessageTest, RefusesDeepNestingWithoutRecursingIntoIt) {
  auto nested = [](size_t depth) {  // {"a": [[[…{}…]]]}: `depth` maps and arrays, then {}
    std::string bytes = Bytes({0x81, 0xa1, 'a'});
    bytes += std::string(depth - 1, '\x91');
    bytes += Bytes({0x80});
    return bytes;
  };
  EXPECT_TRUE(DecodeMsgpack(nested(64)));
  EXPECT_FALSE(DecodeMsgpack(nested(65)));
  EXPECT_FALSE(DecodeMsgpack(nested(1'000'000)));  // would overflow the stack if decoded
  // Strings and bins of every width are stepped over, not counted as depth.
  Message wide = {{"s", std::string(70'000, 'x')},
                  {"b", Message::binary(std::vector<uint8_t>(300))},
                  {"n", Message::array({1, -1, 300, -300, 70'000, 5'000'000'000, 1.5})}};
  EXPECT_EQ(DecodeMsgpack(EncodeMsgpack(wide)), wide);

  Message deep = {{"type", "deep"}};
  Message* inner = &deep;
  for (int i = 0; i < 64; ++i) inner = &((*inner)["x"] = Message::object({{"y", 1}}));
  EXPECT_EQ(CheckMessage(deep), Status::kInvalid);
}

TEST(MessageTest, ChecksTypeReservedKeyAndSize) {
  EXPECT_EQ(CheckMessage(Message{{"type", "a"}}), Status::kOk);
  EXPECT_EQ(CheckMessage(Message::array({1})), Status::kInvalid);
  EXPECT_EQ(CheckMessage(Message{{"text", "no type"}}), Status::kInvalid);
  EXPECT_EQ(CheckMessage(Message{{"type", 1}}), Status::kInvalid);
  EXPECT_EQ(CheckMessage(Message{{"type", "a"}, {"__asgi_channel__", "x"}}), Status::kInvalid);

  // {"type": "a", "b": <bin32 of n bytes>} encodes to 1 + 5 + 2 + 2 + 5 + n bytes.
  const size_t overhead = 15;
  Message fits = {{"type", "a"},
                  {"b", Message::binary(std::vector<std::uint8_t>(kMaxMessageBytes - overhead))}};
  std::string encoded;
  EXPECT_EQ(CheckMessage(fits, &encoded), Status::kOk);
  EXPECT_EQ(encoded.size(), kMaxMessageBytes);
  Message over = {
      {"type", "a"},
      {"b", Message::binary(std::vector<std::uint8_t>(kMaxMessageBytes - overhead + 1))}};
  EXPECT_EQ(CheckMessage(over), Status::kTooLarge);
}

TEST(NamesTest, FollowChannelsRules) {
  EXPECT_TRUE(ValidChannelName("thumbnails"));
  EXPECT_TRUE(ValidChannelName("specific.gw1!abc"));
  EXPECT_TRUE(ValidChannelName("specific.gw1!"));
  EXPECT_FALSE(ValidChannelName(""));
  EXPECT_FALSE(ValidChannelName("!abc"));
  EXPECT_FALSE(ValidChannelName("a!b!c"));
  EXPECT_FALSE(ValidChannelName("a b"));
  EXPECT_FALSE(ValidChannelName(std::string(100, 'a')));
  EXPECT_TRUE(ValidChannelName(std::string(99, 'a')));
  EXPECT_TRUE(ValidGroupName("chat_lobby"));
  EXPECT_FALSE(ValidGroupName("chat!lobby"));
  EXPECT_EQ(NonLocalName("specific.gw!abc"), "specific.gw!");
  EXPECT_EQ(NonLocalName("thumbnails"), "thumbnails");
}

TEST(CapacityRuleTest, GlobsMatchTheWholeNameAsFnmatch) {
  EXPECT_TRUE(CapacityRule::Glob("thumb*", 1).Matches("thumbnails"));
  EXPECT_FALSE(CapacityRule::Glob("thumb", 1).Matches("thumbnails"));
  EXPECT_TRUE(CapacityRule::Glob("a?c", 1).Matches("abc"));
  EXPECT_FALSE(CapacityRule::Glob("a?c", 1).Matches("abcd"));
  EXPECT_TRUE(CapacityRule::Glob("[!x]b", 1).Matches("ab"));
  EXPECT_FALSE(CapacityRule::Glob("[!x]b", 1).Matches("xb"));
  EXPECT_TRUE(CapacityRule::Glob("a.b", 1).Matches("a.b"));
  EXPECT_FALSE(CapacityRule::Glob("a.b", 1).Matches("axb"));  // '.' is literal
  EXPECT_TRUE(CapacityRule::Glob("a[", 1).Matches("a["));     // unclosed '[' is literal
}

TEST(CapacityRuleTest, RegexesMatchFromTheStartAsReMatch) {
  EXPECT_TRUE(CapacityRule::Regex("http\\.response", 1).Matches("http.response!x"));
  EXPECT_FALSE(CapacityRule::Regex("response", 1).Matches("http.response"));
  EXPECT_TRUE(CapacityRule::Regex("^specific\\..*", 1).Matches("specific.gw!1"));
}

}  // namespace
}  // namespace sluice::layer
