"""Train the series' CNN with the default settings on MNIST and Fashion-MNIST; print accuracy and time.

Targets (issue 3): MNIST test accuracy >= 99.4 % in <= 10 minutes on 2 CPU cores.

    python bench/bench_train.py [--datasets mnist,fashion-mnist] [--epochs N] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from oipscope.model.cnn import TrainConfig, train  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="mnist,fashion-mnist")
    parser.add_argument("--epochs", type=int, default=TrainConfig().epochs)
    parser.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="oipscope-bench-")))
    args = parser.parse_args()
    rows = []
    for name in args.datasets.split(","):
        result = train(TrainConfig(dataset=name, epochs=args.epochs), args.out / f"{name}.keras")
        rows.append({"dataset": name, "test_accuracy": round(result.test_accuracy, 4),
                     "best_val_accuracy": round(result.best_val_accuracy, 4),
                     "train_seconds": round(result.seconds, 1), "epochs": args.epochs,
                     "cores": os.cpu_count()})
        print(json.dumps(rows[-1]), flush=True)
    print(f"{'dataset':<15}{'test acc':>10}{'seconds':>10}{'  target'}")
    for row in rows:
        target = "  >= 0.994 in <= 600 s" if row["dataset"] == "mnist" else ""
        print(f"{row['dataset']:<15}{row['test_accuracy']:>10.4f}{row['train_seconds']:>10.1f}{target}")


if __name__ == "__main__":
    main()
