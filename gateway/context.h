#pragma once

#include "gateway/options.h"

namespace sluice::layer {
class ChannelLayer;
}

namespace sluice::gateway {

struct Metrics;
class LinkPicker;

/// What every client session needs from its gateway. Outlives all sessions.
struct Context {
  const Options& options;
  LinkPicker& picker;
  Metrics& metrics;
  /// The gateway's channel layer; null where a test runs sessions without one (then no
  /// connection gets a channel, and layer operations are answered UNAVAILABLE).
  layer::ChannelLayer* layer = nullptr;
};

}  // namespace sluice::gateway
