"""AMQPStorm's own functional tests of the RabbitMQ management API (amqpstorm.tests.functional.
management: connections listed and closed with a reason, queues declared, listed, filtered with
and without regular expressions, paginated, purged, bound; messages published and got over HTTP;
exchanges, users, virtual hosts, health checks, aliveness test) run unchanged against our broker.

AMQPStorm's tests open AMQP connections to the default port 5672 (the port is not configurable
through their environment variables), so our broker serves AMQP on 5672 for this run; the
management API goes on a free port given as AMQP_HTTP_URL. When 5672 is taken the test cannot
run and says so.

Two of their tests check their own CI environment, not a broker, and fail against RabbitMQ
3.10 too, so they are deselected: `test_api_cluster_name` expects the node name
`rabbit@rmq.eandersson.net`, `test_api_with_inaccessible` expects 192.168.1.50 to be
unreachable.
"""
from __future__ import annotations

import subprocess
import sys

import pytest

from helpers.broker import BrokerThread
from helpers.process import port_open

AMQPSTORM_PORT = 5672
ENVIRONMENT_TESTS = ("test_api_cluster_name", "test_api_with_inaccessible")

pytestmark = pytest.mark.timeout(600)


def test_amqpstorm_management_suite(tmp_path):
    if port_open(AMQPSTORM_PORT):
        pytest.skip("AMQPStorm's functional tests connect to port 5672, which another process is using")
    with BrokerThread(host="127.0.0.1", port=AMQPSTORM_PORT, mgmt_port=0) as bt:
        env = {
            "AMQP_HOST": "127.0.0.1",
            "AMQP_USERNAME": "guest",
            "AMQP_PASSWORD": "guest",
            "AMQP_URI": f"amqp://guest:guest@127.0.0.1:{AMQPSTORM_PORT}/%2F",
            "AMQP_HTTP_URL": bt.broker.mgmt_url,
            "PATH": "/usr/bin:/bin",
        }
        deselect = " and ".join(f"not {name}" for name in ENVIRONMENT_TESTS)
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
             "-o", "addopts=", "--pyargs", "amqpstorm.tests.functional.management", "-k", deselect],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=540,
        )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and " failed" not in run.stdout, run.stdout[-3000:]
