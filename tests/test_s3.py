"""An S3 remote, for real: a local S3-compatible server (moto's server mode, on a free loopback
port, with IAM authentication on) that the tests start and stop, reached through dvc-s3. The
team's flow through it, experiments included, and what a wrong key, a missing bucket or a
server that is down do: DVC's one-line error, nothing lost, no credential printed."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from harness.project import MAKE_PUSH, METRICS
from linreg.runtime.launcher import free_port

from .helpers import artifact_bytes, run, stages_run

pytestmark = pytest.mark.slow

BUCKET = "linreg"
REGION = "us-east-1"
# The server's set-up (an IAM user, its key, its policy, the bucket) is this many requests;
# every request after them must be signed by a key the server knows.
SETUP_REQUESTS = 4


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    key_id: str
    secret: str

    def client_env(self) -> dict[str, str]:
        """Credentials as the environment gives them to DVC (and to boto)."""
        return {"AWS_ACCESS_KEY_ID": self.key_id, "AWS_SECRET_ACCESS_KEY": self.secret}


def wait_for_port(port: int, process: subprocess.Popen[bytes], seconds: float = 30) -> None:
    """Until the server accepts connections (a TCP connect: no request, which it would count)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the S3 server exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"the S3 server did not listen on port {port} within {seconds} s")


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    """A moto S3 server on a free loopback port with a bucket and one IAM user's key."""
    port = free_port()
    env = os.environ | {"INITIAL_NO_AUTH_ACTION_COUNT": str(SETUP_REQUESTS)}
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, server)
        endpoint = f"http://127.0.0.1:{port}"
        setup = {"endpoint_url": endpoint, "region_name": REGION}
        setup |= {"aws_access_key_id": "setup", "aws_secret_access_key": "setup"}
        iam = boto3.client("iam", **setup)
        iam.create_user(UserName="team")
        key = iam.create_access_key(UserName="team")["AccessKey"]
        everything = {"Effect": "Allow", "Action": "*", "Resource": "*"}
        iam.put_user_policy(
            UserName="team",
            PolicyName="everything",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [everything]}),
        )
        boto3.client("s3", **setup).create_bucket(Bucket=BUCKET)
        yield S3Server(endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    finally:
        server.terminate()
        server.wait(timeout=30)


def add_remote(project: Path, s3: S3Server, prefix: str, bucket: str = BUCKET) -> None:
    """The team's remote in .dvc/config (committed): where, not who."""
    run(project, "dvc", "remote", "add", "--default", "team", f"s3://{bucket}/{prefix}")
    run(project, "dvc", "remote", "modify", "team", "endpointurl", s3.endpoint)
    run(project, "dvc", "remote", "modify", "team", "region", REGION)


def keys_in_config_local(project: Path, s3: S3Server) -> None:
    """Credentials as the README says to keep them: in .dvc/config.local, which git ignores."""
    run(project, "dvc", "remote", "modify", "--local", "team", "access_key_id", s3.key_id)
    run(project, "dvc", "remote", "modify", "--local", "team", "secret_access_key", s3.secret)


@pytest.fixture
def team(project: Path, tmp_path: Path, s3: S3Server, request) -> tuple[Path, Path, Path]:
    """A (keys in .dvc/config.local) pushes main to a shared git repo and the data to S3 (the
    run-cache included); B is a fresh clone of the shared repo, with an empty cache."""
    prefix = request.node.name  # each test its own folder of the bucket
    add_remote(project, s3, prefix)
    keys_in_config_local(project, s3)
    run(project, "git", "commit", "-qam", "the team's S3 remote")
    hub = tmp_path / "hub.git"
    run(tmp_path, "git", "init", "-q", "--bare", "-b", "main", str(hub))
    run(project, "git", "remote", "add", "origin", str(hub))
    run(project, "git", "push", "-q", "origin", "main")
    run(project, *MAKE_PUSH)
    clone = tmp_path / "clone"
    run(tmp_path, "git", "clone", "-q", str(hub), str(clone))
    return project, clone, hub


def outputs(*results: subprocess.CompletedProcess[str]) -> str:
    return "".join(result.stdout + result.stderr for result in results)


def test_a_fresh_clone_pulls_from_s3_and_reproduces_nothing(team, s3: S3Server):
    a, b, _ = team
    assert not (b / ".dvc/cache").exists()
    results = [run(b, "dvc", "pull", "--run-cache", env=s3.client_env())]  # `make pull`, keys
    # from the environment this time

    results.append(run(b, "dvc", "status", env=s3.client_env()))
    assert "Data and pipelines are up to date" in results[-1].stdout
    results.append(run(b, "dvc", "repro", env=s3.client_env()))
    assert stages_run(results[-1].stdout) == []
    assert artifact_bytes(b) == artifact_bytes(a)

    # no credential in a file git tracks, in either clone, nor in anything DVC printed
    for clone in (a, b):
        tracked = run(clone, "git", "grep", "-l", "-e", s3.secret, "-e", s3.key_id, check=False)
        assert tracked.stdout == "", tracked.stdout
    assert s3.secret not in outputs(*results)
    assert (a / ".dvc/config.local").exists()
    assert "config.local" not in run(a, "git", "ls-files", ".dvc").stdout


def test_experiments_travel_through_the_shared_repo_and_s3(team, s3: S3Server):
    a, b, _ = team
    run(a, "dvc", "exp", "run", "-n", "faster", "-S", "train.lr=0.05")
    pushed = run(a, "dvc", "exp", "push", "origin", "faster")

    pulled = run(b, "dvc", "exp", "pull", "origin", "faster", env=s3.client_env())
    shown = run(b, "dvc", "exp", "show", "--json", env=s3.client_env())

    rows = json.loads(shown.stdout)
    names = {
        experiment.get("name")
        for row in rows
        for experiments in (row.get("experiments") or [])
        for experiment in experiments.get("revs", [])
    }
    assert "faster" in names
    run(b, "dvc", "exp", "apply", "faster", env=s3.client_env())
    applied = json.loads((b / METRICS).read_text())
    assert applied == json.loads((a / METRICS).read_text())  # a ran it last
    assert s3.secret not in outputs(pushed, pulled, shown)


# What DVC's last error line says for each fault (its own words, from boto or aiohttp).
FAULT_CAUSES = {
    "wrong key": r"SignatureDoesNotMatch|InvalidAccessKeyId|Forbidden",
    "missing bucket": r"NoSuchBucket|does not exist|Not Found",
    "server down": r"[Cc]onnect",
}


# boto's retries of a refused connection take a minute; one attempt says the same
FAIL_FAST = {"AWS_MAX_ATTEMPTS": "1"}


@pytest.mark.parametrize("fault", sorted(FAULT_CAUSES))
def test_a_bad_remote_is_dvcs_error_and_loses_nothing(project: Path, s3: S3Server, fault: str):
    bucket = "no-such-bucket" if fault == "missing bucket" else BUCKET
    add_remote(project, s3, "faults", bucket=bucket)
    keys_in_config_local(project, s3)
    if fault == "wrong key":
        run(project, "dvc", "remote", "modify", "--local", "team", "secret_access_key", "wrong")
    if fault == "server down":
        nobody = f"http://127.0.0.1:{free_port()}"  # a port no server listens on
        run(project, "dvc", "remote", "modify", "team", "endpointurl", nobody)
    before = artifact_bytes(project), sorted((project / ".dvc/cache").rglob("*"))

    # `make push` (the remote is empty: everything is to send), and the status against the
    # remote, both of which must reach it
    for command in (MAKE_PUSH, ("dvc", "status", "--cloud")):
        result = run(project, *command, check=False, env=FAIL_FAST)
        assert result.returncode != 0, command
        errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR: ")]
        assert errors, result.stderr
        assert re.search(FAULT_CAUSES[fault], errors[-1]), errors[-1]
        assert "Traceback" not in result.stderr
        assert s3.secret not in outputs(result)

    assert (artifact_bytes(project), sorted((project / ".dvc/cache").rglob("*"))) == before
    assert stages_run(run(project, "dvc", "repro").stdout) == []
