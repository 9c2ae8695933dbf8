"""The experiment tooling above the pipeline: compare a revision with the workspace, sweep a
grid of experiments, and the reports they write. It imports the pipeline library (linreg);
the library never imports it."""
