"""``universeg-plus evaluate``: Dice and other metrics on held-out tasks at several S, vs a per-task U-Net."""

from __future__ import annotations

import argparse
import shlex

from ._device import add_device_argument

COMMAND = "evaluate"
HELP = "evaluate on held-out tasks at S in {1, 4, 16, 64} (CSV + markdown), optionally vs a per-task U-Net"
DESCRIPTION = (
    "Per held-out task and label: fixed seeded targets, support sets drawn from the other pairs, Dice/IoU/"
    "sensitivity/specificity/HD95 at each support size, with and without ensembling, and optionally a U-Net "
    "trained from scratch on the same support set (--baseline), and the model adapted to each support set "
    "(--adapt-steps N), also on native-resolution windows with tiled prediction (--adapt-tiled). Every method "
    "sees what a Predictor user gets: the task files at their own size "
    "through SupportSet/Predictor, scored at native resolution. Refuses tasks the weights were trained on. "
    "Example: universeg-plus evaluate --model universeg-v1 --weights runs/v1/best "
    "--data-root /data/tasks --baseline --out eval/v1"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="registered variant (universeg-plus models)")
    src = parser.add_mutually_exclusive_group()
    src.add_argument(
        "--weights", metavar="DIR", help="weights folder: model.safetensors + config.json (+ training.json)"
    )
    src.add_argument("--pretrained", action="store_true", help="load the shipped/hub weights of --model")
    data = parser.add_mutually_exclusive_group(required=True)
    data.add_argument("--data-root", metavar="PATH", help="folder of task folders (<task>/images, <task>/masks)")
    data.add_argument("--tasks-file", metavar="PATH", help="task file from `universeg-plus train --export-tasks`")
    parser.add_argument(
        "--tasks",
        nargs="+",
        metavar="TASK",
        help="datasets or <dataset>/<label> tasks to evaluate (default: the held-out validation datasets)",
    )
    parser.add_argument("--support-sizes", nargs="+", type=int, default=[1, 4, 16, 64], metavar="S")
    parser.add_argument("--targets", type=int, default=10, help="targets per task (at most half its pairs)")
    parser.add_argument("--ensemble", type=int, default=5, help="support sets averaged for the ensemble rows (1: off)")
    parser.add_argument(
        "--ensemble-max-support", type=int, default=16, metavar="S", help="ensemble rows only for S up to this"
    )
    parser.add_argument("--baseline", action="store_true", help="also train and evaluate the per-task U-Net")
    parser.add_argument(
        "--baseline-support-sizes",
        nargs="+",
        type=int,
        metavar="S",
        help="train the U-Net only for these of --support-sizes (default: all; one U-Net per task and S)",
    )
    parser.add_argument("--baseline-steps", type=int, default=300, help="U-Net training steps per (task, S)")
    parser.add_argument(
        "--baseline-prior",
        action="store_true",
        help="also train the U-Net with UniverSeg's probabilities as a second input channel (rows 'U-Net + UniverSeg prior')",
    )
    parser.add_argument("--baseline-width", type=int, default=8, help="U-Net channels at the first level")
    parser.add_argument(
        "--adapt",
        action="store_true",
        help="also adapt a copy of the model to each support set (rows 'UniverSeg + adapt'), default budget",
    )
    parser.add_argument(
        "--adapt-steps", type=int, default=None, metavar="N", help="adaptation steps (implies --adapt)"
    )
    parser.add_argument("--adapt-lr", type=float, default=None, help="adaptation learning rate (default: AdaptConfig)")
    parser.add_argument(
        "--adapt-parts", choices=["all", "decoder", "encoder", "last"], default=None, help="what adaptation tunes"
    )
    parser.add_argument(
        "--adapt-support-sizes", nargs="+", type=int, metavar="S", help="adapt only for these of --support-sizes"
    )
    parser.add_argument(
        "--adapt-mix", action="store_true", help="also score the mean of adapted and un-adapted probabilities"
    )
    parser.add_argument(
        "--adapt-tiled", action="store_true",
        help="also adapt on native-resolution windows and predict tiled (rows 'UniverSeg + adapt, tiled'; "
        "thin and small structures; implies --adapt, same steps/lr/parts)",
    )
    parser.add_argument(
        "--samples",
        type=int,
        default=None,
        metavar="K",
        help="also draw K sampled masks per target (Predictor.predict(samples=K)) and report best-of-K / "
        "mean-of-K Dice, Dice of the mean, ECE over relevant pixels, boundary-band AUROC and per-image "
        "Spearman beside the single prediction, with the time (uncertainty.md/.csv)",
    )
    parser.add_argument(
        "--uncertainty",
        choices=["error", "entropy", "disagreement"],
        default="error",
        help="uncertainty map scored with --samples: the calibrated probability that the mask is wrong "
        "(default), the entropy of the calibrated mean, or sample disagreement",
    )
    parser.add_argument(
        "--adapt-unet", action="store_true",
        help="also score the mean of the adapted model's and the U-Net's probabilities (needs --adapt and --baseline)",
    )
    parser.add_argument(
        "--auto", action="store_true",
        help="also score method='auto' (leave-one-out choice on the support set among every method; where the "
        "U-Net runs; the adaptation and U-Net settings above)",
    )
    parser.add_argument("--auto-folds", type=int, default=4, help="held-out support examples of auto's choice")
    parser.add_argument("--auto-budget", type=float, default=None, metavar="SECONDS", help="auto's time budget")
    parser.add_argument(
        "--unet-equal-time", action="store_true",
        help="also train the U-Net for the wall time of the best other method (rows 'U-Net, equal wall time')",
    )
    parser.add_argument(
        "--colour", "--color", nargs="+", choices=["fisher", "auto"], default=[], metavar="PROJECTION",
        help="also score the in-context model with the support set's colour projection (fisher and/or auto, "
        "Predictor.set_support(colour=...); rows 'UniverSeg, colour: ...'); RGB task files only, a grey task's "
        "rows equal the plain UniverSeg rows",
    )
    parser.add_argument(
        "--resolution",
        choices=["native", "stored"],
        default="native",
        help="score at each image's own size (native, what a Predictor user gets) or at the model input size "
        "(stored; always so with --tasks-file)",
    )
    parser.add_argument("--seed", type=int, default=0, help="protocol seed (targets, supports, baseline)")
    parser.add_argument("--batch-size", type=int, default=8, help="targets per forward pass")
    add_device_argument(parser)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.add_argument("--out", metavar="DIR", help="output folder (default: eval/<model>)")
    parser.add_argument(
        "--model-card", metavar="PATH", help="also write a model card for --weights (e.g. DIR/README.md)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _command(args: argparse.Namespace) -> str:
    parts = ["universeg-plus", "evaluate", "--model", args.model]
    if args.weights:
        parts += ["--weights", args.weights]
    if args.pretrained:
        parts.append("--pretrained")
    parts += ["--data-root", args.data_root] if args.data_root else ["--tasks-file", args.tasks_file]
    if args.tasks:
        parts += ["--tasks", *args.tasks]
    parts += ["--support-sizes", *map(str, args.support_sizes), "--targets", str(args.targets)]
    parts += ["--ensemble", str(args.ensemble), "--ensemble-max-support", str(args.ensemble_max_support)]
    if args.baseline:
        parts += ["--baseline", "--baseline-steps", str(args.baseline_steps)]
        parts += ["--baseline-width", str(args.baseline_width)]
        if args.baseline_support_sizes:
            parts += ["--baseline-support-sizes", *map(str, args.baseline_support_sizes)]
        if args.baseline_prior:
            parts.append("--baseline-prior")
    if args.adapt or args.adapt_steps or args.adapt_tiled:
        parts.append("--adapt")
        if args.adapt_steps is not None:
            parts += ["--adapt-steps", str(args.adapt_steps)]
        if args.adapt_lr is not None:
            parts += ["--adapt-lr", repr(args.adapt_lr)]
        if args.adapt_parts:
            parts += ["--adapt-parts", args.adapt_parts]
        if args.adapt_support_sizes:
            parts += ["--adapt-support-sizes", *map(str, args.adapt_support_sizes)]
        if args.adapt_mix:
            parts.append("--adapt-mix")
        if args.adapt_tiled:
            parts.append("--adapt-tiled")
    if args.samples:
        parts += ["--samples", str(args.samples)]
        if args.uncertainty != "error":
            parts += ["--uncertainty", args.uncertainty]
    if args.adapt_unet:
        parts.append("--adapt-unet")
    if args.auto:
        parts += ["--auto", "--auto-folds", str(args.auto_folds)]
        if args.auto_budget is not None:
            parts += ["--auto-budget", repr(args.auto_budget)]
    if args.unet_equal_time:
        parts.append("--unet-equal-time")
    if args.colour:
        parts += ["--colour", *args.colour]
    if args.resolution != "native":
        parts += ["--resolution", args.resolution]
    parts += ["--seed", str(args.seed)]
    return shlex.join(parts)


def run(args: argparse.Namespace) -> int:
    import logging
    import time
    from pathlib import Path

    import torch

    from ..adapt import AdaptConfig
    from ..devices import resolve_device
    from ..data.tasks import DEFAULT_VAL_TASKS, TaskCollection, load_task_root
    from ..evaluation import (
        BaselineConfig,
        EvalSettings,
        check_held_out,
        evaluate,
        native_tasks,
        read_training_info,
        summarize,
        write_model_card,
        write_report,
    )
    from ..evaluation.report import markdown_table, timing_table
    from ..factory import load_model
    from ..registry import get_config

    log = logging.getLogger("universeg_plus.evaluate")
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    if args.model_card and not args.weights:
        raise ValueError("--model-card needs --weights DIR (the card describes the files in that folder)")
    device = str(resolve_device(args.device))
    if args.samples is not None and args.samples < 2:
        raise ValueError(f"--samples must be >= 2 (K sampled masks), got {args.samples}")
    adapting = args.adapt or args.adapt_steps is not None or args.adapt_tiled
    if args.adapt_steps is not None and args.adapt_steps < 1:
        raise ValueError(f"--adapt-steps must be >= 1, got {args.adapt_steps}")
    extras = args.adapt_lr is not None or args.adapt_parts or args.adapt_support_sizes or args.adapt_mix
    if extras and not adapting:
        raise ValueError("--adapt-lr/--adapt-parts/--adapt-support-sizes/--adapt-mix need --adapt or --adapt-steps N")
    adapt_options = {
        k: v for k, v in (("steps", args.adapt_steps), ("lr", args.adapt_lr), ("parts", args.adapt_parts)) if v is not None
    }
    settings = EvalSettings(
        support_sizes=tuple(args.support_sizes),
        num_targets=args.targets,
        ensemble=args.ensemble,
        ensemble_max_support=args.ensemble_max_support,
        batch_size=args.batch_size,
        seed=args.seed,
        baseline=args.baseline,
        baseline_config=BaselineConfig(steps=args.baseline_steps, width=args.baseline_width),
        baseline_support_sizes=tuple(args.baseline_support_sizes) if args.baseline_support_sizes else None,
        baseline_prior=args.baseline_prior,
        adapt=AdaptConfig(**adapt_options) if adapting else None,
        adapt_support_sizes=tuple(args.adapt_support_sizes) if args.adapt_support_sizes else None,
        adapt_mix=args.adapt_mix,
        adapt_tiled=args.adapt_tiled,
        adapt_unet=args.adapt_unet,
        auto=args.auto,
        auto_folds=args.auto_folds,
        auto_budget_s=args.auto_budget,
        unet_equal_time=args.unet_equal_time,
        colour=tuple(args.colour),
    )

    # the model and what it was trained on
    weights_dir = None
    registered = get_config(args.model)  # unknown name -> ValueError listing the valid ones
    if args.weights:
        weights_dir = Path(args.weights)
        model = load_model(weights_dir)
        if model.config != registered:
            log.warning("%s: config differs from the registered %s: %s", weights_dir, args.model, model.config)
    elif args.pretrained:
        from ..hub import resolve_pretrained_files
        from ..registry import PRETRAINED

        model = load_model(args.model, pretrained=True)
        weights_dir = resolve_pretrained_files(PRETRAINED[args.model], model_cls=type(model))[0].parent  # training.json ships there
    else:
        log.warning("no --weights or --pretrained: evaluating a randomly initialised %s", args.model)
        model = load_model(args.model, pretrained=False)
    info = read_training_info(weights_dir)
    if weights_dir is not None and info is None:
        log.warning("%s has no training.json: cannot verify that the tasks were held out", weights_dir)
    source = f"the weights in {weights_dir}" if weights_dir else "the weights"
    size = tuple(model.config.input_size)

    # the tasks
    requested = args.tasks
    if requested:
        check_held_out([(t, t.split("/", 1)[0]) for t in requested], info, source)
        datasets = sorted({t.split("/", 1)[0] for t in requested})
    if args.tasks_file:
        coll = TaskCollection.load(args.tasks_file)
        wrong = sorted({t.name for t in coll if t.size != size})
        if wrong:
            raise ValueError(f"{args.tasks_file} holds tasks not at the model's input size {size}: {wrong[:3]}")
        if not requested:
            datasets = [d for d in DEFAULT_VAL_TASKS if d in set(coll.datasets)]
    else:
        root = Path(args.data_root)
        if not root.is_dir():
            raise FileNotFoundError(f"--data-root {root} does not exist")
        if not requested:
            datasets = [d for d in DEFAULT_VAL_TASKS if (root / d / "images").is_dir()]
        coll = None
    if not requested and not datasets:
        where = args.tasks_file or args.data_root
        raise ValueError(f"none of the held-out datasets {', '.join(DEFAULT_VAL_TASKS)} is in {where}; pass --tasks")
    if coll is None:
        coll = load_task_root(args.data_root, size, include=datasets)
    tasks = coll.filter(include=list(requested) if requested else datasets)
    if requested:
        found = {t.name for t in tasks} | {t.dataset for t in tasks}
        missing = sorted(set(requested) - found)
        if missing:
            raise ValueError(f"unknown task(s) {missing}; available: {', '.join(coll.names)}")
    check_held_out([(t.name, t.dataset) for t in tasks], info, source)
    if args.data_root and args.resolution == "native":
        tasks = native_tasks(tasks, args.data_root)  # the same pairs, read back from the files

    command = _command(args)
    run_info = {
        "model": args.model,
        "weights": str(weights_dir) if weights_dir else ("shipped/hub" if args.pretrained else "random init"),
        "device": device if device != "cpu" else f"cpu, {torch.get_num_threads()} thread(s)",
        "command": f"`{command}`",
    }
    t0 = time.time()
    result = evaluate(model, tasks, settings, device=device, progress=not args.no_progress, info=run_info)
    wall = time.time() - t0
    out = Path(args.out) if args.out else Path("eval") / args.model
    paths = write_report(result, out)
    if len(set(settings.support_sizes)) > 1:
        from ..evaluation.curves import write_curves

        try:
            title = f"{args.model}, {len(tasks)} task(s)"
            paths.update(write_curves(summarize(result.records), result.timings, out, title))
        except ImportError as exc:  # matplotlib is optional: results.md holds the numbers
            log.warning("learning curves not plotted: %s", exc)
    print(markdown_table(summarize(result.records)), end="")
    print("\nwall time per task (s):\n" + timing_table(result.timings), end="")
    print(f"evaluated {len(tasks)} task(s) in {wall:.1f} s; wrote {', '.join(str(p) for p in paths.values())}")
    if args.samples:
        from ..evaluation.uncertainty import evaluate_uncertainty, write_uncertainty_report
        from ..uncertainty import model_calibration

        calibration = model_calibration(model)
        images = evaluate_uncertainty(
            model, tasks, settings.support_sizes, args.samples, settings.num_targets, settings.threshold,
            settings.seed, not args.no_progress, device, calibration,
        )
        header = (
            f"Sampling and uncertainty, K = {args.samples}, {run_info['device']}; calibration: "
            f"{'stored with the weights' if calibration else 'none'}; uncertainty: {args.uncertainty}. "
            f"Command: `{command}`\n"
        )
        report = write_uncertainty_report(images, args.samples, out, calibration, args.uncertainty, header)
        print(report["markdown"], end="")
        print(f"wrote {', '.join(str(p) for p in report['paths'].values())}")
    if args.model_card:
        card = write_model_card(
            weights_dir,
            summarize(result.records),
            data_root=args.data_root,
            out=args.model_card,
            eval_command=command,
            model_name=args.model,
        )
        print(f"wrote model card {card}")
    return 0
