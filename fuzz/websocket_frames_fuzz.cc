// Fuzz target: the gateway's WebSocket frame reader (gateway/websocket_codec.h), fed what a
// client might send on one connection, cut into pieces at positions the input chooses.
// Checks: whatever the bytes, the reader never reports a message larger than its limit or a
// text message that is not UTF-8, every close code it reports is one a client may send, and
// after an error it consumes nothing more.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "common/text.h"
#include "gateway/websocket_codec.h"

namespace {

using sluice::gateway::ws::FrameReader;

constexpr uint64_t kMaxMessage = 1024;

#define FUZZ_CHECK(cond)                                                                  \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::fprintf(stderr, "FUZZ_CHECK failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                       \
    }                                                                                     \
  } while (0)

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  // The first byte sets the piece size the "socket" hands out (1..64 bytes).
  const size_t step = 1 + data[0] % 64;
  std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  FrameReader reader(kMaxMessage);
  bool failed = false;
  while (!bytes.empty()) {
    std::string_view in = bytes.substr(0, step);
    const size_t offered = in.size();
    for (;;) {
      const FrameReader::Result result = reader.Next(in);
      if (result == FrameReader::Result::kNeedMore) break;
      if (result == FrameReader::Result::kError) {
        FUZZ_CHECK(reader.error_code() == 1002 || reader.error_code() == 1007 ||
                   reader.error_code() == 1009);
        failed = true;
        break;
      }
      FUZZ_CHECK(!failed);
      if (result == FrameReader::Result::kMessage) {
        const bool binary = reader.binary();
        const std::string message = reader.TakeMessage();
        FUZZ_CHECK(message.size() <= kMaxMessage);
        FUZZ_CHECK(binary || sluice::IsValidUtf8(message));
      } else if (result == FrameReader::Result::kClose) {
        FUZZ_CHECK(reader.close_code() == 1005 ||
                   sluice::gateway::ws::ValidCloseCode(reader.close_code()));
        FUZZ_CHECK(sluice::IsValidUtf8(reader.close_reason()));
      } else {
        FUZZ_CHECK(reader.control().size() <= sluice::gateway::ws::kMaxControlPayload);
      }
    }
    if (failed) {
      std::string_view rest = bytes;
      FUZZ_CHECK(reader.Next(rest) == FrameReader::Result::kError);
      FUZZ_CHECK(rest.size() == bytes.size());  // nothing more is read after an error
      break;
    }
    bytes.remove_prefix(offered - in.size());
    FUZZ_CHECK(in.empty());  // kNeedMore means the piece was used up
  }
  return 0;
}
