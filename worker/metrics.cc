#include "worker/metrics.h"

namespace sluice::worker {

Metrics::Metrics(MetricsRegistry& r)
    : links(r.AddGauge("sluice_worker_links", "Gateway links open")),
      queued_bytes(
          r.AddGauge("sluice_worker_queued_bytes", "Payload bytes waiting in instance inboxes")),
      instances_started(
          r.AddCounter("sluice_worker_instances_started_total", "Application instances started")),
      rejected(r.AddCounter("sluice_worker_rejected_total",
                            "Connections refused because the worker was at capacity")),
      app_errors(r.AddCounter("sluice_worker_app_errors_total",
                              "Instances that ended with an application error")),
      send_stalls(r.AddCounter("sluice_worker_send_stalls_total",
                               "Sends that waited for credit because the client was slow")),
      protocol_errors(r.AddCounter("sluice_worker_protocol_errors_total",
                                   "Link protocol violations by gateways")),
      close_timeouts(r.AddCounter("sluice_worker_close_timeouts_total",
                                  "Consumers cancelled for not returning within --close-timeout "
                                  "of their disconnect")),
      layer_calls(
          r.AddCounter("sluice_worker_layer_calls_total", "Channel-layer calls sent to gateways")),
      layer_stalls(r.AddCounter("sluice_worker_layer_stalls_total",
                                "Channel-layer calls that waited: kMaxLayerOps were outstanding")),
      layer_unhandled(r.AddCounter("sluice_worker_layer_unhandled_total",
                                   "Channel-layer messages with no handler for their type")),
      loop_stalls(r.AddCounter("sluice_worker_loop_stalls_total",
                               "Event loops blocked past --stall-threshold by a consumer")),
      resumed(r.AddCounter("sluice_worker_resumed_total",
                           "WebSocket instances that resumed a connection moved from another "
                           "worker")),
      handed_over(r.AddCounter("sluice_worker_handed_over_total",
                               "WebSocket instances handed back to their gateway by a drain, "
                               "to be moved")),
      states_saved(r.AddCounter("sluice_worker_states_saved_total",
                                "States consumers saved for their connections")),
      link(r, "sluice_worker") {}

}  // namespace sluice::worker
