"""One rank's read of its part of the train and test sets, in a fresh process: the wall and cpu
seconds, the growth of the process's peak RSS (VmHWM) over its peak after the imports, and the
train rows read, as a JSON list (bench/distributed.py runs several at once).

    python -m harness.read_part DATA PART PARTS
"""

import json
import sys
import time
from pathlib import Path

from linreg.io.datasets import read_split


def peak() -> int:
    status = Path("/proc/self/status").read_text().splitlines()
    return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))


if __name__ == "__main__":
    data, part, parts = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    before, start, cpu = peak(), time.perf_counter(), time.process_time()
    train, test = read_split(data / "train.csv", data / "test.csv", part, parts)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(json.dumps([seconds, cpu, peak() - before, len(train)]))
