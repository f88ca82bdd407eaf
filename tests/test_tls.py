"""TLS: the amqps listener with pika, aio-pika and kombu; client certificates (verify_peer,
fail_if_no_peer_cert, one from an unknown CA); TLS 1.1 refused; EXTERNAL login as the client
certificate's CN; the management API over https; `serve` with the TLS options.

Always our broker (RabbitMQ's TLS listener is not configured on the reference server). The
certificates are made per module by tests/helpers/tls.py.
"""
from __future__ import annotations

import base64
import json
import socket
import ssl
import subprocess
import threading
import urllib.request

import aio_pika
import kombu
import pika
import pika.exceptions
import pytest
from pamqp import commands, frame

from amqp_broker.auth import EXTERNAL, MECHANISMS, AuthError, UserStore, offered_mechanisms
from amqp_broker.tls import TLSConfigError, TLSOptions
from helpers.broker import BrokerThread
from helpers.pika_client import poll_get, roundtrip
from helpers.process import clean_env, cli_command, free_port, port_open
from helpers.tls import Certificates, make_certificates
from helpers.wait import wait_until

STARTUP_TIMEOUT = 20.0
AMQP_HEADER = b"AMQP\x00\x00\x09\x01"


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("tls"))


def tls_kwargs(certs: Certificates, **extra) -> dict:
    return {"tls_port": 0, "tls_cert": certs.server.cert, "tls_key": certs.server.key, "tls_ca": certs.ca,
            "tls_verify_peer": True, **extra}


@pytest.fixture(scope="module")
def broker_thread(certs):
    """verify_peer: a client certificate is optional, but one that is sent must be ours.
    The management API on https with the same certificate."""
    with BrokerThread(mgmt_port=0, mgmt_tls=True, **tls_kwargs(certs)) as bt:
        yield bt


@pytest.fixture
def broker(broker_thread):
    return broker_thread.broker


@pytest.fixture(scope="module")
def strict(certs):
    """verify_peer and fail_if_no_peer_cert: a client certificate is required."""
    with BrokerThread(**tls_kwargs(certs, tls_fail_if_no_peer_cert=True)) as bt:
        yield bt.broker


def pika_params(certs: Certificates, port: int, pair=None, credentials=None) -> pika.ConnectionParameters:
    return pika.ConnectionParameters(
        "localhost", port, ssl_options=pika.SSLOptions(certs.client_context(pair), "localhost"),
        credentials=credentials or pika.PlainCredentials("guest", "guest"),
        connection_attempts=1, socket_timeout=5, blocked_connection_timeout=5,
    )


