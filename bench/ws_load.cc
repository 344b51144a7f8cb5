// sluice-bench-ws: the benchmark's WebSocket load generator (bench/README.md).
//
//   echo       N connections, each a closed loop: send a message of B bytes, wait for its
//              echo, send the next. After a warm-up, counts the echoes received during D
//              seconds and their round-trip latency. Prints JSON lines: {"event": "begin"}
//              and {"event": "end"} as the measured window opens and closes, then the
//              result.
//   hold       opens N idle WebSockets (a bounded number of handshakes in flight), prints a
//              JSON line once all are open, holds them until stdin closes, a signal, or
//              --hold seconds; with --check, sends a message on each and counts the echoes
//              before closing; prints one JSON object.
//   broadcast  N connections join one chat room (a group: the demo's /ws/chat/{room}, which
//              sends each text to every member), spread over one or more --url (several
//              gateways). The first connection publishes --rate messages per second for
//              D seconds, each stamped with its number and send time; every member times
//              each message from its publication and checks it arrives once, in order.
//              Prints {"event": "begin"} and {"event": "end"} around the publishing and
//              delivery, then the result: p50/p99, delivered/expected, lost, duplicates.
//
// One io_context per thread (--threads), each owning its share of the connections, so the
// generator needs no locks and stays cheap next to the server it loads. Messages go out from
// one buffer shared by all connections; a connection keeps its read buffer.

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace {
namespace beast = boost::beast;
namespace net = boost::asio;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr auto kTuple = net::as_tuple(net::use_awaitable);
// Descriptors besides the sockets: stdio, epoll, eventfds, timers.
constexpr int kSpareDescriptors = 64;
// How long loops may take to finish, and closes to complete, before they are abandoned.
constexpr auto kGrace = std::chrono::seconds(5);

enum class Mode { kEcho, kHold, kBroadcast };

// Where connections go: a server and the path to upgrade.
struct Url {
  std::string host = "127.0.0.1";
  std::string port = "8080";
  std::string path = "/ws/echo";
};

struct Options {
  Mode mode = Mode::kEcho;
  std::vector<Url> urls;  // connection i goes to urls[i % size]; --url may repeat
  int connections = 50;
  std::size_t size = 32;
  bool binary = false;
  double duration = 10;
  double warmup = 2;
  int threads = 1;
  int concurrency = 64;      // handshakes in flight
  double open_timeout = 60;  // for opening all connections (and each handshake)
  double hold = 0;           // hold mode: seconds to hold; 0: until stdin closes or a signal
  double max_hold = 600;     // hold mode: the bound of an open-ended hold
  bool check = false;        // hold mode: echo a message on each socket before closing
  double rate = 10;          // broadcast: messages published per second
  double grace = 10;         // broadcast: seconds after the last publication for deliveries
};

// A resolved --url.
struct Target {
  tcp::endpoint endpoint;
  std::string host_header;
  std::string path;
};

// A broadcast message's text: "b <number> <send time, steady ns>" padded with 'x' to --size.
constexpr std::string_view kStampPrefix = "b ";

int64_t SteadyNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

// The number and send time of a broadcast message; false for any other text.
bool ParseStamp(std::string_view text, uint64_t& number, int64_t& sent) {
  if (text.substr(0, kStampPrefix.size()) != kStampPrefix) return false;
  const char* p = text.data() + kStampPrefix.size();
  const char* end = text.data() + text.size();
  auto parsed = std::from_chars(p, end, number);
  if (parsed.ec != std::errc() || parsed.ptr == end || *parsed.ptr != ' ') return false;
  parsed = std::from_chars(parsed.ptr + 1, end, sent);
  return parsed.ec == std::errc();
}

std::chrono::nanoseconds Seconds(double seconds) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::duration<double>(seconds));
}

double Since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Log-linear histogram of nanoseconds: 128 sub-buckets per power of two, so a recorded value
// is off by under 1 %. Fixed size, so recording never allocates.
class Histogram {
 public:
  void Record(int64_t value) {
    const auto v = static_cast<uint64_t>(std::max<int64_t>(value, 0));
    ++counts_[Index(v)];
    ++count_;
    sum_ += v;
    max_ = std::max(max_, v);
  }

