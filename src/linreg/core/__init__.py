"""The lesson: params, the dataset, the model, the loss and the loop, evaluation and the figures.
Pure: nothing here opens a file or starts a process (linreg.io and linreg.runtime do that, and
nothing here imports them; tests/test_stage_imports.py checks it)."""
