#include "common/link_tls.h"

#include <grpcpp/security/server_credentials.h>

#include <fstream>
#include <sstream>
#include <tuple>
#include <utility>

#include "absl/status/status.h"

namespace sluice {
namespace {

absl::StatusOr<std::string> ReadPem(const std::string& flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(flag + ": cannot read " + path);
  std::ostringstream contents;
  contents << in.rdbuf();
  if (in.bad()) return absl::InvalidArgumentError(flag + ": cannot read " + path);
  std::string pem = contents.str();
  if (pem.find("-----BEGIN ") == std::string::npos) {
    return absl::InvalidArgumentError(flag + ": " + path + " holds no PEM block");
  }
  return pem;
}

}  // namespace

absl::StatusOr<std::optional<LinkTls>> LoadLinkTls(const LinkTlsFiles& files) {
  const int given = !files.cert.empty() + !files.key.empty() + !files.ca.empty();
  if (given == 0) return std::nullopt;
  if (given != 3) {
    std::string missing;
    for (const auto& [flag, path] :
         {std::pair{"--link-tls-cert", &files.cert}, std::pair{"--link-tls-key", &files.key},
          std::pair{"--link-tls-ca", &files.ca}}) {
      if (path->empty()) missing += std::string(missing.empty() ? "" : ", ") + flag;
    }
    return absl::InvalidArgumentError(
        "TLS on the link needs --link-tls-cert, --link-tls-key and --link-tls-ca together; "
        "missing: " +
        missing);
  }
  LinkTls tls;
  for (const auto& [flag, path, out] : {std::tuple{"--link-tls-cert", &files.cert, &tls.cert_chain},
                                        std::tuple{"--link-tls-key", &files.key, &tls.private_key},
                                        std::tuple{"--link-tls-ca", &files.ca, &tls.ca}}) {
    absl::StatusOr<std::string> pem = ReadPem(flag, *path);
    if (!pem.ok()) return pem.status();
    *out = std::move(*pem);
  }
  return tls;
}

std::shared_ptr<grpc::ChannelCredentials> LinkChannelCredentials(
    const std::optional<LinkTls>& tls) {
  if (!tls) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = tls->ca;
  options.pem_private_key = tls->private_key;
  options.pem_cert_chain = tls->cert_chain;
  return grpc::SslCredentials(options);
}

std::shared_ptr<grpc::ServerCredentials> LinkServerCredentials(const std::optional<LinkTls>& tls) {
  if (!tls) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions options(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = tls->ca;
  options.pem_key_cert_pairs.push_back({tls->private_key, tls->cert_chain});
  return grpc::SslServerCredentials(options);
}

}  // namespace sluice
