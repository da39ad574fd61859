"""The deployment topology on loopback (deploy/stack): redis with an append-only file, the
session-router, two c2s-frontends and two s2s frontends with the PROXY protocol, and HAProxy
in front, started once for this directory's tests with short liveness settings so that
failures show quickly.

Run from the project root:
    XMPP_BUILD=build /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/stack
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from localstack import LocalStack  # noqa: E402


@pytest.fixture(scope="session")
def lstack(tmp_path_factory):
    s = LocalStack(tmp_path_factory.mktemp("xmpp-stack"))
    try:
        s.up()
    except BaseException:
        s.down()
        raise
    yield s
    s.down()
    problems = s.problems()
    assert not problems, "\n".join(problems)


@pytest.fixture
def clients(lstack):
    made = []

    def make(port=None):
        c = lstack.client(port)
        made.append(c)
        return c
    yield make
    for c in made:
        c.close()