  void Merge(const Histogram& other) {
    for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
    count_ += other.count_;
    sum_ += other.sum_;
    max_ = std::max(max_, other.max_);
  }

  // The value at quantile q (0..1): the middle of its bucket, never above the maximum.
  uint64_t Quantile(double q) const {
    if (count_ == 0) return 0;
    const auto rank =
        std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_))));
    uint64_t seen = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(Middle(i), max_);
    }
    return max_;
  }

  uint64_t count() const { return count_; }
  uint64_t max() const { return max_; }
  double mean() const {
    return count_ == 0 ? 0 : static_cast<double>(sum_) / static_cast<double>(count_);
  }

 private:
  static constexpr int kSubBits = 7;
  static constexpr uint64_t kSub = uint64_t{1} << kSubBits;

  static std::size_t Index(uint64_t v) {
    if (v < kSub) return v;
    const int shift = 63 - __builtin_clzll(v) - kSubBits;
    return static_cast<std::size_t>(shift + 1) * kSub + ((v >> shift) - kSub);
  }

  static uint64_t Middle(std::size_t index) {
    const uint64_t bucket = index / kSub;
    const uint64_t sub = index % kSub;
    if (bucket == 0) return sub;
    const uint64_t shift = bucket - 1;
    return ((sub + kSub) << shift) + ((uint64_t{1} << shift) >> 1);
  }

  std::array<uint64_t, (64 - kSubBits) * kSub> counts_{};
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t max_ = 0;
};

// What the threads report to main while they run.
struct Progress {
  std::atomic<int> opened{0};
  std::atomic<int> failed{0};
  std::atomic<int> finished{0};        // echo loops ended, or idle reads ended (hold)
  std::atomic<int> dropped{0};         // hold: closed by the server or broken while held
  std::atomic<int> checked{0};         // hold: check messages sent
  std::atomic<int> alive{0};           // hold: check messages echoed
  std::atomic<uint64_t> delivered{0};  // broadcast: messages received once, by all members
  std::atomic<uint64_t> published{0};  // broadcast: messages the publisher wrote
  std::atomic<bool> publishing_done{false};
};

struct Connection {
  Connection(net::io_context& io, const Target& target) : ws(io), target(target) {}
  websocket::stream<beast::tcp_stream> ws;
  const Target& target;
  beast::flat_buffer buffer;
  bool open = false;
  bool check_sent = false;
  bool alive = false;
  int64_t last = -1;  // broadcast: the number of the last message received
};

// One thread, its io_context and its share of the connections. Everything but Progress is
// touched by that thread only, and read by main after the thread has ended.
class Worker {
 public:
  // Connections `first` .. `first + connections - 1` of the run, spread over the targets.
  Worker(const Options& options, const std::vector<Target>& targets, const std::string& payload,
         Progress& progress, int first, int connections)
      : options_(options), payload_(payload), progress_(progress) {
    connections_.reserve(static_cast<std::size_t>(connections));
    for (int i = first; i < first + connections; ++i) {
      connections_.push_back(
          std::make_unique<Connection>(io_, targets[static_cast<std::size_t>(i) % targets.size()]));
    }
  }

  ~Worker() { Stop(); }

  void Start() {
    const int per_thread = std::max(1, options_.concurrency / options_.threads);
    const int openers = std::min(per_thread, static_cast<int>(connections_.size()));
    for (int i = 0; i < openers; ++i) net::co_spawn(io_, Opener(), net::detached);
    thread_ = std::thread([this] { io_.run(); });
  }

  void StartEcho(Clock::time_point begin, Clock::time_point end) {
    net::post(io_, [this, begin, end] {
      for (auto& c : connections_) {
        if (c->open) net::co_spawn(io_, EchoLoop(*c, begin, end), net::detached);
      }
    });
  }

  // Broadcast: the first connection publishes `count` messages, one every `interval`.
  void StartPublishing(Clock::time_point begin, uint64_t count, Clock::duration interval) {
    net::post(io_, [this, begin, count, interval] {
      net::co_spawn(io_, Publish(*connections_.front(), begin, count, interval), net::detached);
    });
  }

