"""Benchmark: the train stage on one process and on two (train.nproc), side by side.

At ten million rows (the scale the processes are for) and at the default size (where all that
shows is the launcher's cost: forking the ranks and joining their process group).
Usage: python bench/distributed.py [ROUNDS]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from project import (
    make_project,
    project_env,
    run_stage,
    set_rows,
    stage_commands,
    train_seconds_by,
)


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    env, commands = project_env(), stage_commands()
    rows = {"50 rows (default)": None, "10^7 rows": 7}
    print(
        f"{'train stage, median of ' + str(rounds):<30}{'nproc 1':>10}{'nproc 2':>10}{'ratio':>8}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        project = make_project(Path(tmp), env)
        for label, power in rows.items():
            if power is not None:
                set_rows(project, power)
            for stage in ("generate", "split"):
                run_stage(commands[stage], project, env)
            seconds = train_seconds_by(project, env, "nproc", [1, 2], rounds)
            one, two = seconds[1], seconds[2]
            print(f"{label:<30}{one:>9.2f}s{two:>9.2f}s{two / one:>8.2f}")
    print("at 50 rows the difference is the launcher's cost; nproc 1 pays none (no launcher)")


if __name__ == "__main__":
    main()
