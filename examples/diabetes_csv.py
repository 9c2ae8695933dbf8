"""Write scikit-learn's diabetes data set as a CSV file for `generate.source` (README: Your own
data): 442 patients, ten features in their own units (age in years, bmi, blood pressure, six
blood serum measurements) and the target, a measure of disease progression one year later.
The data ships with scikit-learn (a test dependency of this project): no download.

    python examples/diabetes_csv.py data/external/diabetes.csv
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from sklearn.datasets import load_diabetes

TARGET = "progression"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="CSV file to write")
    out = parser.parse_args().out

    data = load_diabetes(scaled=False)  # the original units, not sklearn's pre-scaled copy
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow([*data.feature_names, TARGET])
        for row, target in zip(data.data.tolist(), data.target.tolist(), strict=True):
            writer.writerow([*map(str, row), str(target)])  # shortest text, exact
    print(
        f"{out}: {len(data.target)} rows; features {', '.join(data.feature_names)}; target {TARGET}"
    )


if __name__ == "__main__":
    main()