  void SendChecks() {
    net::post(io_, [this] {
      for (auto& c : connections_) {
        if (c->open) net::co_spawn(io_, SendCheck(*c), net::detached);
      }
    });
  }

  void CloseAll() {
    net::post(io_, [this] {
      closing_ = true;
      for (auto& c : connections_) {
        if (c->open) net::co_spawn(io_, Close(*c), net::detached);
      }
    });
  }

  void Stop() {
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }

  const Histogram& latency() const { return latency_; }
  uint64_t messages() const { return messages_; }
  uint64_t duplicates() const { return duplicates_; }
  uint64_t out_of_order() const { return out_of_order_; }
  int errors() const { return errors_; }
  const std::string& first_error() const { return first_error_; }

 private:
  void Fail(std::string_view what, const beast::error_code& ec) {
    if (first_error_.empty()) first_error_ = std::string(what) + ": " + ec.message();
  }

  // Takes connections off the list until none is left: `concurrency` of these per thread
  // bound the handshakes in flight.
  net::awaitable<void> Opener() {
    while (next_ < connections_.size()) {
      Connection& c = *connections_[next_++];
      co_await Open(c);
    }
  }

  net::awaitable<void> Open(Connection& c) {
    auto& stream = beast::get_lowest_layer(c.ws);
    stream.expires_after(Seconds(options_.open_timeout));
    auto [ec] = co_await stream.async_connect(c.target.endpoint, kTuple);
    if (!ec) {
      // From here on the WebSocket's own timeouts apply (Beast's advice), the handshake's only.
      stream.expires_never();
      beast::error_code ignored;
      stream.socket().set_option(tcp::no_delay(true), ignored);
      websocket::stream_base::timeout timeout{};
      timeout.handshake_timeout = Seconds(options_.open_timeout);
      timeout.idle_timeout = websocket::stream_base::none();
      timeout.keep_alive_pings = false;
      c.ws.set_option(timeout);
      std::tie(ec) = co_await c.ws.async_handshake(c.target.host_header, c.target.path, kTuple);
    }
    if (ec) {
      Fail("open", ec);
      ++progress_.failed;
      co_return;
    }
    c.ws.binary(options_.binary);
    c.open = true;
    ++progress_.opened;
    if (options_.mode != Mode::kEcho) net::co_spawn(io_, IdleRead(c), net::detached);
  }

  net::awaitable<void> EchoLoop(Connection& c, Clock::time_point begin, Clock::time_point end) {
    const net::const_buffer message(payload_.data(), payload_.size());
    while (Clock::now() < end) {
      const Clock::time_point sent = Clock::now();
      auto [write_ec, written] = co_await c.ws.async_write(message, kTuple);
      if (write_ec) {
        Fail("write", write_ec);
        ++errors_;
        c.open = false;
        break;
      }
      auto [read_ec, read] = co_await c.ws.async_read(c.buffer, kTuple);
      const Clock::time_point received = Clock::now();
      if (read_ec) {
        Fail("read", read_ec);
        ++errors_;
        c.open = false;
        break;
      }
      c.buffer.consume(c.buffer.size());
      if (read != payload_.size()) {
        if (first_error_.empty()) first_error_ = "echo of a different size";
        ++errors_;
      }
      if (received >= begin && received <= end) {
        ++messages_;
        latency_.Record((received - sent).count());
      }
    }
    if (c.open) {
      co_await c.ws.async_close(websocket::close_code::normal, kTuple);  // best effort
      c.open = false;
    }
    ++progress_.finished;
  }

  // Held sockets and broadcast members: reads until the socket ends, so pings are answered
  // and a close is seen; what arrives is an echoed check (hold) or a room's message.
  net::awaitable<void> IdleRead(Connection& c) {
    for (;;) {
      auto [ec, read] = co_await c.ws.async_read(c.buffer, kTuple);
      const int64_t now = SteadyNanos();
      if (ec) {
        if (!closing_) {
          Fail(options_.mode == Mode::kBroadcast ? "member" : "held socket", ec);
          ++progress_.dropped;
        }
        c.open = false;
        break;
      }
      if (options_.mode == Mode::kBroadcast) {
        const auto data = c.buffer.cdata();
        Received(c, std::string_view(static_cast<const char*>(data.data()), data.size()), now);
      } else if (c.check_sent && !c.alive) {
        c.alive = true;
        ++progress_.alive;
      }
      c.buffer.consume(c.buffer.size());
    }
    ++progress_.finished;
  }

