#include "worker/link_session.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "common/inbound.h"
#include "common/protocol.h"
#include "sluice/http_consumer.h"
#include "sluice/router.h"
#include "sluice/websocket_consumer.h"
#include "worker/runtime.h"

namespace sluice::worker {
namespace {

/// The stream under a session: records the Frames written and completes each write when the
/// test pumps.
class FakeWire final : public LinkSession::Wire {
 public:
  void StartWrite(const v1::Frame* frame) override {
    EXPECT_FALSE(writing) << "two writes in flight";
    written.push_back(*frame);
    writing = true;
  }
  void Finish(const grpc::Status& status) override {
    EXPECT_FALSE(finished) << "Finish called twice";
    finished = true;
    finish_status = status;
  }
  std::vector<v1::Frame> written;
  bool writing = false;
  bool finished = false;
  grpc::Status finish_status;
};

class Hello final : public HttpConsumer {
  Task<void> Handle() override { co_await Respond(200, "hi"); }
};

class Echo final : public WebSocketConsumer {
  Task<void> OnText(std::string text) override { co_await SendText(std::move(text)); }
};

v1::Frame HelloFrame() {
  v1::Frame frame;
  v1::Hello* hello = frame.mutable_hello();
  hello->set_protocol_version(kProtocolVersion);
  hello->set_gateway_id("gw");
  hello->mutable_receive_window()->set_events(16);
  hello->mutable_receive_window()->set_bytes(1 << 20);
  return frame;
}

v1::Envelope Open(uint64_t id, v1::Scope::Type type, std::string path) {
  v1::Envelope envelope;
  envelope.set_connection_id(id);
  v1::Scope* scope = envelope.mutable_open()->mutable_scope();
  scope->set_type(type);
  scope->set_path(std::move(path));
  if (type == v1::Scope::TYPE_HTTP) {
    scope->set_method("GET");
    envelope.add_events()->mutable_http_request();
  } else {
    envelope.add_events()->mutable_websocket_connect();
  }
  return envelope;
}

class LinkSessionTest : public ::testing::Test {
 protected:
  explicit LinkSessionTest(uint32_t capacity = 10) {
    app_.Http("/hello", Make<Hello>()).WebSocket("/echo", Make<Echo>());
    Options options;
    options.threads = 1;
    options.capacity = capacity;
    options.receive_window.set_events(4);
    runtime_ = std::make_unique<Runtime>(app_, options);
    session_ = std::make_shared<LinkSession>(*runtime_, "test-peer", &wire_);
  }
  ~LinkSessionTest() override {
    session_->End(grpc::Status::CANCELLED);
    Pump();
    session_->Detach();
    session_->Abandon();
  }

  // Runs the loop and completes writes until nothing moves.
  void Pump() {
    for (int i = 0; i < 100; ++i) {
      runtime_->loop(0).restart();
      const size_t ran = runtime_->loop(0).poll();
      if (wire_.writing) {
        wire_.writing = false;
        session_->OnWriteDone(true);
        continue;
      }
      if (ran == 0) return;
    }
  }
  void Receive(v1::Frame frame) {
    session_->OnFrame(InboundFrame::Of(frame));
    Pump();
  }
  void Greet() {
    Receive(HelloFrame());
    ASSERT_FALSE(wire_.written.empty());
    ASSERT_TRUE(wire_.written[0].has_welcome());
    wire_.written.clear();
  }
  std::vector<v1::Envelope> Sent() {
    std::vector<v1::Envelope> out;
    for (const auto& frame : wire_.written) {
      for (const auto& envelope : frame.envelopes()) out.push_back(envelope);
    }
    wire_.written.clear();
    return out;
  }

