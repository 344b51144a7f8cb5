#pragma once

#include "common/metrics.h"

namespace sluice::worker {

/// What the worker counts, served on its admin port's /metrics.
struct Metrics {
  explicit Metrics(MetricsRegistry& registry);

  Gauge& links;         // gateway links open
  Gauge& queued_bytes;  // payload waiting in instance inboxes
  Counter& instances_started;
  Counter& rejected;         // opens refused at capacity (the gateway answered 503)
  Counter& app_errors;       // consumers that raised or broke the ASGI rules
  Counter& send_stalls;      // sends that waited for credit (a slow client)
  Counter& protocol_errors;  // gateways that broke the link protocol
  Counter& close_timeouts;   // consumers cancelled for not returning after their disconnect
  Counter& layer_calls;      // channel-layer calls sent to the gateway
  Counter& layer_stalls;     // calls that waited: kMaxLayerOps were outstanding
  Counter& layer_unhandled;  // layer messages whose type had no handler (dropped)
  Counter& loop_stalls;      // event loops blocked past --stall-threshold (LoopWatchdog)
  Counter& resumed;          // WebSocket instances that resumed a moved connection
  Counter& handed_over;      // WebSocket instances handed back to the gateway when draining
  Counter& states_saved;     // SaveState calls

  LinkTraffic link;  // Frames and envelopes on the gateway links
};

}  // namespace sluice::worker