  // A member got `text` at `now`: times a broadcast message from its publication, once, and
  // counts one that comes again or after a gap.
  void Received(Connection& c, std::string_view text, int64_t now) {
    uint64_t number = 0;
    int64_t sent = 0;
    if (!ParseStamp(text, number, sent)) return;
    const auto n = static_cast<int64_t>(number);
    if (n <= c.last) {
      ++duplicates_;
      return;
    }
    if (n != c.last + 1) ++out_of_order_;  // a gap: an earlier one is late or lost
    c.last = n;
    latency_.Record(now - sent);
    ++progress_.delivered;
  }

  net::awaitable<void> Publish(Connection& c, Clock::time_point begin, uint64_t count,
                               Clock::duration interval) {
    net::steady_timer timer(io_);
    std::string text;
    for (uint64_t k = 0; k < count && c.open; ++k) {
      timer.expires_at(begin + interval * static_cast<int64_t>(k));
      co_await timer.async_wait(kTuple);
      text = std::string(kStampPrefix) + std::to_string(k) + " " + std::to_string(SteadyNanos());
      if (text.size() < payload_.size()) text.append(payload_.size() - text.size(), 'x');
      auto [ec, written] = co_await c.ws.async_write(net::buffer(text), kTuple);
      if (ec) {
        Fail("publish", ec);
        ++errors_;
        break;
      }
      ++progress_.published;
    }
    progress_.publishing_done = true;
  }

  net::awaitable<void> SendCheck(Connection& c) {
    c.check_sent = true;
    ++progress_.checked;
    const net::const_buffer message(payload_.data(), payload_.size());
    auto [ec, written] = co_await c.ws.async_write(message, kTuple);
    if (ec) Fail("check", ec);
  }

  // A close may run beside the posted read (Beast allows one read and one write); the read
  // then ends with `closed`.
  net::awaitable<void> Close(Connection& c) {
    co_await c.ws.async_close(websocket::close_code::normal, kTuple);
  }

  const Options& options_;
  const std::string& payload_;
  Progress& progress_;
  // Declared before the connections, so their sockets go before the io_context does.
  net::io_context io_{1};
  net::executor_work_guard<net::io_context::executor_type> work_ = net::make_work_guard(io_);
  std::vector<std::unique_ptr<Connection>> connections_;
  std::size_t next_ = 0;
  bool closing_ = false;
  Histogram latency_;
  uint64_t messages_ = 0;
  uint64_t duplicates_ = 0;
  uint64_t out_of_order_ = 0;
  int errors_ = 0;
  std::string first_error_;
  std::thread thread_;
};

// SIGINT and SIGTERM are blocked in every thread and taken here, between checks.
sigset_t StopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

// Waits until done() holds or the deadline passes; false when a stop signal came first.
bool WaitUntil(const std::function<bool()>& done, Clock::time_point deadline) {
  const sigset_t set = StopSignals();
  while (!done() && Clock::now() < deadline) {
    const timespec tick{0, 20'000'000};
    if (sigtimedwait(&set, nullptr, &tick) > 0) return false;
  }
  return true;
}

std::atomic<bool> stdin_closed{false};

// Every socket is a descriptor; fail clearly when N cannot fit rather than half-way.
bool EnsureDescriptors(int connections) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return true;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
    getrlimit(RLIMIT_NOFILE, &limit);
  }
  const auto needed = static_cast<rlim_t>(connections) + kSpareDescriptors;
  if (limit.rlim_cur != RLIM_INFINITY && needed > limit.rlim_cur) {
    std::cerr << "sluice-bench-ws: " << connections << " connections need about " << needed
              << " descriptors; the limit is " << limit.rlim_cur << " (hard " << limit.rlim_max
              << "). Raise it (ulimit -n, limits.conf) or open fewer.\n";
    return false;
  }
  return true;
}

struct Run {
  std::vector<std::unique_ptr<Worker>> workers;
  Progress progress;
  std::string payload;
};

