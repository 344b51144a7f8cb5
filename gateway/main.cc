#include <CLI/CLI.hpp>
#include <iostream>
#include <utility>

#include "common/config_check.h"
#include "common/link_tls.h"
#include "common/log.h"
#include "common/process.h"
#include "gateway/config_check.h"
#include "gateway/gateway.h"

int main(int argc, char** argv) {
  using sluice::gateway::Options;
  Options options;
  std::string listen = options.listen.ToString();
  std::string workers;
  unsigned window_events = options.receive_window.events();
  uint64_t window_bytes = options.receive_window.bytes();
  unsigned idle = options.http_idle_timeout.count();
  unsigned handshake = options.ws_handshake_timeout.count();
  unsigned ws_idle = options.ws_idle_timeout.count();
  unsigned header_timeout = options.header_timeout.count();
  unsigned slow_client = options.slow_client_timeout.count();
  unsigned body_timeout = options.body_timeout.count();
  unsigned linger_timeout = options.linger_timeout.count();
  unsigned drain_timeout = options.drain_timeout.count();
  unsigned drain_delay = options.drain_delay.count();
  unsigned layer_expiry = options.layer_expiry.count();
  unsigned group_expiry = options.group_expiry.count();
  std::string admin;

  CLI::App cli{"sluice gateway: holds client HTTP and WebSocket sockets for sluice workers"};
  cli.add_option("--listen", listen, "HOST:PORT for clients (port 0: any)")->capture_default_str();
  cli.add_option("--workers", workers,
                 "HOST:PORT[,HOST:PORT...] of workers, or dns:NAME:PORT to link to every "
                 "address NAME resolves to, resolved again every --discovery-interval")
      ->required();
  double discovery_interval = 5;
  cli.add_option("--discovery-interval", discovery_interval,
                 "seconds between resolutions of --workers dns:NAME:PORT")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 3600.0));
  cli.add_option("--threads", options.threads,
                 "client socket threads (0: one per usable core: CPU affinity, capped by the "
                 "cgroup CPU quota)")
      ->capture_default_str();
  cli.add_option("--gateway-id", options.gateway_id, "name in logs and metrics")
      ->capture_default_str();
  cli.add_option("--root-path", options.root_path, "ASGI root_path (mount point)");
  cli.add_option("--max-header-bytes", options.max_header_bytes,
                 "largest request header; larger gets 431")
      ->capture_default_str();
  cli.add_option("--max-body-bytes", options.max_body_bytes,
                 "largest request body; larger gets 413")
      ->capture_default_str();
  cli.add_option("--max-connections", options.max_connections,
                 "most client sockets at once; past it 503")
      ->capture_default_str();
  cli.add_option("--header-timeout", header_timeout,
                 "seconds a request header may take to arrive (slowloris)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cli.add_option("--slow-client-timeout", slow_client,
                 "seconds a client may leave its full queue unread before it is closed (1008)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cli.add_option("--admin", admin,
                 "HOST:PORT serving /metrics, /healthz, /readyz (off when empty)");
  cli.add_option("--max-ws-message", options.max_ws_message_bytes,
                 "largest WebSocket message; larger closes 1009")
      ->capture_default_str();
  cli.add_option("--http-idle-timeout", idle, "seconds a keep-alive connection may idle")
      ->capture_default_str();
  cli.add_option("--ws-handshake-timeout", handshake,
                 "seconds the application has to accept a WebSocket")
      ->capture_default_str();
  cli.add_option("--ws-idle-timeout", ws_idle,
                 "seconds of client silence before closing (a ping goes out at half)")
      ->capture_default_str();
  cli.add_option("--body-timeout", body_timeout,
                 "seconds a request body may make no progress before 408")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cli.add_option("--linger-timeout", linger_timeout,
                 "seconds to drain unread request bytes after an early answer")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cli.add_option("--drain-timeout", drain_timeout,
                 "on SIGTERM, seconds requests in progress may take to finish; open "
                 "WebSockets close with 1001 when they are up")
      ->capture_default_str();
  cli.add_option("--drain-delay", drain_delay,
                 "on SIGTERM, seconds to keep serving with /readyz failing before the drain "
                 "(so a load balancer stops sending first)")
      ->capture_default_str();
  cli.add_option("--socket-send-buffer", options.socket_send_buffer,
                 "SO_SNDBUF of client sockets in bytes (0: the kernel's default)")
      ->capture_default_str();
  cli.add_option("--window-events", window_events, "per-connection client-bound queue, events")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cli.add_option("--window-bytes", window_bytes, "per-connection client-bound queue, bytes")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cli.add_option("--layer", options.layer,
                 "channel layer: memory (one gateway), redis://HOST[:PORT][/DB], or none")
      ->capture_default_str();
  cli.add_option("--layer-capacity", options.layer_capacity,
                 "messages a channel holds before senders get ChannelFull")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cli.add_option("--layer-expiry", layer_expiry,
                 "seconds a channel-layer message waits to be received before it is dropped")
      ->capture_default_str()
      ->check(CLI::Range(1u, 86400u));
  cli.add_option("--group-expiry", group_expiry,
                 "seconds a group member stays without being added again")
      ->capture_default_str()
      ->check(CLI::Range(1u, 365u * 86400u));
  std::vector<std::string> channel_capacity;
  cli.add_option("--channel-capacity", channel_capacity,
                 "PATTERN=N: capacity of the channels whose name matches the glob PATTERN "
                 "(repeatable; the first match wins)")
      ->check([](const std::string& rule) -> std::string {
        const size_t eq = rule.rfind('=');
        if (eq == std::string::npos || eq == 0) return "expected PATTERN=N";
        const std::string n = rule.substr(eq + 1);
        if (n.empty() || n.size() > 9 || n.find_first_not_of("0123456789") != std::string::npos ||
            std::stoul(n) == 0) {
          return "N must be a positive number";
        }
        return "";
      });
  sluice::LinkTlsFiles link_tls;
  cli.add_option("--link-tls-cert", link_tls.cert,
                 "PEM certificate this gateway presents to workers (mutual TLS on the link; "
                 "with --link-tls-key and --link-tls-ca; read at start)");
  cli.add_option("--link-tls-key", link_tls.key, "PEM private key of --link-tls-cert");
  cli.add_option("--link-tls-ca", link_tls.ca,
                 "PEM CA certificates the workers' certificates must chain to");
  cli.add_option("--link-tls-server-name", options.link_tls_server_name,
                 "name the workers' certificates must carry (a SAN), instead of the host of "
                 "their address (e.g. sluice-worker, for workers addressed by IP)");
  bool check_config = false;
  cli.add_flag("--check-config", check_config,
               "validate the flags, print a one-line summary and exit: 0 valid, 2 not "
               "(binds and connects nothing)");
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = cli.exit(e);
    return code != 0 && sluice::HasFlag(argc, argv, "--check-config") ? sluice::kConfigErrorExit
                                                                      : code;
  }
  for (const std::string& rule : channel_capacity) {
    const size_t eq = rule.rfind('=');
    options.channel_capacity.emplace_back(rule.substr(0, eq), std::stoul(rule.substr(eq + 1)));
  }
  auto tls = sluice::LoadLinkTls(link_tls);
  if (!tls.ok()) {
    std::cerr << tls.status().message() << "\n";
    return 2;
  }
  options.link_tls = std::move(*tls);
  if (!options.link_tls && !options.link_tls_server_name.empty()) {
    std::cerr << "--link-tls-server-name needs TLS on the link (--link-tls-cert, --link-tls-key, "
                 "--link-tls-ca)\n";
    return 2;
  }
  auto address = sluice::ParseHostPort(listen);
  if (!address.ok()) {
    std::cerr << "--listen: " << address.status().message() << "\n";
    return 2;
  }
  options.listen = *address;
  if (workers.starts_with("dns:")) {
    auto target = sluice::ParseHostPort(std::string_view(workers).substr(4));
    if (!target.ok() || target->port == 0) {
      std::cerr << "--workers dns:NAME:PORT: " << workers << " is not NAME:PORT\n";
      return 2;
    }
    options.discovery = sluice::gateway::Options::Discovery{
        target->host, target->port,
        std::chrono::milliseconds(static_cast<int64_t>(discovery_interval * 1000))};
  } else {
    auto worker_list = sluice::ParseHostPortList(workers);
    if (!worker_list.ok()) {
      std::cerr << "--workers: " << worker_list.status().message() << "\n";
      return 2;
    }
    options.workers = *worker_list;
  }
  options.receive_window.set_events(window_events);
  options.receive_window.set_bytes(window_bytes);
  options.http_idle_timeout = std::chrono::seconds(idle);
  options.ws_handshake_timeout = std::chrono::seconds(handshake);
  options.ws_idle_timeout = std::chrono::seconds(ws_idle);
  options.header_timeout = std::chrono::seconds(header_timeout);
  options.slow_client_timeout = std::chrono::seconds(slow_client);
  options.body_timeout = std::chrono::seconds(body_timeout);
  options.linger_timeout = std::chrono::seconds(linger_timeout);
  options.drain_timeout = std::chrono::seconds(drain_timeout);
  options.drain_delay = std::chrono::seconds(drain_delay);
  options.layer_expiry = std::chrono::seconds(layer_expiry);
  options.group_expiry = std::chrono::seconds(group_expiry);
  if (!admin.empty()) {
    auto admin_address = sluice::ParseHostPort(admin);
    if (!admin_address.ok()) {
      std::cerr << "--admin: " << admin_address.status().message() << "\n";
      return 2;
    }
    options.admin = *admin_address;
  }
  if (check_config) {
    auto summary = sluice::gateway::CheckConfig(options);
    if (!summary.ok()) {
      std::cerr << "sluice-gateway: config error: " << summary.status().message() << "\n";
      return sluice::kConfigErrorExit;
    }
    std::cout << *summary << std::endl;
    return 0;
  }

  sluice::ConfigureMutexChecks();
  sluice::BlockStopSignals();  // before any thread starts; main waits for them below

  sluice::gateway::Gateway gateway(options);
  if (absl::Status status = gateway.Start(); !status.ok()) {
    SLUICE_LOG(kError, "gateway") << status;
    return 1;
  }
  std::cout << "sluice-gateway listening on " << options.listen.host << ":" << gateway.port()
            << std::endl;
  if (options.admin) {
    std::cout << "sluice-gateway admin on " << options.admin->host << ":" << gateway.admin_port()
              << std::endl;
  }
  const int signal = sluice::WaitForStopSignal();
  SLUICE_LOG(kInfo, "gateway") << "signal " << signal << ": stopping";
  gateway.Stop();
  return 0;
}
