#pragma once

#include <google/protobuf/arena.h>

#include <memory>
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

/// One executor's share of an InboundFrame: its envelopes in order, kept alive by the Frame.
struct InboundBatch {
  std::shared_ptr<InboundFrame> frame;
  std::vector<v1::Envelope*> envelopes;
};

}  // namespace sluice