// Starts the threads and opens every connection; false on a stop signal.
bool OpenAll(const Options& options, const std::vector<Target>& targets, Run& run) {
  run.payload.assign(options.size, 'x');
  int first = 0;
  for (int t = 0; t < options.threads; ++t) {
    const int share =
        options.connections / options.threads + (t < options.connections % options.threads ? 1 : 0);
    run.workers.push_back(
        std::make_unique<Worker>(options, targets, run.payload, run.progress, first, share));
    first += share;
  }
  for (auto& worker : run.workers) worker->Start();
  const Clock::time_point deadline = Clock::now() + Seconds(options.open_timeout);
  return WaitUntil([&] { return run.progress.opened + run.progress.failed >= options.connections; },
                   deadline);
}

std::string FirstError(const Run& run) {
  for (const auto& worker : run.workers) {
    if (!worker->first_error().empty()) return worker->first_error();
  }
  return "";
}

// JSON strings here are URLs and error messages: escape what JSON requires.
std::string Quote(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
      out += escaped;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string Urls(const Options& options) {
  std::string out;
  for (const Url& url : options.urls) {
    out += (out.empty() ? "" : " ") + ("ws://" + url.host + ":" + url.port + url.path);
  }
  return out;
}

// Brackets the measured window, so a caller can sample the servers' CPU time there.
void PrintEvent(const char* event) {
  std::printf("{\"event\": \"%s\"}\n", event);
  std::fflush(stdout);
}

int RunEcho(const Options& options, const std::vector<Target>& targets) {
  Run run;
  if (!OpenAll(options, targets, run)) {
    for (auto& worker : run.workers) worker->Stop();
    return 130;
  }
  const int open = run.progress.opened;
  const Clock::time_point begin = Clock::now() + Seconds(options.warmup);
  const Clock::time_point end = begin + Seconds(options.duration);
  if (open > 0) {
    for (auto& worker : run.workers) worker->StartEcho(begin, end);
    // Lines marking the measured window, so a caller can sample the server's CPU time there.
    for (const auto& [at, event] : {std::pair{begin, "begin"}, std::pair{end, "end"}}) {
      if (!WaitUntil([at = at] { return Clock::now() >= at; }, at + kGrace)) {
        for (auto& worker : run.workers) worker->Stop();
        return 130;
      }
      PrintEvent(event);
    }
    WaitUntil([&] { return run.progress.finished >= open; }, end + kGrace);
  }
  const int unfinished = open - run.progress.finished;
  for (auto& worker : run.workers) worker->Stop();

  Histogram latency;
  uint64_t messages = 0;
  int errors = run.progress.failed + std::max(0, unfinished);
  for (const auto& worker : run.workers) {
    latency.Merge(worker->latency());
    messages += worker->messages();
    errors += worker->errors();
  }
  const std::string first_error = FirstError(run);
  if (!first_error.empty()) std::cerr << "sluice-bench-ws: first error: " << first_error << "\n";
  const auto us = [](double ns) { return ns / 1000.0; };
  std::printf(
      "{\"mode\": \"echo\", \"url\": %s, \"connections\": %d, \"open\": %d, \"size\": %zu, "
      "\"binary\": %s, \"threads\": %d, \"warmup_s\": %g, \"duration_s\": %g, "
      "\"messages\": %llu, \"messages_per_s\": %.1f, \"latency_us\": {\"p50\": %.1f, "
      "\"p90\": %.1f, \"p99\": %.1f, \"max\": %.1f, \"mean\": %.1f}, \"errors\": %d}\n",
      Quote(Urls(options)).c_str(), options.connections, open, options.size,
      options.binary ? "true" : "false", options.threads, options.warmup, options.duration,
      static_cast<unsigned long long>(messages), static_cast<double>(messages) / options.duration,
      us(static_cast<double>(latency.Quantile(0.50))),
      us(static_cast<double>(latency.Quantile(0.90))),
      us(static_cast<double>(latency.Quantile(0.99))), us(static_cast<double>(latency.max())),
      us(latency.mean()), errors);
  std::fflush(stdout);
  return open > 0 ? 0 : 1;
}

// Opens every connection and prints {"event": "open", …}; false on a stop signal (then
// everything is stopped).
bool OpenAndReport(const Options& options, const std::vector<Target>& targets, Run& run,
                   double& open_seconds) {
  const Clock::time_point start = Clock::now();
  if (!OpenAll(options, targets, run)) {
    for (auto& worker : run.workers) worker->Stop();
    return false;
  }
  open_seconds = Since(start);
  std::printf(
      "{\"event\": \"open\", \"requested\": %d, \"open\": %d, \"failed\": %d, "
      "\"seconds\": %.3f}\n",
      options.connections, run.progress.opened.load(), run.progress.failed.load(), open_seconds);
  std::fflush(stdout);
  return true;
}

int RunHold(const Options& options, const std::vector<Target>& targets) {
  Run run;
  double open_seconds = 0;
  if (!OpenAndReport(options, targets, run, open_seconds)) return 130;
  const int open = run.progress.opened;

  const Clock::time_point held = Clock::now();
  if (open == 0) {
    // Nothing to hold: report at once.
  } else if (options.hold > 0) {
    WaitUntil([] { return false; }, held + Seconds(options.hold));
  } else {
    // A blocking read on a thread of its own: stdin may be a pipe, a file or a terminal.
    std::thread([] {
      char sink[256];
      while (read(STDIN_FILENO, sink, sizeof sink) > 0) {
      }
      stdin_closed = true;
    }).detach();
    WaitUntil([] { return stdin_closed.load(); }, held + Seconds(options.max_hold));
  }
  const double held_seconds = Since(held);

  if (options.check) {
    for (auto& worker : run.workers) worker->SendChecks();
    WaitUntil(
        [&] {
          const int checked = run.progress.checked;
          return checked >= open - run.progress.dropped &&
                 run.progress.alive + run.progress.dropped >= open;
        },
        Clock::now() + kGrace);
  }
  const int dropped = run.progress.dropped;
  const int checked = run.progress.checked;
  const int alive = run.progress.alive;
  for (auto& worker : run.workers) worker->CloseAll();
  WaitUntil([&] { return run.progress.finished >= open; }, Clock::now() + kGrace);
  for (auto& worker : run.workers) worker->Stop();

  const std::string first_error = FirstError(run);
  if (!first_error.empty()) std::cerr << "sluice-bench-ws: first error: " << first_error << "\n";
  std::printf(
      "{\"mode\": \"hold\", \"url\": %s, \"requested\": %d, \"open\": %d, \"failed\": %d, "
      "\"dropped\": %d, \"check\": %s, \"checked\": %d, \"alive\": %d, \"open_seconds\": %.3f, "
      "\"held_seconds\": %.3f, \"threads\": %d, \"concurrency\": %d}\n",
      Quote(Urls(options)).c_str(), options.connections, open, run.progress.failed.load(), dropped,
      options.check ? "true" : "false", checked, alive, open_seconds, held_seconds, options.threads,
      options.concurrency);
  std::fflush(stdout);
  return open > 0 ? 0 : 1;
}

int RunBroadcast(const Options& options, const std::vector<Target>& targets) {
  Run run;
  double open_seconds = 0;
  if (!OpenAndReport(options, targets, run, open_seconds)) return 130;
  const int open = run.progress.opened;
  // The publisher is the first connection; without it, or with members missing, there is
  // nothing fair to measure.
  if (open < options.connections) {
    std::cerr << "sluice-bench-ws: only " << open << " of " << options.connections
              << " members joined; first error: " << FirstError(run) << "\n";
    for (auto& worker : run.workers) worker->Stop();
    return 1;
  }
  const auto count =
      static_cast<uint64_t>(std::max(1.0, std::round(options.rate * options.duration)));
  const auto interval =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1 / options.rate));
  const Clock::time_point begin = Clock::now() + Seconds(options.warmup);
  if (!WaitUntil([&] { return Clock::now() >= begin; }, begin + kGrace)) {
    for (auto& worker : run.workers) worker->Stop();
    return 130;
  }
  PrintEvent("begin");
  run.workers.front()->StartPublishing(begin, count, interval);
  const Clock::time_point last = begin + interval * static_cast<int64_t>(count - 1);
  // Done when every member has every published message, or the grace after the last ran out.
  const bool complete = WaitUntil(
      [&] {
        return run.progress.publishing_done &&
               run.progress.delivered >= run.progress.published * static_cast<uint64_t>(open);
      },
      last + Seconds(options.grace));
  const double seconds = Since(begin);
  PrintEvent("end");
  const uint64_t published = run.progress.published;
  const int dropped = run.progress.dropped;
  for (auto& worker : run.workers) worker->CloseAll();
  WaitUntil([&] { return run.progress.finished >= open; }, Clock::now() + kGrace);
  for (auto& worker : run.workers) worker->Stop();

  Histogram latency;
  const uint64_t delivered = run.progress.delivered;
  uint64_t duplicates = 0;
  uint64_t out_of_order = 0;
  int errors = 0;
  for (const auto& worker : run.workers) {
    latency.Merge(worker->latency());
    duplicates += worker->duplicates();
    out_of_order += worker->out_of_order();
    errors += worker->errors();
  }
  const uint64_t expected = published * static_cast<uint64_t>(open);
  const std::string first_error = FirstError(run);
  if (!first_error.empty()) std::cerr << "sluice-bench-ws: first error: " << first_error << "\n";
  const auto us = [](uint64_t ns) { return static_cast<double>(ns) / 1000.0; };
  std::printf(
      "{\"mode\": \"broadcast\", \"url\": %s, \"members\": %d, \"open\": %d, "
      "\"open_seconds\": %.3f, \"size\": %zu, \"rate\": %g, \"duration_s\": %g, "
      "\"published\": %llu, \"expected\": %llu, \"delivered\": %llu, \"lost\": %llu, "
      "\"duplicates\": %llu, \"out_of_order\": %llu, \"complete\": %s, \"seconds\": %.3f, "
      "\"deliveries_per_s\": %.1f, \"latency_us\": {\"p50\": %.1f, \"p90\": %.1f, "
      "\"p99\": %.1f, \"max\": %.1f, \"mean\": %.1f}, \"dropped\": %d, \"errors\": %d, "
      "\"threads\": %d}\n",
      Quote(Urls(options)).c_str(), options.connections, open, open_seconds, options.size,
      options.rate, options.duration, static_cast<unsigned long long>(published),
      static_cast<unsigned long long>(expected), static_cast<unsigned long long>(delivered),
      static_cast<unsigned long long>(expected > delivered ? expected - delivered : 0),
      static_cast<unsigned long long>(duplicates), static_cast<unsigned long long>(out_of_order),
      complete ? "true" : "false", seconds, static_cast<double>(delivered) / seconds,
      us(latency.Quantile(0.50)), us(latency.Quantile(0.90)), us(latency.Quantile(0.99)),
      us(latency.max()), latency.mean() / 1000.0, dropped, errors, options.threads);
  std::fflush(stdout);
  return 0;
}

