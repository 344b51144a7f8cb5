#include "layer/redis_connection.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <sys/socket.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <vector>

namespace sluice::layer {
namespace {

namespace net = boost::asio;

/// hiredis' event hooks on an Asio loop. hiredis owns the socket: the adapter only watches
/// it, and lets go of it (without closing) when hiredis cleans up. Waits and posted work hold
/// the adapter, so it outlives the context when they are still queued.
///
/// Asio registers sockets edge-triggered and does not attempt wait operations
/// speculatively, so readiness that arrived while no wait was queued is not reported again.
/// Hence: after each read the socket is peeked (data or end of stream → read again), and
/// writes are attempted at once, waiting for writability only after a short write (or while
/// connecting: the first EPOLLOUT registration reports the connect's outcome).
class RedisAsioAdapter final : public std::enable_shared_from_this<RedisAsioAdapter> {
 public:
  RedisAsioAdapter(const RedisConnection::Executor& executor, redisAsyncContext* context)
      : executor_(executor), context_(context), socket_(executor, context->c.fd) {}

  static void Attach(const RedisConnection::Executor& executor, redisAsyncContext* context) {
    auto adapter = std::make_shared<RedisAsioAdapter>(executor, context);
    adapter->self_ = adapter;  // held for hiredis until Cleanup
    context->ev.data = adapter.get();
    context->ev.addRead = [](void* p) { static_cast<RedisAsioAdapter*>(p)->AddRead(); };
    context->ev.delRead = [](void* p) { static_cast<RedisAsioAdapter*>(p)->want_read_ = false; };
    context->ev.addWrite = [](void* p) { static_cast<RedisAsioAdapter*>(p)->AddWrite(); };
    context->ev.delWrite = [](void* p) { static_cast<RedisAsioAdapter*>(p)->want_write_ = false; };
    context->ev.cleanup = [](void* p) { static_cast<RedisAsioAdapter*>(p)->Cleanup(); };
  }

 private:
  void AddRead() {
    want_read_ = true;
    ArmRead();
  }

