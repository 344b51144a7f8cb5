#include "sluice/testing.h"

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cctype>
#include <future>
#include <iostream>
#include <thread>

#include "common/text.h"
#include "layer/in_memory_layer.h"
#include "sluice/layer.h"
#include "sluice/sync.h"

namespace sluice::testing {
namespace net = boost::asio;

namespace {

// The communicators' event loop and in-memory layer: one per process, as a worker's layer
// is one per gateway. Never destroyed (consumers may still be on it at exit).
struct TestLoop {
  net::io_context io{1};
  layer::InMemoryLayer layer{io.get_executor(), [] {
                               layer::Options options;
                               options.gateway_id = "test";
                               return options;
                             }()};
  std::atomic<uint64_t> next_id{1};
  std::thread thread{[this] {
    internal::MarkEventLoopThread(true);
    auto work = net::make_work_guard(io);
    io.run();
  }};

  static TestLoop& Get() {
    static TestLoop* loop = new TestLoop;
    return *loop;
  }
};

void ThrowFor(layer::Status status) {
  switch (status) {
    case layer::Status::kOk:
      return;
    case layer::Status::kChannelFull:
      throw ChannelFull("channel layer: channel full");
    case layer::Status::kTooLarge:
      throw MessageTooLarge("channel layer: message too large");
    case layer::Status::kUnavailable:
      throw LayerUnavailable("channel layer unavailable");
    default:
      throw InvalidLayerCall("channel layer: invalid call (a bad name or message)");
  }
}

// Runs a layer operation from a test thread and waits for it.
template <class Start>
void CallLayer(Start start, milliseconds timeout) {
  auto done = std::make_shared<std::promise<layer::Status>>();
  std::future<layer::Status> status = done->get_future();
  TestLoop& loop = TestLoop::Get();
  net::post(loop.io, [start = std::move(start), done, &loop]() mutable {
    start(loop.layer, layer::Completion(net::bind_executor(
                          loop.io, [done](layer::Status status) { done->set_value(status); })));
  });
  if (status.wait_for(timeout) != std::future_status::ready) {
    throw Timeout("the layer did not answer within " + std::to_string(timeout.count()) + " ms");
  }
  ThrowFor(status.get());
}

}  // namespace

void LayerSend(const std::string& channel, const Message& message, milliseconds timeout) {
  CallLayer(
      [channel, message](layer::ChannelLayer& layer, layer::Completion done) {
        layer.Send(channel, message, std::move(done));
      },
      timeout);
}

void LayerGroupSend(const std::string& group, const Message& message, milliseconds timeout) {
  CallLayer(
      [group, message](layer::ChannelLayer& layer, layer::Completion done) {
        layer.GroupSend(group, message, std::move(done));
      },
      timeout);
}

// The consumer's Connection. Its coroutines, inbox and channel live on the test loop; the
// outbox and the end are shared with the test thread under `mu`.
struct ApplicationCommunicator::State final : Connection, std::enable_shared_from_this<State> {
  TestLoop& loop = TestLoop::Get();
  Scope scope;
  const uint64_t id = loop.next_id.fetch_add(1);
  std::string channel;
  std::unique_ptr<Consumer> consumer;
  // The loop's.
  std::deque<Event> inbox;
  net::steady_timer wake{loop.io, net::steady_timer::time_point::max()};
  net::cancellation_signal cancel;
  bool disconnect_taken = false;
  bool response_finished = false;
  // Shared.
  mutable std::mutex mu;
  std::condition_variable changed;
  std::deque<Event> outbox;
  bool client_gone = false;
  std::optional<std::string> saved;  // SaveState's last
  bool done = false;
  std::exception_ptr error;

  explicit State(Scope s) : scope(std::move(s)), channel(loop.layer.ChannelName(id)) {}

  void Start(Application& app) {
    net::post(loop.io, [self = shared_from_this(), &app] {
      self->loop.layer.NewChannel(self->id);
      try {
        self->consumer = app.Create(self->scope);
      } catch (...) {
        self->Finish(std::current_exception());
        return;
      }
      self->consumer->Bind(&self->scope, self.get());
      self->Pump();
      net::co_spawn(
          self->loop.io, self->Main(),
          net::bind_cancellation_slot(self->cancel.slot(), [self](const std::exception_ptr&) {}));
    });
  }

  Task<void> Main() {
    std::exception_ptr failure;
    try {
      co_await consumer->Run();
    } catch (const Disconnected&) {
      // The client left: a normal end.
    } catch (...) {
      failure = std::current_exception();
    }
    Finish(failure);
  }