int Usage(int code) {
  (code == 0 ? std::cout : std::cerr) << R"(usage: sluice-bench-ws MODE [options]
modes:
  echo       closed-loop echo on N connections; prints msg/s and latency as JSON
  hold       open N idle WebSockets, hold them until stdin closes, a signal or --hold
  broadcast  N members of one chat room, one publishes --rate msg/s; prints p50/p99 and
             delivered/expected as JSON
options:
  --url ws://HOST:PORT/PATH   target (default ws://127.0.0.1:8080/ws/echo); repeat it to
                              spread the connections over several servers
  --connections N             connections (default 50)
  --size B                    message bytes (default 32)
  --binary                    binary messages (default text)
  --duration SECS             echo: measured seconds; broadcast: publishing (default 10)
  --warmup SECS               echo, broadcast: unmeasured seconds first (default 2)
  --rate R                    broadcast: messages published per second (default 10)
  --grace SECS                broadcast: wait for deliveries after the last (default 10)
  --threads T                 threads, one io_context each (default 1)
  --concurrency K             handshakes in flight (default 64)
  --open-timeout SECS         bound on opening all connections (default 60)
  --hold SECS                 hold: hold this long, ignoring stdin (default 0: until stdin closes)
  --max-hold SECS             hold: bound on an open-ended hold (default 600)
  --check                     hold: echo a message on each socket before closing
)";
  return code;
}

