#include "gateway/metrics.h"

namespace sluice::gateway {
namespace {

constexpr char kRejected[] = "sluice_gateway_rejections_total";
constexpr char kRejectedHelp[] = "Requests and handshakes the gateway answered itself, by reason";
constexpr char kLimit[] = "sluice_gateway_limit_closes_total";
constexpr char kLimitHelp[] = "Connections closed by a limit, by limit";
constexpr char kMoves[] = "sluice_gateway_moves_total";
constexpr char kMovesHelp[] =
    "WebSockets whose worker was lost or drained: moved to another worker, or closed because "
    "none could take them (1012) or they moved too often (1011)";
constexpr char kRetries[] = "sluice_gateway_http_retries_total";
constexpr char kRetriesHelp[] =
    "HTTP requests sent to another worker after theirs was lost before any response byte or "
    "refused them (retried), or answered 502 after a loss (failed: not idempotent, body not "
    "kept, no worker)";
constexpr char kStalls[] = "sluice_gateway_credit_stalls_total";
constexpr char kStallsHelp[] = "Times a connection ran out of credit, by direction";

}  // namespace

Metrics::Metrics(MetricsRegistry& r)
    : connections(r.AddGauge("sluice_gateway_connections", "Client sockets open")),
      websockets(r.AddGauge("sluice_gateway_websockets", "WebSockets open")),
      queued_bytes(r.AddGauge("sluice_gateway_queued_bytes",
                              "Client-bound payload bytes queued in sessions")),
      accepted(
          r.AddCounter("sluice_gateway_connections_accepted_total", "Client sockets accepted")),
      http_requests(r.AddCounter("sluice_gateway_http_requests_total", "HTTP requests read")),
      websocket_upgrades(r.AddCounter("sluice_gateway_websocket_upgrades_total",
                                      "WebSocket upgrade requests read")),
      unavailable(r.AddCounter("sluice_gateway_unavailable_total",
                               "503 answers (HTTP and WebSocket handshakes)")),
      rejected_no_worker(r.AddCounter(kRejected, kRejectedHelp, R"(reason="no_worker")")),
      rejected_worker_full(r.AddCounter(kRejected, kRejectedHelp, R"(reason="worker_full")")),
      rejected_max_connections(
          r.AddCounter(kRejected, kRejectedHelp, R"(reason="max_connections")")),
      rejected_header_too_large(
          r.AddCounter(kRejected, kRejectedHelp, R"(reason="header_too_large")")),
      rejected_body_too_large(r.AddCounter(kRejected, kRejectedHelp, R"(reason="body_too_large")")),
      rejected_bad_request(r.AddCounter(kRejected, kRejectedHelp, R"(reason="bad_request")")),
      websocket_denied(r.AddCounter(kRejected, kRejectedHelp, R"(reason="websocket_denied")")),
      limit_header_timeout(r.AddCounter(kLimit, kLimitHelp, R"(limit="header_timeout")")),
      limit_idle_timeout(r.AddCounter(kLimit, kLimitHelp, R"(limit="idle_timeout")")),
      limit_ws_message_too_big(r.AddCounter(kLimit, kLimitHelp, R"(limit="ws_message_too_big")")),
      limit_ws_invalid_utf8(r.AddCounter(kLimit, kLimitHelp, R"(limit="ws_invalid_utf8")")),
      limit_ws_handshake_timeout(
          r.AddCounter(kLimit, kLimitHelp, R"(limit="ws_handshake_timeout")")),
      limit_ws_ping_timeout(r.AddCounter(kLimit, kLimitHelp, R"(limit="ws_ping_timeout")")),
      limit_ws_protocol_error(r.AddCounter(kLimit, kLimitHelp, R"(limit="ws_protocol_error")")),
      limit_body_timeout(r.AddCounter(kLimit, kLimitHelp, R"(limit="body_timeout")")),
      limit_linger(r.AddCounter(kLimit, kLimitHelp, R"(limit="linger")")),
      slow_client_closes(r.AddCounter("sluice_gateway_slow_client_closes_total",
                                      "Connections closed because the client read too slowly")),
      credit_stalls_to_worker(r.AddCounter(kStalls, kStallsHelp, R"(direction="to_worker")")),
      credit_stalls_to_client(r.AddCounter(kStalls, kStallsHelp, R"(direction="to_client")")),
      app_errors(r.AddCounter("sluice_gateway_app_errors_total",
                              "Connections answered 500 or closed 1011 for an application error")),
      worker_lost(r.AddCounter("sluice_gateway_worker_lost_total",
                               "Connections ended because their worker's link broke")),
      worker_protocol_errors(r.AddCounter(
          "sluice_gateway_worker_protocol_errors_total",
          "Connections ended because their worker broke the link protocol (credit overrun, "
          "an event not valid in the connection's state)")),
      drained(r.AddCounter("sluice_gateway_drained_total",
                           "Connections closed by a gateway drain (WebSocket close 1001, HTTP "
                           "closed after its response)")),
      moved(r.AddCounter(kMoves, kMovesHelp, R"(result="moved")")),
      move_no_worker(r.AddCounter(kMoves, kMovesHelp, R"(result="no_worker")")),
      move_too_often(r.AddCounter(kMoves, kMovesHelp, R"(result="too_often")")),
      handed_over(r.AddCounter("sluice_gateway_handovers_total",
                               "WebSockets a draining worker handed back to be moved")),
      replayed(r.AddCounter("sluice_gateway_replayed_events_total",
                            "Events sent again to a connection's new worker after a move: each "
                            "may be one its old consumer saw")),
      http_retried(r.AddCounter(kRetries, kRetriesHelp, R"(result="retried")")),
      http_not_retried(r.AddCounter(kRetries, kRetriesHelp, R"(result="failed")")),
      states_saved(r.AddCounter("sluice_gateway_states_saved_total",
                                "States consumers saved for their WebSockets")),
      state_bytes(
          r.AddGauge("sluice_gateway_state_bytes", "Bytes of consumer state held for WebSockets")),
      link(r, "sluice_gateway") {}

}  // namespace sluice::gateway
