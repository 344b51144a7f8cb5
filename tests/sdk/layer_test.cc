// The SDK's channel-layer surface driven through a scripted Connection: handlers by type,
// Groups() joined before accept, layer errors reaching the caller, background consumers.
// GCC 12: inside coroutines no braced temporaries in a co_await expression.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "fake_connection.h"
#include "sluice/channel_consumer.h"
#include "sluice/http_consumer.h"
#include "sluice/router.h"
#include "sluice/websocket_consumer.h"

namespace sluice {
namespace {

using testing::FakeConnection;
using testing::Is;
using testing::RunConsumer;

LayerMessage Chat(std::string text) {
  LayerMessage message;
  message.message = {{"type", "chat.message"}, {"text", std::move(text)}};
  return message;
}

WebSocketReceive Text(std::string text) {
  WebSocketReceive message;
  message.data = std::move(text);
  return message;
}

class Room final : public WebSocketConsumer {
 public:
  Room() {
    On("chat.message", [this](const Message& message) -> Task<void> {
      co_await SendText(message.value("text", std::string()));
    });
  }
  std::vector<std::string> Groups() const override { return {"chat_lobby"}; }
  Task<void> OnText(std::string text) override {
    Message message = {{"type", "chat.message"}, {"text", std::move(text)}};
    co_await GroupSend("chat_lobby", message);
  }
};

TEST(LayerConsumerTest, GroupsAreJoinedBeforeAcceptAndMessagesGoToTheirHandlerInOrder) {
  FakeConnection connection;
  connection.inbox.emplace_back(WebSocketConnect{});
  connection.inbox.emplace_back(Chat("first"));
  connection.inbox.emplace_back(Text("typed"));
  connection.inbox.emplace_back(Chat("second"));
  connection.inbox.emplace_back(WebSocketDisconnect{1000, {}});
  Room room;
  Scope scope;
  scope.type = Scope::Type::kWebSocket;
  EXPECT_EQ(RunConsumer(room, scope, connection), nullptr);
  ASSERT_EQ(connection.calls.size(), 2u);
  EXPECT_EQ(connection.calls[0].kind, LayerCall::Kind::kGroupAdd);
  EXPECT_EQ(connection.calls[0].target, "chat_lobby");
  EXPECT_EQ(connection.calls[1].kind, LayerCall::Kind::kGroupSend);
  EXPECT_EQ(Message::from_msgpack(connection.calls[1].message)["text"], "typed");
  // accept (after the group_add), then the two chat texts in order.
  ASSERT_EQ(connection.sent.size(), 3u);
  EXPECT_TRUE(std::holds_alternative<WebSocketAccept>(connection.sent[0]));
  EXPECT_EQ(std::get<WebSocketSend>(connection.sent[1]).data, "first");
  EXPECT_EQ(std::get<WebSocketSend>(connection.sent[2]).data, "second");
}

TEST(LayerConsumerTest, AMessageWithoutAHandlerIsReportedNotFatal) {
  FakeConnection connection;
  connection.inbox.emplace_back(WebSocketConnect{});
  LayerMessage stray;
  stray.message = {{"type", "nobody.listens"}};
  connection.inbox.emplace_back(stray);
  connection.inbox.emplace_back(Chat("still here"));
  connection.inbox.emplace_back(WebSocketDisconnect{1000, {}});
  Room room;
  Scope scope;
  scope.type = Scope::Type::kWebSocket;
  EXPECT_EQ(RunConsumer(room, scope, connection), nullptr);
  ASSERT_EQ(connection.unhandled.size(), 1u);
  EXPECT_EQ(connection.unhandled[0].message["type"], "nobody.listens");
  EXPECT_EQ(std::get<WebSocketSend>(connection.sent.back()).data, "still here");
}

TEST(LayerConsumerTest, LayerErrorsReachTheCaller) {
  FakeConnection connection;
  connection.inbox.emplace_back(WebSocketConnect{});
  connection.inbox.emplace_back(Text("hello"));
  connection.on_layer = [](const LayerCall& call) {
    if (call.kind == LayerCall::Kind::kGroupSend) throw ChannelFull("full");
  };
  Room room;
  Scope scope;
  scope.type = Scope::Type::kWebSocket;
  const auto error = RunConsumer(room, scope, connection);
  EXPECT_TRUE(Is<ChannelFull>(error));
  EXPECT_TRUE(Is<LayerError>(error));
}

class Sender final : public HttpConsumer {
 public:
  explicit Sender(Message message) : message_(std::move(message)) {}
  Task<void> Handle() override {
    co_await ChannelSend("elsewhere", message_);
    co_await Respond(200, "sent");
  }
  Message message_;
};

TEST(LayerConsumerTest, MessagesAreCheckedBeforeTheyLeave) {
  Scope scope;
  {
    FakeConnection connection;
    Message untyped = {{"text", "no type"}};
    Sender sender(untyped);
    EXPECT_TRUE(Is<std::invalid_argument>(RunConsumer(sender, scope, connection)));
    EXPECT_TRUE(connection.calls.empty());
  }
  {
    FakeConnection connection;
    Message big = {{"type", "big"}, {"pad", std::string(kMaxLayerMessageBytes, 'x')}};
    Sender sender(big);
    EXPECT_TRUE(Is<MessageTooLarge>(RunConsumer(sender, scope, connection)));
    EXPECT_TRUE(connection.calls.empty());
  }
  {
    FakeConnection connection;
    Message bytes = {{"type", "bytes"}, {"data", Message::binary_t({0, 1, 255})}};
    Sender sender(bytes);
    EXPECT_EQ(RunConsumer(sender, scope, connection), nullptr);
    ASSERT_EQ(connection.calls.size(), 1u);
    EXPECT_EQ(connection.calls[0].target, "elsewhere");
    EXPECT_EQ(Message::from_msgpack(connection.calls[0].message), bytes);
  }
}

class Waiter final : public HttpConsumer {
 public:
  Waiter() {
    On("task.done", [this](const Message& message) -> Task<void> {
      result = message.value("result", std::string());
      co_return;
    });
  }
  Task<void> Handle() override {
    done = co_await DispatchUntil([this] { return !result.empty(); }, std::chrono::seconds(1));
  }
  std::string result;
  bool done = false;
};

TEST(LayerConsumerTest, DispatchUntilRunsHandlersUntilDoneOrTheDeadline) {
  Scope scope;
  {
    FakeConnection connection;
    connection.inbox.emplace_back(HttpRequest{});
    LayerMessage done;
    done.message = {{"type", "task.done"}, {"result", "42"}};
    connection.inbox.emplace_back(done);
    Waiter waiter;
    EXPECT_EQ(RunConsumer(waiter, scope, connection), nullptr);
    EXPECT_TRUE(waiter.done);
    EXPECT_EQ(waiter.result, "42");
  }
  {
    FakeConnection connection;  // nothing comes: the deadline passes
    Waiter waiter;
    EXPECT_EQ(RunConsumer(waiter, scope, connection), nullptr);
    EXPECT_FALSE(waiter.done);
  }
}

class Thumbnails final : public ChannelConsumer {
 public:
  explicit Thumbnails(std::vector<std::string>* log) : log_(log) {
    On("thumbnail.make", [this](const Message& message) -> Task<void> {
      log_->push_back(delivery_id() + " " + message.value("id", std::string()));
      co_return;
    });
  }
  std::vector<std::string>* log_;
};

TEST(LayerConsumerTest, ChannelRoutesAreAnnouncedAndRunTheirConsumer) {
  std::vector<std::string> log;
  class Factory final : public Application {
   public:
    explicit Factory(std::vector<std::string>* log) : log_(log) {}
    std::unique_ptr<Consumer> Create(Scope&) override { return std::make_unique<Thumbnails>(log_); }
    std::vector<std::string>* log_;
  };
  Router router;
  router.Channel("thumbnails", std::make_shared<Factory>(&log));
  EXPECT_EQ(router.Channels(), std::vector<std::string>{"thumbnails"});
  Scope scope;
  scope.type = Scope::Type::kChannel;
  scope.path = "thumbnails";
  auto consumer = router.Create(scope);
  FakeConnection connection;
  LayerMessage message;
  message.message = {{"type", "thumbnail.make"}, {"id", "7"}};
  message.delivery_id = "gw.1";
  connection.inbox.emplace_back(message);
  EXPECT_EQ(RunConsumer(*consumer, scope, connection), nullptr);
  EXPECT_EQ(log, std::vector<std::string>{"gw.1 7"});
  // Another channel's message finds no route: reported, not fatal.
  scope.path = "other";
  auto unrouted = router.Create(scope);
  FakeConnection other;
  other.inbox.emplace_back(message);
  EXPECT_EQ(RunConsumer(*unrouted, scope, other), nullptr);
  EXPECT_EQ(other.unhandled.size(), 1u);
}

}  // namespace
}  // namespace sluice
