"""Worker discovery by DNS (`--workers dns:NAME:PORT`) with the system resolver: `localhost`
names the worker's loopback address. How links follow changing records (added, drained,
kept through a failed resolution) is tested through a scripted resolver in
tests/gateway/worker_pool_test.cc."""

from e2e_helpers import http_request, metric, scrape_metrics, wait_for_metric

DISCOVERY = 'sluice_gateway_discovery_total{event="%s"}'


def test_workers_found_by_dns(start_worker, start_gateway):
    worker = start_worker()
    gateway = start_gateway([f"dns:localhost:{worker.port}"], admin=True,
                            extra_args=["--discovery-interval", "0.2"])
    # start_gateway waited for GET /hello == 200: a link found by name is serving.
    assert http_request(gateway.port, "GET", "/hello").status == 200
    samples = scrape_metrics(gateway.admin_port)
    assert metric(samples, DISCOVERY % "added") >= 1
    assert metric(samples, DISCOVERY % "removed") == 0
    # Resolved again and again (every 0.2 s): the same records add and remove nothing.
    added = metric(samples, DISCOVERY % "added")
    wait_for_metric(gateway.admin_port, DISCOVERY % "resolved", lambda v: v >= 4,
                    what="three more resolutions")
    samples = scrape_metrics(gateway.admin_port)
    assert metric(samples, DISCOVERY % "added") == added
    assert metric(samples, DISCOVERY % "removed") == 0
    assert metric(samples, DISCOVERY % "failed") == 0
