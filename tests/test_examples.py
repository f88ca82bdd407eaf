"""The examples in examples/ run unchanged against the broker under test."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str, url: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name), url],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, f"{name} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc.stdout


def test_hello_pika(amqp_url):
    out = run_example("hello_pika.py", amqp_url)
    assert "sent: Hello World!" in out
    assert "received: Hello World!" in out


def test_rpc_aio_pika(amqp_url):
    out = run_example("rpc_aio_pika.py", amqp_url)
    assert "fib(10) = 55" in out
    assert "fib(20) = 6765" in out
    assert "fib(30) = 832040" in out


def test_worker_kombu(amqp_url):
    out = run_example("worker_kombu.py", amqp_url)
    for line in ("worker: 1 + 2 = 3", "worker: 3 + 4 = 7", "worker: 5 + 6 = 11", "worker: processed 3 tasks"):
        assert line in out


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_example_has_run_instructions(name):
    """Every example says how to run it, in its docstring."""
    source = (EXAMPLES / name).read_text()
    assert source.startswith('"""') and f"python examples/{name}" in source
