#include "layer/redis_layer.h"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <boost/asio/io_context.hpp>
#include <string>
#include <vector>

#include "layer/message.h"
#include "tests/layer/layer_harness.h"
#include "tests/layer/process_harness.h"

namespace sluice::layer {
namespace {

using testing::Chat;
using namespace std::chrono_literals;

// A reply as JSON: strings (binary-safe) are binary_t, so members can be decoded.
Message ToJson(const redisReply* reply) {
  if (!reply) return "lost";
  switch (reply->type) {
    case REDIS_REPLY_INTEGER:
      return reply->integer;
    case REDIS_REPLY_NIL:
      return nullptr;
    case REDIS_REPLY_ARRAY: {
      Message array = Message::array();
      for (size_t i = 0; i < reply->elements; ++i) array.push_back(ToJson(reply->element[i]));
      return array;
    }
    case REDIS_REPLY_ERROR:
      return Message{{"error", std::string(reply->str, reply->len)}};
    default:
      return Message::binary(std::vector<uint8_t>(reply->str, reply->str + reply->len));
  }
}

std::string Text(const Message& binary) {
  const auto& bytes = binary.get_binary();
  return std::string(bytes.begin(), bytes.end());
}

class RedisLayerTest : public ::testing::Test {
 protected:
  std::unique_ptr<RedisLayer> MakeLayer(std::string gateway, Options options = {}) {
    options.gateway_id = std::move(gateway);
    RedisOptions redis;
    redis.port = server_.port();
    redis.backoff_min = 20ms;
    redis.backoff_max = 200ms;
    redis.block_timeout = 30s;  // longer than any wait here: a missed unblock shows as a timeout
    auto layer = std::make_unique<RedisLayer>(io_.get_executor(), std::move(options), redis);
    EXPECT_TRUE(testing::RunUntil(io_, [&] { return layer->stats().connected == 1; }));
    return layer;
  }

  /// One raw Redis command, as channels_redis or redis-cli would see the result.
  Message Query(std::vector<std::string> args) {
    if (!raw_) {
      raw_ = std::make_unique<RedisConnection>(io_.get_executor());
      bool up = false;
      raw_->Connect("127.0.0.1", server_.port(), 0, 2s, [&up](bool u) { up = u; });
      EXPECT_TRUE(testing::RunUntil(io_, [&] { return up; }));
    }
    std::optional<Message> result;
    const std::vector<std::string_view> views(args.begin(), args.end());
    EXPECT_TRUE(raw_->Command(views, 2s, [&](const redisReply* r) { result = ToJson(r); }));
    EXPECT_TRUE(testing::RunUntil(io_, [&] { return result.has_value(); }));
    return result.value_or(nullptr);
  }

  /// Runs the channels_redis peer (tests/layer/channels_redis_peer.py).
  std::unique_ptr<testing::Child> Peer(std::vector<std::string> args) {
    args.insert(args.begin(), {"/usr/bin/python3", SLUICE_LAYER_PEER});
    args.insert(args.begin() + 3, std::to_string(server_.port()));
    return std::make_unique<testing::Child>(args);
  }

