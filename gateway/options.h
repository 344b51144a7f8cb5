#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/host_port.h"
#include "common/link_tls.h"
#include "sluice/v1/link.pb.h"

namespace sluice::gateway {

struct Options {
  HostPort listen{"127.0.0.1", 8000};
  std::vector<HostPort> workers;
  /// Workers found by DNS instead of (or besides) the fixed list: every `interval` the name
  /// is resolved again, as for a Kubernetes headless Service (one record per ready pod), and
  /// the pool keeps one link per address (`--workers dns:NAME:PORT`).
  struct Discovery {
    std::string name;
    uint16_t port = 0;
    std::chrono::milliseconds interval{5000};
  };
  std::optional<Discovery> discovery;
  /// Mutual TLS on the worker links (--link-tls-cert/-key/-ca); plaintext when unset.
  std::optional<LinkTls> link_tls;
  /// The name the workers' certificates are checked for (--link-tls-server-name), instead of
  /// the host of their address: discovered workers are addressed by IP.
  std::string link_tls_server_name;
  std::string gateway_id;  // default: hostname-pid
  unsigned threads = 0;    // client-socket threads; 0: UsableCores()
  std::string root_path;   // ASGI root_path: where the application is mounted
  /// Initial per-connection credit granted to workers: the bound of each connection's
  /// client-bound queue. Default: kDefaultWindow (common/protocol.h).
  v1::Window receive_window;
  std::chrono::milliseconds heartbeat_interval{1000};
  /// Largest request line plus headers; larger gets 431.
  uint32_t max_header_bytes = 16 * 1024;
  /// Largest request body; larger gets 413 (at once when Content-Length says so).
  uint64_t max_body_bytes = 64 << 20;
  /// Most client sockets open at once; past it requests and handshakes get 503.
  uint32_t max_connections = 100000;
  /// A request header must arrive whole within this of its first byte being awaited
  /// (slowloris).
  std::chrono::seconds header_timeout{10};
  /// A client-bound queue that stays full this long (the client reads too slowly) closes the
  /// connection: WebSocket code 1008, HTTP by closing the socket.
  std::chrono::seconds slow_client_timeout{10};
  /// Where /metrics, /healthz and /readyz are served; none when unset.
  std::optional<HostPort> admin;
  /// Largest WebSocket message; larger closes with 1009.
  uint64_t max_ws_message_bytes = 1 << 20;
  /// A keep-alive connection idle this long between requests is closed.
  std::chrono::seconds http_idle_timeout{60};
  /// The application must accept or deny a WebSocket within this.
  std::chrono::seconds ws_handshake_timeout{5};
  /// With nothing received for half of it the gateway pings; for all of it, closes.
  std::chrono::seconds ws_idle_timeout{40};
  /// A request body that makes no progress for this long (while the gateway is reading it)
  /// gets 408, or a closed connection if the response has started; the instance is told the
  /// client left.
  std::chrono::seconds body_timeout{30};
  /// After an answer that leaves request bytes unread (413, 431, 503, an early response),
  /// the gateway reads and drops what the client still sends for at most this long (and
  /// ClientSession::kLingerBytes), so the client gets the answer, not a reset.
  std::chrono::seconds linger_timeout{5};
  /// SO_SNDBUF of client sockets; 0 leaves the kernel's default (which grows on demand).
  /// A small buffer bounds the kernel memory a slow client can hold.
  uint32_t socket_send_buffer = 0;
  /// On SIGTERM: how long requests in progress may take to finish before they are cut.
  std::chrono::seconds drain_timeout{10};
  /// On SIGTERM: how long the gateway keeps serving (and accepting) with /readyz failing,
  /// before it stops accepting, so a load balancer takes it out first.
  std::chrono::seconds drain_delay{0};
  /// The channel layer: "memory" (one gateway), "redis://HOST[:PORT][/DB]" (several), or
  /// "none" (no channels: layer calls fail with LayerUnavailable, and a request costs no
  /// channel; see docs/channel-layer.md).
  std::string layer = "memory";
  /// Messages a channel holds before senders get ChannelFull (channels_redis `capacity`).
  size_t layer_capacity = 100;
  /// Capacities by channel-name glob (channels_redis `channel_capacity`), in order; the
  /// first match wins, layer_capacity is for the rest.
  std::vector<std::pair<std::string, size_t>> channel_capacity;
  /// A message not received this long after it was sent is dropped (channels_redis `expiry`).
  std::chrono::seconds layer_expiry{60};
  /// A group member not re-added this long after joining is dropped from the group
  /// (channels_redis `group_expiry`).
  std::chrono::seconds group_expiry{86400};

  Options();
};

}  // namespace sluice::gateway
