// Fuzz target: the gateway's end of a link, fed Frames a worker might send (decoded from the
// input: a 2-byte length, then that many bytes of an encoded Frame, repeated). The link is
// welcomed first; envelopes are steered at three connections (an HTTP request waiting for
// its response, an accepted WebSocket, and an id nobody holds) so they reach real sessions
// through the shard's registry. Checks: nothing crashes or leaks under ASan/UBSan whatever
// the worker sends (wrong events, overrun credit, closes twice, garbage), and every client
// connection still ends once the link is lost and its deadlines pass.

#include <boost/asio/io_context.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/inbound.h"
#include "common/protocol.h"
#include "gateway/http_session.h"
#include "gateway/worker_pool.h"
#include "tests/gateway/session_harness.h"

namespace {

using namespace sluice;
using namespace sluice::gateway;

#define FUZZ_CHECK(cond)                                                                  \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::fprintf(stderr, "FUZZ_CHECK failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                       \
    }                                                                                     \
  } while (0)

constexpr char kUpgrade[] =
    "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Options options;
  options.receive_window.set_events(4);
  options.receive_window.set_bytes(256);
  testing::SessionHarness http(options);
  std::make_shared<HttpSession>(http.shard(), http.context(), http.Connect(), false)->Start();
  http.ClientSends("GET /sse HTTP/1.1\r\nHost: a\r\n\r\n");
  auto sent = http.TakeSent();
  FUZZ_CHECK(sent.size() == 1);
  const uint64_t http_id = sent[0].connection_id();

  // The WebSocket lives on the same shard: a second client on the HTTP harness's shard.
  std::make_shared<HttpSession>(http.shard(), http.context(), http.Connect(), false)->Start();
  http.ClientSends(kUpgrade);
  sent = http.TakeSent();
  FUZZ_CHECK(sent.size() == 1);
  const uint64_t ws_id = sent[0].connection_id();
  v1::Envelope accept;
  accept.set_connection_id(ws_id);
  accept.add_events()->mutable_websocket_accept();
  http.WorkerSends({accept});
  const uint64_t ids[3] = {http_id, ws_id, ws_id + 1000};

  boost::asio::io_context control;
  WorkerLink owner(HostPort{"127.0.0.1", 1}, options, {&http.shard()}, control);
  auto call = std::make_shared<LinkCall>(owner, options, std::vector<Shard*>{&http.shard()});
  v1::Frame welcome;
  welcome.mutable_welcome()->set_protocol_version(kProtocolVersion);
  welcome.mutable_welcome()->set_capacity(10);
  welcome.mutable_welcome()->mutable_receive_window()->set_events(4);
  FUZZ_CHECK(call->OnFrame(InboundFrame::Of(welcome)));

  size_t at = 0;
  while (at + 2 <= size) {
    const size_t n = std::min<size_t>(size - at - 2, (data[at] << 8) | data[at + 1]);
    at += 2;
    // Parsed into an arena Frame, as the link reads it.
    auto inbound = std::make_shared<InboundFrame>();
    v1::Frame& frame = inbound->frame();
    const bool parsed = frame.ParseFromArray(data + at, static_cast<int>(n));
    at += n;
    if (!parsed) continue;  // the gRPC layer would have refused it
    frame.clear_welcome();
    for (v1::Envelope& envelope : *frame.mutable_envelopes()) {
      envelope.set_connection_id(ids[envelope.connection_id() % 3]);
      envelope.clear_open();  // workers do not open connections
    }
    FUZZ_CHECK(call->OnFrame(inbound));
    http.Run();
    http.ClientReads();
  }
  // An HTTP request waits for its response as long as the application takes: losing the
  // link with no other worker to move to ends what the Frames left open (502 or a cut, 1012),
  // then every deadline passes.
  http.LinkLostAndAnotherWorker(/*room=*/false);
  http.AdvanceAndSweep(3600);
  http.AdvanceAndSweep(3600);
  FUZZ_CHECK(http.shard().sessions() == 0);
  return 0;
}
