// Fuzz target: a gateway WebSocket session driven through beast::test::stream, as a client
// and a worker would drive it. The input is a script: the bytes the client sends (in pieces
// the input chooses) interleaved with what the "worker" does (accept, send, close, grant
// credit, end, lose the link) and the clock moving (deadlines). Checks: nothing crashes or
// leaks under ASan/UBSan, the worker is never sent more than the credit it granted, and
// every connection is closed once the script ends and the clock passes every deadline.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "gateway/http_session.h"
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

class Script {
 public:
  Script(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool done() const { return at_ == size_; }
  uint8_t Byte() { return done() ? 0 : data_[at_++]; }
  std::string Bytes(size_t n) {
    n = std::min(n, size_ - at_);
    std::string out(reinterpret_cast<const char*>(data_ + at_), n);
    at_ += n;
    return out;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t at_ = 0;
};

v1::Envelope Envelope(uint64_t id) {
  v1::Envelope envelope;
  envelope.set_connection_id(id);
  return envelope;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Options options;
  options.max_ws_message_bytes = 512;
  options.receive_window.set_events(4);
  options.receive_window.set_bytes(256);
  testing::SessionHarness h(options, testing::Window(4, 256));
  std::make_shared<HttpSession>(h.shard(), h.context(), h.Connect(), false)->Start();
  h.ClientSends(kUpgrade);
  auto opened = h.TakeSent();
  FUZZ_CHECK(opened.size() == 1 && opened[0].has_open());
  const uint64_t id = opened[0].connection_id();
  // The worker's view of its credit towards the gateway, and of what it granted.
  int64_t worker_events = 4;
  int64_t granted_events = 4 - 1;  // websocket.connect spent one

  Script script(data, size);
  while (!script.done()) {
    const uint8_t op = script.Byte();
    switch (op % 8) {
      case 0:
      case 1:
      case 2:  // the client sends 1..64 bytes of frames
        h.ClientSends(script.Bytes(1 + script.Byte() % 64));
        break;
      case 3: {  // the worker accepts, sends a message or closes, within its credit
        if (worker_events <= 0) break;
        --worker_events;
        v1::Envelope envelope = Envelope(id);
        const uint8_t kind = script.Byte() % 3;
        if (kind == 0) {
          envelope.add_events()->mutable_websocket_accept();
        } else if (kind == 1) {
          auto* send = envelope.add_events()->mutable_websocket_send();
          send->set_data(script.Bytes(script.Byte() % 32));
          send->set_binary(true);
        } else {
          envelope.add_events()->mutable_websocket_close()->set_code(1000 + script.Byte() % 12);
        }
        h.WorkerSends({envelope});
        break;
      }
      case 4: {  // the worker grants credit for what it consumed
        v1::Envelope envelope = Envelope(id);
        envelope.mutable_credit()->set_events(2);
        envelope.mutable_credit()->set_bytes(128);
        granted_events += 2;
        h.WorkerSends({envelope});
        break;
      }
      case 5: {  // the instance ends
        v1::Envelope envelope = Envelope(id);
        envelope.mutable_close()->set_reason(script.Byte() % 2 ? v1::Close::REASON_DONE
                                                               : v1::Close::REASON_APP_ERROR);
        h.WorkerSends({envelope});
        break;
      }
      case 6:  // time passes
        h.AdvanceAndSweep(script.Byte() % 30);
        break;
      case 7:
        if (script.Byte() % 8 == 0) {
          h.LinkLostAndAnotherWorker(/*room=*/false);  // no move: the connection keeps its id
        } else {
          h.ClientReads();  // the client reads what was written
        }
        break;
    }
    // Every event the gateway sent spent credit it was granted (disconnects excepted).
    for (const auto& envelope : h.TakeSent()) {
      FUZZ_CHECK(envelope.connection_id() == id);
      for (const auto& event : envelope.events()) {
        if (!event.has_websocket_disconnect()) --granted_events;
      }
      if (envelope.has_credit()) worker_events += envelope.credit().events();
    }
    FUZZ_CHECK(granted_events >= 0);
  }
  // However it went, the connection ends once every deadline has passed.
  h.ClientReads();
  h.AdvanceAndSweep(3600);
  h.AdvanceAndSweep(3600);
  FUZZ_CHECK(h.transport().closed);
  FUZZ_CHECK(h.shard().sessions() == 0);
  return 0;
}
