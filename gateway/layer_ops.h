#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <cstdint>
#include <functional>
#include <string>

#include "layer/channel_layer.h"
#include "sluice/v1/link.pb.h"

namespace sluice::gateway {

/// The link's answer for a layer status (kCancelled cannot answer an operation: INVALID).
v1::LayerResult::Status ToProto(layer::Status status);

/// Runs one of an instance's layer operations on `layer`, `member` being the channel that
/// joins or leaves groups (empty: the instance may not, INVALID). The message is decoded
/// from the link's msgpack here (not a map: INVALID). `done` runs on `executor` with the
/// status, never inside the call.
void RunLayerOp(layer::ChannelLayer& layer, const std::string& member, v1::LayerOp& op,
                const boost::asio::any_io_executor& executor,
                std::function<void(v1::LayerResult::Status)> done);

}  // namespace sluice::gateway
