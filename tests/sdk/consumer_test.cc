// HttpConsumer and WebSocketConsumer driven through a scripted Connection.
// GCC 12: inside coroutines no braced temporaries in a co_await expression; values are built
// in named locals first.
#include <gtest/gtest.h>

#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "fake_connection.h"
#include "sluice/http_consumer.h"
#include "sluice/websocket_consumer.h"

namespace sluice {
namespace {

using testing::FakeConnection;
using testing::Is;
using testing::RunConsumer;

HttpRequest Body(std::string body, bool more) {
  HttpRequest request;
  request.body = std::move(body);
  request.more_body = more;
  return request;
}

WebSocketReceive Text(std::string text) {
  WebSocketReceive message;
  message.data = std::move(text);
  return message;
}

WebSocketReceive Binary(std::string bytes) {
  WebSocketReceive message;
  message.data = std::move(bytes);
  message.binary = true;
  return message;
}

WebSocketDisconnect Gone(int code, std::string reason = {}) {
  WebSocketDisconnect gone;
  gone.code = code;
  gone.reason = std::move(reason);
  return gone;
}

// ---- HttpConsumer -------------------------------------------------------------------------

class EchoHttp final : public HttpConsumer {
 public:
  std::optional<std::string> body;
  size_t max_bytes = 16 << 20;

 protected:
  Task<void> Handle() override {
    std::string read = co_await ReadBody(max_bytes);
    body = read;
    co_await Respond(200, std::move(read));
  }
};

class ChunkReader final : public HttpConsumer {
 public:
  std::vector<std::string> chunks;
  bool ended = false;

 protected:
  Task<void> Handle() override {
    while (auto chunk = co_await ReadChunk()) chunks.push_back(*chunk);
    ended = true;
    // Once the body has ended, reading again returns nullopt without receiving.
    auto again = co_await ReadChunk();
    if (again) throw std::logic_error("ReadChunk after the end returned a chunk");
  }
};

TEST(HttpConsumerTest, ReadBodyConcatenatesChunksAndRespondSendsStartThenBody) {
  EchoHttp consumer;
  Scope scope;
  FakeConnection connection;
  connection.inbox = {Body("hel", true), Body("", true), Body("lo ", true), Body("world", false)};
  const auto error = RunConsumer(consumer, scope, connection);
  EXPECT_FALSE(error);
  ASSERT_TRUE(consumer.body.has_value());
  EXPECT_EQ(*consumer.body, "hello world");
  EXPECT_EQ(connection.receives, 4);

  ASSERT_EQ(connection.sent.size(), 2u);
  const auto* start = std::get_if<HttpResponseStart>(&connection.sent[0]);
  ASSERT_NE(start, nullptr);
  EXPECT_EQ(start->status, 200);
  EXPECT_EQ(start->headers, (Headers{{"content-type", "text/plain; charset=utf-8"}}));
  EXPECT_FALSE(start->trailers);
  const auto* body = std::get_if<HttpResponseBody>(&connection.sent[1]);
  ASSERT_NE(body, nullptr);
  EXPECT_EQ(body->body, "hello world");
  EXPECT_FALSE(body->more_body);
}

TEST(HttpConsumerTest, EmptyBody) {
  EchoHttp consumer;
  Scope scope;
  FakeConnection connection;
  connection.inbox = {HttpRequest{}};
  EXPECT_FALSE(RunConsumer(consumer, scope, connection));
  EXPECT_EQ(consumer.body, "");
  ASSERT_EQ(connection.sent.size(), 2u);
}

TEST(HttpConsumerTest, ReadBodyThrowsDisconnectedOnHttpDisconnect) {
  EchoHttp consumer;
  Scope scope;
  FakeConnection connection;
  connection.inbox = {Body("part", true), HttpDisconnect{}};
  const auto error = RunConsumer(consumer, scope, connection);
  EXPECT_TRUE(Is<Disconnected>(error));
  EXPECT_FALSE(consumer.body.has_value());
  EXPECT_TRUE(connection.sent.empty());
}

TEST(HttpConsumerTest, ReadBodyEnforcesItsLimit) {
  EchoHttp consumer;
  consumer.max_bytes = 8;
  Scope scope;
  FakeConnection connection;
  connection.inbox = {Body("12345", true), Body("6789", false)};
  EXPECT_TRUE(Is<std::length_error>(RunConsumer(consumer, scope, connection)));
  EXPECT_TRUE(connection.sent.empty());
}

TEST(HttpConsumerTest, ReadBodyAtExactlyTheLimit) {
  EchoHttp consumer;
  consumer.max_bytes = 9;
  Scope scope;
  FakeConnection connection;
  connection.inbox = {Body("12345", true), Body("6789", false)};
  EXPECT_FALSE(RunConsumer(consumer, scope, connection));
  EXPECT_EQ(consumer.body, "123456789");
}

TEST(HttpConsumerTest, UnexpectedEventIsALogicError) {
  EchoHttp consumer;
  Scope scope;
  FakeConnection connection;
  connection.inbox = {WebSocketConnect{}};
  EXPECT_TRUE(Is<std::logic_error>(RunConsumer(consumer, scope, connection)));
}

TEST(HttpConsumerTest, ReadChunkSkipsEmptyPiecesAndStopsAtTheEnd) {
  ChunkReader consumer;
  Scope scope;
  FakeConnection connection;
  connection.inbox = {Body("a", true), Body("", true), Body("bc", true), Body("", false)};
  const auto error = RunConsumer(consumer, scope, connection);
  EXPECT_FALSE(error);
  EXPECT_TRUE(consumer.ended);
  EXPECT_EQ(consumer.chunks, (std::vector<std::string>{"a", "bc"}));
  EXPECT_EQ(connection.receives, 4);  // nothing received after the last piece
}

class CustomResponse final : public HttpConsumer {
 public:
  Headers headers;
  std::string content_type;

