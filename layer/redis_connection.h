#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

struct redisAsyncContext;
struct redisReply;

namespace sluice::layer {

/// One hiredis 0.14 asynchronous connection driven by an Asio loop: hiredis' read/write
/// interest maps onto `posix::stream_descriptor::async_wait` (RedisAsioAdapter).
/// - Connect() reports once that the connection is up (`true`, after SELECT) and once that
///   it is down (`false`: the attempt failed, the server went, a reply or the connect took
///   longer than its timeout, or Close()). Commands may be issued only while up.
/// - A reply handler gets the reply, or nullptr when the connection went before it came.
///   Handlers must not destroy the connection.
/// Thread-safety: none; everything on the executor's single thread. Destroying the
/// connection drops pending handlers without calling them.
class RedisConnection final {
 public:
  using Executor = boost::asio::io_context::executor_type;
  using ReplyHandler = std::function<void(const redisReply*)>;
  using StateHandler = std::function<void(bool up)>;

  explicit RedisConnection(const Executor& executor);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  void Connect(const std::string& host, int port, int db, std::chrono::milliseconds timeout,
               StateHandler on_state);
  /// Sends a command; false (and no call of `on_reply`) when the connection is not up.
  /// A reply that takes longer than `timeout` closes the connection.
  bool Command(std::span<const std::string_view> args, std::chrono::milliseconds timeout,
               ReplyHandler on_reply);
  /// Drops the connection: pending handlers get nullptr, then the state handler `false`.
  void Close();

  bool up() const { return state_ == State::kUp; }
  size_t pending() const { return deadlines_.size(); }

 private:
  enum class State { kDown, kConnecting, kUp };
  static void OnConnect(const redisAsyncContext* context, int status);
  static void OnDisconnect(const redisAsyncContext* context, int status);
  static void OnReply(redisAsyncContext* context, void* reply, void* pending);
  void Down();
  void Watch(std::chrono::steady_clock::time_point deadline);
  void OnWatch();

  Executor executor_;
  redisAsyncContext* context_ = nullptr;
  State state_ = State::kDown;
  StateHandler on_state_;
  int db_ = 0;
  bool destroying_ = false;
  // When each pending reply is due, oldest first (replies come in order).
  std::deque<std::chrono::steady_clock::time_point> deadlines_;
  std::chrono::steady_clock::time_point connect_deadline_;
  boost::asio::steady_timer watchdog_;
  bool watching_ = false;
};

}  // namespace sluice::layer
