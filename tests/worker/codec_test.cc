#include "worker/codec.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace sluice::worker {
namespace {

using namespace std::string_literals;

v1::Scope FullScope() {
  v1::Scope scope;
  scope.set_type(v1::Scope::TYPE_WEBSOCKET);
  scope.set_http_version("1.1");
  scope.set_method("");
  scope.set_scheme("ws");
  scope.set_path("/chat/caf\xC3\xA9");
  scope.set_raw_path("/chat/caf%C3%A9");
  scope.set_query_string("a=1&b=%20");
  scope.set_root_path("/app");
  for (const auto& [name, value] :
       std::vector<std::pair<std::string, std::string>>{{"host", "h"},
                                                        {"x-a", "1"},
                                                        {"x-a", "bin\0\xff"s},
                                                        {"sec-websocket-protocol", "p1, p2"}}) {
    v1::Header* header = scope.add_headers();
    header->set_name(name);
    header->set_value(value);
  }
  scope.mutable_client()->set_host("10.0.0.1");
  scope.mutable_client()->set_port(40000);
  scope.mutable_server()->set_host("::1");
  scope.mutable_server()->set_port(8080);
  scope.add_subprotocols("p1");
  scope.add_subprotocols("p2");
  return scope;
}

TEST(CodecScopeTest, EveryFieldConverted) {
  const Scope scope = FromProto(FullScope());
  EXPECT_EQ(scope.type, Scope::Type::kWebSocket);
  EXPECT_EQ(scope.http_version, "1.1");
  EXPECT_EQ(scope.method, "");
  EXPECT_EQ(scope.scheme, "ws");
  EXPECT_EQ(scope.path, "/chat/caf\xC3\xA9");
  EXPECT_EQ(scope.raw_path, "/chat/caf%C3%A9");
  EXPECT_EQ(scope.query_string, "a=1&b=%20");
  EXPECT_EQ(scope.root_path, "/app");
  EXPECT_EQ(scope.headers, (Headers{{"host", "h"},
                                    {"x-a", "1"},
                                    {"x-a", "bin\0\xff"s},
                                    {"sec-websocket-protocol", "p1, p2"}}));
  ASSERT_TRUE(scope.client.has_value());
  EXPECT_EQ(scope.client->host, "10.0.0.1");
  EXPECT_EQ(scope.client->port, 40000);
  ASSERT_TRUE(scope.server.has_value());
  EXPECT_EQ(scope.server->host, "::1");
  EXPECT_EQ(scope.server->port, 8080);
  EXPECT_EQ(scope.subprotocols, (std::vector<std::string>{"p1", "p2"}));
  EXPECT_TRUE(scope.url_route.empty());
}

TEST(CodecScopeTest, HttpScopeWithoutAddresses) {
  v1::Scope proto;
  proto.set_type(v1::Scope::TYPE_HTTP);
  proto.set_http_version("1.0");
  proto.set_method("POST");
  proto.set_scheme("http");
  proto.set_path("/");
  const Scope scope = FromProto(std::move(proto));
  EXPECT_EQ(scope.type, Scope::Type::kHttp);
  EXPECT_EQ(scope.http_version, "1.0");
  EXPECT_EQ(scope.method, "POST");
  EXPECT_EQ(scope.scheme, "http");
  EXPECT_EQ(scope.path, "/");
  EXPECT_FALSE(scope.client.has_value());
  EXPECT_FALSE(scope.server.has_value());
  EXPECT_TRUE(scope.headers.empty());
  EXPECT_TRUE(scope.subprotocols.empty());
}

TEST(CodecScopeTest, UnspecifiedTypeIsHttp) {
  EXPECT_EQ(FromProto(v1::Scope()).type, Scope::Type::kHttp);
}

TEST(CodecScopeTest, PresentButEmptyAddressIsKept) {
  v1::Scope proto;
  proto.mutable_client();
  const Scope scope = FromProto(std::move(proto));
  ASSERT_TRUE(scope.client.has_value());
  EXPECT_EQ(scope.client->host, "");
  EXPECT_EQ(scope.client->port, 0);
  EXPECT_FALSE(scope.server.has_value());
}

// Gateway → worker: proto → SDK.

TEST(CodecFromProtoTest, HttpRequest) {
  v1::Event proto;
  proto.mutable_http_request()->set_body("payload\0"s);
  proto.mutable_http_request()->set_more_body(true);
  const auto event = FromProto(std::move(proto));
  ASSERT_TRUE(event.ok()) << event.status();
  const auto* request = std::get_if<HttpRequest>(&*event);
  ASSERT_NE(request, nullptr);
  EXPECT_EQ(request->body, "payload\0"s);
  EXPECT_TRUE(request->more_body);
}

TEST(CodecFromProtoTest, HttpDisconnect) {
  v1::Event proto;
  proto.mutable_http_disconnect();
  const auto event = FromProto(std::move(proto));
  ASSERT_TRUE(event.ok()) << event.status();
  EXPECT_TRUE(std::holds_alternative<HttpDisconnect>(*event));
}

TEST(CodecFromProtoTest, WebSocketConnect) {
  v1::Event proto;
  proto.mutable_websocket_connect();
  const auto event = FromProto(std::move(proto));
  ASSERT_TRUE(event.ok()) << event.status();
  EXPECT_TRUE(std::holds_alternative<WebSocketConnect>(*event));
}

TEST(CodecFromProtoTest, WebSocketReceiveTextAndBinary) {
  v1::Event proto;
  proto.mutable_websocket_receive()->set_data("hi");
  auto event = FromProto(std::move(proto));
  ASSERT_TRUE(event.ok()) << event.status();
  const auto* text = std::get_if<WebSocketReceive>(&*event);
  ASSERT_NE(text, nullptr);
  EXPECT_EQ(text->data, "hi");
  EXPECT_FALSE(text->binary);

  v1::Event binary_proto;
  binary_proto.mutable_websocket_receive()->set_data("\x01\x02");
  binary_proto.mutable_websocket_receive()->set_binary(true);
  event = FromProto(std::move(binary_proto));
  ASSERT_TRUE(event.ok()) << event.status();
  const auto* binary = std::get_if<WebSocketReceive>(&*event);
  ASSERT_NE(binary, nullptr);
  EXPECT_EQ(binary->data, "\x01\x02");
  EXPECT_TRUE(binary->binary);
}

TEST(CodecFromProtoTest, WebSocketDisconnect) {
  v1::Event proto;
  proto.mutable_websocket_disconnect()->set_code(4001);
  proto.mutable_websocket_disconnect()->set_reason("bye");
  const auto event = FromProto(std::move(proto));
  ASSERT_TRUE(event.ok()) << event.status();
  const auto* gone = std::get_if<WebSocketDisconnect>(&*event);
  ASSERT_NE(gone, nullptr);
  EXPECT_EQ(gone->code, 4001);
  EXPECT_EQ(gone->reason, "bye");
}

TEST(CodecFromProtoTest, RejectsKindsOnlyWorkersSend) {
  std::vector<v1::Event> events(6);
  events[0].mutable_http_response_start()->set_status(200);
  events[1].mutable_http_response_body()->set_body("x");
  events[2].mutable_websocket_accept();
  events[3].mutable_websocket_send()->set_data("x");
  events[4].mutable_websocket_close()->set_code(1000);
  // events[5]: no kind at all
  for (size_t i = 0; i < events.size(); ++i) {
    const auto event = FromProto(std::move(events[i]));
    ASSERT_FALSE(event.ok()) << i;
    EXPECT_EQ(event.status().code(), absl::StatusCode::kInvalidArgument) << i;
  }
}

// Worker → gateway: SDK → proto.

TEST(CodecToProtoTest, HttpResponseStart) {
  HttpResponseStart start;
  start.status = 404;
  start.headers = {{"content-type", "text/plain"}, {"set-cookie", "a"}, {"set-cookie", "b"}};
  start.trailers = true;
  const v1::Event proto = ToProto(std::move(start));
  ASSERT_TRUE(proto.has_http_response_start());
  const auto& m = proto.http_response_start();
  EXPECT_EQ(m.status(), 404u);
  EXPECT_TRUE(m.trailers());
  ASSERT_EQ(m.headers_size(), 3);
  EXPECT_EQ(m.headers(0).name(), "content-type");
  EXPECT_EQ(m.headers(0).value(), "text/plain");
  EXPECT_EQ(m.headers(1).value(), "a");
  EXPECT_EQ(m.headers(2).name(), "set-cookie");
  EXPECT_EQ(m.headers(2).value(), "b");
}

TEST(CodecToProtoTest, HttpResponseBody) {
  HttpResponseBody body;
  body.body = std::string(100000, 'z');
  body.more_body = true;
  const v1::Event proto = ToProto(std::move(body));
  ASSERT_TRUE(proto.has_http_response_body());
  EXPECT_EQ(proto.http_response_body().body(), std::string(100000, 'z'));
  EXPECT_TRUE(proto.http_response_body().more_body());
}

TEST(CodecToProtoTest, WebSocketAccept) {
  WebSocketAccept accept;
  accept.subprotocol = "chat";
  accept.headers = {{"x-extra", "1"}};
  const v1::Event proto = ToProto(std::move(accept));
  ASSERT_TRUE(proto.has_websocket_accept());
  EXPECT_EQ(proto.websocket_accept().subprotocol(), "chat");
  ASSERT_EQ(proto.websocket_accept().headers_size(), 1);
  EXPECT_EQ(proto.websocket_accept().headers(0).name(), "x-extra");
  EXPECT_EQ(proto.websocket_accept().headers(0).value(), "1");
}

TEST(CodecToProtoTest, WebSocketSend) {
  WebSocketSend send;
  send.data = "\xff\x00"s;
  send.binary = true;
  const v1::Event proto = ToProto(std::move(send));
  ASSERT_TRUE(proto.has_websocket_send());
  EXPECT_FALSE(proto.has_websocket_receive());
  EXPECT_EQ(proto.websocket_send().data(), "\xff\x00"s);
  EXPECT_TRUE(proto.websocket_send().binary());
}

TEST(CodecToProtoTest, WebSocketClose) {
  WebSocketClose close;
  close.code = 4003;
  close.reason = "denied";
  const v1::Event proto = ToProto(std::move(close));
  ASSERT_TRUE(proto.has_websocket_close());
  EXPECT_FALSE(proto.has_websocket_disconnect());
  EXPECT_EQ(proto.websocket_close().code(), 4003u);
  EXPECT_EQ(proto.websocket_close().reason(), "denied");
}

TEST(CodecToProtoTest, EveryKindMapsToItsOwnField) {
  const std::vector<std::pair<Event, v1::Event::KindCase>> cases = {
      {HttpRequest{}, v1::Event::kHttpRequest},
      {HttpDisconnect{}, v1::Event::kHttpDisconnect},
      {HttpResponseStart{}, v1::Event::kHttpResponseStart},
      {HttpResponseBody{}, v1::Event::kHttpResponseBody},
      {WebSocketConnect{}, v1::Event::kWebsocketConnect},
      {WebSocketAccept{}, v1::Event::kWebsocketAccept},
      {WebSocketReceive{}, v1::Event::kWebsocketReceive},
      {WebSocketSend{}, v1::Event::kWebsocketSend},
      {WebSocketClose{}, v1::Event::kWebsocketClose},
      {WebSocketDisconnect{}, v1::Event::kWebsocketDisconnect},
  };
  for (const auto& [event, kind] : cases) {
    Event copy = event;
    EXPECT_EQ(ToProto(std::move(copy)).kind_case(), kind) << TypeName(event);
  }
}

// Round trips of the kinds gateways send: SDK → proto → (wire) → SDK.

Event RoundTrip(Event event) {
  const std::string wire = ToProto(std::move(event)).SerializeAsString();
  v1::Event parsed;
  EXPECT_TRUE(parsed.ParseFromString(wire));
  auto back = FromProto(std::move(parsed));
  EXPECT_TRUE(back.ok()) << back.status();
  return back.ok() ? *std::move(back) : Event{};
}

TEST(CodecRoundTripTest, HttpRequest) {
  HttpRequest request;
  request.body = "a\0b"s;
  request.more_body = true;
  const Event back = RoundTrip(request);
  const auto* got = std::get_if<HttpRequest>(&back);
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(got->body, "a\0b"s);
  EXPECT_TRUE(got->more_body);

  const Event last = RoundTrip(HttpRequest{});
  ASSERT_TRUE(std::holds_alternative<HttpRequest>(last));
  EXPECT_EQ(std::get<HttpRequest>(last).body, "");
  EXPECT_FALSE(std::get<HttpRequest>(last).more_body);
}

TEST(CodecRoundTripTest, HttpDisconnectAndWebSocketConnect) {
  EXPECT_TRUE(std::holds_alternative<HttpDisconnect>(RoundTrip(HttpDisconnect{})));
  EXPECT_TRUE(std::holds_alternative<WebSocketConnect>(RoundTrip(WebSocketConnect{})));
}

TEST(CodecRoundTripTest, WebSocketReceive) {
  WebSocketReceive message;
  message.data = std::string(70000, '\x80');
  message.binary = true;
  const Event back = RoundTrip(message);
  const auto* got = std::get_if<WebSocketReceive>(&back);
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(got->data, std::string(70000, '\x80'));
  EXPECT_TRUE(got->binary);

  const Event empty_text = RoundTrip(WebSocketReceive{});
  ASSERT_TRUE(std::holds_alternative<WebSocketReceive>(empty_text));
  EXPECT_EQ(std::get<WebSocketReceive>(empty_text).data, "");
  EXPECT_FALSE(std::get<WebSocketReceive>(empty_text).binary);
}

TEST(CodecRoundTripTest, WebSocketDisconnect) {
  WebSocketDisconnect gone;
  gone.code = 1001;
  gone.reason = "going away";
  const Event back = RoundTrip(gone);
  const auto* got = std::get_if<WebSocketDisconnect>(&back);
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(got->code, 1001);
  EXPECT_EQ(got->reason, "going away");

  const Event defaulted = RoundTrip(WebSocketDisconnect{});
  ASSERT_TRUE(std::holds_alternative<WebSocketDisconnect>(defaulted));
  EXPECT_EQ(std::get<WebSocketDisconnect>(defaulted).code, 1005);
}

TEST(CodecRoundTripTest, ScopeThroughTheWire) {
  const std::string wire = FullScope().SerializeAsString();
  v1::Scope parsed;
  ASSERT_TRUE(parsed.ParseFromString(wire));
  const Scope scope = FromProto(std::move(parsed));
  EXPECT_EQ(scope.path, "/chat/caf\xC3\xA9");
  EXPECT_EQ(scope.headers.size(), 4u);
  EXPECT_EQ(scope.headers[2].second, "bin\0\xff"s);
  EXPECT_EQ(scope.subprotocols, (std::vector<std::string>{"p1", "p2"}));
  ASSERT_TRUE(scope.client.has_value());
  EXPECT_EQ(scope.client->port, 40000);
}

}  // namespace
}  // namespace sluice::worker
