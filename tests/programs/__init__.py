"""Programs the tests run in processes of their own (a stage's signals, kills and exits, ranks
forked as the train stage forks them): real modules that ruff checks, each run as
`python -m tests.programs.NAME` (harness.project.run_module), or a shell script by its path."""
