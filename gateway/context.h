#pragma once

#include "gateway/options.h"

namespace sluice::gateway {

struct Metrics;
class LinkPicker;

/// What every client session needs from its gateway. Outlives all sessions.
struct Context {
  const Options& options;
  LinkPicker& picker;
  Metrics& metrics;
};

}  // namespace sluice::gateway
