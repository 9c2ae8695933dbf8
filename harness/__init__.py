"""What the tests and the benchmarks share: projects in temporary git repos, the environment to
run them in, the lesson's data, ranks on parts of it, and the checks of a GPU machine."""
