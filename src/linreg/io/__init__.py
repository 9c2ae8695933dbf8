"""Every artifact read and written: CSV tables a block of rows at a time, checkpoints and resume
points, JSON, and the atomic writes under them all. It imports the core, never the runtime."""