  void Finish(std::exception_ptr failure) {
    loop.layer.CloseChannel(channel);
    consumer.reset();
    std::lock_guard lock(mu);
    done = true;
    error = std::move(failure);
    changed.notify_all();
  }

  // Messages on the channel become LayerMessage events, in order with the others.
  void Pump() {
    loop.layer.Receive(channel, net::bind_executor(loop.io, [self = shared_from_this()](
                                                                layer::Status status,
                                                                const layer::MessagePtr& message) {
                         if (status != layer::Status::kOk || !message) return;  // closed
                         self->inbox.emplace_back(LayerMessage{*message, {}});
                         self->wake.cancel();
                         self->Pump();
                       }));
  }

  void Push(Event event) {
    inbox.push_back(std::move(event));
    wake.cancel();
  }

  // ---- Connection ----
  Task<Event> Receive() override {
    while (inbox.empty()) {
      if (disconnect_taken) throw Disconnected("receive after disconnect");
      if (scope.type == Scope::Type::kHttp && response_finished) {
        disconnect_taken = true;
        co_return HttpDisconnect{};
      }
      co_await wake.async_wait(net::as_tuple(net::use_awaitable));
    }
    Event event = std::move(inbox.front());
    inbox.pop_front();
    disconnect_taken = disconnect_taken || std::holds_alternative<HttpDisconnect>(event) ||
                       std::holds_alternative<WebSocketDisconnect>(event);
    co_return event;
  }

  Task<std::optional<Event>> ReceiveUntil(std::chrono::steady_clock::time_point deadline) override {
    net::steady_timer timer(loop.io, deadline);
    bool expired = false;
    timer.async_wait([this, &expired](const boost::system::error_code& ec) {
      if (ec) return;
      expired = true;
      wake.cancel();
    });
    while (inbox.empty()) {
      if (disconnect_taken) throw Disconnected("receive after disconnect");
      if (expired || std::chrono::steady_clock::now() >= deadline) co_return std::nullopt;
      co_await wake.async_wait(net::as_tuple(net::use_awaitable));
    }
    co_return co_await Receive();
  }

  Task<void> Send(Event event) override {
    if (const auto* body = std::get_if<HttpResponseBody>(&event)) {
      response_finished = !body->more_body;
    }
    {
      std::lock_guard lock(mu);
      if (client_gone) throw Disconnected("the test client disconnected");
      if (outbox.size() >= ApplicationCommunicator::kMaxUnreadOutput) {
        throw std::length_error("communicator: the consumer sent " + std::to_string(outbox.size()) +
                                " events the test has not read");
      }
      outbox.push_back(std::move(event));
      changed.notify_all();
    }
    wake.cancel();  // a Receive waiting for the end of an HTTP response
    co_return;
  }

  const std::string& ChannelName() const override { return channel; }

  void SaveState(std::string state) override {
    if (scope.type != Scope::Type::kWebSocket) {
      throw std::logic_error("SaveState: only a WebSocket's consumer saves state");
    }
    if (state.size() > kMaxStateBytes) {
      throw std::length_error("SaveState: " + std::to_string(state.size()) + " bytes, over " +
                              std::to_string(kMaxStateBytes));
    }
    std::lock_guard lock(mu);
    saved = std::move(state);
  }

  Task<void> Layer(LayerCall call) override {
    Message message;
    if (!call.message.empty()) {
      message = Message::from_msgpack(call.message, true, /*allow_exceptions=*/false);
      if (message.is_discarded()) throw InvalidLayerCall("channel layer: not msgpack");
    }
    auto start = [&](auto handler) {
      layer::Completion done(std::move(handler));
      switch (call.kind) {
        case LayerCall::Kind::kSend:
          return loop.layer.Send(call.target, std::move(message), std::move(done));
        case LayerCall::Kind::kGroupAdd:
          return loop.layer.GroupAdd(call.target, channel, std::move(done));
        case LayerCall::Kind::kGroupDiscard:
          return loop.layer.GroupDiscard(call.target, channel, std::move(done));
        case LayerCall::Kind::kGroupSend:
          return loop.layer.GroupSend(call.target, std::move(message), std::move(done));
      }
    };
    const layer::Status status =
        co_await net::async_initiate<decltype(net::use_awaitable), void(layer::Status)>(
            start, net::use_awaitable);
    ThrowFor(status);
  }