 protected:
  Task<void> Handle() override {
    Headers h = headers;
    std::string body = "<p>hi</p>";
    co_await Respond(201, std::move(body), std::move(h), content_type);
  }
};

TEST(HttpConsumerTest, RespondAddsTheGivenContentType) {
  CustomResponse consumer;
  consumer.headers = {{"x-a", "1"}};
  consumer.content_type = "text/html";
  Scope scope;
  FakeConnection connection;
  EXPECT_FALSE(RunConsumer(consumer, scope, connection));
  ASSERT_EQ(connection.sent.size(), 2u);
  const auto& start = std::get<HttpResponseStart>(connection.sent[0]);
  EXPECT_EQ(start.status, 201);
  EXPECT_EQ(start.headers, (Headers{{"x-a", "1"}, {"content-type", "text/html"}}));
  EXPECT_EQ(std::get<HttpResponseBody>(connection.sent[1]).body, "<p>hi</p>");
}

// The headers of the http.response.start that Respond() sends, given the application's
// headers and default content type.
Headers RespondedHeaders(Headers::Base headers, std::string content_type) {
  CustomResponse consumer;
  consumer.headers = std::move(headers);
  consumer.content_type = std::move(content_type);
  Scope scope;
  FakeConnection connection;
  EXPECT_FALSE(RunConsumer(consumer, scope, connection));
  EXPECT_EQ(connection.sent.size(), 2u);
  return std::get<HttpResponseStart>(connection.sent.at(0)).headers;
}

TEST(HttpConsumerTest, RespondKeepsTheApplicationsContentType) {
  EXPECT_EQ(RespondedHeaders({{"content-type", "application/json"}}, "text/html"),
            (Headers{{"content-type", "application/json"}}));
}

TEST(HttpConsumerTest, RespondKeepsTheApplicationsContentTypeInAnyCase) {
  // Header names are case-insensitive: "Content-Type" is a content-type.
  EXPECT_EQ(RespondedHeaders({{"Content-Type", "application/json"}}, "text/html"),
            (Headers{{"Content-Type", "application/json"}}));
}

TEST(HttpConsumerTest, RespondWithoutContentType) { EXPECT_TRUE(RespondedHeaders({}, "").empty()); }

class Streaming final : public HttpConsumer {
 public:
  bool started_before = true;
  bool started_after = false;
  bool second_start_threw = false;

