"""Run the robustness study from Python and print the summary.

    python examples/robustness_study.py                      # the bundled example grid
    python examples/robustness_study.py --set severities=[5] --set backends=[eager]
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from universeg_plus.robustness import load_study_config, run_study


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(Path(__file__).with_name("robustness_study.yaml")))
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    config = load_study_config(args.config, args.overrides)
    result = run_study(config)  # resumable: rerunning skips rows already in results.csv
    print(f"{result.rows_written} new rows -> {result.csv_path}")
    for backend, why in result.skipped_backends.items():
        print(f"skipped {backend}: {why}")
    print((Path(config.out_dir) / "summary.md").read_text())


if __name__ == "__main__":
    main()
