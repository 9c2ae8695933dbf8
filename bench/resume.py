"""Benchmark: what resume points cost. The train stage at ten million rows with
train.checkpoint_seconds 1 (a resume point every second, and the live train log) against 0
(none), side by side; the target is at most 5 % longer.
Usage: python -m bench.resume [ROUNDS] [EPOCHS]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from harness.project import (
    make_project,
    project_env,
    run_stage,
    set_params,
    set_rows,
    stage_commands,
    train_seconds_by,
)


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    env, commands = project_env(), stage_commands()
    with tempfile.TemporaryDirectory() as tmp:
        project = make_project(Path(tmp), env)
        set_rows(project, 7)
        set_params(project, "train", epochs=epochs, device="cpu")
        for stage in ("generate", "split"):
            run_stage(commands[stage], project, env)
        seconds = train_seconds_by(project, env, "checkpoint_seconds", [0, 1], rounds)
        off, on = seconds[0], seconds[1]
    print(f"train stage, 10^7 rows, {epochs} epochs, median of {rounds}")
    print(f"checkpoint_seconds 0: {off:.2f} s")
    print(f"checkpoint_seconds 1: {on:.2f} s  ({(on / off - 1) * 100:+.1f} %; target at most +5 %)")


if __name__ == "__main__":
    main()