  void Unhandled(const LayerMessage& message) override {
    std::cerr << "sluice::testing: consumer for " << scope.path
              << " has no handler for channel-layer message " << message.message.dump() << "\n";
  }
};

ApplicationCommunicator::ApplicationCommunicator(Application& app, Scope scope)
    : state_(std::make_shared<State>(std::move(scope))) {
  state_->Start(app);
}

ApplicationCommunicator::~ApplicationCommunicator() {
  if (finished()) return;
  // The client leaves; a consumer that does not return is cancelled.
  const bool http = state_->scope.type == Scope::Type::kHttp;
  SendInput(http ? Event(HttpDisconnect{}) : Event(WebSocketDisconnect{1006, {}}));
  std::unique_lock lock(state_->mu);
  if (state_->changed.wait_for(lock, milliseconds(1000), [&] { return state_->done; })) return;
  lock.unlock();
  net::post(state_->loop.io,
            [state = state_] { state->cancel.emit(net::cancellation_type::terminal); });
  lock.lock();
  if (!state_->changed.wait_for(lock, milliseconds(1000), [&] { return state_->done; })) {
    std::cerr << "sluice::testing: the consumer for " << state_->scope.path
              << " did not return after its disconnect and a cancellation; left running\n";
  }
}

std::optional<std::string> ApplicationCommunicator::saved_state() const {
  std::lock_guard lock(state_->mu);
  return state_->saved;
}

void ApplicationCommunicator::SendInput(Event event) {
  {
    std::lock_guard lock(state_->mu);
    if (std::holds_alternative<HttpDisconnect>(event) ||
        std::holds_alternative<WebSocketDisconnect>(event)) {
      state_->client_gone = true;
    }
  }
  net::post(state_->loop.io, [state = state_, event = std::move(event)]() mutable {
    state->Push(std::move(event));
  });
}

Event ApplicationCommunicator::ReceiveOutput(milliseconds timeout) {
  std::unique_lock lock(state_->mu);
  if (!state_->changed.wait_for(lock, timeout,
                                [&] { return !state_->outbox.empty() || state_->done; })) {
    throw Timeout("no output from the consumer within " + std::to_string(timeout.count()) + " ms");
  }
  if (state_->outbox.empty()) {
    if (state_->error) std::rethrow_exception(state_->error);
    throw std::runtime_error("the consumer returned without sending more");
  }
  Event event = std::move(state_->outbox.front());
  state_->outbox.pop_front();
  return event;
}

bool ApplicationCommunicator::ReceiveNothing(milliseconds timeout) {
  std::unique_lock lock(state_->mu);
  return !state_->changed.wait_for(lock, timeout, [&] { return !state_->outbox.empty(); });
}

void ApplicationCommunicator::Wait(milliseconds timeout) {
  std::unique_lock lock(state_->mu);
  if (!state_->changed.wait_for(lock, timeout, [&] { return state_->done; })) {
    throw Timeout("the consumer did not return within " + std::to_string(timeout.count()) + " ms");
  }
  if (state_->error) std::rethrow_exception(state_->error);
}

bool ApplicationCommunicator::finished() const {
  std::lock_guard lock(state_->mu);
  return state_->done;
}

const std::string& ApplicationCommunicator::channel_name() const { return state_->channel; }

// ---- WebsocketCommunicator ----

namespace {

Scope MakeScope(Scope::Type type, std::string method, std::string path, Headers::Base headers) {
  Scope scope;
  scope.type = type;
  scope.http_version = "1.1";
  scope.method = std::move(method);
  scope.scheme = type == Scope::Type::kWebSocket ? "ws" : "http";
  const size_t query = path.find('?');
  if (query != std::string::npos) {
    scope.query_string = path.substr(query + 1);
    path.resize(query);
  }
  // As the gateway: path percent-decoded, raw_path as sent.
  std::optional<std::string> decoded = PercentDecode(path);
  if (!decoded) throw std::invalid_argument("communicator: bad percent-encoding in " + path);
  scope.raw_path = path;
  scope.path = std::move(*decoded);
  for (auto& [name, value] : headers) {
    name = AsciiLower(name);
  }
  scope.headers = std::move(headers);
  scope.client = Address{"127.0.0.1", 50000};
  scope.server = Address{"127.0.0.1", 80};
  return scope;
}

Scope WebSocketScope(std::string path, Headers::Base headers,
                     std::vector<std::string> subprotocols) {
  Scope scope = MakeScope(Scope::Type::kWebSocket, "", std::move(path), std::move(headers));
  scope.subprotocols = std::move(subprotocols);
  return scope;
}

}  // namespace

WebsocketCommunicator::WebsocketCommunicator(Application& app, std::string path,
                                             Headers::Base headers,
                                             std::vector<std::string> subprotocols)
    : ApplicationCommunicator(
          app, WebSocketScope(std::move(path), std::move(headers), std::move(subprotocols))) {}

WebsocketCommunicator::Connected WebsocketCommunicator::Connect(milliseconds timeout) {
  SendInput(WebSocketConnect{});
  Event event = ReceiveOutput(timeout);
  Connected result;
  if (auto* accept = std::get_if<WebSocketAccept>(&event)) {
    result.accepted = true;
    result.subprotocol = std::move(accept->subprotocol);
  } else if (auto* close = std::get_if<WebSocketClose>(&event)) {
    result.close_code = close->code;
  } else {
    throw std::runtime_error("expected websocket.accept or websocket.close, got " +
                             std::string(TypeName(event)));
  }
  return result;
}

void WebsocketCommunicator::SendText(std::string text) {
  WebSocketReceive message;
  message.data = std::move(text);
  SendInput(std::move(message));
}

void WebsocketCommunicator::SendBinary(std::string bytes) {
  WebSocketReceive message;
  message.data = std::move(bytes);
  message.binary = true;
  SendInput(std::move(message));
}

void WebsocketCommunicator::SendJson(const Message& content) { SendText(content.dump()); }

WebSocketMessage WebsocketCommunicator::ReceiveMessage(milliseconds timeout) {
  Event event = ReceiveOutput(timeout);
  auto* send = std::get_if<WebSocketSend>(&event);
  if (send == nullptr) {
    throw std::runtime_error("expected websocket.send, got " + std::string(TypeName(event)));
  }
  return std::move(*send);
}

std::string WebsocketCommunicator::ReceiveText(milliseconds timeout) {
  WebSocketMessage message = ReceiveMessage(timeout);
  if (message.binary) throw std::runtime_error("expected a text message, got binary");
  return std::move(message.data);
}

std::string WebsocketCommunicator::ReceiveBinary(milliseconds timeout) {
  WebSocketMessage message = ReceiveMessage(timeout);
  if (!message.binary) throw std::runtime_error("expected a binary message, got text");
  return std::move(message.data);
}

Message WebsocketCommunicator::ReceiveJson(milliseconds timeout) {
  return Message::parse(ReceiveText(timeout));
}

int WebsocketCommunicator::ReceiveClose(milliseconds timeout) {
  Event event = ReceiveOutput(timeout);
  auto* close = std::get_if<WebSocketClose>(&event);
  if (close == nullptr) {
    throw std::runtime_error("expected websocket.close, got " + std::string(TypeName(event)));
  }
  return close->code;
}

void WebsocketCommunicator::Disconnect(int code, milliseconds timeout) {
  SendInput(WebSocketDisconnect{code, {}});
  Wait(timeout);
}

// ---- HttpCommunicator ----

namespace {

Scope HttpScope(std::string method, std::string path, const std::string& body,
                Headers::Base headers) {
  if (!body.empty()) headers.emplace_back("content-length", std::to_string(body.size()));
  return MakeScope(Scope::Type::kHttp, std::move(method), std::move(path), std::move(headers));
}

}  // namespace

HttpCommunicator::HttpCommunicator(Application& app, std::string method, std::string path,
                                   std::string body, Headers::Base headers)
    : ApplicationCommunicator(
          app, HttpScope(std::move(method), std::move(path), body, std::move(headers))),
      body_(std::move(body)) {}

std::optional<std::string_view> HttpCommunicator::Response::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (IEquals(key, name)) return value;
  }
  return std::nullopt;
}

HttpCommunicator::Response HttpCommunicator::GetResponse(milliseconds timeout) {
  if (!sent_) {
    sent_ = true;
    SendInput(HttpRequest{std::move(body_), false});
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const auto left = [&] {
    return std::max(milliseconds(0), std::chrono::duration_cast<milliseconds>(
                                         deadline - std::chrono::steady_clock::now()));
  };
  Event event = ReceiveOutput(left());
  auto* start = std::get_if<HttpResponseStart>(&event);
  if (start == nullptr) {
    throw std::runtime_error("expected http.response.start, got " + std::string(TypeName(event)));
  }
  Response response;
  response.status = start->status;
  response.headers = std::move(start->headers);
  for (;;) {
    Event piece = ReceiveOutput(left());
    auto* body = std::get_if<HttpResponseBody>(&piece);
    if (body == nullptr) {
      throw std::runtime_error("expected http.response.body, got " + std::string(TypeName(piece)));
    }
    response.body += body->body;
    if (!body->more_body) return response;
  }
}

}  // namespace sluice::testing
