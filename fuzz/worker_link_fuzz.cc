// Fuzz target: the worker's end of a link (LinkSession), fed Frames a gateway might send
// (decoded from the input: a 2-byte length, then that many bytes of an encoded Frame,
// repeated), after a valid Hello. Connection ids are folded onto a few values so opens,
// events and credit meet the same instances, which run the demo application's real
// consumers. Checks: nothing crashes or leaks under ASan/UBSan whatever the gateway sends
// (events beyond credit, events before an open, opens twice, invalid scopes), writes are
// one at a time, and once the link ends every instance ends and its slot is free.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "common/inbound.h"
#include "common/protocol.h"
#include "demo/demo_app.h"
#include "sluice/sync.h"
#include "worker/link_session.h"
#include "worker/runtime.h"

namespace {

using namespace sluice;
using namespace sluice::worker;

#define FUZZ_CHECK(cond)                                                                  \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::fprintf(stderr, "FUZZ_CHECK failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                       \
    }                                                                                     \
  } while (0)

class Wire final : public LinkSession::Wire {
 public:
  void StartWrite(const v1::Frame*) override {
    FUZZ_CHECK(!writing);
    writing = true;
  }
  void Finish(const grpc::Status&) override {
    FUZZ_CHECK(!finished);
    finished = true;
  }
  bool writing = false;
  bool finished = false;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static auto app = demo::MakeApp();
  Options options;
  options.threads = 1;
  options.capacity = 4;
  options.receive_window.set_events(4);
  options.receive_window.set_bytes(256);
  Runtime runtime(*app, options);
  Wire wire;
  auto session = std::make_shared<LinkSession>(runtime, "fuzz", &wire);
  auto pump = [&] {
    for (int i = 0; i < 64; ++i) {
      runtime.loop(0).restart();
      const size_t ran = runtime.loop(0).poll();
      if (wire.writing) {
        wire.writing = false;
        session->OnWriteDone(true);
      } else if (ran == 0) {
        return;
      }
    }
  };
  v1::Frame hello;
  hello.mutable_hello()->set_protocol_version(kProtocolVersion);
  hello.mutable_hello()->mutable_receive_window()->set_events(4);
  hello.mutable_hello()->mutable_receive_window()->set_bytes(256);
  session->OnFrame(InboundFrame::Of(hello));
  pump();

  size_t at = 0;
  while (at + 2 <= size && !wire.finished) {
    const size_t n = std::min<size_t>(size - at - 2, (data[at] << 8) | data[at + 1]);
    at += 2;
    // Parsed into an arena Frame, as the link reads it.
    auto inbound = std::make_shared<InboundFrame>();
    v1::Frame& frame = inbound->frame();
    const bool parsed = frame.ParseFromArray(data + at, static_cast<int>(n));
    at += n;
    if (!parsed) continue;
    for (v1::Envelope& envelope : *frame.mutable_envelopes()) {
      envelope.set_connection_id(envelope.connection_id() % 4);
      // The demo's sync routes block a pool thread for up to 5 s on request ("sleep"), which
      // the runtime must outlive (below): no sleeps here, every other path stays.
      if (envelope.has_open()) envelope.mutable_open()->mutable_scope()->clear_query_string();
      for (v1::Event& event : *envelope.mutable_events()) {
        if (event.has_websocket_receive() &&
            event.websocket_receive().data().find("sleep") != std::string::npos) {
          event.mutable_websocket_receive()->set_data("thread");
        }
      }
    }
    session->OnFrame(inbound);
    pump();
  }
  session->End(grpc::Status::CANCELLED);
  pump();
  // Sync consumers' calls run on the process-wide pool and post their results to this
  // runtime's loop, holding work on it: they must be done before the loop goes.
  const SyncPool& pool = SyncPool::Default();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while ((pool.queued() > 0 || pool.running() > 0) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    pump();
  }
  FUZZ_CHECK(pool.queued() == 0 && pool.running() == 0);
  FUZZ_CHECK(wire.finished);
  FUZZ_CHECK(session->active() == 0 || runtime.active() == session->active());
  session->Detach();
  session->Abandon();
  return 0;
}
