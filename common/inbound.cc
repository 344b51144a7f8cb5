#include "common/inbound.h"

namespace sluice {
namespace {

google::protobuf::ArenaOptions Options() {
  google::protobuf::ArenaOptions options;
  // A busy link's Frame carries tens of envelopes of a few hundred bytes of messages each;
  // an idle one a heartbeat. Blocks grow from 2 KiB as a Frame needs them.
  options.start_block_size = 2048;
  options.max_block_size = size_t{64} << 10;
  return options;
}

}  // namespace

InboundFrame::InboundFrame()
    : arena_(Options()), frame_(google::protobuf::Arena::CreateMessage<v1::Frame>(&arena_)) {}

std::shared_ptr<InboundFrame> InboundFrame::Of(const v1::Frame& frame) {
  auto inbound = std::make_shared<InboundFrame>();
  inbound->frame() = frame;
  return inbound;
}

}  // namespace sluice
