// The SDK's fence against GCC 12's double destruction of braced temporaries in a co_await
// expression: compiled by ctest with -DFENCE=N; N=0 must compile (named locals), every
// other N must not (tests/CMakeLists.txt: sdk_gcc12_fence_*).
#include "sluice/sluice.h"

class Consumer final : public sluice::HttpConsumer {
  sluice::Task<void> Handle() override {
#if FENCE == 0
    sluice::Headers headers{{ "x-a", "1" }};
    sluice::Message message = {{ "type", "x" }};
    co_await GroupSend("g", message);
    co_await Respond(200, "ok", headers);
#elif FENCE == 1
    co_await Respond(200, "ok", {{ "x-a", "1" }});  // braced headers in the call
#elif FENCE == 2
    co_await GroupSend("g", {{ "type", "x" }});  // a braced message in the call
#elif FENCE == 3
    co_await ChannelSend("c", {{"type", "x"}});
#endif
  }
};

class Json final : public sluice::JsonWebSocketConsumer {
  sluice::Task<void> ReceiveJson(sluice::Message content) override {
#if FENCE == 4
    co_await SendJson({{ "echo", content }});
#else
    sluice::Message echo = {{ "echo", std::move(content) }};
    co_await SendJson(echo);
#endif
  }
};
