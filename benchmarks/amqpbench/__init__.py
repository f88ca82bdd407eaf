"""AMQP 0-9-1 load generator (the code behind benchmarks/amqp_bench.py, its entry point).

Modules, bottom up:

* ``wire``: frame building/parsing for the hot paths (plain struct, no pamqp);
* ``errors``: BenchError, BrokerClosed;
* ``client``: the raw asyncio client (Connection, Channel; pamqp for rare methods);
* ``actors``: confirm publishers and consumers driven from the protocol callbacks;
* ``metrics``: latency percentiles, process CPU/RSS, which metrics each scenario reports;
* ``run``: resources of one scenario run (connections, cleanup, clock, stall watch);
* ``scenarios``: publish-confirm, consume, e2e, fanout, rpc, backlog; ``ttl``: the ttl scenario;
* ``registry``: SCENARIOS, ALL_SCENARIOS and run_scenario (the function API);
* ``own``: --start-own (our broker as a subprocess); ``report``: aggregation, table;
* ``cli``: argparse and main.

It never imports the broker (amqp_broker): it measures any broker the same way.
"""