  Router app_;
  std::unique_ptr<Runtime> runtime_;
  FakeWire wire_;
  std::shared_ptr<LinkSession> session_;
};

TEST_F(LinkSessionTest, HelloIsAnsweredWithAWelcome) {
  Receive(HelloFrame());
  ASSERT_EQ(wire_.written.size(), 1u);
  const v1::Welcome& welcome = wire_.written[0].welcome();
  EXPECT_EQ(welcome.protocol_version(), kProtocolVersion);
  EXPECT_EQ(welcome.capacity(), 10u);
  EXPECT_EQ(welcome.receive_window().events(), 4u);
  EXPECT_EQ(wire_.written[0].capacity().capacity(), 10u);  // every Frame carries the load
}

TEST_F(LinkSessionTest, FirstFrameWithoutHelloEndsTheStream) {
  v1::Frame frame;
  *frame.add_envelopes() = Open(1, v1::Scope::TYPE_HTTP, "/hello");
  Receive(std::move(frame));
  EXPECT_TRUE(wire_.finished);
  EXPECT_EQ(wire_.finish_status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(runtime_->metrics().protocol_errors.value(), 1u);
}

// A complete response goes back as one envelope: start, body and close together.
TEST_F(LinkSessionTest, CompleteResponseIsOneEnvelope) {
  Greet();
  v1::Frame frame;
  *frame.add_envelopes() = Open(1, v1::Scope::TYPE_HTTP, "/hello");
  Receive(std::move(frame));
  auto sent = Sent();
  ASSERT_EQ(sent.size(), 1u);
  const v1::Envelope& response = sent[0];
  EXPECT_EQ(response.connection_id(), 1u);
  ASSERT_EQ(response.events_size(), 2);
  EXPECT_EQ(response.events(0).http_response_start().status(), 200u);
  EXPECT_EQ(response.events(1).http_response_body().body(), "hi");
  EXPECT_EQ(response.close().reason(), v1::Close::REASON_DONE);
  EXPECT_EQ(session_->active(), 0u);
  EXPECT_EQ(runtime_->active(), 0u);
}

TEST_F(LinkSessionTest, EventsForAnUnknownConnectionAreIgnored) {
  Greet();
  v1::Frame frame;
  v1::Envelope stray;
  stray.set_connection_id(99);
  stray.add_events()->mutable_websocket_receive()->set_data("x");
  *frame.add_envelopes() = stray;
  Receive(std::move(frame));
  EXPECT_TRUE(Sent().empty());
  EXPECT_FALSE(wire_.finished);
}

TEST_F(LinkSessionTest, EndingTheStreamDisconnectsInstancesAndFinishesOnce) {
  Greet();
  v1::Frame frame;
  *frame.add_envelopes() = Open(1, v1::Scope::TYPE_WEBSOCKET, "/echo");
  Receive(std::move(frame));
  EXPECT_EQ(session_->active(), 1u);
  session_->OnReadEnded();
  Pump();
  EXPECT_TRUE(wire_.finished);
  EXPECT_EQ(session_->active(), 0u) << "the instance heard its client is gone and ended";
  session_->End(grpc::Status::CANCELLED);  // a second end changes nothing
}

TEST_F(LinkSessionTest, DrainingRejectsNewConnectionsAndSaysSo) {
  Greet();
  runtime_->Drain();  // no loops are running: returns at once, draining set
  session_->Drain();
  Pump();
  v1::Frame frame;
  *frame.add_envelopes() = Open(1, v1::Scope::TYPE_HTTP, "/hello");
  Receive(std::move(frame));
  bool rejected = false;
  bool said_draining = false;
  for (const auto& written : wire_.written) {
    said_draining = said_draining || written.capacity().draining();
    for (const auto& envelope : written.envelopes()) {
      rejected = rejected || envelope.close().reason() == v1::Close::REASON_REJECTED;
    }
  }
  EXPECT_TRUE(rejected);
  EXPECT_TRUE(said_draining);
  EXPECT_EQ(runtime_->metrics().rejected.value(), 1u);
}

class FullLinkSessionTest : public LinkSessionTest {
 protected:
  FullLinkSessionTest() : LinkSessionTest(/*capacity=*/1) {}
};

TEST_F(FullLinkSessionTest, OpenBeyondCapacityIsRejected) {
  Greet();
  v1::Frame frame;
  *frame.add_envelopes() = Open(1, v1::Scope::TYPE_WEBSOCKET, "/echo");
  *frame.add_envelopes() = Open(2, v1::Scope::TYPE_WEBSOCKET, "/echo");
  Receive(std::move(frame));
  auto sent = Sent();
  bool second_rejected = false;
  for (const auto& envelope : sent) {
    if (envelope.connection_id() == 2) {
      second_rejected = envelope.close().reason() == v1::Close::REASON_REJECTED;
    }
  }
  EXPECT_TRUE(second_rejected);
  EXPECT_EQ(session_->active(), 1u);
  EXPECT_EQ(runtime_->metrics().rejected.value(), 1u);
}

// The gateway sending more than the instance's window (4 events) breaks the protocol: the
// instance is disconnected and the violation counted, nothing is queued beyond the bound.
TEST_F(LinkSessionTest, GatewayOverrunningAnInstancesWindowIsCounted) {
  Greet();
  v1::Frame frame;
  *frame.add_envelopes() = Open(1, v1::Scope::TYPE_WEBSOCKET, "/echo");
  v1::Envelope flood;
  flood.set_connection_id(1);
  for (int i = 0; i < 8; ++i) flood.add_events()->mutable_websocket_receive()->set_data("x");
  *frame.add_envelopes() = flood;
  session_->OnFrame(
      InboundFrame::Of(frame));  // delivered in one turn: the consumer cannot catch up
  Pump();
  EXPECT_EQ(runtime_->metrics().protocol_errors.value(), 1u);
  EXPECT_EQ(session_->active(), 0u);
}

}  // namespace
}  // namespace sluice::worker
