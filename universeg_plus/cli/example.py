"""``universeg-plus example``: few-shot segmentation of the bundled example tasks, scored by Dice."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ._device import add_device_argument

COMMAND = "example"
HELP = "segment the bundled example tasks from a few of their slices and report Dice"
DESCRIPTION = """\
For each bundled task (examples/data/<task>/{images,masks}), take K evenly spaced examples as the
support set and segment the others; print the Dice of every target against its known mask (mean over
the task's labels) and the mean per task, and write overlay PNGs to --out: prediction and reference
side by side, enlarged to at least 384 px, with titles, the Dice and a legend of the label names.
Without pretrained weights for --model the network is random and the scores are meaningless.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..registry import default_model_name

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "--model", default=default_model_name(), metavar="NAME",
        help="registered model name; pretrained weights are used when declared (default: %(default)s, the "
        "best model with pretrained weights, see `universeg-plus models`)",
    )
    parser.add_argument(
        "--support-size", type=int, default=5, metavar="K",
        help="labelled examples per task used as the support set; the rest are targets (default: 5)",
    )
    parser.add_argument(
        "--out", default="example_output", metavar="DIR",
        help="folder for the overlay PNGs, one subfolder per task (default: example_output)",
    )
    parser.add_argument(
        "--data", default=None, metavar="DIR",
        help="folder of tasks, each with images/ and masks/ (default: the repository's examples/data)",
    )
    add_device_argument(parser)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..data.examples import default_examples_dir
    from ..devices import resolve_device
    from ..io.overlays import overlay_figure
    from ..io.images import file_stem, list_image_files, read_image, write_png
    from ..io.json_files import read_label_names
    from ..metrics import dice
    from ..predictor import Predictor
    from ..factory import create_model
    from ..registry import PRETRAINED
    from ..support import SupportSet

    data = Path(args.data) if args.data else default_examples_dir()
    if data is None or not data.is_dir():
        raise FileNotFoundError(
            f"example data folder not found: {data or 'examples/data of a repository checkout'} (pass --data DIR)"
        )
    tasks = sorted(p for p in data.iterdir() if (p / "images").is_dir() and (p / "masks").is_dir())
    if not tasks:
        raise ValueError(f"no task folders with images/ and masks/ in {data}")
    if args.support_size < 1:
        raise ValueError(f"--support-size must be >= 1, got {args.support_size}")
    name = args.model
    model = create_model(name, pretrained="auto")
    if name not in PRETRAINED:
        print(
            f"WARNING: no pretrained weights are declared for {name!r}: the network is randomly "
            "initialised and the Dice scores below are meaningless.",
            file=sys.stderr,
        )
    print(f"model: {name} ({'pretrained weights' if name in PRETRAINED else 'random weights'})")
    predictor = Predictor(model, device=resolve_device(args.device))
    out = Path(args.out)
    task_means = []
    for task in tasks:
        files = list_image_files(task / "images")
        masks = {file_stem(p): p for p in list_image_files(task / "masks")}
        if len(files) <= args.support_size:
            raise ValueError(f"task {task.name} has {len(files)} examples; --support-size must be below that")
        pick = sorted(set(np.linspace(0, len(files) - 1, args.support_size).round().astype(int).tolist()))
        support_files = [files[i] for i in pick]
        targets = [f for i, f in enumerate(files) if i not in pick]
        support = SupportSet.from_paths(
            support_files, [masks[file_stem(f)] for f in support_files], size=predictor.input_size
        )
        predictor.set_support(support)
        names = read_label_names(task)
        scores = []
        for target in targets:
            image = read_image(target)
            ref = read_image(masks[file_stem(target)])
            pred = predictor.predict(image)
            per_class = [float(dice(pred.mask == c, ref == c)) for c in pred.classes]
            scores.append(float(np.mean(per_class)))
            detail = ", ".join(f"{names.get(c, f'label {c}')} {d:.3f}" for c, d in zip(pred.classes, per_class))
            print(f"{task.name}/{target.name}: dice={scores[-1]:.3f} ({detail})")
            legend = {
                c: f"{names.get(c, f'label {c}')} (Dice {d:.2f})" for c, d in zip(pred.classes, per_class)
            }
            figure = overlay_figure(
                image, [(f"prediction, Dice {scores[-1]:.3f}", pred.mask), ("reference", ref)], legend
            )
            write_png(out / task.name / f"{file_stem(target)}_overlay.png", figure)
        task_means.append(float(np.mean(scores)))
        print(f"{task.name}: mean dice {task_means[-1]:.3f} over {len(targets)} targets (support {len(support)})")
    print(f"mean dice over {len(tasks)} tasks: {float(np.mean(task_means)):.3f}; overlays in {out}")
    try:  # a path the user can type from here
        shown = tasks[0].resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        shown = tasks[0]
    print(
        f"next, your own images: universeg-plus segment --support {shown} --target IMAGE_OR_FOLDER "
        "--out predictions --overlay  (--support: a folder with images/ and masks/)"
    )
    return 0