  testing::RedisServer server_;
  boost::asio::io_context io_;
  std::unique_ptr<RedisConnection> raw_;
};

TEST(RedisUrlTest, Parses) {
  auto url = ParseRedisUrl("redis://10.0.0.7:6380/2");
  ASSERT_TRUE(url);
  EXPECT_EQ(url->host, "10.0.0.7");
  EXPECT_EQ(url->port, 6380);
  EXPECT_EQ(url->db, 2);
  url = ParseRedisUrl("redis://redis");
  ASSERT_TRUE(url);
  EXPECT_EQ(url->port, 6379);
  EXPECT_EQ(url->db, 0);
  EXPECT_FALSE(ParseRedisUrl("http://redis:6379"));
  EXPECT_FALSE(ParseRedisUrl("redis://redis:port"));
  EXPECT_FALSE(ParseRedisUrl("redis://:pw@redis:6379"));
}

TEST_F(RedisLayerTest, GatewaysReachEachOthersChannels) {
  auto a = MakeLayer("gwA");
  auto b = MakeLayer("gwB");
  testing::Caller call_a(io_, *a), call_b(io_, *b);
  const std::string channel = b->NewChannel(7);
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(call_a.Send(channel, Chat(std::to_string(i))), Status::kOk);
  }
  for (int i = 0; i < 20; ++i) {  // in order: scores increase strictly per gateway
    testing::Received received = call_b.Receive(channel);
    ASSERT_EQ(received.status(), Status::kOk);
    EXPECT_EQ(*received.message(), Chat(std::to_string(i)));
  }
  EXPECT_EQ(a->stats().sent, 20u);
  EXPECT_EQ(b->stats().received, 20u);
}

TEST_F(RedisLayerTest, KeysAndMembersAreChannelsRedis) {
  auto a = MakeLayer("gwA");
  testing::Caller call(io_, *a);
  Message message = {{"type", "thumb.make"}, {"image", Message::binary({1, 2, 3})}};
  ASSERT_EQ(call.Send("thumbnails", message), Status::kOk);
  ASSERT_EQ(call.Send("specific.other!x1", Chat("hi")), Status::kOk);
  ASSERT_EQ(call.GroupAdd("room", "specific.other!x1"), Status::kOk);

  Message members = Query({"ZRANGE", "asgithumbnails", "0", "-1", "WITHSCORES"});
  ASSERT_EQ(members.size(), 2u);
  const std::string member = Text(members[0]);
  EXPECT_EQ(DecodeMsgpack(std::string_view(member).substr(kRandomPrefixBytes)), message);
  EXPECT_NEAR(std::stod(Text(members[1])), SystemClock(), 5);
  const Message ttl = Query({"TTL", "asgithumbnails"});
  EXPECT_GT(ttl.get<int>(), 50);
  EXPECT_LE(ttl.get<int>(), 60);

  // A local channel: the queue of its non-local part, the full name in __asgi_channel__.
  members = Query({"ZRANGE", "asgispecific.other!", "0", "-1"});
  ASSERT_EQ(members.size(), 1u);
  Message expected = Chat("hi");
  expected["__asgi_channel__"] = "specific.other!x1";
  EXPECT_EQ(DecodeMsgpack(Text(members[0]).substr(kRandomPrefixBytes)), expected);

  EXPECT_TRUE(Query({"ZSCORE", "asgi:group:room", "specific.other!x1"}).is_binary());
  EXPECT_GT(Query({"TTL", "asgi:group:room"}).get<int>(), 86'000);
}

TEST_F(RedisLayerTest, GroupSendWritesOneMessagePerGatewayAndCountsFullMembers) {
  Options options;
  options.channel_capacity.push_back(CapacityRule::Glob("specific.gwX!*", 1));
  auto a = MakeLayer("gwA", options);
  auto b = MakeLayer("gwB");
  testing::Caller call_a(io_, *a), call_b(io_, *b);
  const std::string a1 = a->NewChannel(1), b1 = b->NewChannel(1), b2 = b->NewChannel(2);
  // gwX is a gateway that is not running: its queue shows what a group send writes.
  const std::vector<std::string> x = {"specific.gwX!1", "specific.gwX!2", "specific.gwX!3"};
  for (const auto& channel : {a1, b1, b2, x[0], x[1], x[2]}) {
    ASSERT_EQ(call_a.GroupAdd("room", channel), Status::kOk);
  }
  ASSERT_EQ(call_a.GroupSend("room", Chat("one")), Status::kOk);
  for (const auto& [caller, channel] : std::vector<std::pair<testing::Caller*, std::string>>{
           {&call_a, a1}, {&call_b, b1}, {&call_b, b2}}) {
    testing::Received received = caller->Receive(channel);
    ASSERT_EQ(received.status(), Status::kOk) << channel;
    EXPECT_EQ(*received.message(), Chat("one"));
  }
  Message members = Query({"ZRANGE", "asgispecific.gwX!", "0", "-1"});
  ASSERT_EQ(members.size(), 1u);  // one message for three members
  Message expected = Chat("one");
  expected["__asgi_channel__"] = Message(x);
  std::optional<Message> written = DecodeMsgpack(Text(members[0]).substr(kRandomPrefixBytes));
  ASSERT_TRUE(written);
  std::sort((*written)["__asgi_channel__"].begin(), (*written)["__asgi_channel__"].end());
  EXPECT_EQ(written, expected);
  EXPECT_EQ(a->stats().group_skipped, 0u);

  // gwX's queue is at its capacity (1): the next group send skips its three members.
  ASSERT_EQ(call_a.GroupSend("room", Chat("two")), Status::kOk);
  EXPECT_EQ(a->stats().group_skipped, 3u);
  EXPECT_EQ(*call_b.Receive(b2).message(), Chat("two"));
}

TEST_F(RedisLayerTest, CapacityAndSizeAreChecked) {
  Options options;
  options.channel_capacity.push_back(CapacityRule::Glob("thumb*", 2));
  auto a = MakeLayer("gwA", options);
  testing::Caller call(io_, *a);
  ASSERT_EQ(call.Send("thumbnails", Chat("1")), Status::kOk);
  ASSERT_EQ(call.Send("thumbnails", Chat("2")), Status::kOk);
  EXPECT_EQ(call.Send("thumbnails", Chat("3")), Status::kChannelFull);
  EXPECT_EQ(a->stats().channel_full, 1u);
  Message big = {{"type", "a"}, {"b", Message::binary(std::vector<uint8_t>(kMaxMessageBytes))}};
  EXPECT_EQ(call.Send("other", big), Status::kTooLarge);
  EXPECT_EQ(Query({"EXISTS", "asgiother"}), 0);
}

TEST_F(RedisLayerTest, ExpiredMessagesAreDroppedOnBothEnds) {
  double skew = -61;  // the sender's clock: its messages are a minute old when written
  Options old_clock;
  old_clock.clock = [&skew] { return SystemClock() + skew; };
  old_clock.channel_capacity.push_back(CapacityRule::Glob("jobs", 1));
  auto sender = MakeLayer("gwOld", old_clock);
  testing::Caller send(io_, *sender);
  ASSERT_EQ(send.Send("jobs", Chat("stale")), Status::kOk);
  EXPECT_EQ(send.Send("jobs", Chat("full")), Status::kChannelFull);
  skew = 0;  // a sender with the right time purges the expired message first
  EXPECT_EQ(send.Send("jobs", Chat("fresh")), Status::kOk);
  EXPECT_EQ(Query({"ZCARD", "asgijobs"}), 1);

  auto receiver = MakeLayer("gwNew");
  testing::Caller receive(io_, *receiver);
  testing::Received received = receive.Receive("jobs");
  ASSERT_EQ(received.status(), Status::kOk);
  EXPECT_EQ(*received.message(), Chat("fresh"));
  // A message that is already expired when it is popped is dropped, and counted. (A new
  // sender: scores never go back on one layer, whatever its clock does.)
  skew = -61;
  auto stale_sender = MakeLayer("gwOld2", old_clock);
  ASSERT_EQ(testing::Caller(io_, *stale_sender).Send("jobs", Chat("stale again")), Status::kOk);
  EXPECT_FALSE(receive.Receive("jobs", 300ms).status());
  EXPECT_EQ(receiver->stats().expired, 1u);
  EXPECT_EQ(Query({"ZCARD", "asgijobs"}), 0);
}

TEST_F(RedisLayerTest, AWaitingNamedReceiveIsServedAtOnce) {
  auto worker = MakeLayer("gwW");
  auto sender = MakeLayer("gwS");
  testing::Caller call(io_, *sender);
  testing::Received received;
  worker->Receive("thumbnails", received.Handler());
  // Let the receive find the queue empty and join the blocking pop.
  EXPECT_FALSE(testing::RunUntil(
      io_, [&] { return received.status().has_value(); }, 200ms));
  ASSERT_EQ(call.Send("thumbnails", Chat("job")), Status::kOk);
  // BZPOPMIN blocks for 30 s here: only the unblock makes this arrive within the limit.
  ASSERT_TRUE(testing::RunUntil(
      io_, [&] { return received.status().has_value(); }, 5s));
  EXPECT_EQ(*received.message(), Chat("job"));

  // Exactly one of two receivers gets each message.
  auto other = MakeLayer("gwW2");
  testing::Received r1, r2;
  worker->Receive("thumbnails", r1.Handler());
  other->Receive("thumbnails", r2.Handler());
  EXPECT_FALSE(testing::RunUntil(
      io_, [&] { return r1.status() || r2.status(); }, 200ms));
  ASSERT_EQ(call.Send("thumbnails", Chat("a")), Status::kOk);
  ASSERT_TRUE(testing::RunUntil(
      io_, [&] { return r1.status() || r2.status(); }, 5s));
  EXPECT_FALSE(testing::RunUntil(
      io_, [&] { return r1.status() && r2.status(); }, 200ms));
  ASSERT_EQ(call.Send("thumbnails", Chat("b")), Status::kOk);
  ASSERT_TRUE(testing::RunUntil(
      io_, [&] { return r1.status() && r2.status(); }, 5s));
  EXPECT_NE(*r1.message(), *r2.message());
}

TEST_F(RedisLayerTest, RedisDownFailsFastThenReconnectsAndRejoinsGroups) {
  auto a = MakeLayer("gwA");
  auto b = MakeLayer("gwB");
  testing::Caller call_a(io_, *a), call_b(io_, *b);
  const std::string channel = b->NewChannel(1);
  ASSERT_EQ(call_b.GroupAdd("room", channel), Status::kOk);

  server_.Kill();
  ASSERT_TRUE(testing::RunUntil(
      io_, [&] { return a->stats().connected == 0 && b->stats().connected == 0; }));
  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(call_a.Send(channel, Chat("x")), Status::kUnavailable);
  EXPECT_EQ(call_a.GroupSend("room", Chat("x")), Status::kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 100ms);  // no waiting for Redis
  EXPECT_EQ(a->stats().unavailable, 2u);

  server_.Start();  // empty: the group is gone with the old server
  ASSERT_TRUE(testing::RunUntil(
      io_, [&] { return a->stats().connected == 1 && b->stats().connected == 1; }));
  EXPECT_GE(b->stats().reconnects, 1u);
  // b joined its channel's groups again: a group send reaches it.
  ASSERT_TRUE(testing::RunUntil(io_, [&] {
    return Query({"ZSCORE", "asgi:group:room", channel}).is_binary();
  }));
  ASSERT_EQ(call_a.GroupSend("room", Chat("back")), Status::kOk);
  testing::Received received = call_b.Receive(channel);
  ASSERT_EQ(received.status(), Status::kOk);
  EXPECT_EQ(*received.message(), Chat("back"));
}

TEST_F(RedisLayerTest, AnEmptyRedisGetsTheMembershipsBackAndPendingReceivesResume) {
  auto a = MakeLayer("gwA");
  auto b = MakeLayer("gwB");
  testing::Caller call_a(io_, *a), call_b(io_, *b);
  const std::string c1 = b->NewChannel(1), c2 = b->NewChannel(2), c3 = b->NewChannel(3),
                    c4 = b->NewChannel(4);
  for (const auto& channel : {c1, c2, c3, c4}) {
    ASSERT_EQ(call_b.GroupAdd("room", channel), Status::kOk);
  }
  ASSERT_EQ(call_b.GroupAdd("other", c1), Status::kOk);
  // Receives pending across the outage: a local channel's and a named channel's.
  testing::Received local, named;
  b->Receive(c1, local.Handler());
  b->Receive("jobs", named.Handler());
  EXPECT_FALSE(testing::RunUntil(
      io_, [&] { return local.status() || named.status(); }, 100ms));

  server_.Kill();
  ASSERT_TRUE(testing::RunUntil(io_, [&] { return b->stats().connected == 0; }));
  // Leaving while Redis is away: refused now, not joined again later.
  EXPECT_EQ(call_b.GroupDiscard("room", c3), Status::kUnavailable);
  b->CloseChannel(c4);
  EXPECT_FALSE(testing::RunUntil(
      io_, [&] { return local.status() || named.status(); }, 100ms));

  server_.Start();  // empty
  ASSERT_TRUE(testing::RunUntil(
      io_, [&] { return a->stats().connected == 1 && b->stats().restored_memberships == 3; }));
  Message members = Query({"ZRANGE", "asgi:group:room", "0", "-1"});
  ASSERT_EQ(members.size(), 2u);
  std::vector<std::string> names = {Text(members[0]), Text(members[1])};
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{c1, c2}));
  EXPECT_GT(Query({"TTL", "asgi:group:room"}).get<int>(), 86'000);  // a fresh expiry
  EXPECT_EQ(Query({"ZCARD", "asgi:group:other"}), 1);
  EXPECT_TRUE(testing::RunUntil(io_, [&] { return b->stats().restored_leaves == 2; }));

  ASSERT_EQ(call_a.GroupSend("room", Chat("back")), Status::kOk);
  ASSERT_TRUE(testing::RunUntil(io_, [&] { return local.status().has_value(); }));
  ASSERT_EQ(local.status(), Status::kOk);
  EXPECT_EQ(*local.message(), Chat("back"));
  EXPECT_EQ(*call_b.Receive(c2).message(), Chat("back"));
  ASSERT_EQ(call_a.Send("jobs", Chat("job")), Status::kOk);
  ASSERT_TRUE(testing::RunUntil(io_, [&] { return named.status().has_value(); }));
  EXPECT_EQ(*named.message(), Chat("job"));
}

TEST_F(RedisLayerTest, LeavesMadeWhileCutOffAreMadeOnReconnectWhenRedisKeptTheGroups) {
  auto b = MakeLayer("gwB");
  testing::Caller call_b(io_, *b);
  const std::string kept = b->NewChannel(1), closed = b->NewChannel(2);
  ASSERT_EQ(call_b.GroupAdd("room", kept), Status::kOk);
  ASSERT_EQ(call_b.GroupAdd("room", closed), Status::kOk);
  // Redis drops the layer's connections but keeps its data (a network break). The layer
  // runs only inside RunUntil, so the close below meets a connection that is gone.
  redisContext* admin = redisConnect("127.0.0.1", server_.port());
  ASSERT_TRUE(admin && !admin->err);
  auto* reply = static_cast<redisReply*>(redisCommand(admin, "CLIENT KILL TYPE normal"));
  ASSERT_TRUE(reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 2);
  freeReplyObject(reply);
  redisFree(admin);
  b->CloseChannel(closed);
  ASSERT_TRUE(testing::RunUntil(io_, [&] {
    return b->stats().reconnects == 1 && b->stats().restored_leaves == 1 &&
           b->stats().restored_memberships == 1;
  }));
  Message members = Query({"ZRANGE", "asgi:group:room", "0", "-1"});
  ASSERT_EQ(members.size(), 1u);
  EXPECT_EQ(Text(members[0]), kept);
}

TEST_F(RedisLayerTest, ClosingAChannelLeavesItsGroupsInRedis) {
  auto a = MakeLayer("gwA");
  testing::Caller call(io_, *a);
  const std::string channel = a->NewChannel(1);
  ASSERT_EQ(call.GroupAdd("room", channel), Status::kOk);
  ASSERT_EQ(Query({"ZCARD", "asgi:group:room"}), 1);
  a->CloseChannel(channel);
  ASSERT_TRUE(testing::RunUntil(io_, [&] { return Query({"ZCARD", "asgi:group:room"}) == 0; }));
}

// --- interop with the real channels_redis (Debian python3-channels-redis) -----------------

TEST_F(RedisLayerTest, ChannelsRedisGroupSendReachesSluiceChannels) {
  auto a = MakeLayer("gwA");
  testing::Caller call(io_, *a);
  const std::string c1 = a->NewChannel(1), c2 = a->NewChannel(2);
  ASSERT_EQ(call.GroupAdd("chat_lobby", c1), Status::kOk);
  ASSERT_EQ(call.GroupAdd("chat_lobby", c2), Status::kOk);
  auto peer = Peer({"group_send", "chat_lobby",
                    R"({"type": "chat.message", "text": "héllo", "n": [1, 2.5, null, true],
                        "raw": {"$bytes": "00ff10"}})"});
  ASSERT_EQ(peer->Wait(), 0);
  const Message expected = {{"type", "chat.message"},
                            {"text", "héllo"},
                            {"n", Message::parse("[1, 2.5, null, true]")},
                            {"raw", Message::binary({0x00, 0xff, 0x10})}};
  for (const auto& channel : {c1, c2}) {
    testing::Received received = call.Receive(channel);
    ASSERT_EQ(received.status(), Status::kOk);
    EXPECT_EQ(*received.message(), expected);
  }
  // And a plain send to one channel (__asgi_channel__ is a string then).
  peer = Peer({"send", c2, R"({"type": "direct"})"});
  ASSERT_EQ(peer->Wait(), 0);
  EXPECT_EQ(*call.Receive(c2).message(), Message({{"type", "direct"}}));
  // And to a named channel a sluice worker consumes.
  peer = Peer({"send", "thumbnails", R"({"type": "thumb", "id": 7})"});
  ASSERT_EQ(peer->Wait(), 0);
  EXPECT_EQ(*call.Receive("thumbnails").message(), Message({{"type", "thumb"}, {"id", 7}}));
}

TEST_F(RedisLayerTest, SluiceSendsReachChannelsRedisReceivers) {
  auto a = MakeLayer("gwA");
  testing::Caller call(io_, *a);
  const Message message = {{"type", "task.done"}, {"ok", true}, {"blob", Message::binary({7})}};
  const Message as_printed =
      Message::parse(R"({"type": "task.done", "ok": true, "blob": {"$bytes": "07"}})");

  // A process-local channel of a Django process.
  auto peer = Peer({"receive"});
  std::optional<std::string> channel = peer->ReadLine(10s);
  ASSERT_TRUE(channel);
  ASSERT_EQ(call.Send(*channel, message), Status::kOk);
  std::optional<std::string> line = peer->ReadLine(10s);
  ASSERT_TRUE(line);
  EXPECT_EQ(Message::parse(*line), as_printed);
  EXPECT_EQ(peer->Wait(), 0);

  // A named channel a Django worker consumes.
  peer = Peer({"receive", "--channel", "django-worker"});
  ASSERT_TRUE(peer->ReadLine(10s));
  ASSERT_EQ(call.Send("django-worker", message), Status::kOk);
  line = peer->ReadLine(10s);
  ASSERT_TRUE(line);
  EXPECT_EQ(Message::parse(*line), as_printed);

  // A group with members in both: one message per process, each gets it.
  peer = Peer({"receive", "--group", "mixed"});
  ASSERT_TRUE(peer->ReadLine(10s));  // joined
  const std::string mine = a->NewChannel(1);
  ASSERT_EQ(call.GroupAdd("mixed", mine), Status::kOk);
  ASSERT_EQ(call.GroupSend("mixed", message), Status::kOk);
  line = peer->ReadLine(10s);
  ASSERT_TRUE(line);
  EXPECT_EQ(Message::parse(*line), as_printed);
  EXPECT_EQ(*call.Receive(mine).message(), message);
}

}  // namespace
}  // namespace sluice::layer
