"""The one exception type a user is meant to read."""


class PipelineError(Exception):
    """A bad input (params, data file, checkpoint, device): its message is one line
    naming the key or file, the bad value and what is allowed."""
