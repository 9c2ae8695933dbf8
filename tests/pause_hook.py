"""Copied into a test project as src/sitecustomize.py: the stages run with src on PYTHONPATH,
so Python imports it before a stage's own code. It lets a test stop a training run at an
epoch it chooses, whatever the machine's speed, instead of at a moment it hopes for.

With LINREG_PAUSE="SAVE_AT PAUSE_AT FLAG" in the environment of the train stage (its ranks
inherit it), the run saves a resume point at the end of epoch SAVE_AT (0-based; -1: none
besides its own), and at the end of epoch PAUSE_AT, before that epoch's resume point, it
creates the file FLAG and waits until FLAG is gone: the test kills it there, or stops it and
removes FLAG to let it go on (once FLAG.stopped says that the stop it sent has come, and is
held to the epoch's end). A run that reaches PAUSE_AT while the file FLAG.done exists goes on
without pausing: the test creates it before it lets a paused run go, so that the workers
torchrun restarts, resuming from an earlier epoch, do not pause there again.

It does so as a subclass of the stage's TrainingRun, through the two methods TrainingRun
documents for it (end_of_epoch, resume_point_due), put in its place before the stage imports
it.
"""

import os
import sys

if "LINREG_PAUSE" in os.environ and sys.argv[0].endswith("stages/train.py"):
    import time
    from pathlib import Path

    import linreg.runtime.training_run as training_run

    save_at, pause_at, flag = os.environ["LINREG_PAUSE"].split(" ", 2)

    class PausingRun(training_run.TrainingRun):
        def end_of_epoch(self, epoch, losses, state):  # type: ignore[no-untyped-def]
            if epoch == int(pause_at) and not Path(f"{flag}.done").exists():
                Path(flag).touch()
                while Path(flag).exists():
                    if self.held_stop:  # a stop has reached this process, and is held
                        Path(f"{flag}.stopped").touch()
                    time.sleep(0.01)
            super().end_of_epoch(epoch, losses, state)

        def resume_point_due(self, epoch, elapsed):  # type: ignore[no-untyped-def]
            return super().resume_point_due(epoch, elapsed) or epoch == int(save_at)

    training_run.TrainingRun = PausingRun  # type: ignore[misc]
