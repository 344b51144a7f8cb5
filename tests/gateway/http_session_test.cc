#include "gateway/http_session.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/gateway/session_harness.h"

namespace sluice::gateway {
namespace {

using testing::SessionHarness;
using testing::Window;

v1::Envelope Response(uint64_t id, unsigned status, std::string body, bool close = true,
                      std::vector<std::pair<std::string, std::string>> headers = {}) {
  v1::Envelope envelope;
  envelope.set_connection_id(id);
  auto* start = envelope.add_events()->mutable_http_response_start();
  start->set_status(status);
  for (auto& [name, value] : headers) {
    auto* header = start->add_headers();
    header->set_name(name);
    header->set_value(value);
  }
  envelope.add_events()->mutable_http_response_body()->set_body(std::move(body));
  if (close) envelope.mutable_close()->set_reason(v1::Close::REASON_DONE);
  return envelope;
}

v1::Envelope Body(uint64_t id, std::string body, bool more) {
  v1::Envelope envelope;
  envelope.set_connection_id(id);
  auto* piece = envelope.add_events()->mutable_http_response_body();
  piece->set_body(std::move(body));
  piece->set_more_body(more);
  return envelope;
}

v1::Envelope Start(uint64_t id, unsigned status) {
  v1::Envelope envelope;
  envelope.set_connection_id(id);
  envelope.add_events()->mutable_http_response_start()->set_status(status);
  return envelope;
}

v1::Envelope Grant(uint64_t id, uint32_t events, uint64_t bytes) {
  v1::Envelope envelope;
  envelope.set_connection_id(id);
  envelope.mutable_credit()->set_events(events);
  envelope.mutable_credit()->set_bytes(bytes);
  return envelope;
}

class HttpSessionTest : public ::testing::Test {
 protected:
  explicit HttpSessionTest(Options options = Options(), v1::Window worker_window = DefaultWindow())
      : h_(std::move(options), std::move(worker_window)) {}

  void Open(bool over_limit = false) {
    std::make_shared<HttpSession>(h_.shard(), h_.context(), h_.Connect(), over_limit)->Start();
    h_.Run();
  }
  // The body bytes the worker received, all envelopes concatenated.
  static std::string BodyOf(const std::vector<v1::Envelope>& sent) {
    std::string body;
    for (const auto& envelope : sent) {
      for (const auto& event : envelope.events()) body += event.http_request().body();
    }
    return body;
  }

  SessionHarness h_;
};

TEST_F(HttpSessionTest, CompleteRequestIsOneEnvelopeAndCompleteResponseIsWritten) {
  Open();
  h_.ClientSends("GET /hello?x=1 HTTP/1.1\r\nHost: a\r\nX-Y: z\r\n\r\n");
  auto sent = h_.TakeSent();
  ASSERT_EQ(sent.size(), 1u);
  const v1::Envelope& open = sent[0];
  ASSERT_TRUE(open.has_open());
  EXPECT_EQ(open.open().scope().path(), "/hello");
  EXPECT_EQ(open.open().scope().query_string(), "x=1");
  EXPECT_EQ(open.open().scope().method(), "GET");
  ASSERT_EQ(open.events_size(), 1);
  EXPECT_TRUE(open.events(0).has_http_request());
  EXPECT_FALSE(open.events(0).http_request().more_body());

  h_.WorkerSends({Response(open.connection_id(), 200, "Hello, world")});
  EXPECT_EQ(h_.ClientReads(), "HTTP/1.1 200 OK\r\ncontent-length: 12\r\n\r\nHello, world");
  EXPECT_TRUE(h_.TakeSent().empty());  // nothing more: the worker ends the instance itself
  EXPECT_FALSE(h_.transport().closed);
  EXPECT_EQ(h_.shard().registered(), 0u);
}

TEST_F(HttpSessionTest, KeepAliveAndPipelinedRequestsGetTheirOwnInstancesInOrder) {
  Open();
  h_.ClientSends("GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n");
  auto sent = h_.TakeSent();
  ASSERT_EQ(sent.size(), 1u) << "the second request waits for the first's response";
  EXPECT_EQ(sent[0].open().scope().path(), "/a");
  h_.WorkerSends({Response(sent[0].connection_id(), 200, "A")});
  auto second = h_.TakeSent();
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].open().scope().path(), "/b");
  EXPECT_NE(second[0].connection_id(), sent[0].connection_id());
  h_.WorkerSends({Response(second[0].connection_id(), 200, "B")});
  EXPECT_EQ(h_.ClientReads(),
            "HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nA"
            "HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nB");
}

