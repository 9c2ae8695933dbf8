"""Processes: the stages' entry point, the watch on the parent process, signals held to an
epoch's end, the training run's machinery around the loop, the launcher of the ranks and the
forensics of a failed one. It imports the core and the I/O layer; neither imports it."""