 protected:
  Task<void> Handle() override {
    started_before = response_started();
    Headers headers{{"content-type", "text/event-stream"}};
    co_await StartResponse(200, std::move(headers));
    started_after = response_started();
    try {
      Headers none;
      co_await StartResponse(500, std::move(none));
    } catch (const std::logic_error&) {
      second_start_threw = true;
    }
    std::string one = "data: 1\n\n";
    co_await SendBody(std::move(one), true);
    std::string two = "data: 2\n\n";
    co_await SendBody(std::move(two), true);
    std::string end;
    co_await SendBody(std::move(end), false);
  }
};

TEST(HttpConsumerTest, StreamedResponse) {
  Streaming consumer;
  Scope scope;
  FakeConnection connection;
  EXPECT_FALSE(RunConsumer(consumer, scope, connection));
  EXPECT_FALSE(consumer.started_before);
  EXPECT_TRUE(consumer.started_after);
  EXPECT_TRUE(consumer.second_start_threw);
  ASSERT_EQ(connection.sent.size(), 4u);
  EXPECT_EQ(std::get<HttpResponseStart>(connection.sent[0]).headers,
            (Headers{{"content-type", "text/event-stream"}}));
  const auto& b1 = std::get<HttpResponseBody>(connection.sent[1]);
  EXPECT_EQ(b1.body, "data: 1\n\n");
  EXPECT_TRUE(b1.more_body);
  const auto& b2 = std::get<HttpResponseBody>(connection.sent[2]);
  EXPECT_EQ(b2.body, "data: 2\n\n");
  EXPECT_TRUE(b2.more_body);
  const auto& b3 = std::get<HttpResponseBody>(connection.sent[3]);
  EXPECT_EQ(b3.body, "");
  EXPECT_FALSE(b3.more_body);
}

TEST(HttpConsumerTest, SendToAGoneClientThrowsDisconnected) {
  CustomResponse consumer;
  Scope scope;
  FakeConnection connection;
  connection.gone = true;
  EXPECT_TRUE(Is<Disconnected>(RunConsumer(consumer, scope, connection)));
}

class ScopeReader final : public HttpConsumer {
 public:
  std::string path;

 protected:
  Task<void> Handle() override {
    path = scope().path;
    co_return;
  }
};

TEST(HttpConsumerTest, SeesItsScope) {
  ScopeReader consumer;
  Scope scope;
  scope.path = "/inspect";
  FakeConnection connection;
  EXPECT_FALSE(RunConsumer(consumer, scope, connection));
  EXPECT_EQ(consumer.path, "/inspect");
  EXPECT_TRUE(connection.sent.empty());
}

// ---- WebSocketConsumer --------------------------------------------------------------------

class Echo : public WebSocketConsumer {
 public:
  std::vector<std::string> texts;
  std::vector<std::string> binaries;
  std::optional<int> disconnect_code;
  std::string disconnect_reason;
  bool accepted_at_disconnect = false;

 protected:
  Task<void> OnText(std::string text) override {
    texts.push_back(text);
    co_await SendText(std::move(text));
  }
  Task<void> OnBinary(std::string bytes) override {
    binaries.push_back(bytes);
    co_await SendBinary(std::move(bytes));
  }
  Task<void> OnDisconnect(int code, std::string reason) override {
    disconnect_code = code;
    disconnect_reason = std::move(reason);
    accepted_at_disconnect = accepted();
    co_return;
  }
};

TEST(WebSocketConsumerTest, DefaultOnConnectAcceptsAndMessagesFlowInOrder) {
  Echo consumer;
  Scope scope;
  scope.type = Scope::Type::kWebSocket;
  FakeConnection connection;
  connection.inbox = {WebSocketConnect{}, Text("one"), Binary(std::string("\0\1", 2)), Text(""),
                      Gone(1001, "going away")};
  const auto error = RunConsumer(consumer, scope, connection);
  EXPECT_FALSE(error);
  EXPECT_EQ(consumer.texts, (std::vector<std::string>{"one", ""}));
  EXPECT_EQ(consumer.binaries, (std::vector<std::string>{std::string("\0\1", 2)}));
  EXPECT_EQ(consumer.disconnect_code, 1001);
  EXPECT_EQ(consumer.disconnect_reason, "going away");
  EXPECT_TRUE(consumer.accepted_at_disconnect);

  ASSERT_EQ(connection.sent.size(), 4u);
  const auto* accept = std::get_if<WebSocketAccept>(&connection.sent[0]);
  ASSERT_NE(accept, nullptr);
  EXPECT_EQ(accept->subprotocol, "");
  EXPECT_TRUE(accept->headers.empty());
  const auto& s1 = std::get<WebSocketSend>(connection.sent[1]);
  EXPECT_EQ(s1.data, "one");
  EXPECT_FALSE(s1.binary);
  const auto& s2 = std::get<WebSocketSend>(connection.sent[2]);
  EXPECT_EQ(s2.data, std::string("\0\1", 2));
  EXPECT_TRUE(s2.binary);
  const auto& s3 = std::get<WebSocketSend>(connection.sent[3]);
  EXPECT_EQ(s3.data, "");
  EXPECT_FALSE(s3.binary);
}

TEST(WebSocketConsumerTest, OnDisconnectEndsRun) {
  Echo consumer;
  Scope scope;
  FakeConnection connection;
  connection.inbox = {WebSocketConnect{}, Gone(1005), Text("never read")};
  EXPECT_FALSE(RunConsumer(consumer, scope, connection));
  EXPECT_EQ(consumer.disconnect_code, 1005);
  EXPECT_EQ(connection.inbox.size(), 1u);  // nothing read after the disconnect
  EXPECT_TRUE(consumer.texts.empty());
}

TEST(WebSocketConsumerTest, DisconnectBeforeConnect) {
  Echo consumer;
  Scope scope;
  FakeConnection connection;
  connection.inbox = {Gone(1006)};
  EXPECT_FALSE(RunConsumer(consumer, scope, connection));
  EXPECT_EQ(consumer.disconnect_code, 1006);
  EXPECT_FALSE(consumer.accepted_at_disconnect);
  EXPECT_TRUE(connection.sent.empty());
}

class Denier final : public Echo {
 public:
  bool accepted_after_close = true;
  int closes = 2;

