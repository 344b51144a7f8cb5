#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <memory>
#include <string>
#include <vector>

#include "common/credit.h"
#include "common/metrics.h"
#include "gateway/context.h"
#include "gateway/link.h"
#include "gateway/metrics.h"
#include "gateway/options.h"
#include "gateway/shard.h"
#include "gateway/transport.h"
#include "layer/in_memory_layer.h"

namespace sluice::gateway::testing {

namespace net = boost::asio;
using TestStream = boost::beast::test::stream;

/// What happened to a TestTransport; outlives it (a closed session may be gone).
struct TransportState {
  bool shut_down = false;
  bool closed = false;
};

/// A Transport over beast::test::stream: sessions driven without sockets. Readiness is a
/// one-byte read held back for the next ReadSome; ShutdownSend shows the peer end of stream
/// while reads go on (a half-close).
class TestTransport final : public Transport {
 public:
  TestTransport(TestStream stream, TestStream* peer, std::shared_ptr<TransportState> state)
      : stream_(std::move(stream)), peer_(peer), state_(std::move(state)) {}

  net::any_io_executor executor() override { return stream_.get_executor(); }
  void WaitReadable(WaitHandler done) override {
    if (held_ || stream_.buffer().size() > 0) {
      net::post(stream_.get_executor(), [done = std::move(done)]() mutable { done({}); });
      return;
    }
    stream_.async_read_some(
        net::buffer(&byte_, 1),
        [this, done = std::move(done)](boost::system::error_code ec, size_t n) mutable {
          held_ = n == 1;
          done(ec);
        });
  }
  size_t ReadSome(net::mutable_buffer buffer, boost::system::error_code& ec) override {
    ec = {};
    auto* out = static_cast<char*>(buffer.data());
    size_t n = 0;
    if (held_ && buffer.size() > 0) {
      out[n++] = byte_;
      held_ = false;
    }
    if (stream_.buffer().size() > 0 && buffer.size() > n) {
      n += stream_.read_some(net::buffer(out + n, buffer.size() - n), ec);
    } else if (n == 0) {
      ec = net::error::would_block;
    }
    return n;
  }
  void Write(const std::vector<net::const_buffer>& buffers, WriteHandler done) override {
    net::async_write(
        stream_, buffers,
        [done = std::move(done)](boost::system::error_code ec, size_t n) mutable { done(ec, n); });
  }
  void ShutdownSend() override {
    state_->shut_down = true;
    peer_->close_remote();
  }
  void Close() override {
    state_->closed = true;
    stream_.close();
  }
  net::ip::tcp::endpoint remote_endpoint(boost::system::error_code&) override {
    return {net::ip::make_address("192.0.2.7"), 40000};
  }
  net::ip::tcp::endpoint local_endpoint(boost::system::error_code&) override {
    return {net::ip::make_address("127.0.0.1"), 8000};
  }

 private:
  TestStream stream_;
  TestStream* peer_;
  std::shared_ptr<TransportState> state_;
  char byte_ = 0;
  bool held_ = false;
};

/// A worker link that records what the gateway sends.
class FakeLink final : public Link {
 public:
  explicit FakeLink(v1::Window worker_window, uint64_t generation = 77)
      : worker_window_(std::move(worker_window)), generation_(generation) {}
  bool Send(uint16_t, v1::Envelope&& envelope) override {
    if (ended) return false;
    sent.push_back(std::move(envelope));
    return true;
  }
  const v1::Window& worker_window() const override { return worker_window_; }
  uint64_t generation() const override { return generation_; }

  std::vector<v1::Envelope> sent;
  bool ended = false;

 private:
  v1::Window worker_window_;
  uint64_t generation_;
};

class FakePicker final : public LinkPicker {
 public:
  std::shared_ptr<Link> Pick() override { return full ? nullptr : link; }
  std::shared_ptr<Link> PickFor(std::string_view channel) override {
    for (const std::string& consumed : channels) {
      if (consumed == channel) return link;
    }
    return nullptr;
  }
  std::vector<std::string> Channels() override { return channels; }
  std::shared_ptr<FakeLink> link;
  bool full = false;                  // Pick finds no worker with room
  std::vector<std::string> channels;  // what the fake worker consumes
};

inline v1::Window Window(uint32_t events, uint64_t bytes) {
  v1::Window window;
  window.set_events(events);
  window.set_bytes(bytes);
  return window;
}

/// A shard, a gateway context, a fake worker link and a client stream: everything a session
/// needs, on one io_context the test runs by hand.
class SessionHarness {
 public:
  explicit SessionHarness(Options options = Options(), v1::Window worker_window = DefaultWindow())
      : options_(std::move(options)),
        metrics_(registry_),
        context_{options_, picker_, metrics_},
        client_(shard_.io()) {
    picker_.link = std::make_shared<FakeLink>(std::move(worker_window));
    shard_.Sweep(clock_);  // deadlines count from the harness's clock
  }

