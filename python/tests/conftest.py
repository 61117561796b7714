"""Fixtures shared by the tests: repositories in temporary folders, the `strata` command line
(for the tests that cross between the two), and the S3 server (radosgw) the test script
starts."""

import os
import subprocess
import time
from pathlib import Path

import pytest

import strata

ROOT = Path(__file__).resolve().parents[2]
AUTHOR = "Test Person <test@example.com>"


@pytest.fixture(autouse=True)
def _author(monkeypatch):
    monkeypatch.setenv("STRATA_AUTHOR", AUTHOR)


@pytest.fixture
def repo(tmp_path):
    return strata.init(tmp_path / "repo")


def _find_cli():
    given = os.environ.get("STRATA_BIN")
    if given:
        if not Path(given).is_file():
            pytest.fail(f"STRATA_BIN={given} is not a file")
        return given
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    subprocess.run(["cargo", "build", "-q", "-p", "strata-cli"], cwd=ROOT, check=True)
    return str(target / "debug" / "strata")


@pytest.fixture(scope="session")
def strata_bin():
    return _find_cli()


class Cli:
    """Runs the command line in a folder, with the test environment."""

    def __init__(self, binary):
        self.binary = binary

    def __call__(self, cwd, *args, ok=True, env=None):
        full_env = dict(os.environ)
        full_env["STRATA_AUTHOR"] = AUTHOR
        full_env.update(env or {})
        p = subprocess.run(
            [self.binary, *map(str, args)],
            cwd=cwd,
            env=full_env,
            capture_output=True,
            text=True,
        )
        if ok and p.returncode != 0:
            raise AssertionError(
                f"strata {' '.join(map(str, args))} failed ({p.returncode}):\n{p.stderr}"
            )
        if not ok and p.returncode == 0:
            raise AssertionError(f"strata {' '.join(map(str, args))} should have failed")
        return p


@pytest.fixture
def cli(strata_bin):
    return Cli(strata_bin)


@pytest.fixture
def s3():
    """The radosgw endpoint and a fresh prefix URL in the test bucket. Fails (never skips)
    when the servers are not there."""
    endpoint = os.environ.get("STRATA_RADOSGW_ENDPOINT")
    if not endpoint:
        pytest.fail(
            "STRATA_RADOSGW_ENDPOINT is not set: the S3 tests need the local S3 servers. "
            "Run python/test.sh, which starts them, or: bash localstack/all.sh start && "
            'eval "$(bash localstack/all.sh env)"'
        )
    bucket = os.environ.get("STRATA_TEST_BUCKET", "strata")

    def url(name):
        return f"s3://{bucket}/python/{name}-{time.time_ns():x}-{os.getpid():x}"

    return endpoint, url
