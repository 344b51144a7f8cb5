#include "sluice/router.h"

#include <gtest/gtest.h>

#include <stdexcept>
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

TEST(RouterMatchTest, StrIsTheDefaultConverter) {
  Captures captures;
  ASSERT_TRUE(Match("/a/{x:str}", "/a/hello world", &captures));
  EXPECT_EQ(captures, (Captures{{"x", "hello world"}}));
  EXPECT_FALSE(Match("/a/{x:str}", "/a/"));
  EXPECT_FALSE(Match("/a/{x:str}", "/a/b/c"));
}

TEST(RouterMatchTest, IntConverter) {
  Captures captures;
  ASSERT_TRUE(Match("/posts/{id:int}", "/posts/42", &captures));
  EXPECT_EQ(captures, (Captures{{"id", "42"}}));
  EXPECT_TRUE(Match("/posts/{id:int}", "/posts/007"));
  EXPECT_TRUE(Match("/posts/{id:int}", "/posts/999999999999999999"));  // 18 digits
  EXPECT_FALSE(Match("/posts/{id:int}", "/posts/9999999999999999999"));
  EXPECT_FALSE(Match("/posts/{id:int}", "/posts/4x"));
  EXPECT_FALSE(Match("/posts/{id:int}", "/posts/-4"));
  EXPECT_FALSE(Match("/posts/{id:int}", "/posts/+4"));
  EXPECT_FALSE(Match("/posts/{id:int}", "/posts/ 4"));
  EXPECT_FALSE(Match("/posts/{id:int}", "/posts/"));
  EXPECT_FALSE(Match("/posts/{id:int}", "/posts/\xD9\xA4"));  // ARABIC-INDIC DIGIT FOUR
}

TEST(RouterMatchTest, SlugConverter) {
  Captures captures;
  ASSERT_TRUE(Match("/blog/{slug:slug}", "/blog/Hello-world_2", &captures));
  EXPECT_EQ(captures, (Captures{{"slug", "Hello-world_2"}}));
  EXPECT_FALSE(Match("/blog/{slug:slug}", "/blog/hello world"));
  EXPECT_FALSE(Match("/blog/{slug:slug}", "/blog/caf\xC3\xA9"));
  EXPECT_FALSE(Match("/blog/{slug:slug}", "/blog/a.b"));
}

TEST(RouterMatchTest, PathConverterTakesTheRest) {
  Captures captures;
  ASSERT_TRUE(Match("/files/{rest:path}", "/files/a/b/c.txt", &captures));
  EXPECT_EQ(captures, (Captures{{"rest", "a/b/c.txt"}}));
  captures.clear();
  ASSERT_TRUE(Match("/files/{rest:path}", "/files/a/", &captures));
  EXPECT_EQ(captures, (Captures{{"rest", "a/"}}));
  captures.clear();
  ASSERT_TRUE(Match("/{user:int}/{rest:path}", "/7/x", &captures));
  EXPECT_EQ(captures, (Captures{{"user", "7"}, {"rest", "x"}}));
  EXPECT_FALSE(Match("/files/{rest:path}", "/files/"));
  EXPECT_FALSE(Match("/files/{rest:path}", "/files"));
  EXPECT_FALSE(Match("/{user:int}/{rest:path}", "/me/x"));
}

TEST(RouterMatchTest, InvalidPatternsNeverMatch) {
  EXPECT_FALSE(Match("/{x:float}", "/1"));
  EXPECT_FALSE(Match("/{:int}", "/1"));
  EXPECT_FALSE(Match("/{rest:path}/end", "/a/end"));
}

