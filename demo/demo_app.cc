#include "demo/demo_app.h"

#include <unistd.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "demo/chat_page.h"
#include "sluice/channel_consumer.h"
#include "sluice/http_consumer.h"
#include "sluice/json_consumer.h"
#include "sluice/layer.h"
#include "sluice/middleware.h"
#include "sluice/sync.h"
#include "sluice/sync_consumer.h"
#include "sluice/websocket_consumer.h"

namespace sluice::demo {
namespace {
namespace net = boost::asio;

// ASGI byte strings shown as Latin-1 text: each byte becomes the code point of its value.
std::string Latin1(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (const unsigned char c : bytes) {
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back(static_cast<char>(0xC0 | (c >> 6)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
  }
  return out;
}

nlohmann::json ScopeJson(const Scope& scope) {
  const bool http = scope.type == Scope::Type::kHttp;
  nlohmann::json headers = nlohmann::json::array();
  for (const auto& [name, value] : scope.headers) headers.push_back({Latin1(name), Latin1(value)});
  nlohmann::json out = {
      {"type", http ? "http" : "websocket"},
      {"asgi", {{"version", "3.0"}, {"spec_version", "2.3"}}},
      {"http_version", scope.http_version},
      {"scheme", scope.scheme},
      {"path", scope.path},
      {"raw_path", Latin1(scope.raw_path)},
      {"query_string", Latin1(scope.query_string)},
      {"root_path", scope.root_path},
      {"headers", headers},
      {"client", nullptr},
      {"server", nullptr},
  };
  if (http) {
    out["method"] = scope.method;
  } else {
    out["subprotocols"] = scope.subprotocols;
  }
  if (scope.client) out["client"] = {scope.client->host, scope.client->port};
  if (scope.server) out["server"] = {scope.server->host, scope.server->port};
  return out;
}

int QueryInt(const Scope& scope, std::string_view name, int fallback) {
  const auto text = scope.Query(name);
  int value = 0;
  if (!text ||
      std::from_chars(text->data(), text->data() + text->size(), value).ec != std::errc()) {
    return fallback;
  }
  return value;
}

// GET /: the chat page (demo/chat.html, built in), a client of /ws/chat/{room}.
class ChatPage final : public HttpConsumer {
  Task<void> Handle() override {
    Headers headers;
    if (scope().method != "GET") {
      headers.emplace_back("allow", "GET");
      co_await Respond(405, "Method Not Allowed\n", std::move(headers));
      co_return;
    }
    headers.emplace_back("cache-control", "no-cache");
    co_await Respond(200, std::string(kChatPage), std::move(headers), "text/html; charset=utf-8");
  }
};

class Hello final : public HttpConsumer {
  Task<void> Handle() override { co_await Respond(200, "Hello, world"); }
};

Headers EchoHeaders(const Scope& scope) {
  Headers headers;
  headers.emplace_back("content-type",
                       scope.Header("content-type").value_or("application/octet-stream"));
  return headers;
}

// POST /echo: reads the whole body (spooled to a temporary file past 1 MiB), then sends it
// back with its Content-Length. Works for clients that send everything before they read.
class Echo final : public HttpConsumer {
  Task<void> Handle() override {
    RequestBody body = co_await ReadWholeBody();
    Headers headers = EchoHeaders(scope());
    headers.emplace_back("content-length", std::to_string(body.size()));
    co_await StartResponse(200, std::move(headers));
    constexpr size_t kPiece = size_t{64} << 10;
    for (size_t offset = 0; offset < body.size(); offset += kPiece) {
      co_await SendBody(body.Read(offset, kPiece), offset + kPiece < body.size());
    }
    if (body.size() == 0) co_await SendBody(std::string(), false);
  }
};

// POST /echo/stream: full duplex, each piece echoed as it arrives. For clients that read
// while they send; one that sends everything first stalls once the windows fill.
class EchoStream final : public HttpConsumer {
  Task<void> Handle() override {
    Headers headers = EchoHeaders(scope());
    co_await StartResponse(200, std::move(headers));
    while (auto chunk = co_await ReadChunk()) co_await SendBody(std::move(*chunk), true);
    co_await SendBody(std::string(), false);
  }
};

// Server-Sent Events: "data: N" every interval_ms (default 1000), `count` times (default
// unlimited), until the client leaves.
class Sse final : public HttpConsumer {
  Task<void> Handle() override {
    const int interval_ms = std::max(1, QueryInt(scope(), "interval_ms", 1000));
    const int count = QueryInt(scope(), "count", -1);
    Headers headers;
    headers.emplace_back("content-type", "text/event-stream");
    headers.emplace_back("cache-control", "no-cache");
    co_await StartResponse(200, std::move(headers));
    net::steady_timer timer(co_await net::this_coro::executor);
    for (int n = 1; count < 0 || n <= count; ++n) {
      if (n > 1) {
        timer.expires_after(std::chrono::milliseconds(interval_ms));
        co_await timer.async_wait(net::use_awaitable);
      }
      co_await SendBody("data: " + std::to_string(n) + "\n\n", true);
    }
    co_await SendBody(std::string(), false);
  }
};

class ScopeView final : public HttpConsumer {
  Task<void> Handle() override {
    std::string json = ScopeJson(scope()).dump();
    co_await Respond(200, std::move(json), Headers(), "application/json");
  }
};

class Fail final : public HttpConsumer {
  Task<void> Handle() override {
    throw std::runtime_error("this route fails on purpose");
    co_return;
  }
};

class WebSocketEcho : public WebSocketConsumer {
 protected:
  Task<void> OnConnect() override {
    std::string chosen;
    for (const std::string& offered : scope().subprotocols) {
      if (offered == "echo.v1" || offered == "echo.v2") {
        chosen = offered;
        break;
      }
    }
    co_await Accept(std::move(chosen));
  }
  Task<void> OnText(std::string text) override { co_await SendText(std::move(text)); }
  Task<void> OnBinary(std::string bytes) override { co_await SendBinary(std::move(bytes)); }
};

// /ws/slow?delay_ms=N: a slow consumer. Sleeps N ms (default 100) per message, then echoes
// it; its client is slowed by credit, never buffered without bound.
class WebSocketSlow final : public WebSocketEcho {
  Task<void> OnText(std::string text) override {
    co_await Pause();
    co_await SendText(std::move(text));
  }
  Task<void> OnBinary(std::string bytes) override {
    co_await Pause();
    co_await SendBinary(std::move(bytes));
  }
  Task<void> Pause() {
    const int delay_ms = std::clamp(QueryInt(scope(), "delay_ms", 100), 0, 60000);
    net::steady_timer timer(co_await net::this_coro::executor);
    timer.expires_after(std::chrono::milliseconds(delay_ms));
    co_await timer.async_wait(net::use_awaitable);
  }
};

// /ws/firehose?count=N&size=B: sends N (default 1000) text messages of B bytes (default 1024,
// at most 1 MiB) as fast as the client takes them, then closes with 1000. Each message starts
// with its sequence number, so clients can check order.
class WebSocketFirehose final : public WebSocketConsumer {
  Task<void> OnConnect() override {
    co_await Accept();
    const int count = std::max(0, QueryInt(scope(), "count", 1000));
    const size_t size =
        static_cast<size_t>(std::clamp(QueryInt(scope(), "size", 1024), 1, 1 << 20));
    for (int i = 0; i < count; ++i) {
      std::string message = std::to_string(i) + ' ';
      message.resize(std::max(size, message.size()), 'x');
      co_await SendText(std::move(message));
    }
    co_await Close(1000, "done");
  }
};

class WebSocketScope final : public WebSocketEcho {
  Task<void> OnConnect() override {
    co_await WebSocketEcho::OnConnect();
    co_await SendText(ScopeJson(scope()).dump());
  }
};

// ---- Routes the end-to-end suite uses to provoke edge cases --------------------------------

// /early?status=N: answers at once (default 401) without reading the request body.
class Early final : public HttpConsumer {
  Task<void> Handle() override {
    const int status = std::clamp(QueryInt(scope(), "status", 401), 200, 999);
    co_await Respond(status, "answered before the body was read\n");
  }
};

// /bad-length?declared=N&sent=M&pieces=P: declares Content-Length N and sends M bytes in P
// body events (default 1): a response that breaks its own length.
class BadLength final : public HttpConsumer {
  Task<void> Handle() override {
    const int declared = std::max(0, QueryInt(scope(), "declared", 10));
    const int sent = std::max(0, QueryInt(scope(), "sent", 5));
    const int pieces = std::clamp(QueryInt(scope(), "pieces", 1), 1, 100);
    Headers headers;
    headers.emplace_back("content-length", std::to_string(declared));
    co_await StartResponse(200, std::move(headers));
    for (int i = 0; i < pieces; ++i) {
      const int size = sent / pieces + (i == pieces - 1 ? sent % pieces : 0);
      co_await SendBody(std::string(static_cast<size_t>(size), 'b'), i + 1 < pieces);
    }
  }
};

// /ws/twins?count=N: two coroutines of the one consumer send N messages each ("a 0", "b 0",
// ...) at the same time, both waiting for credit when the client reads slowly; then close.
class WebSocketTwins final : public WebSocketConsumer {
  Task<void> OnConnect() override {
    co_await Accept();
    using namespace boost::asio::experimental::awaitable_operators;
    const int count = std::max(0, QueryInt(scope(), "count", 1000));
    co_await (SendAll('a', count) && SendAll('b', count));
    co_await Close(1000, "done");
  }
  Task<void> SendAll(char name, int count) {
    for (int i = 0; i < count; ++i) {
      std::string message = std::string(1, name) + ' ' + std::to_string(i);
      co_await SendText(std::move(message));
    }
  }
};

class WebSocketDeny final : public WebSocketConsumer {
  Task<void> OnConnect() override { co_await Close(); }
};

class WebSocketFail final : public WebSocketConsumer {
  Task<void> OnText(std::string /*text*/) override {
    throw std::runtime_error("this consumer fails on purpose");
    co_return;
  }
  Task<void> OnBinary(std::string bytes) override { co_await OnText(std::move(bytes)); }
};

// ---- The channel layer: chat, tasks, and a probe for the end-to-end suite ----------------

// /ws/chat/{room}: Channels' tutorial chat. Joins group chat_{room} before accepting; each
// text from the client goes to the group as {"type": "chat.message", "text": …}, and each
// chat.message's text goes to the client. A text the layer cannot take now (Redis away) is
// answered to its sender alone with kNotSent + the reason; the connection stays, and the
// gateway restores the room's membership when Redis is back.
constexpr std::string_view kNotSent = "not sent: ";

class ChatRoom final : public WebSocketConsumer {
 public:
  ChatRoom() {
    On("chat.message", [this](const Message& message) -> Task<void> {
      co_await SendText(message.value("text", std::string()));
    });
  }

 private:
  std::vector<std::string> Groups() const override {
    return {"chat_" + std::string(scope().Param("room").value_or(""))};
  }
  Task<void> OnText(std::string text) override {
    Message message = {{"type", "chat.message"}, {"text", std::move(text)}};
    std::string group = Groups().front();
    std::string failure;
    try {
      co_await GroupSend(std::move(group), message);
    } catch (const LayerError& error) {
      failure = error.what();
    }
    if (!failure.empty()) co_await SendText(std::string(kNotSent) + failure);
  }
};

// /ws/tally/{room}: the chat with state that survives moves (docs/failover.md). Each text
// from the client goes to group tally_{room} as {"type": "tally.message", "text", "n"}, where
// n counts this connection's messages (1, 2, ...); members get {"text", "n"} as JSON text.
// The count is saved after each message, so a connection moved to another worker goes on
// counting where it was (OnResume), and n never restarts or skips: a message being handled
// when its worker died is sent again with the same n (at least once; clients de-duplicate).
class TallyRoom final : public WebSocketConsumer {
 public:
  TallyRoom() {
    On("tally.message", [this](const Message& message) -> Task<void> {
      Message out = {{"text", message.value("text", std::string())}, {"n", message.value("n", 0)}};
      co_await SendText(out.dump());
    });
  }

 private:
  std::vector<std::string> Groups() const override {
    return {"tally_" + std::string(scope().Param("room").value_or(""))};
  }
  Task<void> OnResume(std::optional<std::string> state) override {
    if (state) sent_ = std::stoll(*state);
    co_return;
  }
  Task<void> OnText(std::string text) override {
    const int64_t n = sent_ + 1;
    Message message = {{"type", "tally.message"}, {"text", std::move(text)}, {"n", n}};
    std::string group = Groups().front();
    co_await GroupSend(std::move(group), message);
    sent_ = n;
    SaveState(std::to_string(n));  // after the send: at least once
  }

  int64_t sent_ = 0;
};

// What the tasks channel does to a body: deterministic, visible.
std::string Process(std::string body) {
  std::reverse(body.begin(), body.end());
  for (char& c : body) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return body;
}

// POST /tasks[?timeout_ms=N]: sends {"type": "task.run", "body", "reply_channel"} to the
// background channel "tasks", waits (default 10 s) for task.done on its own channel and
// answers 200 with the result; 504 when none came in time, 503 when the channel is full or
// the layer unavailable (or off: --layer none).
class TaskRequest final : public HttpConsumer {
 public:
  TaskRequest() {
    On("task.done", [this](const Message& message) -> Task<void> {
      result_ = message.value("result", std::string());
      co_return;
    });
  }

 private:
  Task<void> Handle() override {
    std::string body = co_await ReadBody(size_t{64} << 10);
    Message task = {
        {"type", "task.run"}, {"body", std::move(body)}, {"reply_channel", channel_name()}};
    std::string refused;
    try {
      co_await ChannelSend("tasks", task);
    } catch (const LayerError& e) {  // the channel is full, or the layer is down or off
      refused = e.what();
    }
    if (!refused.empty()) {
      co_await Respond(503, refused + "\n");
      co_return;
    }
    const int timeout_ms = std::clamp(QueryInt(scope(), "timeout_ms", 10000), 1, 600000);
    const bool done = co_await DispatchUntil([this] { return result_.has_value(); },
                                             std::chrono::milliseconds(timeout_ms));
    if (!done) {
      co_await Respond(504, "the task did not finish in time\n");
      co_return;
    }
    co_await Respond(200, *result_);
  }

  std::optional<std::string> result_;
};

// The end-to-end suite's signal files: NAME in SLUICE_DEMO_SIGNAL_DIR.
std::filesystem::path SignalPath(const std::string& name) {
  const char* dir = std::getenv("SLUICE_DEMO_SIGNAL_DIR");
  if (dir == nullptr || name.empty() || name.find('/') != std::string::npos) {
    throw std::invalid_argument(
        "waiting for a signal needs SLUICE_DEMO_SIGNAL_DIR and a plain name");
  }
  return std::filesystem::path(dir) / name;
}

Task<void> WaitForFile(std::filesystem::path signal) {
  net::steady_timer timer(co_await net::this_coro::executor);
  while (!std::filesystem::exists(signal)) {
    timer.expires_after(std::chrono::milliseconds(10));
    co_await timer.async_wait(net::use_awaitable);
  }
}

// The background consumer of "tasks": answers task.run with task.done {result, delivery_id}
// on its reply_channel (and to reply_group when given). With SLUICE_DEMO_SIGNAL_DIR set (the
// end-to-end suite), a body "wait:NAME" first writes NAME.taken.<pid> (the delivery id) in
// that directory and waits until NAME exists there: a task in flight, on purpose.
class TaskRunner final : public ChannelConsumer {
 public:
  TaskRunner() {
    On("task.run", [this](const Message& message) { return RunTask(message); });
  }

 private:
  Task<void> RunTask(const Message& message) {
    const std::string body = message.value("body", std::string());
    if (body.starts_with("wait:")) co_await WaitForSignal(body.substr(5));
    Message done = {
        {"type", "task.done"}, {"result", Process(body)}, {"delivery_id", delivery_id()}};
    const std::string reply_channel = message.value("reply_channel", std::string());
    const std::string reply_group = message.value("reply_group", std::string());
    if (!reply_channel.empty()) co_await ChannelSend(reply_channel, done);
    if (!reply_group.empty()) co_await GroupSend(reply_group, done);
  }

  Task<void> WaitForSignal(const std::string& name) {
    const std::filesystem::path signal = SignalPath(name);
    std::ofstream(signal.string() + ".taken." + std::to_string(::getpid())) << delivery_id();
    co_await WaitForFile(signal);
  }
};

// /ws/layer: the channel layer driven from a WebSocket, for the end-to-end suite. Greets
// with {"channel": channel_name(), "pid"}; each text is a JSON command {"op": "send" |
// "group_send" | "group_add" | "group_discard", "channel" | "group", "message", "pad": N
// (adds N bytes of padding to the message)}, answered {"op", "result": "ok" | the error's
// name}. Messages of type test.message come back as {"got": message}; a test.block message
// blocks its handler for a minute, or until the signal file named by its "until" exists,
// so the consumer stops taking events (a consumer that
// does not read: its channel fills, and senders see ChannelFull).
class LayerProbe final : public WebSocketConsumer {
 public:
  LayerProbe() {
    On("test.message", [this](const Message& message) -> Task<void> {
      Message got = {{"got", message}};
      co_await SendText(got.dump());
    });
    On("task.done", [this](const Message& message) -> Task<void> {
      Message got = {{"got", message}};
      co_await SendText(got.dump());
    });
    On("test.block", [](const Message& message) -> Task<void> {
      if (message.contains("until")) {
        const std::filesystem::path signal = SignalPath(message.value("until", std::string()));
        co_await WaitForFile(signal);
        co_return;
      }
      net::steady_timer timer(co_await net::this_coro::executor);
      timer.expires_after(std::chrono::minutes(1));
      co_await timer.async_wait(net::as_tuple(net::use_awaitable));
    });
  }

 private:
  Task<void> OnConnect() override {
    co_await Accept();
    Message hello = {{"channel", channel_name()}, {"pid", ::getpid()}};
    co_await SendText(hello.dump());
  }

  Task<void> OnText(std::string text) override {
    const Message command = ParseJson(text).value_or(Message());
    const std::string op = command.is_object() ? command.value("op", std::string()) : "";
    Message message =
        command.is_object() ? command.value("message", Message::object()) : Message::object();
    if (command.is_object() && command.contains("pad")) {
      message["pad"] = std::string(command.value("pad", size_t{0}), 'p');
    }
    std::string target = command.is_object()
                             ? command.value(op == "send" ? "channel" : "group", std::string())
                             : std::string();
    std::string result = "ok";
    try {
      if (op == "send") {
        co_await ChannelSend(std::move(target), message);
      } else if (op == "group_send") {
        co_await GroupSend(std::move(target), message);
      } else if (op == "group_add") {
        co_await GroupAdd(std::move(target));
      } else if (op == "group_discard") {
        co_await GroupDiscard(std::move(target));
      } else {
        result = "unknown op";
      }
    } catch (const ChannelFull&) {
      result = "ChannelFull";
    } catch (const MessageTooLarge&) {
      result = "MessageTooLarge";
    } catch (const LayerUnavailable&) {
      result = "LayerUnavailable";
    } catch (const InvalidLayerCall&) {
      result = "InvalidLayerCall";
    } catch (const std::invalid_argument&) {
      result = "invalid_argument";
    }
    Message answer = {{"op", op}, {"result", result}};
    co_await SendText(answer.dump());
  }
};

// ---- Sync code and its bridges (docs/sdk.md) ----

std::string ThisThreadId() {
  std::ostringstream out;
  out << std::this_thread::get_id();
  return out.str();
}

// Milliseconds from "PREFIX:MS", at most 5000; nullopt when `text` is not that.
std::optional<int> MillisAfter(std::string_view text, std::string_view prefix) {
  if (!text.starts_with(prefix)) return std::nullopt;
  int ms = 0;
  const auto [end, ec] =
      std::from_chars(text.data() + prefix.size(), text.data() + text.size(), ms);
  if (ec != std::errc() || end != text.data() + text.size() || ms < 0) return std::nullopt;
  return std::min(ms, 5000);
}

// /ws/sync: a sync consumer; its handlers block on its connection's pool thread, never on
// an event loop. "sleep:MS" sleeps MS ms (at most 5000) and answers "slept:MS"; "thread"
// answers the id of the thread the handler runs on (always the same: thread-sensitive);
// "group:NAME" joins a group and sends it {"type": "test.message"} through the blocking
// layer calls; anything else is echoed.
class SyncEcho final : public SyncWebSocketConsumer {
 public:
  SyncEcho() {
    On("test.message", [this](const Message& message) { SendText(message.dump()); });
  }

 private:
  void OnText(std::string text) override {
    if (auto ms = MillisAfter(text, "sleep:")) {
      std::this_thread::sleep_for(std::chrono::milliseconds(*ms));
      SendText("slept:" + std::to_string(*ms));
    } else if (text == "thread") {
      SendText(ThisThreadId());
    } else if (text.starts_with("group:")) {
      const std::string group = text.substr(6);
      GroupAdd(group);
      GroupSend(group, Message{{"type", "test.message"}, {"group", group}});
    } else {
      SendText(std::move(text));
    }
  }
};

// /sync/hello: a sync HTTP consumer. Answers "hello from a sync consumer (N body bytes)";
// a query sleep=MS blocks first (at most 5000 ms).
class SyncHello final : public SyncHttpConsumer {
  void HandleRequest(RequestBody body) override {
    if (auto sleep = scope().Query("sleep")) {
      if (auto ms = MillisAfter("sleep:" + *sleep, "sleep:")) {
        std::this_thread::sleep_for(std::chrono::milliseconds(*ms));
      }
    }
    Respond(200, "hello from a sync consumer (" + std::to_string(body.size()) + " body bytes)\n");
  }
};

// /ws/json: a JSON consumer; answers each JSON value v with {"echo": v}. Text that is not
// JSON closes with 1007, a binary message with 1003.
class JsonEcho final : public JsonWebSocketConsumer {
  Task<void> ReceiveJson(Message content) override {
    Message answer = {{"echo", std::move(content)}};
    co_await SendJson(answer);
  }
};

// /ws/misuse: misbehaves on purpose, for the tests of the SDK's guards. "block:MS" blocks
// the event loop for MS ms (at most 5000; the loop watchdog reports it); "async-to-sync"
// calls AsyncToSync on the event loop and answers the error it gets.
class Misuse final : public WebSocketConsumer {
  Task<void> OnText(std::string text) override {
    if (auto ms = MillisAfter(text, "block:")) {
      std::this_thread::sleep_for(std::chrono::milliseconds(*ms));
      co_await SendText("blocked:" + std::to_string(*ms));
    } else if (text == "async-to-sync") {
      std::string answer = "no error";
      try {
        AsyncToSync([this] { return SendText("never sent"); });
      } catch (const std::logic_error& e) {
        answer = e.what();
      }
      co_await SendText(std::move(answer));
    }
  }
};

// ---- Middleware: origin checks, cookies, users and request ids ----------------------------

// /ws/origin-checked: an echo behind an OriginValidator (see MakeApp). The other demo routes
// take any origin: the demo is opened under whatever host name it runs on.
OriginPolicy DemoOriginPolicy() {
  OriginPolicy policy;
  policy.allowed = {"localhost", "127.0.0.1", "[::1]", "https://allowed.example",
                    ".trusted.example"};
  return policy;
}

// The demo's users: `Authorization: Bearer NAME` or the cookie demo_user=NAME, NAME being
// 1 to 32 letters, digits, '-' or '_'. No credentials: anonymous; credentials that are not a
// NAME: refused. (A real resolver looks a session or token up.)
AuthDecision DemoUser(const Scope& scope) {
  std::optional<std::string_view> name;
  if (const auto authorization = scope.Header("authorization")) {
    name = authorization->starts_with("Bearer ") ? authorization->substr(7) : std::string_view();
  } else {
    name = scope.Cookie("demo_user");
  }
  if (!name) return AuthDecision::Anonymous();
  const bool valid =
      !name->empty() && name->size() <= 32 && std::all_of(name->begin(), name->end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
      });
  if (!valid) return AuthDecision::Refuse("Bearer realm=\"sluice-demo\"");
  nlohmann::json user = {{"name", std::string(*name)}};
  return AuthDecision::User(std::move(user));
}

nlohmann::json WhoJson(const Scope& scope) {
  return {{"user", scope.user},
          {"request_id", scope.request_id},
          {"cookies", scope.cookies},
          {"url_route", scope.url_route}};
}

// /whoami: {"user", "request_id", "cookies", "url_route"} as the middleware left them;
// /whoami/fail fails after resolving, so the worker logs the failure with the request id.
class WhoAmI final : public HttpConsumer {
  Task<void> Handle() override {
    if (scope().path.ends_with("/fail")) throw std::runtime_error("whoami fails on purpose");
    std::string json = WhoJson(scope()).dump();
    co_await Respond(200, std::move(json), Headers(), "application/json");
  }
};

// /ws/whoami: accepts and sends the same JSON.
class WebSocketWhoAmI final : public WebSocketConsumer {
  Task<void> OnConnect() override {
    co_await Accept();
    co_await SendText(WhoJson(scope()).dump());
  }
};

// Request id outermost (refusals carry it too), cookies before the user resolver reads them.
std::shared_ptr<Application> WithUser(std::shared_ptr<Application> app) {
  return RequestIdMiddleware(CookieMiddleware(AuthMiddleware(std::move(app), DemoUser)));
}

}  // namespace

std::shared_ptr<Router> MakeApp() {
  auto router = std::make_shared<Router>();
  router->Http("/", Make<ChatPage>())
      .Http("/hello", Make<Hello>())
      .Http("/echo", Make<Echo>())
      .Http("/echo/stream", Make<EchoStream>())
      .Http("/sse", Make<Sse>())
      .Http("/scope", Make<ScopeView>())
      .Http("/error", Make<Fail>())
      .Http("/early", Make<Early>())
      .Http("/bad-length", Make<BadLength>())
      .WebSocket("/ws/echo", Make<WebSocketEcho>())
      .WebSocket("/ws/scope", Make<WebSocketScope>())
      .WebSocket("/ws/slow", Make<WebSocketSlow>())
      .WebSocket("/ws/firehose", Make<WebSocketFirehose>())
      .WebSocket("/ws/deny", Make<WebSocketDeny>())
      .WebSocket("/ws/error", Make<WebSocketFail>())
      .WebSocket("/ws/twins", Make<WebSocketTwins>())
      .Http("/tasks", Make<TaskRequest>())
      .WebSocket("/ws/chat/{room}", Make<ChatRoom>())
      .WebSocket("/ws/tally/{room}", Make<TallyRoom>())
      .WebSocket("/ws/layer", Make<LayerProbe>())
      .WebSocket("/ws/origin-checked", OriginValidator(Make<WebSocketEcho>(), DemoOriginPolicy()))
      .Http("/whoami", WithUser(Make<WhoAmI>()))
      .Http("/whoami/fail", WithUser(Make<WhoAmI>()))
      .WebSocket("/ws/whoami", WithUser(Make<WebSocketWhoAmI>()))
      .Channel("tasks", Make<TaskRunner>())
      .WebSocket("/ws/sync", Make<SyncEcho>())
      .Http("/sync/hello", Make<SyncHello>())
      .WebSocket("/ws/json", Make<JsonEcho>())
      .WebSocket("/ws/misuse", Make<Misuse>());
  return router;
}

Lifespan MakeLifespan() {
  Lifespan lifespan;
  lifespan.OnStartup("demo", [] {
    if (const char* why = std::getenv("SLUICE_DEMO_FAIL_STARTUP")) {
      throw std::runtime_error(std::string("SLUICE_DEMO_FAIL_STARTUP is set: ") + why);
    }
  });
  lifespan.OnShutdown("demo", [] { std::cout << "sluice-worker shutdown hooks ran" << std::endl; });
  return lifespan;
}

}  // namespace sluice::demo