  /// Gives sessions an in-memory channel layer on the shard's loop (gateway id "gw").
  layer::InMemoryLayer& UseLayer(layer::Options options = {}) {
    options.gateway_id = "gw";
    layer_ = std::make_unique<layer::InMemoryLayer>(shard_.io().get_executor(), std::move(options));
    context_.layer = layer_.get();
    return *layer_;
  }

  /// The server end for a new session; the harness keeps the client end.
  std::unique_ptr<TestTransport> Connect() {
    TestStream server(shard_.io());
    client_.connect(server);
    state_ = std::make_shared<TransportState>();
    return std::make_unique<TestTransport>(std::move(server), &client_, state_);
  }

  /// The client writes; a write to a connection the session closed fails quietly.
  void ClientSends(const std::string& bytes) {
    boost::system::error_code ignored;
    net::write(client_, net::buffer(bytes), ignored);
    Run();
  }
  /// Everything the session has written so far.
  std::string ClientReads() {
    Run();
    std::string out = client_.buffer().size() > 0
                          ? boost::beast::buffers_to_string(client_.buffer().data())
                          : std::string();
    client_.buffer().consume(client_.buffer().size());
    return out;
  }
  /// The client closes its end (the session reads end of stream).
  void ClientCloses() {
    client_.close();
    Run();
  }

  /// Hands envelopes from the "worker" to the shard, as a link does.
  void WorkerSends(const std::vector<v1::Envelope>& envelopes) {
    InboundBatch batch{std::make_shared<InboundFrame>(), {}};
    for (const v1::Envelope& envelope : envelopes) {
      *batch.frame->frame().add_envelopes() = envelope;
    }
    for (v1::Envelope& envelope : *batch.frame->frame().mutable_envelopes()) {
      batch.envelopes.push_back(&envelope);
    }
    shard_.Deliver(std::move(batch));
    Run();
  }
  void LinkLost() {
    shard_.LinkLost(picker_.link->generation());
    Run();
  }
  /// The worker's link is lost and another worker (a new FakeLink, which TakeSent reads from
  /// now on) takes new connections; `room` false: no worker has room any more.
  void LinkLostAndAnotherWorker(bool room = true) {
    const uint64_t lost = picker_.link->generation();
    if (room) {
      picker_.link = std::make_shared<FakeLink>(picker_.link->worker_window(), lost + 1);
    } else {
      picker_.full = true;
    }
    shard_.LinkLost(lost);
    Run();
  }
  /// Only the picker changes: the current link stays, a new one takes new connections.
  void AnotherWorker() {
    picker_.link =
        std::make_shared<FakeLink>(picker_.link->worker_window(), picker_.link->generation() + 1);
  }
  void Run() {
    shard_.io().restart();
    shard_.io().poll();
  }
  /// A sweep `seconds` after the session's deadlines were set.
  void AdvanceAndSweep(double seconds) {
    clock_ += static_cast<int64_t>(seconds * 1e9);
    shard_.Sweep(clock_);
    Run();
  }
  /// What the worker received and has not been looked at yet.
  std::vector<v1::Envelope> TakeSent() {
    auto out = std::move(picker_.link->sent);
    picker_.link->sent.clear();
    return out;
  }

  Shard& shard() { return shard_; }
  const Context& context() { return context_; }
  Metrics& metrics() { return metrics_; }
  FakeLink& link() { return *picker_.link; }
  FakePicker& picker() { return picker_; }
  /// The last connection's transport, as it was left (closed, shut down).
  const TransportState& transport() { return *state_; }
  MetricsRegistry& registry() { return registry_; }

 private:
  // What sessions use outlives the shard: sessions still held by its pending handlers are
  // destroyed with it.
  Options options_;
  MetricsRegistry registry_;
  Metrics metrics_;
  FakePicker picker_;
  Context context_;
  Shard shard_{0};
  // After the shard: destroyed first, with the sessions its pending handlers hold.
  std::unique_ptr<layer::InMemoryLayer> layer_;
  TestStream client_;
  std::shared_ptr<TransportState> state_;
  int64_t clock_ = 1'000'000'000'000;
};

}  // namespace sluice::gateway::testing