TEST(RouterTest, InvalidPatternsAreRefusedWhenAdded) {
  Router router;
  auto app = std::make_shared<Router>();
  EXPECT_THROW(router.Http("/{x:float}", app), std::invalid_argument);
  EXPECT_THROW(router.WebSocket("/{:int}", app), std::invalid_argument);
  EXPECT_THROW(router.Http("/{rest:path}/more", app), std::invalid_argument);
  EXPECT_THROW(router.Include("/{v:uuid}", app), std::invalid_argument);
  EXPECT_NO_THROW(router.Http("/{rest:path}", app));
  EXPECT_NO_THROW(router.Channel("{not a pattern:x}", app));  // a channel name is a name
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

TEST(RouterCreateTest, TypedParameterThatDoesNotConvertFallsThrough) {
  auto by_id = std::make_shared<Recorder>();
  auto by_name = std::make_shared<Recorder>();
  Router router;
  router.Http("/users/{id:int}", by_id).Http("/users/{name}", by_name);

  Scope numeric = MakeScope(Scope::Type::kHttp, "/users/12");
  EXPECT_EQ(Origin(router.Create(numeric)), by_id.get());
  EXPECT_EQ(numeric.IntParam("id"), 12);
  Scope named = MakeScope(Scope::Type::kHttp, "/users/ann");
  EXPECT_EQ(Origin(router.Create(named)), by_name.get());
  EXPECT_EQ(named.url_route, (Captures{{"name", "ann"}}));
  EXPECT_EQ(named.IntParam("name"), std::nullopt);
  EXPECT_EQ(named.IntParam("id"), std::nullopt);
}

TEST(RouterIncludeTest, InnerRouterGetsTheRestAndCapturesAccumulate) {
  auto user = std::make_shared<Recorder>();
  auto root = std::make_shared<Recorder>();
  auto api = std::make_shared<Router>();
  api->Http("/users/{id:int}", user).Http("", root);
  Router router;
  router.Include("/api/{version:int}", api);

  Scope scope = MakeScope(Scope::Type::kHttp, "/api/2/users/7");
  EXPECT_EQ(Origin(router.Create(scope)), user.get());
  EXPECT_EQ(scope.url_route, (Captures{{"version", "2"}, {"id", "7"}}));
  EXPECT_EQ(user->seen_route, scope.url_route);
  EXPECT_EQ(scope.path, "/api/2/users/7");  // unchanged for the consumer

  Scope bare = MakeScope(Scope::Type::kHttp, "/api/3");
  EXPECT_EQ(Origin(router.Create(bare)), root.get());
  EXPECT_EQ(bare.url_route, (Captures{{"version", "3"}}));

  Scope not_int = MakeScope(Scope::Type::kHttp, "/api/v2/users/7");
  EXPECT_EQ(Origin(router.Create(not_int)), nullptr);
  Scope partial_segment = MakeScope(Scope::Type::kHttp, "/api/2x/users/7");
  EXPECT_EQ(Origin(router.Create(partial_segment)), nullptr);
  EXPECT_EQ(user->created, 1);
}

TEST(RouterIncludeTest, NestsSeveralLevelsForWebSocketsToo) {
  auto room = std::make_shared<Recorder>();
  auto rooms = std::make_shared<Router>();
  rooms->WebSocket("/{room:slug}/", room);
  auto chat = std::make_shared<Router>();
  chat->Include("/rooms/", rooms);
  Router router;
  router.Include("/ws/{tenant}", chat);

  Scope scope = MakeScope(Scope::Type::kWebSocket, "/ws/acme/rooms/lobby/");
  EXPECT_EQ(Origin(router.Create(scope)), room.get());
  EXPECT_EQ(scope.url_route, (Captures{{"tenant", "acme"}, {"room", "lobby"}}));

  Scope http = MakeScope(Scope::Type::kHttp, "/ws/acme/rooms/lobby/");
  EXPECT_EQ(Origin(router.Create(http)), nullptr);  // the inner route is WebSocket only
  EXPECT_TRUE(http.url_route.empty());
}

TEST(RouterIncludeTest, NoInnerMatchGoesOnWithTheNextRouteAndDropsCaptures) {
  auto inner_app = std::make_shared<Recorder>();
  auto fallback = std::make_shared<Recorder>();
  auto inner = std::make_shared<Router>();
  inner->Http("/known", inner_app);
  Router router;
  router.Include("/{section}", inner).Http("/{a}/{b}", fallback);

  Scope scope = MakeScope(Scope::Type::kHttp, "/docs/unknown");
  EXPECT_EQ(Origin(router.Create(scope)), fallback.get());
  EXPECT_EQ(scope.url_route, (Captures{{"a", "docs"}, {"b", "unknown"}}));
  EXPECT_EQ(inner_app->created, 0);
}

TEST(RouterIncludeTest, RootPrefixAndTrailingSlash) {
  auto app = std::make_shared<Recorder>();
  auto inner = std::make_shared<Router>();
  inner->Http("/x", app);
  Router root;
  root.Include("/", inner);
  Scope scope = MakeScope(Scope::Type::kHttp, "/x");
  EXPECT_EQ(Origin(root.Create(scope)), app.get());

  Router prefixed;
  prefixed.Include("/api/", inner);
  Scope under = MakeScope(Scope::Type::kHttp, "/api/x");
  EXPECT_EQ(Origin(prefixed.Create(under)), app.get());
  Scope glued = MakeScope(Scope::Type::kHttp, "/apix");
  EXPECT_EQ(Origin(prefixed.Create(glued)), nullptr);
}

TEST(RouterChannelTest, AChannelOnlyRouterStandsAlone) {
  auto thumbnails = std::make_shared<Recorder>();
  Router channels;
  channels.Channel("thumbnails", thumbnails);
  EXPECT_EQ(channels.Channels(), (std::vector<std::string>{"thumbnails"}));
  Scope scope = MakeScope(Scope::Type::kChannel, "thumbnails");
  EXPECT_EQ(Origin(channels.Create(scope)), thumbnails.get());
  Scope other = MakeScope(Scope::Type::kChannel, "thumbnails2");
  EXPECT_EQ(Origin(channels.Create(other)), nullptr);
}

TEST(ProtocolRouterTest, PicksByScopeType) {
  auto http = std::make_shared<Recorder>();
  auto websocket = std::make_shared<Recorder>();
  auto background = std::make_shared<Router>();
  auto task = std::make_shared<Recorder>();
  background->Channel("tasks", task);
  ProtocolRouter router;
  router.Http(http).WebSocket(websocket).Channel(background);

  Scope a = MakeScope(Scope::Type::kHttp, "/anything");
  EXPECT_EQ(Origin(router.Create(a)), http.get());
  Scope b = MakeScope(Scope::Type::kWebSocket, "/anything");
  EXPECT_EQ(Origin(router.Create(b)), websocket.get());
  Scope c = MakeScope(Scope::Type::kChannel, "tasks");
  EXPECT_EQ(Origin(router.Create(c)), task.get());
  EXPECT_EQ(router.Channels(), (std::vector<std::string>{"tasks"}));
}

TEST(ProtocolRouterTest, AMissingTypeIsNotFound) {
  ProtocolRouter router;
  router.Http(std::make_shared<Recorder>());
  EXPECT_TRUE(router.Channels().empty());
  Scope scope = MakeScope(Scope::Type::kWebSocket, "/ws");
  auto consumer = router.Create(scope);
  ASSERT_NE(consumer, nullptr);
  EXPECT_EQ(Origin(consumer), nullptr);
  FakeConnection connection;
  connection.inbox.push_back(WebSocketConnect{});
  connection.inbox.push_back(WebSocketDisconnect{});
  EXPECT_FALSE(RunConsumer(*consumer, scope, connection));
  ASSERT_EQ(connection.sent.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<WebSocketClose>(connection.sent[0]));
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