def start_mechanisms(context: ssl.SSLContext | None, port: int) -> list[str]:
    """The mechanisms of connection.start, read off the wire (TLS when `context` is given)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        sock = context.wrap_socket(raw, server_hostname="localhost") if context is not None else raw
        sock.sendall(AMQP_HEADER)
        data = b""
        while True:
            chunk = sock.recv(65536)
            assert chunk, "closed before connection.start"
            data += chunk
            try:
                _, _, start = frame.unmarshal(data)
                break
            except Exception:  # not a whole frame yet
                continue
    assert isinstance(start, commands.Connection.Start)
    return start.mechanisms.split()


def refused_handshake(context: ssl.SSLContext, port: int) -> None:
    """The TLS handshake (or, with TLS 1.3, the first read after it: the server's verdict on a
    client certificate comes after the client's Finished) fails; no connection.start comes."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError, AssertionError)):
            sock = context.wrap_socket(raw, server_hostname="localhost")
            sock.sendall(AMQP_HEADER)
            assert sock.recv(65536), "the server closed without an alert"


def https_get(certs: Certificates, url: str, pair=None):
    request = urllib.request.Request(url)
    request.add_header("Authorization", "Basic " + base64.b64encode(b"guest:guest").decode())
    with urllib.request.urlopen(request, context=certs.client_context(pair), timeout=5) as response:
        return response.status, json.loads(response.read())


# -- clients over amqps ----------------------------------------------------------------------------


def test_pika_over_tls_without_a_client_certificate(broker, certs):
    assert roundtrip(pika_params(certs, broker.tls_port), b"over tls") == b"over tls"


def test_pika_over_tls_with_a_client_certificate(broker, certs):
    assert roundtrip(pika_params(certs, broker.tls_port, certs.client), b"with cert") == b"with cert"


async def test_aio_pika_over_tls(broker, certs):
    connection = await aio_pika.connect(broker.tls_url.replace("127.0.0.1", "localhost"),
                                        ssl_context=certs.client_context(certs.client))
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue("", exclusive=True)
        await channel.default_exchange.publish(aio_pika.Message(b"aio over tls"), routing_key=queue.name)
        async with queue.iterator() as messages:
            async for message in messages:
                async with message.process():
                    assert message.body == b"aio over tls"
                break


def test_kombu_over_tls(broker, certs):
    ssl_options = {"ca_certs": str(certs.ca), "cert_reqs": ssl.CERT_REQUIRED, "server_hostname": "localhost",
                   "certfile": str(certs.client.cert), "keyfile": str(certs.client.key)}
    with kombu.Connection(f"amqp://guest:guest@localhost:{broker.tls_port}//", ssl=ssl_options,
                          connect_timeout=5) as connection:
        queue = kombu.Queue("kombu-tls", exchange=kombu.Exchange("", type="direct"), routing_key="kombu-tls",
                            exclusive=True)
        with connection.Producer() as producer:
            producer.publish({"over": "tls"}, routing_key="kombu-tls", declare=[queue], serializer="json")
        simple = connection.SimpleQueue(queue)
        message = simple.get(timeout=5)
        assert message.payload == {"over": "tls"}
        message.ack()
        simple.close()


def test_plain_listener_still_plain(broker):
    assert start_mechanisms(None, broker.port) == list(MECHANISMS)


# -- client certificates ------------------------------------------------------------------------------


def test_certificate_from_another_ca_is_refused(broker, certs):
    refused_handshake(certs.client_context(certs.other_ca_client), broker.tls_port)
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        pika.BlockingConnection(pika_params(certs, broker.tls_port, certs.other_ca_client))


def test_fail_if_no_peer_cert_refuses_a_client_without_one(strict, certs):
    refused_handshake(certs.client_context(), strict.tls_port)
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        pika.BlockingConnection(pika_params(certs, strict.tls_port))


def test_fail_if_no_peer_cert_refuses_another_ca_and_accepts_ours(strict, certs):
    refused_handshake(certs.client_context(certs.other_ca_client), strict.tls_port)
    assert roundtrip(pika_params(certs, strict.tls_port, certs.client), b"strict") == b"strict"


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_tls_1_1_is_refused(broker, certs):
    context = certs.client_context(minimum_version=ssl.TLSVersion.TLSv1_1, maximum_version=ssl.TLSVersion.TLSv1_1)
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # let the client offer TLS 1.1 at all
    with socket.create_connection(("127.0.0.1", broker.tls_port), timeout=5) as raw:
        with pytest.raises(ssl.SSLError):
            context.wrap_socket(raw, server_hostname="localhost")
    # the control: a server that allows TLS 1.1 does complete this client's handshake
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.minimum_version = ssl.TLSVersion.TLSv1_1
    server.set_ciphers("DEFAULT:@SECLEVEL=0")
    server.load_cert_chain(certs.server.cert, certs.server.key)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        accepted = []
        thread = threading.Thread(target=lambda: accepted.append(_tls_accept(server, listener)))
        thread.start()
        with socket.create_connection(listener.getsockname(), timeout=5) as raw:
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                assert tls.version() == "TLSv1.1"
        thread.join(5)
    assert accepted == ["TLSv1.1"]


def _tls_accept(context: ssl.SSLContext, listener: socket.socket) -> str:
    conn, _ = listener.accept()
    with context.wrap_socket(conn, server_side=True) as tls:
        return tls.version()


def test_tls_1_2_is_accepted(broker, certs):
    context = certs.client_context(maximum_version=ssl.TLSVersion.TLSv1_2)
    assert start_mechanisms(context, broker.tls_port) == list(MECHANISMS)


def test_tls_1_2_connection_fields(broker, certs):
    context = certs.client_context(certs.client, maximum_version=ssl.TLSVersion.TLSv1_2)
    context.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")  # our test certificates are EC
    params = pika.ConnectionParameters("localhost", broker.tls_port, ssl_options=pika.SSLOptions(context, "localhost"),
                                       connection_attempts=1, socket_timeout=5)
    connection = pika.BlockingConnection(params)
    try:
        conns = https_get(certs, f"{broker.mgmt_url}/api/connections")[1]
        mine = [c for c in conns if c["ssl_protocol"] == "tlsv1.2"]
        assert len(mine) == 1
        assert (mine[0]["ssl_key_exchange"], mine[0]["ssl_cipher"], mine[0]["ssl_hash"]) == (
            "ecdhe_ecdsa", "aes_128_gcm", "aead")
    finally:
        connection.close()


# -- EXTERNAL ---------------------------------------------------------------------------------------


def test_external_offered_only_with_a_verified_certificate(broker, certs):
    assert start_mechanisms(certs.client_context(certs.client), broker.tls_port) == [*MECHANISMS, EXTERNAL]
    assert start_mechanisms(certs.client_context(), broker.tls_port) == list(MECHANISMS)


def test_external_login_as_the_certificate_cn(broker, certs):
    params = pika_params(certs, broker.tls_port, certs.client, pika.credentials.ExternalCredentials())
    connection = pika.BlockingConnection(params)
    try:
        channel = connection.channel()
        queue = channel.queue_declare(queue="", exclusive=True).method.queue
        status, conns = https_get(certs, f"{broker.mgmt_url}/api/connections")
        assert status == 200
        mine = [c for c in conns if c["auth_mechanism"] == EXTERNAL]
        assert len(mine) == 1 and mine[0]["user"] == "guest"
        assert mine[0]["ssl"] is True and mine[0]["ssl_protocol"] == "tlsv1.3"
        # TLS 1.3's suites in Erlang's words, as RabbitMQ reports them
        assert mine[0]["ssl_key_exchange"] == "any" and mine[0]["ssl_hash"] == "aead"
        assert mine[0]["ssl_cipher"] in ("aes_256_gcm", "aes_128_gcm", "chacha20_poly1305")
        assert mine[0]["peer_cert_subject"] == "CN=guest,O=amqp-broker tests"
        assert mine[0]["peer_cert_issuer"] == "CN=amqp-broker test CA,O=amqp-broker tests"
        assert " - " in mine[0]["peer_cert_validity"]
        channel.basic_publish(exchange="", routing_key=queue, body=b"external")
        assert poll_get(channel, queue, timeout=5)[2] == b"external"
    finally:
        connection.close()


def test_external_login_of_a_user_without_password(broker_thread, broker, certs):
    async def add_user():  # on the broker's loop: the store writes from there
        broker.users.add("cert-only", None)
        broker.permissions.set("cert-only", "/", ".*", ".*", ".*")

    broker_thread.call(add_user)
    params = pika_params(certs, broker.tls_port, certs.client_pair("cert-only"), pika.credentials.ExternalCredentials())
    assert roundtrip(params, b"no password") == b"no password"


def test_external_login_of_an_unknown_user_is_refused_with_403(broker, certs):
    params = pika_params(certs, broker.tls_port, certs.client_pair("nobody"), pika.credentials.ExternalCredentials())
    with pytest.raises(pika.exceptions.ProbableAuthenticationError) as info:
        pika.BlockingConnection(params)
    assert "403" in str(info.value) and "ACCESS_REFUSED" in str(info.value)
    assert "EXTERNAL" in str(info.value)


def test_external_needs_a_certificate(broker, certs):
    # pika picks EXTERNAL only if the server offers it: it gives up before logging in
    params = pika_params(certs, broker.tls_port, None, pika.credentials.ExternalCredentials())
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        pika.BlockingConnection(params)


def test_offered_mechanisms_unit():
    assert offered_mechanisms(None) == MECHANISMS
    assert offered_mechanisms("guest") == (*MECHANISMS, EXTERNAL)


def test_authenticate_external_unit():
    store = UserStore({"guest": "guest", "app": "pw"})
    assert store.authenticate_external("app", "10.0.0.1").name == "app"
    assert store.authenticate_external("guest", "127.0.0.1").name == "guest"
    with pytest.raises(AuthError, match="localhost"):
        store.authenticate_external("guest", "10.0.0.1")  # loopback_users hold for EXTERNAL too
    with pytest.raises(AuthError):
        store.authenticate_external("nobody", "127.0.0.1")
    with pytest.raises(AuthError):
        store.authenticate_external(None, "127.0.0.1")


# -- management API over https ----------------------------------------------------------------------


def test_management_api_over_https(broker, certs):
    assert broker.mgmt_url.startswith("https://")
    status, overview = https_get(certs, f"{broker.mgmt_url}/api/overview")
    assert status == 200
    protocols = {(listener["protocol"], listener["port"]) for listener in overview["listeners"]}
    assert ("amqp/ssl", broker.tls_port) in protocols and ("amqp", broker.port) in protocols
    assert ("https", broker.mgmt_port) in protocols


def test_management_api_https_refuses_plain_http(broker):
    with pytest.raises((ConnectionError, OSError)):
        urllib.request.urlopen(f"http://127.0.0.1:{broker.mgmt_port}/api/overview", timeout=5).read()


def test_plain_connection_shows_no_tls(broker, certs):
    connection = pika.BlockingConnection(pika.URLParameters(broker.url))
    try:
        def plain_listed():
            conns = https_get(certs, f"{broker.mgmt_url}/api/connections")[1]
            return [c for c in conns if c["port"] == broker.port]

        assert wait_until(plain_listed, 5)
        shown = plain_listed()[0]
        assert shown["ssl"] is False and shown["ssl_protocol"] is None and shown["peer_cert_subject"] is None
    finally:
        connection.close()


# -- configuration errors ------------------------------------------------------------------------------


def test_context_options_unit(certs, tmp_path):
    context = TLSOptions(str(certs.server.cert), str(certs.server.key)).server_context()
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2 and context.verify_mode == ssl.CERT_NONE
    optional = TLSOptions(str(certs.server.cert), str(certs.server.key), str(certs.ca), True).server_context()
    assert optional.verify_mode == ssl.CERT_OPTIONAL
    required = TLSOptions(str(certs.server.cert), str(certs.server.key), str(certs.ca), True, True).server_context()
    assert required.verify_mode == ssl.CERT_REQUIRED
    with pytest.raises(TLSConfigError, match="needs verify_peer"):
        TLSOptions(str(certs.server.cert), str(certs.server.key), str(certs.ca), False, True).server_context()
    with pytest.raises(TLSConfigError, match="--tls-ca"):
        TLSOptions(str(certs.server.cert), str(certs.server.key), None, True).server_context()
    with pytest.raises(TLSConfigError, match="cannot read TLS certificate file .*missing.pem"):
        TLSOptions(str(tmp_path / "missing.pem"), str(certs.server.key)).server_context()
    with pytest.raises(TLSConfigError, match="cannot load TLS certificate"):  # another certificate's key
        TLSOptions(str(certs.server.cert), str(certs.client.key)).server_context()
    with pytest.raises(TLSConfigError, match="cannot read TLS CA"):
        TLSOptions(str(certs.server.cert), str(certs.server.key), str(tmp_path / "no-ca.pem")).server_context()


async def test_broker_start_fails_cleanly_on_a_bad_key(certs, tmp_path):
    from amqp_broker import Broker

    broker = Broker(port=0, host="127.0.0.1", tls_port=0, tls_cert=certs.server.cert, tls_key=tmp_path / "nope.key")
    with pytest.raises(TLSConfigError):
        await broker.start()
    assert not broker.started and broker.tls_url is None


async def test_mgmt_tls_needs_a_certificate():
    from amqp_broker import Broker

    with pytest.raises(TLSConfigError):
        await Broker(port=0, host="127.0.0.1", mgmt_port=0, mgmt_tls=True).start()


# -- serve ----------------------------------------------------------------------------------------


def test_serve_with_tls_options(tmp_path, certs):
    port, tls_port, mgmt_port = free_port(), free_port(), free_port()
    env = clean_env(AMQP_BROKER_TLS_CA=str(certs.ca), AMQP_BROKER_TLS_VERIFY_PEER="true")
    env["AMQP_BROKER_MGMT_PORT"] = str(mgmt_port)
    args = ["serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(tmp_path / "data"),
            "--tls-port", str(tls_port), "--tls-cert", str(certs.server.cert), "--tls-key", str(certs.server.key),
            "--mgmt-tls"]
    with open(tmp_path / "serve.err", "wb") as err:
        proc = subprocess.Popen(cli_command() + args, stdout=subprocess.DEVNULL, stderr=err,
                                stdin=subprocess.DEVNULL, env=env)
        try:
            assert wait_until(lambda: proc.poll() is not None or port_open(port), STARTUP_TIMEOUT)
            assert proc.poll() is None, (tmp_path / "serve.err").read_text()
            assert roundtrip(pika_params(certs, tls_port, certs.client), b"served") == b"served"
            external = pika_params(certs, tls_port, certs.client, pika.credentials.ExternalCredentials())
            assert roundtrip(external, b"external") == b"external"
            status, overview = https_get(certs, f"https://localhost:{mgmt_port}/api/overview")
            assert status == 200 and any(li["protocol"] == "amqp/ssl" for li in overview["listeners"])
        finally:
            proc.terminate()
            proc.wait(10)
    stderr = (tmp_path / "serve.err").read_text()
    assert f"127.0.0.1:{tls_port}" in stderr and "Traceback" not in stderr


@pytest.mark.parametrize("which", ["cert", "key"])
def test_serve_with_a_bad_certificate_path_exits_1(tmp_path, certs, which):
    paths = {"cert": str(certs.server.cert), "key": str(certs.server.key)}
    paths[which] = str(tmp_path / f"missing-{which}.pem")
    proc = subprocess.run(
        cli_command() + ["serve", "--port", "0", "--data-dir", str(tmp_path / "data"), "--tls-port", "0",
                         "--tls-cert", paths["cert"], "--tls-key", paths["key"]],
        capture_output=True, text=True, timeout=STARTUP_TIMEOUT, env=clean_env(), stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 1, proc.stderr
    assert f"missing-{which}.pem" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
