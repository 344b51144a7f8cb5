"""Mutual TLS on the gateway–worker link (`--link-tls-cert/-key/-ca`, gateway
`--link-tls-server-name`), with certificates made here by `openssl`: a test CA signs the
worker's certificate (SAN `DNS:sluice-worker`) and the gateway's; a rogue CA signs a gateway
certificate and a worker certificate of the same names.

Workers are addressed by IP (as DNS discovery gives them), so the gateway checks the worker's
certificate for the name `--link-tls-server-name sluice-worker`. A peer without a valid
certificate gets no link: the gateway answers 503 and counts the failed attempts
(`sluice_gateway_link_failures_total`); the worker logs the refused handshake."""

import shutil
import subprocess

import pytest

from conftest import SLOWDOWN, require_binary
from e2e_helpers import http_request, metric, recv, run, scrape_metrics, wait_for_metric, ws_connect

SERVER_NAME = "sluice-worker"
FAILURES = "sluice_gateway_link_failures_total"
# A refused link is tried at once and again with backoff (100 ms doubling to 2 s).
REFUSED_WITHIN = 5.0 * SLOWDOWN


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


class Certs:
    """PEM files in `directory`: CA `ca`/`rogue-ca`, leaf certificates signed by either."""

    def __init__(self, directory):
        self.dir = directory
        for ca in ("ca", "rogue-ca"):
            _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                     "-nodes", "-keyout", f"{ca}.key", "-out", f"{ca}.crt", "-days", "1",
                     "-subj", f"/CN=sluice test {ca}",
                     "-addext", "basicConstraints=critical,CA:TRUE",
                     "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)
        self.leaf("worker", SERVER_NAME, "ca", "serverAuth")
        self.leaf("gateway", "sluice-gateway", "ca", "clientAuth")
        self.leaf("rogue-gateway", "sluice-gateway", "rogue-ca", "clientAuth")
        self.leaf("rogue-worker", SERVER_NAME, "rogue-ca", "serverAuth")

    def leaf(self, name, dns_name, ca, usage):
        (self.dir / f"{name}.ext").write_text(
            f"subjectAltName=DNS:{dns_name}\nextendedKeyUsage={usage}\n"
            "basicConstraints=CA:FALSE\n")
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={dns_name}",
                 cwd=self.dir)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
                 "-CAcreateserial", "-days", "1", "-out", f"{name}.crt",
                 "-extfile", f"{name}.ext", cwd=self.dir)

    def flags(self, leaf, ca="ca"):
        return ["--link-tls-cert", str(self.dir / f"{leaf}.crt"),
                "--link-tls-key", str(self.dir / f"{leaf}.key"),
                "--link-tls-ca", str(self.dir / f"{ca}.crt")]


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    return Certs(tmp_path_factory.mktemp("certs"))


def tls_worker(start_worker, certs, leaf="worker"):
    return start_worker(extra_args=certs.flags(leaf))


def tls_gateway_args(certs, leaf="gateway"):
    return certs.flags(leaf) + ["--link-tls-server-name", SERVER_NAME]


def test_gateway_and_worker_link_over_mutual_tls(start_worker, start_gateway, certs):
    worker = tls_worker(start_worker, certs)
    # The worker by IP, its certificate checked for SERVER_NAME: as with DNS discovery.
    gateway = start_gateway([worker], admin=True, extra_args=tls_gateway_args(certs))
    resp = http_request(gateway.port, "GET", "/hello")
    assert (resp.status, resp.body) == (200, b"Hello, world")

    async def echo():
        ws = await ws_connect(gateway.port, "/ws/echo")
        await ws.send("over tls")
        assert await recv(ws) == "over tls"
        await ws.close()

    run(echo())
    samples = scrape_metrics(gateway.admin_port)
    assert metric(samples, "sluice_gateway_workers_ready") == 1
    assert metric(samples, FAILURES) == 0


def assert_refused(gateway, what):
    wait_for_metric(gateway.admin_port, FAILURES, lambda v: v >= 2, timeout=REFUSED_WITHIN,
                    what=f"{what}: the failed link attempts counted (the first and a retry)")
    assert metric(scrape_metrics(gateway.admin_port), "sluice_gateway_workers_ready") == 0
    resp = http_request(gateway.port, "GET", "/hello")
    assert resp.status == 503, f"{what}: HTTP {resp.status}"
    assert "no link to" in gateway.stderr_path.read_text(), f"{what}: the failure is logged"


@pytest.mark.parametrize("case", ["certificate from another CA", "no TLS"])
def test_the_worker_refuses_a_gateway_without_a_valid_certificate(start_worker, start_gateway,
                                                                  certs, case):
    worker = tls_worker(start_worker, certs)
    # A gateway with a valid certificate links to the same worker meanwhile.
    good = start_gateway([worker], extra_args=tls_gateway_args(certs))
    args = tls_gateway_args(certs, leaf="rogue-gateway") if case != "no TLS" else []
    bad = start_gateway([worker], admin=True, wait_ready=False, extra_args=args)
    assert_refused(bad, case)
    assert http_request(good.port, "GET", "/hello").status == 200
    # The worker's TLS layer (gRPC's log) says why it refused the handshake.
    assert "Handshake failed" in worker.stderr_path.read_text()


@pytest.mark.parametrize("case", ["certificate from another CA", "another server name"])
def test_the_gateway_refuses_a_worker_without_a_valid_certificate(start_worker, start_gateway,
                                                                  certs, case):
    if case == "another server name":
        # A valid certificate, but not for the name the gateway checks: without the override
        # it checks the address's host, 127.0.0.1, which the certificate does not name.
        worker = tls_worker(start_worker, certs)
        args = certs.flags("gateway")
    else:
        worker = tls_worker(start_worker, certs, leaf="rogue-worker")
        args = tls_gateway_args(certs)
    gateway = start_gateway([worker], admin=True, wait_ready=False, extra_args=args)
    assert_refused(gateway, case)


def _exits_2(argv, message):
    done = subprocess.run(argv, capture_output=True, text=True, timeout=10 * SLOWDOWN)
    assert done.returncode == 2, (argv, done.returncode, done.stderr)
    assert message in done.stderr, done.stderr


@pytest.mark.parametrize("binary", ["gateway/sluice-gateway", "demo/sluice-demo-worker"])
def test_tls_flags_are_all_three_or_none(certs, binary, tmp_path):
    exe = [str(require_binary(binary))]
    if binary.startswith("gateway"):
        exe += ["--workers", "127.0.0.1:1"]
    else:
        exe += ["--listen", "127.0.0.1:0"]
    cert, key, ca = certs.flags("worker")[1::2]
    _exits_2(exe + ["--link-tls-cert", cert], "missing: --link-tls-key, --link-tls-ca")
    _exits_2(exe + ["--link-tls-cert", cert, "--link-tls-key", key], "missing: --link-tls-ca")
    _exits_2(exe + ["--link-tls-cert", cert, "--link-tls-key", key,
                    "--link-tls-ca", str(tmp_path / "absent.crt")], "--link-tls-ca: cannot read")
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("not a certificate\n")
    _exits_2(exe + ["--link-tls-cert", str(not_pem), "--link-tls-key", key, "--link-tls-ca", ca],
             "holds no PEM block")
    if binary.startswith("gateway"):
        _exits_2(exe + ["--link-tls-server-name", SERVER_NAME],
                 "--link-tls-server-name needs TLS on the link")