  void ArmRead() {
    if (reading_ || !want_read_ || !context_) return;
    reading_ = true;
    char byte;
    const ssize_t peeked = ::recv(context_->c.fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (peeked >= 0) {  // bytes, or the end of the stream: hiredis must read it
      net::post(executor_, [self = shared_from_this()] { self->Read(); });
    } else {
      socket_.async_wait(net::posix::stream_descriptor::wait_read,
                         [self = shared_from_this()](boost::system::error_code error) {
                           if (!error) return self->Read();
                           self->reading_ = false;
                         });
    }
  }

  void Read() {
    reading_ = false;
    if (!context_ || !want_read_) return;
    redisAsyncHandleRead(context_);  // may clean up (context_ becomes null)
    ArmRead();
  }

  void AddWrite() {
    want_write_ = true;
    if (writing_ || !context_) return;
    writing_ = true;
    if (context_->c.flags & REDIS_CONNECTED) {
      net::post(executor_, [self = shared_from_this()] { self->Write(); });
    } else {
      WaitWritable();
    }
  }

  void WaitWritable() {
    socket_.async_wait(net::posix::stream_descriptor::wait_write,
                       [self = shared_from_this()](boost::system::error_code error) {
                         if (!error) return self->Write();
                         self->writing_ = false;
                       });
  }

  void Write() {
    if (!context_ || !want_write_) {
      writing_ = false;
      return;
    }
    redisAsyncHandleWrite(context_);                     // may clean up
    if (context_ && want_write_) return WaitWritable();  // short write: wait for room
    writing_ = false;
  }

  void Cleanup() {
    context_ = nullptr;
    want_read_ = want_write_ = false;
    socket_.release();             // cancels the waits; hiredis closes the socket
    auto last = std::move(self_);  // may be the last reference: nothing after this
  }

  RedisConnection::Executor executor_;
  redisAsyncContext* context_;
  net::posix::stream_descriptor socket_;
  std::shared_ptr<RedisAsioAdapter> self_;
  bool want_read_ = false, want_write_ = false;
  bool reading_ = false, writing_ = false;
};

struct Pending {
  RedisConnection::ReplyHandler handler;
};

}  // namespace

RedisConnection::RedisConnection(const Executor& executor)
    : executor_(executor), watchdog_(executor) {}

RedisConnection::~RedisConnection() {
  destroying_ = true;
  if (context_) redisAsyncFree(context_);
}

void RedisConnection::Connect(const std::string& host, int port, int db,
                              std::chrono::milliseconds timeout, StateHandler on_state) {
  if (state_ != State::kDown) return;
  on_state_ = std::move(on_state);
  db_ = db;
  state_ = State::kConnecting;
  context_ = redisAsyncConnect(host.c_str(), port);
  if (!context_ || context_->err) {
    if (context_) redisAsyncFree(context_);
    context_ = nullptr;
    // Reported from the loop, like every other outcome.
    net::post(executor_, [this] { Down(); });
    return;
  }
  context_->data = this;
  RedisAsioAdapter::Attach(executor_, context_);
  redisAsyncSetDisconnectCallback(context_, &RedisConnection::OnDisconnect);
  redisAsyncSetConnectCallback(context_, &RedisConnection::OnConnect);  // arms the first write
  connect_deadline_ = std::chrono::steady_clock::now() + timeout;
  Watch(connect_deadline_);
}

void RedisConnection::OnConnect(const redisAsyncContext* context, int status) {
  auto* self = static_cast<RedisConnection*>(context->data);
  if (status != REDIS_OK) {
    self->context_ = nullptr;  // hiredis frees it when this returns
    return self->Down();
  }
  if (self->db_ == 0) {
    self->state_ = State::kUp;
    if (self->on_state_) self->on_state_(true);
    return;
  }
  // Pending commands are allowed before kUp only here.
  const std::string db = std::to_string(self->db_);
  const char* argv[] = {"SELECT", db.c_str()};
  const size_t lengths[] = {6, db.size()};
  self->deadlines_.push_back(self->connect_deadline_);
  redisAsyncCommandArgv(
      self->context_,
      [](redisAsyncContext* c, void* reply, void*) {
        auto* conn = static_cast<RedisConnection*>(c->data);
        if (!conn->deadlines_.empty()) conn->deadlines_.pop_front();
        if (conn->destroying_ || conn->state_ != State::kConnecting) return;
        auto* r = static_cast<redisReply*>(reply);
        if (!r || r->type == REDIS_REPLY_ERROR) return conn->Close();
        conn->state_ = State::kUp;
        if (conn->on_state_) conn->on_state_(true);
      },
      nullptr, 2, argv, lengths);
}

void RedisConnection::OnDisconnect(const redisAsyncContext* context, int) {
  auto* self = static_cast<RedisConnection*>(context->data);
  self->context_ = nullptr;  // hiredis frees it when this returns
  self->Down();
}

void RedisConnection::OnReply(redisAsyncContext* context, void* reply, void* pending) {
  std::unique_ptr<Pending> owned(static_cast<Pending*>(pending));
  auto* self = static_cast<RedisConnection*>(context->data);
  if (!self->deadlines_.empty()) self->deadlines_.pop_front();
  if (self->destroying_) return;
  owned->handler(static_cast<const redisReply*>(reply));
}

bool RedisConnection::Command(std::span<const std::string_view> args,
                              std::chrono::milliseconds timeout, ReplyHandler on_reply) {
  if (state_ != State::kUp || !context_) return false;
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  argv.reserve(args.size());
  lengths.reserve(args.size());
  for (std::string_view arg : args) {
    argv.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  auto pending = std::make_unique<Pending>(Pending{std::move(on_reply)});
  if (redisAsyncCommandArgv(context_, &RedisConnection::OnReply, pending.get(),
                            static_cast<int>(argv.size()), argv.data(),
                            lengths.data()) != REDIS_OK) {
    return false;
  }
  (void)pending.release();  // hiredis hands it back to OnReply
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  deadlines_.push_back(deadline);
  Watch(deadline);
  return true;
}

void RedisConnection::Close() {
  if (state_ == State::kDown) return;
  if (context_) {
    redisAsyncContext* context = context_;
    context_ = nullptr;
    redisAsyncFree(context);  // pending handlers get nullptr; OnDisconnect may run
  }
  Down();
}

void RedisConnection::Down() {
  if (state_ == State::kDown || destroying_) return;
  state_ = State::kDown;
  watchdog_.cancel();
  StateHandler on_state = std::move(on_state_);
  on_state_ = nullptr;
  if (on_state) on_state(false);
}

void RedisConnection::Watch(std::chrono::steady_clock::time_point deadline) {
  if (watching_) return;  // the running watch re-arms for the oldest deadline
  watching_ = true;
  watchdog_.expires_at(deadline);
  // `this` outlives the wait: the owner destroys the connection only after its loop stopped.
  watchdog_.async_wait([this](boost::system::error_code) {
    watching_ = false;
    if (!destroying_) OnWatch();  // also after a cancel: a new attempt may need watching
  });
}

void RedisConnection::OnWatch() {
  if (state_ == State::kDown) return;
  const auto now = std::chrono::steady_clock::now();
  if (state_ == State::kConnecting && connect_deadline_ <= now) return Close();
  if (!deadlines_.empty() && deadlines_.front() <= now) return Close();
  if (state_ == State::kConnecting) return Watch(connect_deadline_);
  if (!deadlines_.empty()) Watch(deadlines_.front());
}

}  // namespace sluice::layer