bool ParseUrl(std::string_view text, Options& options) {
  constexpr std::string_view kScheme = "ws://";
  if (text.substr(0, kScheme.size()) != kScheme) return false;
  text.remove_prefix(kScheme.size());
  const std::size_t slash = text.find('/');
  const std::string_view authority = text.substr(0, slash);
  Url url;
  url.path = slash == std::string_view::npos ? "/" : std::string(text.substr(slash));
  const std::size_t colon = authority.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  url.host = std::string(authority.substr(0, colon));
  url.port = std::string(authority.substr(colon + 1));
  if (url.port.empty()) return false;
  options.urls.push_back(std::move(url));
  return true;
}

// Parses argv into options; every count and duration is bounded.
bool Parse(int argc, char** argv, Options& options) {
  if (argc < 2) return false;
  const std::string_view mode = argv[1];
  if (mode == "echo") {
    options.mode = Mode::kEcho;
  } else if (mode == "hold") {
    options.mode = Mode::kHold;
  } else if (mode == "broadcast") {
    options.mode = Mode::kBroadcast;
  } else {
    return false;
  }
  for (int i = 2; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "--binary") {
      options.binary = true;
      continue;
    }
    if (flag == "--check") {
      options.check = true;
      continue;
    }
    if (i + 1 >= argc) return false;
    const std::string value = argv[++i];
    try {
      if (flag == "--url") {
        if (!ParseUrl(value, options)) return false;
      } else if (flag == "--connections") {
        options.connections = std::stoi(value);
      } else if (flag == "--size") {
        options.size = std::stoul(value);
      } else if (flag == "--duration") {
        options.duration = std::stod(value);
      } else if (flag == "--warmup") {
        options.warmup = std::stod(value);
      } else if (flag == "--threads") {
        options.threads = std::stoi(value);
      } else if (flag == "--concurrency") {
        options.concurrency = std::stoi(value);
      } else if (flag == "--open-timeout") {
        options.open_timeout = std::stod(value);
      } else if (flag == "--hold") {
        options.hold = std::stod(value);
      } else if (flag == "--max-hold") {
        options.max_hold = std::stod(value);
      } else if (flag == "--rate") {
        options.rate = std::stod(value);
      } else if (flag == "--grace") {
        options.grace = std::stod(value);
      } else {
        return false;
      }
    } catch (const std::exception&) {
      return false;
    }
  }
  if (options.urls.empty()) options.urls.emplace_back();
  return options.connections >= 1 && options.connections <= 1'000'000 && options.size >= 1 &&
         options.size <= (1 << 20) && options.duration > 0 && options.duration <= 3600 &&
         options.warmup >= 0 && options.warmup <= 600 && options.threads >= 1 &&
         options.threads <= 64 && options.concurrency >= 1 && options.concurrency <= 100'000 &&
         options.open_timeout > 0 && options.open_timeout <= 3600 && options.hold >= 0 &&
         options.hold <= 86'400 && options.max_hold > 0 && options.max_hold <= 86'400 &&
         options.rate > 0 && options.rate <= 100'000 && options.grace >= 0 && options.grace <= 600;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && (std::string_view(argv[1]) == "--help" || std::string_view(argv[1]) == "-h")) {
    return Usage(0);
  }
  Options options;
  if (!Parse(argc, argv, options)) return Usage(2);
  if (!EnsureDescriptors(options.connections)) return 2;

  // Before any thread starts, so every thread inherits the mask and main takes the signals.
  const sigset_t stop = StopSignals();
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  std::vector<Target> targets;
  {
    net::io_context io;
    tcp::resolver resolver(io);
    for (const Url& url : options.urls) {
      beast::error_code ec;
      const auto results = resolver.resolve(url.host, url.port, ec);
      if (ec || results.empty()) {
        std::cerr << "sluice-bench-ws: cannot resolve " << url.host << ":" << url.port << ": "
                  << ec.message() << "\n";
        return 2;
      }
      targets.push_back({*results.begin(), url.host + ":" + url.port, url.path});
    }
  }

  switch (options.mode) {
    case Mode::kEcho:
      return RunEcho(options, targets);
    case Mode::kHold:
      return RunHold(options, targets);
    case Mode::kBroadcast:
      return RunBroadcast(options, targets);
  }
  return 2;
}
