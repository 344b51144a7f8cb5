#include "sluice/router.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "fake_connection.h"
#include "sluice/http_consumer.h"
#include "sluice/websocket_consumer.h"

namespace sluice {
namespace {

using Captures = std::vector<std::pair<std::string, std::string>>;
using testing::FakeConnection;
using testing::RunConsumer;

bool Match(std::string_view pattern, std::string_view path, Captures* captures = nullptr) {
  Captures ignored;
  return Router::Match(pattern, path, captures ? captures : &ignored);
}

TEST(RouterMatchTest, Literal) {
  Captures captures;
  EXPECT_TRUE(Match("/hello", "/hello", &captures));
  EXPECT_TRUE(captures.empty());
  EXPECT_TRUE(Match("/", "/"));
  EXPECT_TRUE(Match("/a/b/c", "/a/b/c"));
  EXPECT_FALSE(Match("/hello", "/Hello"));
  EXPECT_FALSE(Match("/hello", "/hello2"));
  EXPECT_FALSE(Match("/a/b", "/a/c"));
  EXPECT_FALSE(Match("/", ""));
}

TEST(RouterMatchTest, TrailingSlashIsSignificant) {
  EXPECT_FALSE(Match("/hello", "/hello/"));
  EXPECT_FALSE(Match("/hello/", "/hello"));
  EXPECT_TRUE(Match("/hello/", "/hello/"));
  EXPECT_FALSE(Match("/chat/{room}/", "/chat/lobby"));
  EXPECT_FALSE(Match("/chat/{room}", "/chat/lobby/"));
}

TEST(RouterMatchTest, Captures) {
  Captures captures;
  ASSERT_TRUE(Match("/chat/{room}/", "/chat/lobby/", &captures));
  EXPECT_EQ(captures, (Captures{{"room", "lobby"}}));

  captures.clear();
  ASSERT_TRUE(Match("/users/{user}/posts/{post}", "/users/ann/posts/42", &captures));
  EXPECT_EQ(captures, (Captures{{"user", "ann"}, {"post", "42"}}));

  captures.clear();
  ASSERT_TRUE(Match("/{a}/{b}", "/x y/caf\xC3\xA9", &captures));
  EXPECT_EQ(captures, (Captures{{"a", "x y"}, {"b", "caf\xC3\xA9"}}));
}

TEST(RouterMatchTest, CapturesAreAppended) {
  Captures captures{{"before", "1"}};
  ASSERT_TRUE(Match("/{x}", "/2", &captures));
  EXPECT_EQ(captures, (Captures{{"before", "1"}, {"x", "2"}}));
}

TEST(RouterMatchTest, CaptureNeedsANonEmptySegment) {
  Captures captures;
  EXPECT_FALSE(Match("/chat/{room}/", "/chat//", &captures));
  EXPECT_FALSE(Match("/chat/{room}", "/chat/", &captures));
  EXPECT_FALSE(Match("/{a}/{b}", "/x/", &captures));
  EXPECT_TRUE(captures.empty());
}

TEST(RouterMatchTest, CaptureIsOneSegment) {
  EXPECT_FALSE(Match("/files/{name}", "/files/a/b"));
  EXPECT_FALSE(Match("/files/{name}", "/files"));
}

TEST(RouterMatchTest, DifferentSegmentCounts) {
  EXPECT_FALSE(Match("/a", "/a/b"));
  EXPECT_FALSE(Match("/a/b", "/a"));
  EXPECT_FALSE(Match("/{x}", "/"));
  EXPECT_FALSE(Match("/{x}/{y}", "/1"));
  EXPECT_FALSE(Match("/{x}", "/1/2"));
}

TEST(RouterMatchTest, FailedMatchLeavesCapturesAlone) {
  Captures captures{{"keep", "me"}};
  EXPECT_FALSE(Match("/{a}/fixed", "/1/other", &captures));
  EXPECT_FALSE(Match("/{a}/{b}/x", "/1/2/y", &captures));
  EXPECT_EQ(captures, (Captures{{"keep", "me"}}));
}

TEST(RouterMatchTest, BracesWithoutANameAreLiteral) {
  EXPECT_TRUE(Match("/{}", "/{}"));
  EXPECT_FALSE(Match("/{}", "/x"));
}

// An Application that records what it was asked to create.
class Recorder final : public Application {
 public:
  struct Made final : Consumer {
    explicit Made(const Recorder* from) : from(from) {}
    Task<void> Run() override { co_return; }
    const Recorder* from;
  };

