// SyncToAsync, AsyncToSync, the SyncPool's bounds, and the sync and JSON consumers driven
// through a scripted Connection. GCC 12: no braced temporaries inside a co_await expression.
#include "sluice/sync.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <future>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>

#include "fake_connection.h"
#include "sluice/json_consumer.h"
#include "sluice/sync_consumer.h"

namespace sluice {
namespace {

namespace net = boost::asio;
using testing::FakeConnection;
using testing::Is;
using testing::RunConsumer;

// Runs `task` on a fresh io_context on this thread; returns its result.
template <class T>
T RunTask(Task<T> task) {
  net::io_context io;
  std::promise<T> result;
  net::co_spawn(io, std::move(task), [&](std::exception_ptr error, T value) {
    if (error) {
      result.set_exception(error);
    } else {
      result.set_value(std::move(value));
    }
  });
  io.run();
  return result.get_future().get();
}

TEST(SyncToAsync, RunsOffTheCallingThreadAndReturnsTheResult) {
  const auto caller = std::this_thread::get_id();
  auto task = []() -> Task<std::thread::id> {
    co_return co_await SyncToAsync([] { return std::this_thread::get_id(); });
  };
  EXPECT_NE(RunTask(task()), caller);
}

TEST(SyncToAsync, RethrowsWhatTheFunctionThrowsInTheCaller) {
  auto task = []() -> Task<std::string> {
    try {
      co_await SyncToAsync([] { throw std::runtime_error("database down"); });
    } catch (const std::runtime_error& e) {
      co_return e.what();
    }
    co_return "nothing thrown";
  };
  EXPECT_EQ(RunTask(task()), "database down");
}

TEST(SyncToAsync, ThreadSensitiveCallsOfOneSlotShareOneThread) {
  auto task = []() -> Task<int> {
    const ThreadSensitive slot = SyncPool::Default().NextSlot();
    std::set<std::thread::id> seen;
    for (int i = 0; i < 20; ++i) {
      seen.insert(co_await SyncToAsync([] { return std::this_thread::get_id(); }, slot));
    }
    co_return static_cast<int>(seen.size());
  };
  EXPECT_EQ(RunTask(task()), 1);
}

TEST(SyncPool, RefusesCallsPastItsQueueBound) {
  SyncPool pool(SyncPool::Options{1, 2});
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> started;
  pool.Submit([&] {
    started.set_value();
    released.wait();
  });
  started.get_future().wait();  // the one thread is busy; nothing queued
  pool.Submit([] {});
  pool.Submit([] {});
  EXPECT_EQ(pool.queued(), 2u);
  EXPECT_THROW(pool.Submit([] {}), SyncPoolFull);
  EXPECT_EQ(pool.rejected(), 1u);
  release.set_value();
  pool.Shutdown();  // runs what was queued, then joins
  EXPECT_EQ(pool.queued(), 0u);
  EXPECT_THROW(pool.Submit([] {}), Disconnected);
}

TEST(SyncToAsync, AFullPoolThrowsSyncPoolFullToTheCaller) {
  SyncPool& pool = SyncPool::Default();
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<unsigned> blocked{0};
  for (unsigned i = 0; i < pool.threads(); ++i) {
    // `released` by value: a pool thread may still be leaving wait() when the test ends.
    pool.Submit([&blocked, released] {
      ++blocked;
      released.wait();
    });
  }
  while (blocked < pool.threads()) std::this_thread::yield();
  size_t queued = 0;
  try {
    for (;;) {
      pool.Submit([] {});
      ++queued;
    }
  } catch (const SyncPoolFull&) {
  }
  EXPECT_GT(queued, 0u);
  auto task = []() -> Task<std::string> {
    try {
      co_await SyncToAsync([] { return 1; });
    } catch (const SyncPoolFull& e) {
      co_return "SyncPoolFull";
    }
    co_return "ran";
  };
  EXPECT_EQ(RunTask(task()), "SyncPoolFull");
  release.set_value();
  while (pool.queued() > 0 || pool.running() > 0) std::this_thread::yield();
}

TEST(AsyncToSync, ACallBackToTheSameThreadSensitiveSlotDoesNotDeadlock) {
  // Blocking code on slot S calls async code that calls blocking code on S again: the
  // waiting thread runs it (asgiref's CurrentThreadExecutor).
  auto task = []() -> Task<int> {
    const ThreadSensitive slot = SyncPool::Default().NextSlot();
    co_return co_await SyncToAsync(
        [slot] {
          const auto outer = std::this_thread::get_id();
          return AsyncToSync([slot, outer]() -> Task<int> {
            co_return co_await SyncToAsync(
                [outer] { return std::this_thread::get_id() == outer ? 7 : -1; }, slot);
          });
        },
        slot);
  };
  EXPECT_EQ(RunTask(task()), 7);
}

TEST(AsyncToSync, RunsTheAwaitableOnTheCallersLoopFromASyncCall) {
  net::io_context io;
  std::thread::id loop_thread;
  auto task = [&]() -> Task<int> {
    loop_thread = std::this_thread::get_id();
    co_return co_await SyncToAsync([&] {
      return AsyncToSync([&]() -> Task<int> {
        EXPECT_EQ(std::this_thread::get_id(), loop_thread);
        co_return 42;
      });
    });
  };
  int result = 0;
  net::co_spawn(io, task(), [&](std::exception_ptr error, int value) {
    ASSERT_FALSE(error);
    result = value;
  });
  io.run();
  EXPECT_EQ(result, 42);
}

TEST(AsyncToSync, OnAnEventLoopThreadThrowsInsteadOfDeadlocking) {
  net::io_context io;
  internal::MarkEventLoopThread(true);
  try {
    AsyncToSync(io.get_executor(), []() -> Task<void> { co_return; });
    ADD_FAILURE() << "no error";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("event-loop thread"), std::string::npos) << e.what();
  }
  internal::MarkEventLoopThread(false);
  // Outside SyncToAsync and without an executor there is nothing to run on.
  EXPECT_THROW(AsyncToSync([]() -> Task<void> { co_return; }), std::logic_error);
}

WebSocketReceive Text(std::string text, bool binary = false) {
  WebSocketReceive message;
  message.data = std::move(text);
  message.binary = binary;
  return message;
}

class Recorder final : public SyncWebSocketConsumer {
 public:
  std::set<std::thread::id> threads;
  void OnConnect() override {
    threads.insert(std::this_thread::get_id());
    Accept();
  }
  void OnText(std::string text) override {
    threads.insert(std::this_thread::get_id());
    SendText("got " + text);
    GroupSend("g", Message{{"type", "x"}});
  }
  void OnDisconnect(int code, std::string) override {
    threads.insert(std::this_thread::get_id());
    EXPECT_EQ(code, 1000);
  }
};

TEST(SyncWebSocketConsumer, HandlersBlockOnOnePoolThreadAndTheirCallsReachTheConnection) {
  Recorder consumer;
  Scope scope;
  scope.type = Scope::Type::kWebSocket;
  FakeConnection connection;
  connection.inbox = {WebSocketConnect{}, Text("a"), Text("b"), WebSocketDisconnect{1000, ""}};
  EXPECT_FALSE(RunConsumer(consumer, scope, connection));
  ASSERT_EQ(connection.sent.size(), 3u);
  EXPECT_TRUE(std::holds_alternative<WebSocketAccept>(connection.sent[0]));
  EXPECT_EQ(std::get<WebSocketSend>(connection.sent[1]).data, "got a");
  EXPECT_EQ(std::get<WebSocketSend>(connection.sent[2]).data, "got b");
  ASSERT_EQ(connection.calls.size(), 2u);
  EXPECT_EQ(connection.calls[0].target, "g");
  EXPECT_EQ(consumer.threads.size(), 1u);
  EXPECT_NE(*consumer.threads.begin(), std::this_thread::get_id());
}

class Thrower final : public SyncWebSocketConsumer {
  void OnText(std::string) override { throw std::runtime_error("handler failed"); }
};

TEST(SyncWebSocketConsumer, AHandlersExceptionEndsTheConsumerWithIt) {
  Thrower consumer;
  Scope scope;
  scope.type = Scope::Type::kWebSocket;
  FakeConnection connection;
  connection.inbox = {WebSocketConnect{}, Text("a")};
  EXPECT_TRUE(Is<std::runtime_error>(RunConsumer(consumer, scope, connection)));
}

class JsonRecorder final : public JsonWebSocketConsumer {
 public:
  std::vector<Message> got;
  Task<void> ReceiveJson(Message content) override {
    got.push_back(content);
    co_await SendJson(content);
  }
};

TEST(JsonWebSocketConsumer, ParsesTextAndClosesOnBadInput) {
  struct Case {
    WebSocketReceive bad;
    int code;
  };
  const std::string deep =
      std::string(kMaxJsonDepth + 1, '[') + std::string(kMaxJsonDepth + 1, ']');
  for (const Case& c :
       {Case{Text("{nope"), 1007}, Case{Text("{}", true), 1003}, Case{Text(deep), 1007}}) {
    JsonRecorder consumer;
    Scope scope;
    scope.type = Scope::Type::kWebSocket;
    FakeConnection connection;
    connection.inbox = {WebSocketConnect{}, Text(R"({"a": [1, "é"]})"), c.bad,
                        WebSocketDisconnect{c.code, ""}};
    EXPECT_FALSE(RunConsumer(consumer, scope, connection));
    ASSERT_EQ(consumer.got.size(), 1u);
    EXPECT_EQ(consumer.got[0], Message::parse(R"({"a": [1, "é"]})"));
    ASSERT_EQ(connection.sent.size(), 3u);
    EXPECT_EQ(Message::parse(std::get<WebSocketSend>(connection.sent[1]).data), consumer.got[0]);
    EXPECT_EQ(std::get<WebSocketClose>(connection.sent[2]).code, c.code);
  }
}

TEST(ParseJson, RefusesNestingPastTheLimitBeforeBuildingAnything) {
  const auto nested = [](size_t depth) {
    return std::string(depth, '[') + std::string(depth, ']');
  };
  EXPECT_TRUE(ParseJson(nested(kMaxJsonDepth)));
  EXPECT_FALSE(ParseJson(nested(kMaxJsonDepth + 1)));
  EXPECT_FALSE(ParseJson(nested(500000)));  // 1 MB: no stack to spare for this
  // Brackets inside strings (escaped quotes too) do not count.
  const std::string in_string = R"({"a": ")" + std::string(1000, '[') + R"(\"[[["})";
  ASSERT_TRUE(ParseJson(in_string));
  EXPECT_EQ(ParseJson(in_string)->at("a").get<std::string>().size(), 1004u);
  EXPECT_FALSE(ParseJson("{nope"));
  EXPECT_EQ(*ParseJson(R"({"k": [1, {"x": null}]})"), Message::parse(R"({"k": [1, {"x": null}]})"));
}

}  // namespace
}  // namespace sluice
