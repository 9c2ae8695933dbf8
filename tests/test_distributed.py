"""Training on several processes: shards, the same weights as one process, failures that
stop every rank, and torchrun."""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import re
import shlex
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import psutil
import pytest
import torch
from torch.multiprocessing.spawn import ProcessRaisedException

from harness.project import (
    MODEL,
    TRAIN_CSV,
    TRAIN_LOG,
    fit_on_parts,
    run_module,
    write_lesson_split,
)
from linreg.core.dataset import Dataset
from linreg.core.errors import PipelineError
from linreg.core.placement import shard_plan, shard_size
from linreg.io.datasets import write_dataset
from linreg.io.tables import read_csv
from linreg.runtime.launcher import failed_rank, free_port, require_devices, run_ranks
from linreg.runtime.limits import require_cores

from .helpers import (
    ROOT,
    STAGE_COMMANDS,
    install_pause_hook,
    project_env,
    run,
    set_param,
    stages_run,
    start_training,
)

TRAIN_COMMAND = STAGE_COMMANDS["train"]


@pytest.mark.parametrize("padded", [True, False])
@pytest.mark.parametrize(
    "counts", [[20, 20], [21, 19], [0, 41], [5, 0, 5], [1, 0, 0, 0], [3, 3, 4], [7, 1, 1, 2, 9]]
)
def test_the_plan_makes_shards_of_consecutive_rows(counts, padded):
    """Padded: equal shards, the last padded with the first rows; else each row once, in
    shards whose sizes differ by a row at most."""
    rows, world_size = sum(counts), len(counts)
    starts = np.cumsum([0, *counts])
    parts = [np.arange(starts[rank], starts[rank + 1]) for rank in range(world_size)]
    plan = shard_plan(counts, padded)
    size = -(-rows // world_size)
    bounds = [
        (rank * size, (rank + 1) * size) if padded else
        (rank * rows // world_size, (rank + 1) * rows // world_size)
        for rank in range(world_size)
    ]  # fmt: skip
    shards = [np.full(shard_size(plan, rank), -1) for rank in range(world_size)]
    for move in plan:
        assert 0 <= move.start < move.stop <= counts[move.source]
        assert (shards[move.target][move.at : move.at + len(move)] == -1).all()  # no overlap
        shards[move.target][move.at : move.at + len(move)] = parts[move.source][
            move.start : move.stop
        ]
    for shard, (begin, end) in zip(shards, bounds, strict=True):
        assert shard.tolist() == [row % rows for row in range(begin, end)]
    if not padded:
        assert sorted(np.concatenate(shards).tolist()) == list(range(rows))


@pytest.mark.parametrize("nproc", [2, 3])
def test_ranks_reading_their_parts_learn_as_one_process(tmp_path: Path, nproc):
    """Three features of uneven widths (the byte ranges hold unequal rows), standardised:
    the ranks' equal shards and the statistics summed over the parts give one process's fit."""
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((77, 3)) * [1, 100, 0.001]).astype(np.float32)
    y = (x @ np.float32([2, -0.03, 500]) + 4).astype(np.float32)
    features = ("a", "bb", "ccc")
    write_dataset(tmp_path / "train.csv", Dataset(x[:60], y[:60], features))
    write_dataset(tmp_path / "test.csv", Dataset(x[60:], y[60:], features))
    overrides = {"train.device": "cpu", "train.epochs": 40, "train.standardize": True}
    parts = [read_csv(tmp_path / "train.csv", part=part, parts=nproc)["y"] for part in range(nproc)]
    assert len({len(part) for part in parts}) > 1  # the parts differ in rows
    one = fit_on_parts(tmp_path, overrides, 1)
    many = fit_on_parts(tmp_path, overrides, nproc)
    for name, values in one.items():
        np.testing.assert_allclose(many[name], values, rtol=1e-6, atol=1e-7, err_msg=name)


def test_lbfgs_ranks_take_one_process_steps(tmp_path: Path):
    """L-BFGS reads the gradients DistributedDataParallel has averaged over the ranks, so every
    rank takes the same step: two ranks end where one process does (float64, to rounding)."""
    write_lesson_split(tmp_path, 3)
    overrides = {
        "train.device": "cpu", "train.dtype": "float64", "train.optimizer": "lbfgs",
        "train.loss": "mse", "train.lr": 1.0, "train.epochs": 30,
    }  # fmt: skip
    one, two = fit_on_parts(tmp_path, overrides, 1), fit_on_parts(tmp_path, overrides, 2)
    for name, values in one.items():
        np.testing.assert_allclose(two[name], values, rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.mark.slow
def test_float64_ranks_agree_at_a_million_rows(tmp_path: Path):
    """The lesson at 10^6 rows (800,000 to train), full batch in float64: 1, 2 and 3 ranks end
    within 1e-9 relative, losses and coefficients (float32 drifts by about 1e-5 here:
    docs/scaling-out.md)."""
    write_lesson_split(tmp_path, 6)
    overrides = {"train.device": "cpu", "train.dtype": "float64"}
    one = fit_on_parts(tmp_path, overrides, 1)
    for nproc in (2, 3):
        many = fit_on_parts(tmp_path, overrides, nproc)
        for name, values in one.items():
            np.testing.assert_allclose(many[name], values, rtol=1e-9, atol=0, err_msg=name)


def train_stage(
    project: Path, *launcher: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The train stage's own command, or the same script under a launcher such as torchrun."""
    if launcher:
        script_and_paths = shlex.split(TRAIN_COMMAND)[2:]  # drop PYTHONPATH=src python
        command = ["PYTHONPATH=src", *launcher, *script_and_paths]
        return run(project, "env", *command, check=check, env=env)
    return run(project, "env", *shlex.split(TRAIN_COMMAND), check=check, env=env)


def checkpoint(project: Path) -> dict:
    return torch.load(project / MODEL, weights_only=True)


def zip_names(project: Path) -> list[str]:
    with zipfile.ZipFile(io.BytesIO((project / MODEL).read_bytes())) as archive:
        return archive.namelist()


@pytest.mark.slow
def test_two_processes_learn_the_same_weights_as_one(project: Path):
    one, names = checkpoint(project), zip_names(project)  # nproc 1, as reproduced
    set_param(project, "train.nproc", 2)

    output = train_stage(project).stdout

    two = checkpoint(project)
    assert two["model"] == one["model"]
    assert list(two["state_dict"]) == list(one["state_dict"])  # no "module." prefix
    for name, value in one["state_dict"].items():
        torch.testing.assert_close(two["state_dict"][name], value, atol=1e-6, rtol=0)
    assert zip_names(project) == names  # the same checkpoint format
    assert output.count("epoch ") == 10  # rank 0 alone logs


@pytest.mark.slow
def test_torchrun_starts_the_same_stage(project: Path, tmp_path: Path):
    one = checkpoint(project)
    torchrun = str(Path(sys.executable).parent / "torchrun")
    logs = {"TMPDIR": str(tmp_path)}  # torchrun's own, not in /tmp
    train_stage(project, torchrun, "--standalone", "--nproc-per-node=2", env=logs)
    for name, value in one["state_dict"].items():
        torch.testing.assert_close(
            checkpoint(project)["state_dict"][name], value, atol=1e-6, rtol=0
        )


@pytest.mark.slow
def test_mini_batches_on_two_processes_learn_comparably(project: Path):
    set_param(project, "train.batch_size", 8)
    set_param(project, "train.momentum", 0.9)
    train_stage(project)
    one = np.loadtxt(project / TRAIN_LOG, delimiter=",", skiprows=1)
    set_param(project, "train.nproc", 2)
    train_stage(project)
    two = np.loadtxt(project / TRAIN_LOG, delimiter=",", skiprows=1)
    assert two[-1, 2] < two[0, 2] / 5  # the test loss falls
    assert two[-1, 2] < 2 * one[-1, 2] + 0.01  # about as far as on one process


@pytest.mark.slow
def test_a_failing_rank_fails_the_stage_in_one_line(project: Path, tmp_path: Path):
    set_param(project, "train.nproc", 2)
    set_param(project, "train.lr", 1e6)
    set_param(project, "train.loss", "mse")
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    result = train_stage(project, check=False, env={"TMPDIR": str(temporary)})
    assert result.returncode == 1
    assert result.stderr.startswith("error: train rank ")
    assert "training diverged at epoch" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert list(temporary.glob("pytorch-errorfile-*")) == []  # the ranks' tracebacks: read, gone


@pytest.mark.slow
def test_a_bad_line_is_found_by_the_rank_whose_part_holds_it(project: Path):
    """Each rank reads only its part of train.csv: a bad line near the end stops rank 1, at
    its line number, and rank 0 never sees it."""
    train_csv = project / TRAIN_CSV
    lines = train_csv.read_text().splitlines()
    lines[-3] = lines[-3].split(",")[0] + ",nan"
    train_csv.write_text("\n".join(lines) + "\n")
    set_param(project, "train.nproc", 2)
    result = train_stage(project, check=False)
    assert result.returncode == 1
    assert result.stderr == (
        f"error: train rank 1: data/train.csv: line {len(lines) - 2}, column y: nan is not a "
        "finite number\n"
    )


def test_the_rank_with_our_error_is_reported_not_its_peer_that_lost_it(tmp_path: Path):
    """Rank 1 stops at a bad line; rank 0, waiting for it in a collective, fails too. When torch
    sees rank 0 first (a loaded machine), the line still names rank 1 and its error."""
    traces = {
        0: "Traceback ...\nRuntimeError: [gloo] Connection closed by peer [127.0.0.1]:5555\n",
        1: "Traceback ...\nlinreg.core.errors.PipelineError: data/train.csv: line 42, column y: nan "
        "is not a finite number\n",
    }
    files = [str(tmp_path / f"rank{rank}.pickle") for rank in (0, 1, 2)]  # rank 2: no error
    for rank, trace in traces.items():
        Path(files[rank]).write_bytes(pickle.dumps(trace))
    seen_first = ProcessRaisedException("\n\n-- Process 0 ...\n" + traces[0], 0, 1234)
    assert failed_rank(files, [1, 1], seen_first) == (
        1,
        "linreg.core.errors.PipelineError: data/train.csv: line 42, column y: nan is not a finite "
        "number",
    )
    plain = ProcessRaisedException(traces[0], 0, 1234)  # nobody raised ours: torch's rank
    assert failed_rank(files[:1], [1], plain)[0] == 0


@pytest.mark.slow
def test_a_killed_rank_stops_every_process(project: Path):
    set_param(project, "train.nproc", 2)
    set_param(project, "train.epochs", 1_000_000)
    process = start_training(project)
    stage = psutil.Process(process.pid)
    family = stage.children(recursive=True)
    ranks = [child for child in family if child.ppid() == process.pid]
    assert len(ranks) == 2

    ranks[1].send_signal(signal.SIGKILL)
    assert process.wait(timeout=60) == 1
    assert process.stderr is not None
    message = process.stderr.read()
    assert message.startswith("error: train rank 1: process 1 terminated with signal SIGKILL")
    assert len(message.splitlines()) == 1
    deadline = time.monotonic() + 60
    while any(child.is_running() and child.status() != psutil.STATUS_ZOMBIE for child in family):
        assert time.monotonic() < deadline, [child.pid for child in family if child.is_running()]
        time.sleep(0.1)


def test_ranks_stopped_while_failing_or_winding_down_end_quietly(tmp_path: Path):
    """tests/programs/stopped_while_failing.py"""
    done = run_module(
        "tests.programs.stopped_while_failing", str(tmp_path / "winding-down"), check=False
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error: train rank 0: process 0 terminated with signal SIGTERM")
    assert len(done.stderr.splitlines()) == 1, done.stderr


@pytest.mark.parametrize(
    ("processes", "device", "gpus", "message"),
    [
        (2, "cpu", 0, None),
        (1, "cuda", 1, None),
        (2, "cuda", 2, None),
        (2, "auto", 0, None),  # no GPU (and no mps here): auto is the cpu
        (
            2,
            "auto",
            1,
            "train.nproc = 2: each process needs a GPU of its own and this machine has 1; "
            "use at most 1, or train.device: cpu",
        ),
        (
            3,
            "cuda",
            2,
            "train.nproc = 3: each process needs a GPU of its own and this machine has 2; "
            "use at most 2, or train.device: cpu",
        ),
        (
            2,
            "cuda",
            0,
            "train.nproc = 2: each process needs a GPU of its own and this machine has 0; "
            "use train.device: cpu",
        ),
        (
            2,
            "mps",
            0,
            "train.nproc = 2: processes cannot share the mps device; "
            "use train.nproc: 1, or train.device: cpu",
        ),
    ],
)
def test_processes_need_a_gpu_each(processes, device, gpus, message, monkeypatch):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    if message is None:
        require_devices(processes, device, "train.nproc", gpus=lambda: gpus)
    else:
        with pytest.raises(PipelineError) as error:
            require_devices(processes, device, "train.nproc", gpus=lambda: gpus)
        assert str(error.value) == message


def test_more_ranks_than_cores_are_refused():
    require_cores(2, "train.nproc", cores=2)
    with pytest.raises(PipelineError) as error:
        require_cores(3, "train.nproc", cores=2)
    assert str(error.value) == (
        "train.nproc = 3: more processes than this machine's 2 cores; use at most 2"
    )


@pytest.mark.slow
def test_a_params_file_from_a_larger_machine_runs_every_stage_but_train(project, launcher):
    """Machine limits are the stage's that meets them, not the schema's: a teammate's
    train.nproc: 16 validates here, and only train, which would start the ranks, says no."""
    nproc, cores = max(16, (os.cpu_count() or 1) + 1), os.cpu_count()
    set_param(project, "train.nproc", nproc)
    for stage in ("validate", "generate", "split", "evaluate", "plot"):
        code, stderr = launcher.run(project, STAGE_COMMANDS[stage], project / "stderr.txt")
        assert code == 0, f"{stage}: {stderr}"
    result = run(project, "dvc", "repro", check=False)
    assert result.returncode != 0
    assert stages_run(result.stdout) == ["validate", "train"]
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")] == [
        f"error: train.nproc = {nproc}: more processes than this machine's {cores} cores; "
        f"use at most {cores}"
    ]


# The threads of each of train.nproc: 2's ranks on this machine (launcher.spawn)
RANK_THREADS = max(1, (os.cpu_count() or 1) // 2)
# The two-node recipe of docs/scaling-out.md: the block each node runs.
NODE_RECIPE = re.search(
    r"<!-- runnable on each node[^>]*-->\n```bash\n(.*?)```",
    (ROOT / "docs/scaling-out.md").read_text(),
    re.DOTALL,
)


def two_nodes(project: Path, tmp_path: Path) -> list[Path]:
    """`project` (reproduced, its params committed here) shared as a team shares it: a bare git
    origin and a folder DVC remote, pushed; and two clones of origin, the nodes."""
    run(project, "dvc", "remote", "add", "--default", "shared", str(tmp_path / "remote"))
    run(project, "git", "commit", "-qam", "the run's params, and the team's remote")
    run(project, "dvc", "push")
    origin = tmp_path / "origin.git"
    run(tmp_path, "git", "init", "-q", "--bare", "-b", "main", str(origin))
    run(project, "git", "push", "-q", str(origin), "main")
    nodes = [tmp_path / "node0", tmp_path / "node1"]
    for node in nodes:
        run(tmp_path, "git", "clone", "-q", str(origin), str(node))
    return nodes


def start_nodes(
    nodes: list[Path], env: dict[str, str], port: int, torchrun: str = ""
) -> list[subprocess.Popen[str]]:
    """docs/scaling-out.md's recipe on each node, its endpoint the loopback `port`, with
    `torchrun` options added after its own (they win); each rank runs the threads
    train.nproc: 2 gives a rank on this machine (launcher.spawn: half the cores)."""
    assert NODE_RECIPE, "docs/scaling-out.md has no block marked runnable on each node"
    recipe = NODE_RECIPE.group(1).replace("node0.example:29500", f"127.0.0.1:{port}")
    recipe = recipe.replace(" stages/train.py", f" {torchrun} stages/train.py")
    temporary = nodes[0].parent / "tmp"  # where the agents keep their logs, not in /tmp
    temporary.mkdir(exist_ok=True)
    machine = {"OMP_NUM_THREADS": str(RANK_THREADS), "TMPDIR": str(temporary)}
    return [
        subprocess.Popen(
            ["bash", "-e", "-c", recipe], cwd=node, text=True, start_new_session=True,
            env=project_env() | machine | env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        for node in nodes
    ]  # fmt: skip


def finish(agents: list[subprocess.Popen[str]], tmp_path: Path) -> list[str]:
    """The agents' outputs once they end; none left behind, nor any rank of theirs."""
    try:
        outputs = [agent.communicate(timeout=600)[0] for agent in agents]
    finally:
        for agent in agents:
            if agent.poll() is None:
                os.killpg(agent.pid, signal.SIGKILL)
                agent.wait()
    left = [p for p in psutil.process_iter(["cwd"]) if str(tmp_path) in (p.info["cwd"] or "")]
    assert left == []  # no agent or rank outlives the run
    return outputs


@pytest.mark.slow
def test_two_torchrun_nodes_give_the_bytes_of_two_processes(project: Path, tmp_path: Path):
    """docs/scaling-out.md's recipe on two clones (two torchrun agents, c10d rendezvous on a
    loopback port), each pulling only the train stage's inputs from the team's DVC remote: both
    nodes end with the model and train log of a `train.nproc: 2` run, byte for byte, and
    `dvc commit -f train` records exactly what that run's dvc.lock holds."""
    set_param(project, "generate.step", 1.0e-5)  # 40,000 rows a rank: more than a thread's share
    set_param(project, "train.nproc", 2)
    run(project, "dvc", "repro")
    expected = {name: (project / name).read_bytes() for name in (MODEL, TRAIN_LOG)}
    nodes = two_nodes(project, tmp_path)

    agents = start_nodes(nodes, {}, free_port())
    outputs = finish(agents, tmp_path)

    for node, agent, output in zip(nodes, agents, outputs, strict=True):
        assert agent.returncode == 0, f"{node.name}\n{output}"
        assert not (node / "data/raw.csv").exists()  # it pulled the train stage's inputs alone
        for name, data in expected.items():
            assert (node / name).read_bytes() == data, f"{node.name}: {name}"
        assert run(node, "git", "status", "--porcelain").stdout == ""  # dvc.lock as committed


PAUSED = "paused"  # the file by which a node's paused worker says it waits (tests/pause_hook.py)


def pausing_nodes(nodes: list[Path], save_at: int, pause_at: int) -> dict[str, str]:
    """The environment under which each node's workers save a resume point after epoch
    `save_at` and wait after epoch `pause_at` until the node's PAUSED is gone."""
    for node in nodes:
        install_pause_hook(node)
    return {"PYTHONUNBUFFERED": "1", "LINREG_PAUSE": f"{save_at} {pause_at} {PAUSED}"}


def wait_for_pauses(nodes: list[Path], agents: list[subprocess.Popen[str]]) -> None:
    """Until every node's worker waits at its pause epoch (a generous deadline)."""
    deadline = time.monotonic() + 300
    while not all((node / PAUSED).exists() for node in nodes):
        for agent in agents:
            assert agent.poll() is None, agent.communicate()[0]
        assert time.monotonic() < deadline, "the workers never paused"
        time.sleep(0.01)


def let_go(nodes: list[Path]) -> None:
    """Let the paused workers go on, and the ones torchrun restarts pass their pause epoch."""
    for node in nodes:
        (node / f"{PAUSED}.done").touch()
        (node / PAUSED).unlink()


def worker(node: Path) -> psutil.Process:
    """The process torchrun started on `node` to run the train stage (not torchrun itself)."""
    (found,) = [
        process
        for process in psutil.process_iter(["cwd", "cmdline"])
        if process.info["cwd"] == str(node)
        and "stages/train.py" in (process.info["cmdline"] or [])
        and not any(arg.endswith("torchrun") for arg in process.info["cmdline"])
    ]
    return found


@pytest.mark.slow
def test_a_killed_worker_is_restarted_and_ends_with_the_same_bytes(project: Path, tmp_path: Path):
    """docs/scaling-out.md's recipe on two nodes with --max-restarts=1: node 1's worker is
    killed after epoch 70 and its resume point (of epoch 40) deleted; torchrun restarts the
    group, whose ranks go on from epoch 41, node 0's rank sending the point; both nodes end
    with the bytes of an uninterrupted `train.nproc: 2` run."""
    set_param(project, "train.nproc", 2)
    set_param(project, "train.checkpoint_seconds", 3600)  # resume points where the hook says
    run(project, "dvc", "repro", "train")
    expected = {name: (project / name).read_bytes() for name in (MODEL, TRAIN_LOG)}
    nodes = two_nodes(project, tmp_path)
    agents = start_nodes(nodes, pausing_nodes(nodes, 40, 70), free_port(), "--max-restarts=1")
    wait_for_pauses(nodes, agents)

    worker(nodes[1]).kill()
    (nodes[1] / ".resume/train.pt").unlink()
    let_go(nodes)
    outputs = finish(agents, tmp_path)

    for node, agent, output in zip(nodes, agents, outputs, strict=True):
        assert agent.returncode == 0, f"{node.name}\n{output}"
        assert "resumed from epoch 41 of 100" in output, f"{node.name}\n{output}"
        assert "Traceback" not in output, output  # the surviving rank says one line
        for name, data in expected.items():
            assert (node / name).read_bytes() == data, f"{node.name}: {name}"


def trained(node: Path) -> dict[str, np.ndarray]:
    """The model's tensors and the train log's columns (in float64) that `node` holds."""
    return checkpoint(node)["state_dict"] | read_csv(node / TRAIN_LOG, dtype=np.float64)


def rendezvous_host(nodes: list[Path], port: int) -> Path:
    """The node whose torchrun agent hosts the c10d rendezvous (listens on its `port`)."""
    (host,) = [
        node
        for node in nodes
        for process in psutil.process_iter(["cwd"])
        if process.info["cwd"] == str(node)
        and any(
            connection.status == psutil.CONN_LISTEN and connection.laddr.port == port
            for connection in process.net_connections("tcp")
        )
    ]
    return host


def lose(node: Path) -> None:
    """Every process of `node` killed at once, as when its machine goes away."""
    for process in psutil.process_iter(["cwd"]):
        if process.info["cwd"] == str(node):
            with contextlib.suppress(psutil.NoSuchProcess):  # gone with its parent
                process.kill()


@pytest.mark.slow
def test_an_elastic_job_that_loses_a_node_goes_on_with_the_other(project: Path, tmp_path: Path):
    """docs/scaling-out.md's recipe with --nnodes=1:2 on two nodes, full batch in float64: after
    epoch 70 the node that does not host the rendezvous goes away; the other's torchrun forms a
    group of one, which goes on from the resume point of epoch 40 on its own disk and ends
    within 1e-9 relative of a one-process run."""
    set_param(project, "train.dtype", "float64")
    set_param(project, "train.checkpoint_seconds", 3600)  # resume points where the hook says
    run(project, "dvc", "repro", "train")
    expected = trained(project)
    nodes = two_nodes(project, tmp_path)
    port = free_port()
    # a lost node is given up after 3 missed heartbeats a second apart; a group of one forms
    # after 5 s more without another node
    elastic = "--nnodes=1:2 --rdzv-conf=keep_alive_interval=1,last_call_timeout=5"
    agents = start_nodes(nodes, pausing_nodes(nodes, 40, 70), port, elastic)
    wait_for_pauses(nodes, agents)

    survivor = rendezvous_host(nodes, port)
    lose(next(node for node in nodes if node != survivor))
    let_go([survivor])
    outputs = dict(zip(nodes, finish(agents, tmp_path), strict=True))

    agent = agents[nodes.index(survivor)]
    assert agent.returncode == 0, outputs[survivor]
    assert "resumed from epoch 41 of 100" in outputs[survivor], outputs[survivor]
    for name, values in trained(survivor).items():
        np.testing.assert_allclose(values, expected[name], rtol=1e-9, atol=0, err_msg=name)


def ranks_on_machines(folder: Path, stop_after: int, out: Path) -> subprocess.CompletedProcess[str]:
    """tests/programs/ranks_on_machines.py's two ranks, each in its own folder under `folder`."""
    return run_module(
        "tests.programs.ranks_on_machines", str(folder), str(stop_after), str(out), check=False
    )


@pytest.mark.slow
def test_the_rank_that_holds_the_resume_point_sends_it_to_the_others(tmp_path: Path):
    """Two ranks on "machines" of their own (folders): the run stops after epoch 40, and its
    resume point is then on rank 1's machine alone (as when a restart gives rank 0 to another
    node, or a fresh node replaces a lost one). The rerun goes on from epoch 41 on both ranks,
    rank 1 sending the point, and ends with the numbers of an uninterrupted run."""
    write_lesson_split(tmp_path, 2)
    for node in ("node0", "node1"):
        (tmp_path / node).mkdir()
    stopped = ranks_on_machines(tmp_path, 40, tmp_path / "unused.npz")
    assert stopped.returncode != 0
    point = Path(".resume/train.pt")
    assert (tmp_path / "node0" / point).exists()
    assert not (tmp_path / "node1" / point).exists()  # the first rank of a machine writes it
    (tmp_path / "node1/.resume").mkdir()
    os.replace(tmp_path / "node0" / point, tmp_path / "node1" / point)

    resumed = ranks_on_machines(tmp_path, -1, tmp_path / "resumed.npz")
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from epoch 41 of 120" in resumed.stdout, resumed.stdout
    fresh = ranks_on_machines(tmp_path, -1, tmp_path / "fresh.npz")
    assert fresh.returncode == 0, fresh.stderr
    for name, values in np.load(tmp_path / "fresh.npz").items():
        np.testing.assert_array_equal(np.load(tmp_path / "resumed.npz")[name], values, name)


@pytest.mark.parametrize(
    ("environment", "line"),
    [
        ({"RANK": "0", "WORLD_SIZE": "abc"}, "WORLD_SIZE = 'abc': not a whole number from 1 to"),
        (
            {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "xyz"},
            "LOCAL_WORLD_SIZE = 'xyz': not a whole number from 1 to 2",
        ),
        ({"RANK": "2", "WORLD_SIZE": "2"}, "RANK = '2': not a whole number from 0 to 1"),
        ({"RANK": "0", "WORLD_SIZE": "1"}, "MASTER_ADDR is not set"),
        ({"WORLD_SIZE": "1"}, "RANK is not set, and WORLD_SIZE is"),
        (
            {"RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "0"},
            "MASTER_PORT = '0': not a whole number from 1 to 65535",
        ),
    ],
)
def test_a_launcher_environment_that_is_wrong_is_one_line(monkeypatch, environment, line):
    """Read and checked before torch reads it: a hand-written scheduler script's mistake."""
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(PipelineError, match=f"^{re.escape(line)}"):
        run_ranks(1, "cpu", lambda: pytest.fail("the work ran"))