 protected:
  Task<void> OnConnect() override {
    for (int i = 0; i < closes; ++i) {
      std::string reason = "no";
      co_await Close(4003, std::move(reason));
    }
    accepted_after_close = accepted();
  }
};

TEST(WebSocketConsumerTest, CloseBeforeAcceptSendsOneClose) {
  Denier consumer;
  Scope scope;
  FakeConnection connection;
  connection.inbox = {WebSocketConnect{}, Gone(1006)};
  EXPECT_FALSE(RunConsumer(consumer, scope, connection));
  EXPECT_FALSE(consumer.accepted_after_close);
  ASSERT_EQ(connection.sent.size(), 1u);  // the second Close sends nothing
  const auto* close = std::get_if<WebSocketClose>(&connection.sent[0]);
  ASSERT_NE(close, nullptr);
  EXPECT_EQ(close->code, 4003);
  EXPECT_EQ(close->reason, "no");
}

class Negotiator final : public Echo {
 protected:
  Task<void> OnConnect() override {
    std::string protocol = scope().subprotocols.empty() ? "" : scope().subprotocols.back();
    Headers headers{{"x-extra", "1"}};
    co_await Accept(std::move(protocol), std::move(headers));
  }
  Task<void> OnText(std::string text) override {
    if (text == "bye") {
      std::string reason = "done";
      co_await Close(4000, std::move(reason));
    }
  }
  Task<void> OnDisconnect(int code, std::string reason) override {
    // The connection is closed: this Close sends nothing.
    std::string no_reason;
    co_await Close(1000, std::move(no_reason));
    co_await Echo::OnDisconnect(code, std::move(reason));
  }
};

TEST(WebSocketConsumerTest, AcceptWithSubprotocolAndHeadersThenCloseOnce) {
  Negotiator consumer;
  Scope scope;
  scope.type = Scope::Type::kWebSocket;
  scope.subprotocols = {"v1", "v2"};
  FakeConnection connection;
  connection.inbox = {WebSocketConnect{}, Text("bye"), Gone(4000)};
  EXPECT_FALSE(RunConsumer(consumer, scope, connection));
  ASSERT_EQ(connection.sent.size(), 2u);
  const auto& accept = std::get<WebSocketAccept>(connection.sent[0]);
  EXPECT_EQ(accept.subprotocol, "v2");
  EXPECT_EQ(accept.headers, (Headers{{"x-extra", "1"}}));
  const auto& close = std::get<WebSocketClose>(connection.sent[1]);
  EXPECT_EQ(close.code, 4000);
  EXPECT_EQ(close.reason, "done");
  EXPECT_EQ(consumer.disconnect_code, 4000);
}

TEST(WebSocketConsumerTest, CloseAfterClientDisconnectSendsNothing) {
  Negotiator consumer;
  Scope scope;
  FakeConnection connection;
  connection.inbox = {WebSocketConnect{}, Gone(1001)};
  EXPECT_FALSE(RunConsumer(consumer, scope, connection));
  ASSERT_EQ(connection.sent.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<WebSocketAccept>(connection.sent[0]));
  EXPECT_EQ(consumer.disconnect_code, 1001);
}

TEST(WebSocketConsumerTest, UnexpectedEventIsALogicError) {
  Echo consumer;
  Scope scope;
  FakeConnection connection;
  connection.inbox = {WebSocketConnect{}, HttpRequest{}};
  EXPECT_TRUE(Is<std::logic_error>(RunConsumer(consumer, scope, connection)));
}

TEST(WebSocketConsumerTest, SendToAGoneClientThrowsDisconnected) {
  Echo consumer;
  Scope scope;
  FakeConnection connection;
  connection.gone = true;
  connection.inbox = {WebSocketConnect{}};
  EXPECT_TRUE(Is<Disconnected>(RunConsumer(consumer, scope, connection)));
}

}  // namespace
}  // namespace sluice
