"""Helpers of the test suite, one module a concept (imported as `helpers.<module>`).

broker       BrokerThread (our broker in a thread), REFERENCE_URL / REFERENCE
process      the `amqp-broker` CLI as a subprocess: cli_command, clean_env, free_port, port_open
wait         wait_until: poll a condition instead of sleeping a fixed time
pika_client  pika BlockingConnection helpers and fixtures (conn, ch, queue, cleanup)
raw          RawConnection: a frame-level raw-socket AMQP client
raw_content  Raw: byte-exact content headers and server consumer tags (`raw` fixture)
typed        typed field-table decoding/encoding, RawClient, raw_get
connection   the connection tests' `raw` factory fixture, CAPABILITIES, url_with
codec        sample values and frame builders of the codec unit tests
dlx          Env (topology + cleanup), `env` fixture, dl_get, x-death assertions
durability   Node (a restartable broker on one data dir), `node` fixture
errors       the error-conformance context (Ctx, `ctx` fixture, Case, scenarios)
exchanges    declare helpers of the exchange tests
fuzz         frame builders and random frame generators of the robustness tests
robust       driving/judging one robustness case, Bystander, broker_log fixture
crash        the kill -9 crash harness (broker subprocess, publisher, consumer)
mgmt         the management HTTP API under test (ours or MGMT_REFERENCE_URL's): Mgmt, `mgmt` fixture

Fixtures live next to their helpers; a test module imports the ones it uses
(`from helpers.pika_client import conn  # noqa: F401 - pytest fixture`).
"""