TEST_F(HttpSessionTest, BodyReadWholeTravelsWithTheOpen) {
  Open();
  h_.ClientSends("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello");
  auto sent = h_.TakeSent();
  ASSERT_EQ(sent.size(), 1u);
  ASSERT_TRUE(sent[0].has_open());
  ASSERT_EQ(sent[0].events_size(), 1);
  EXPECT_EQ(sent[0].events(0).http_request().body(), "hello");
  EXPECT_FALSE(sent[0].events(0).http_request().more_body());
}

TEST_F(HttpSessionTest, ChunkedResponseWhenTheLengthIsUnknown) {
  Open();
  h_.ClientSends("GET /sse HTTP/1.1\r\nHost: a\r\n\r\n");
  const uint64_t id = h_.TakeSent()[0].connection_id();
  h_.WorkerSends({Start(id, 200), Body(id, "data: 1\n\n", true)});
  EXPECT_EQ(h_.ClientReads(),
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n9\r\ndata: 1\n\n\r\n");
  h_.WorkerSends({Body(id, "", false)});
  EXPECT_EQ(h_.ClientReads(), "0\r\n\r\n");
}

class HttpSessionSmallWindowTest : public HttpSessionTest {
 protected:
  HttpSessionSmallWindowTest() : HttpSessionTest(Options(), Window(2, 1 << 20)) {}
};

// With no credit left the gateway stops reading; TCP would push back on the client.
TEST_F(HttpSessionSmallWindowTest, BodyStopsAtTheWorkersCreditAndGoesOnWhenGranted) {
  Open();
  h_.ClientSends("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
  uint64_t id = 0;
  std::vector<v1::Envelope> all;
  for (const char* piece : {"3\r\none\r\n", "3\r\ntwo\r\n", "5\r\nthree\r\n"}) {
    h_.ClientSends(piece);
    for (auto& envelope : h_.TakeSent()) {
      id = envelope.connection_id();
      all.push_back(std::move(envelope));
    }
  }
  EXPECT_EQ(BodyOf(all), "onetwo") << "the third piece is beyond the window of two events";
  EXPECT_EQ(h_.metrics().credit_stalls_to_worker.value(), 1u);
  h_.WorkerSends({Grant(id, 2, 6)});
  h_.ClientSends("0\r\n\r\n");
  auto rest = h_.TakeSent();
  EXPECT_EQ(BodyOf(rest), "three");
  ASSERT_FALSE(rest.empty());
  EXPECT_FALSE(rest.back().events(rest.back().events_size() - 1).http_request().more_body());
}

TEST_F(HttpSessionTest, ContentLengthShorterThanDeclaredGets500NotACutSocket) {
  Open();
  h_.ClientSends("GET /bad HTTP/1.1\r\nHost: a\r\n\r\n");
  const uint64_t id = h_.TakeSent()[0].connection_id();
  h_.WorkerSends({Response(id, 200, "short", false, {{"content-length", "10"}})});
  const std::string reply = h_.ClientReads();
  EXPECT_EQ(reply.rfind("HTTP/1.1 500 Internal Server Error\r\n", 0), 0u) << reply;
  EXPECT_NE(reply.find("\r\n\r\nInternal Server Error\n"), std::string::npos);
  EXPECT_EQ(h_.metrics().app_errors.value(), 1u);
  // The worker is told to stop.
  auto sent = h_.TakeSent();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_TRUE(sent[0].events(0).has_http_disconnect());
}

TEST_F(HttpSessionTest, WorkerOverrunningItsCreditIsAnErrorNotAnOverflow) {
  Options options;
  options.receive_window = Window(2, 1 << 20);
  SessionHarness h(options);
  std::make_shared<HttpSession>(h.shard(), h.context(), h.Connect(), false)->Start();
  h.ClientSends("GET /sse HTTP/1.1\r\nHost: a\r\n\r\n");
  const uint64_t id = h.TakeSent()[0].connection_id();
  // The start is credited back at once (it queues nothing); then 3 bodies against a window
  // of 2, nothing written in between.
  h.WorkerSends({Start(id, 200), Body(id, "a", true), Body(id, "b", true), Body(id, "c", true)});
  EXPECT_EQ(h.metrics().worker_protocol_errors.value(), 1u);
  auto sent = h.TakeSent();
  ASSERT_FALSE(sent.empty());
  EXPECT_TRUE(sent.back().events(0).has_http_disconnect());
}

TEST_F(HttpSessionTest, EarlyResponseClosesAfterwardsAndDrainsTheUnreadBody) {
  Open();
  h_.ClientSends("POST /early HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n0123456789");
  const uint64_t id = h_.TakeSent()[0].connection_id();
  h_.WorkerSends({Response(id, 401, "no")});
  const std::string reply = h_.ClientReads();
  EXPECT_EQ(reply, "HTTP/1.1 401 Unauthorized\r\ncontent-length: 2\r\nconnection: close\r\n\r\nno");
  // The answer is out: FIN, and what the client still sends is read and dropped, not reset.
  EXPECT_TRUE(h_.transport().shut_down);
  EXPECT_FALSE(h_.transport().closed);
  h_.ClientSends(std::string(990, 'x'));
  EXPECT_FALSE(h_.transport().closed);
  h_.ClientCloses();
  EXPECT_TRUE(h_.transport().closed);
}

TEST_F(HttpSessionTest, LingerEndsAtItsTimeout) {
  Open();
  h_.ClientSends("POST /early HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n");
  const uint64_t id = h_.TakeSent()[0].connection_id();
  h_.WorkerSends({Response(id, 401, "no")});
  ASSERT_TRUE(h_.transport().shut_down);
  h_.AdvanceAndSweep(Options().linger_timeout.count() + 0.5);
  EXPECT_TRUE(h_.transport().closed);
  EXPECT_EQ(h_.metrics().limit_linger.value(), 1u);
}

TEST_F(HttpSessionTest, OversizedHeaderGets431ThenLingers) {
  Open();
  h_.ClientSends("GET / HTTP/1.1\r\nX-Big: " + std::string(20000, 'a'));
  const std::string reply = h_.ClientReads();
  EXPECT_EQ(reply.rfind("HTTP/1.1 431 ", 0), 0u) << reply.substr(0, 100);
  EXPECT_EQ(h_.metrics().rejected_header_too_large.value(), 1u);
  EXPECT_TRUE(h_.transport().shut_down);
  EXPECT_TRUE(h_.TakeSent().empty());
}

TEST_F(HttpSessionTest, MalformedRequestGets400) {
  Open();
  h_.ClientSends("NOT HTTP AT ALL\r\n\r\n");
  EXPECT_EQ(h_.ClientReads().rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u);
  EXPECT_EQ(h_.metrics().rejected_bad_request.value(), 1u);
}

TEST_F(HttpSessionTest, ContentLengthOverTheLimitGets413AtOnce) {
  Options options;
  options.max_body_bytes = 100;
  SessionHarness h(options);
  std::make_shared<HttpSession>(h.shard(), h.context(), h.Connect(), false)->Start();
  h.ClientSends("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n");
  EXPECT_EQ(h.ClientReads().rfind("HTTP/1.1 413 ", 0), 0u);
  EXPECT_TRUE(h.TakeSent().empty()) << "no instance for a request refused at its header";
}

TEST_F(HttpSessionTest, OverTheConnectionLimitGets503WithRetryAfter) {
  Open(/*over_limit=*/true);
  h_.ClientSends("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  const std::string reply = h_.ClientReads();
  EXPECT_EQ(reply.rfind("HTTP/1.1 503 ", 0), 0u);
  EXPECT_NE(reply.find("retry-after: 1\r\n"), std::string::npos);
  EXPECT_NE(reply.find("connection: close\r\n"), std::string::npos);
}

TEST_F(HttpSessionTest, NoWorkerGets503AtOnceAndKeepsTheConnection) {
  h_.picker().link = nullptr;  // no worker has room
  Open();
  h_.ClientSends("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  const std::string reply = h_.ClientReads();
  EXPECT_EQ(reply.rfind("HTTP/1.1 503 ", 0), 0u);
  EXPECT_EQ(reply.find("connection: close"), std::string::npos);
  EXPECT_EQ(h_.metrics().rejected_no_worker.value(), 1u);
  EXPECT_FALSE(h_.transport().shut_down);
}

// An idempotent request whose worker is lost before any response byte goes to another worker
// (at most kMaxRetries times); the client gets one response.
TEST_F(HttpSessionTest, LinkLostBeforeTheResponseRetriesAnIdempotentRequest) {
  Open();
  h_.ClientSends("PUT /item HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody");
  h_.TakeSent();
  h_.LinkLostAndAnotherWorker();
  auto sent = h_.TakeSent();
  ASSERT_EQ(sent.size(), 1u);
  ASSERT_TRUE(sent[0].has_open());
  EXPECT_EQ(sent[0].open().scope().method(), "PUT");
  EXPECT_EQ(sent[0].open().scope().path(), "/item");
  EXPECT_EQ(sent[0].events(0).http_request().body(), "body");
  EXPECT_EQ(h_.ClientReads(), "");
  EXPECT_EQ(h_.metrics().http_retried.value(), 1u);
  h_.WorkerSends({Response(sent[0].connection_id(), 200, "done", /*close=*/false)});
  EXPECT_EQ(h_.ClientReads(), "HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\ndone");
}

TEST_F(HttpSessionTest, RetriesAreBoundedThen502) {
  Open();
  h_.ClientSends("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  for (int i = 0; i < HttpSession::kMaxRetries; ++i) h_.LinkLostAndAnotherWorker();
  EXPECT_EQ(h_.ClientReads(), "");
  h_.LinkLostAndAnotherWorker();
  EXPECT_EQ(h_.ClientReads().rfind("HTTP/1.1 502 Bad Gateway\r\n", 0), 0u);
  EXPECT_EQ(h_.metrics().http_retried.value(), 2u);
  EXPECT_EQ(h_.metrics().http_not_retried.value(), 1u);
}

// A refusal (the worker filled up or began draining as the Open crossed) means no instance saw
// the request: it goes to the next worker whatever its method, at most kMaxRetries times.
TEST_F(HttpSessionTest, ARefusedRequestGoesToTheNextWorkerEvenAPost) {
  Open();
  h_.ClientSends("POST /order HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody");
  v1::Envelope refused;
  refused.mutable_close()->set_reason(v1::Close::REASON_REJECTED);
  for (int i = 0; i < HttpSession::kMaxRetries; ++i) {
    refused.set_connection_id(h_.TakeSent()[0].connection_id());
    h_.AnotherWorker();
    h_.WorkerSends({refused});
    EXPECT_EQ(h_.ClientReads(), "");
  }
  auto sent = h_.TakeSent();
  ASSERT_EQ(sent.size(), 1u);
  ASSERT_TRUE(sent[0].has_open());
  EXPECT_EQ(sent[0].open().scope().method(), "POST");
  EXPECT_EQ(sent[0].events(0).http_request().body(), "body");
  EXPECT_EQ(h_.metrics().http_retried.value(), 2u);
  refused.set_connection_id(sent[0].connection_id());
  h_.WorkerSends({refused});
  EXPECT_EQ(h_.ClientReads().rfind("HTTP/1.1 503 Service Unavailable\r\n", 0), 0u);
  EXPECT_EQ(h_.metrics().rejected_worker_full.value(), 1u);
}

// A POST may have had effects: never sent twice.
TEST_F(HttpSessionTest, LinkLostBeforeTheResponseGets502ForANonIdempotentRequest) {
  Open();
  h_.ClientSends("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx");
  h_.LinkLostAndAnotherWorker();
  EXPECT_EQ(h_.ClientReads().rfind("HTTP/1.1 502 Bad Gateway\r\n", 0), 0u);
  EXPECT_TRUE(h_.TakeSent().empty());
  EXPECT_EQ(h_.metrics().worker_lost.value(), 1u);
  EXPECT_EQ(h_.metrics().http_not_retried.value(), 1u);
}

// Once response bytes reached the client, a retry would duplicate them: the response is cut.
TEST_F(HttpSessionTest, LinkLostAfterResponseBytesCutsTheResponse) {
  Open();
  h_.ClientSends("GET /sse HTTP/1.1\r\nHost: a\r\n\r\n");
  const uint64_t id = h_.TakeSent()[0].connection_id();
  v1::Envelope start;
  start.set_connection_id(id);
  start.add_events()->mutable_http_response_start()->set_status(200);
  auto* piece = start.add_events()->mutable_http_response_body();
  piece->set_body("data: 1\n\n");
  piece->set_more_body(true);
  h_.WorkerSends({start});
  EXPECT_NE(h_.ClientReads().find("data: 1"), std::string::npos);
  h_.LinkLostAndAnotherWorker();
  EXPECT_TRUE(h_.TakeSent().empty());
  EXPECT_TRUE(h_.transport().closed);
  EXPECT_EQ(h_.metrics().http_retried.value(), 0u);
}

TEST_F(HttpSessionTest, CompleteResponseSurvivesTheLinkBeingLost) {
  Open();
  h_.ClientSends("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  const uint64_t id = h_.TakeSent()[0].connection_id();
  h_.WorkerSends({Response(id, 200, "whole", /*close=*/false)});
  h_.LinkLost();
  EXPECT_EQ(h_.ClientReads(), "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nwhole");
}

TEST_F(HttpSessionTest, ClientLeavingTellsTheWorker) {
  Open();
  h_.ClientSends("GET /sse HTTP/1.1\r\nHost: a\r\n\r\n");
  h_.TakeSent();
  h_.ClientCloses();
  auto sent = h_.TakeSent();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_TRUE(sent[0].events(0).has_http_disconnect());
  EXPECT_EQ(h_.shard().registered(), 0u);
}

TEST_F(HttpSessionTest, StalledBodyGets408AndFreesTheWorker) {
  Open();
  h_.ClientSends("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789");
  h_.TakeSent();
  h_.AdvanceAndSweep(Options().body_timeout.count() - 1);
  EXPECT_TRUE(h_.ClientReads().empty()) << "still within the body timeout";
  h_.AdvanceAndSweep(2);
  EXPECT_EQ(h_.ClientReads().rfind("HTTP/1.1 408 Request Timeout\r\n", 0), 0u);
  EXPECT_EQ(h_.metrics().limit_body_timeout.value(), 1u);
  auto sent = h_.TakeSent();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_TRUE(sent[0].events(0).has_http_disconnect());
}

TEST_F(HttpSessionTest, BodyThatMakesProgressIsNotTimedOut) {
  Open();
  h_.ClientSends("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n");
  const double step = Options().body_timeout.count() * 0.6;
  for (int i = 0; i < 5; ++i) {
    h_.AdvanceAndSweep(step);
    h_.ClientSends("0123456789");
  }
  EXPECT_TRUE(h_.ClientReads().empty());
  EXPECT_EQ(h_.metrics().limit_body_timeout.value(), 0u);
}

TEST_F(HttpSessionTest, SilentNewConnectionIsClosedAtTheHeaderTimeout) {
  Open();
  h_.AdvanceAndSweep(Options().header_timeout.count() + 0.5);
  EXPECT_TRUE(h_.transport().closed);
  EXPECT_EQ(h_.metrics().limit_header_timeout.value(), 1u);
  EXPECT_TRUE(h_.ClientReads().empty()) << "slowloris gets no answer";
}

TEST_F(HttpSessionTest, DrainClosesIdleAndFinishesInFlightWithConnectionClose) {
  Open();
  h_.ClientSends("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  const uint64_t id = h_.TakeSent()[0].connection_id();
  h_.shard().ForEachSession([](ClientSession& session) { session.Drain(); });
  h_.Run();
  EXPECT_FALSE(h_.transport().shut_down) << "the request in progress finishes first";
  h_.WorkerSends({Response(id, 200, "done")});
  const std::string reply = h_.ClientReads();
  EXPECT_NE(reply.find("connection: close\r\n"), std::string::npos) << reply;
  EXPECT_TRUE(h_.transport().shut_down);
}

}  // namespace
}  // namespace sluice::gateway
