#pragma once

#include <google/protobuf/arena.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sluice/v1/link.pb.h"

namespace sluice {

/// A Frame read from a link, parsed into an arena of its own: its messages (envelopes,
/// events, scopes, headers) cost a few block allocations instead of one each, and all are
/// freed at once. Shared by the executors that handle its envelopes (gateway shards, worker
/// loops); freed by whichever lets go last. Payload bytes are std::strings as usual: a
/// handler may move them out.
class InboundFrame final {
 public:
  InboundFrame();
  InboundFrame(const InboundFrame&) = delete;
  InboundFrame& operator=(const InboundFrame&) = delete;

  /// A copy of a Frame built elsewhere (tests, fuzzers).
  static std::shared_ptr<InboundFrame> Of(const v1::Frame& frame);

  v1::Frame& frame() { return *frame_; }

 private:
  google::protobuf::Arena arena_;
  v1::Frame* frame_;
};

/// Moves a string field out of a message of an InboundFrame. `mutable_x()` on a field that
/// holds the shared empty default makes a new string on the arena, and on a thread the arena
/// has not served before, a block of its own (a large malloc per Frame per thread): an empty
/// field is left alone.
template <class Message>
std::string Take(Message& message, const std::string& (Message::*get)() const,
                 std::string* (Message::*mutate)()) {
  if ((message.*get)().empty()) return {};
  return std::move(*(message.*mutate)());
}

/// One executor's share of an InboundFrame: its envelopes in order, kept alive by the Frame.
struct InboundBatch {
  std::shared_ptr<InboundFrame> frame;
  std::vector<v1::Envelope*> envelopes;
};

}  // namespace sluice
