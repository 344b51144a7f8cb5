#pragma once

#include "common/metrics.h"

namespace sluice::gateway {

/// Everything the gateway counts, served on the admin port's /metrics. Every answer the
/// gateway gives by itself (503, 413, 431, 400, closes by limit) has its counter.
struct Metrics {
  explicit Metrics(MetricsRegistry& registry);

  Gauge& connections;   // client sockets open
  Gauge& websockets;    // WebSockets open (accepted)
  Gauge& queued_bytes;  // client-bound payload queued in sessions
  Counter& accepted;
  Counter& http_requests;
  Counter& websocket_upgrades;

  Counter& unavailable;  // every 503 the gateway answered, whatever the reason
  Counter& rejected_no_worker;
  Counter& rejected_worker_full;
  Counter& rejected_max_connections;
  Counter& rejected_header_too_large;  // 431
  Counter& rejected_body_too_large;    // 413
  Counter& rejected_bad_request;       // 400
  Counter& websocket_denied;           // 403

  Counter& limit_header_timeout;
  Counter& limit_idle_timeout;
  Counter& limit_ws_message_too_big;    // 1009
  Counter& limit_ws_invalid_utf8;       // 1007
  Counter& limit_ws_handshake_timeout;  // 504: the application did not answer
  Counter& limit_ws_ping_timeout;
  Counter& limit_ws_protocol_error;  // 1002: a malformed frame or close code from the client
  Counter& limit_body_timeout;       // 408: a request body stalled
  Counter& limit_linger;             // a lingering close cut at its byte or time bound

  Counter& slow_client_closes;
  Counter& credit_stalls_to_worker;  // a client's reads paused: no credit from the worker
  Counter& credit_stalls_to_client;  // a worker paused: the client-bound queue was full

  Counter& app_errors;   // 500 or close 1011 for an application failure
  Counter& worker_lost;  // connections ended because their worker's link broke
  Counter& worker_protocol_errors;
  Counter& drained;
  // Failover (docs/failover.md).
  Counter& moved;             // WebSockets moved to another worker
  Counter& move_no_worker;    // ... that could not move: no worker had room (1012)
  Counter& move_too_often;    // ... that moved kMaxMoves times in a minute (1011)
  Counter& handed_over;       // WebSockets a draining worker handed back (then moved)
  Counter& replayed;          // events sent again after a move (each may be seen twice)
  Counter& http_retried;      // requests sent again after their worker was lost
  Counter& http_not_retried;  // ... that could not be (502): not idempotent, body too big
  Counter& states_saved;
  Gauge& state_bytes;  // consumer state held for WebSockets

  LinkTraffic link;  // Frames and envelopes on the worker links
};

}  // namespace sluice::gateway
