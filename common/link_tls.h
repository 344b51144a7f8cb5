#pragma once

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace sluice {

/// Mutual TLS on the gateway–worker link: each end presents its certificate and checks the
/// peer's against the CA (the worker requires a client certificate). The PEM files named by
/// `--link-tls-cert`, `--link-tls-key` and `--link-tls-ca` are read once, at start: a renewed
/// certificate takes effect when the process restarts.
/// Thread-safety: plain values; the functions below may be called from any thread.
struct LinkTls {
  std::string cert_chain;   // this end's certificate (then any intermediates)
  std::string private_key;  // its key
  std::string ca;           // the CA certificates a peer's certificate must chain to
};

/// The three flags as given (paths; empty when not given).
struct LinkTlsFiles {
  std::string cert;
  std::string key;
  std::string ca;
};

/// None of the three given: no TLS (nullopt). All three: their contents. Anything else (one
/// or two given, a file that cannot be read or holds no PEM block): InvalidArgument, saying
/// what is wrong.
absl::StatusOr<std::optional<LinkTls>> LoadLinkTls(const LinkTlsFiles& files);

/// The gateway's: its certificate as the client's, the worker's checked against the CA (and
/// its name against the target's host, or the channel's SSL target name override).
/// Insecure without TLS.
std::shared_ptr<grpc::ChannelCredentials> LinkChannelCredentials(const std::optional<LinkTls>& tls);
/// The worker's: its certificate as the server's; a client certificate is required and
/// checked against the CA. Insecure without TLS.
std::shared_ptr<grpc::ServerCredentials> LinkServerCredentials(const std::optional<LinkTls>& tls);

}  // namespace sluice