  std::unique_ptr<Consumer> Create(Scope& scope) override {
    ++created;
    seen_route = scope.url_route;
    return std::make_unique<Made>(this);
  }

  int created = 0;
  Captures seen_route;
};

const Recorder* Origin(const std::unique_ptr<Consumer>& consumer) {
  auto* recorded = dynamic_cast<Recorder::Made*>(consumer.get());
  return recorded ? recorded->from : nullptr;
}

Scope MakeScope(Scope::Type type, std::string path) {
  Scope scope;
  scope.type = type;
  scope.path = std::move(path);
  return scope;
}

TEST(RouterCreateTest, PicksTheFirstMatchOfTheScopesType) {
  auto ws = std::make_shared<Recorder>();
  auto first = std::make_shared<Recorder>();
  auto second = std::make_shared<Recorder>();
  Router router;
  router.WebSocket("/x", ws).Http("/x", first).Http("/{any}", second);

  Scope http = MakeScope(Scope::Type::kHttp, "/x");
  EXPECT_EQ(Origin(router.Create(http)), first.get());
  Scope websocket = MakeScope(Scope::Type::kWebSocket, "/x");
  EXPECT_EQ(Origin(router.Create(websocket)), ws.get());
  Scope other = MakeScope(Scope::Type::kHttp, "/y");
  EXPECT_EQ(Origin(router.Create(other)), second.get());
  EXPECT_EQ(first->created, 1);
  EXPECT_EQ(ws->created, 1);
  EXPECT_EQ(second->created, 1);
}

TEST(RouterCreateTest, FillsUrlRouteBeforeCreating) {
  auto history = std::make_shared<Recorder>();
  auto room = std::make_shared<Recorder>();
  Router router;
  router.Http("/chat/{room}/history", history).Http("/chat/{room}", room);

  Scope scope = MakeScope(Scope::Type::kHttp, "/chat/lobby");
  EXPECT_EQ(Origin(router.Create(scope)), room.get());
  EXPECT_EQ(scope.url_route, (Captures{{"room", "lobby"}}));
  EXPECT_EQ(room->seen_route, (Captures{{"room", "lobby"}}));
  ASSERT_TRUE(scope.Param("room").has_value());
  EXPECT_EQ(*scope.Param("room"), "lobby");
  EXPECT_EQ(history->created, 0);
}

TEST(RouterCreateTest, WrongTypeRoutesAreSkipped) {
  auto ws = std::make_shared<Recorder>();
  Router router;
  router.WebSocket("/ws/{room}", ws);
  Scope scope = MakeScope(Scope::Type::kHttp, "/ws/lobby");
  auto consumer = router.Create(scope);
  ASSERT_NE(consumer, nullptr);
  EXPECT_EQ(Origin(consumer), nullptr);
  EXPECT_EQ(ws->created, 0);
  EXPECT_TRUE(scope.url_route.empty());
}

TEST(RouterCreateTest, UnmatchedHttpGets404) {
  Router router;
  router.Http("/hello", std::make_shared<Recorder>());
  Scope scope = MakeScope(Scope::Type::kHttp, "/nope");
  auto consumer = router.Create(scope);
  ASSERT_NE(consumer, nullptr);
  EXPECT_EQ(Origin(consumer), nullptr);

  FakeConnection connection;
  connection.inbox.push_back(HttpRequest{});
  const auto error = RunConsumer(*consumer, scope, connection);
  EXPECT_FALSE(error);
  ASSERT_EQ(connection.sent.size(), 2u);
  const auto* start = std::get_if<HttpResponseStart>(&connection.sent[0]);
  ASSERT_NE(start, nullptr);
  EXPECT_EQ(start->status, 404);
  const auto* body = std::get_if<HttpResponseBody>(&connection.sent[1]);
  ASSERT_NE(body, nullptr);
  EXPECT_FALSE(body->more_body);
}

TEST(RouterCreateTest, UnmatchedWebSocketIsDenied) {
  Router empty;
  Scope scope = MakeScope(Scope::Type::kWebSocket, "/ws");
  auto consumer = empty.Create(scope);
  ASSERT_NE(consumer, nullptr);

  FakeConnection connection;
  connection.inbox.push_back(WebSocketConnect{});
  connection.inbox.push_back(WebSocketDisconnect{});
  const auto error = RunConsumer(*consumer, scope, connection);
  EXPECT_FALSE(error);
  ASSERT_EQ(connection.sent.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<WebSocketClose>(connection.sent[0]));
}

}  // namespace
}  // namespace sluice
