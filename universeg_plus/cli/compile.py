"""``universeg-plus compile``: build (or load from the cache) a TVM-compiled model; ``--check`` parity."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

COMMAND = "compile"
HELP = "compile a model with Apache TVM (levels O0..O3) into the local cache; --check compares with PyTorch"
DESCRIPTION = (
    "Export a model's split form with torch.export, compile it with Apache TVM at an optimisation "
    "level (O0 no fusion, O1 default pipeline, O2 + host CPU codegen and rule-based conv/elementwise "
    "schedules, no tuning, O3 + MetaSchedule database from `universeg-plus tune`) and store the "
    "library in the cache, so the next compile (and Predictor(model, backend='tvm')) loads it in under a second. "
    "Example: universeg-plus compile universeg-v1 --pretrained --level O2 --support-size any --check"
)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Model and shape arguments shared by ``compile`` and ``tune``."""
    parser.add_argument("model", help="registered variant (universeg-plus models) or a weights folder")
    parser.add_argument("--pretrained", action="store_true", help="load the variant's published weights")
    parser.add_argument("--image-size", type=int, nargs=2, metavar=("H", "W"), help="default: the model's input size")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument(
        "--target",
        default=None,
        help='TVM target as JSON, e.g. \'{"kind": "llvm", "mcpu": "znver4", "num-cores": 8}\' (default: this CPU)',
    )
    parser.add_argument("--tuning-dir", default=None, help="MetaSchedule database folder (default: <cache>/tvm/tuning)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument("--level", default="O2", choices=("O0", "O1", "O2", "O3"))
    parser.add_argument(
        "--support-size", default="any", help="static S, or 'any' for one module serving every S (default)"
    )
    parser.add_argument("--cache-dir", default=None, help="compiled-library cache (default: ~/.cache/universeg_plus/tvm)")
    parser.add_argument("--check", action="store_true", help="compare with eager PyTorch fp32 (max |delta logit| <= 1e-4)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def load_model(args: argparse.Namespace):
    """The model named by ``args.model`` (a registered name or a weights folder; :func:`universeg_plus.factory.load_model`)."""
    from ..factory import load_model as build

    return build(args.model, pretrained=True if args.pretrained else None if Path(args.model).is_dir() else False)


def parse_support_size(text: str) -> int | None:
    """``"any"`` -> ``None``; a positive integer string -> int."""
    if text.lower() in ("any", "none"):
        return None
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"--support-size must be a positive integer or 'any', got {text!r}")
    return int(text)


def run(args: argparse.Namespace) -> int:
    from ..backends import compile as compile_model
    from ..backends.parity import check_parity

    model = load_model(args).eval()
    target = json.loads(args.target) if args.target and args.target.strip().startswith("{") else args.target
    compiled = compile_model(
        model,
        level=args.level,
        support_size=parse_support_size(args.support_size),
        image_size=tuple(args.image_size) if args.image_size else None,  # None: the model's input size
        batch_size=args.batch_size,
        target=target,
        cache_dir=args.cache_dir,
        tuning_dir=args.tuning_dir,
    )
    result = {
        "level": compiled.level,
        "target": json.loads(compiled.target),
        "batch_size": compiled.batch_size,
        "support_size": compiled.support_size,
        "image_size": list(compiled.image_size),
        "library": str(compiled.library_path),
        "from_cache": compiled.from_cache,
        "seconds": round(compiled.compile_seconds, 3),
    }
    ok = True
    if args.check:
        report = check_parity(compiled, model)
        result["parity"] = {"max_abs_diff": report.max_abs_diff, "tolerance": report.tolerance, "ok": report.ok}
        ok = report.ok
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{'loaded' if compiled.from_cache else 'compiled'} {compiled!r} in {compiled.compile_seconds:.2f} s")
        print(f"library {compiled.library_path}")
        if args.check:
            for case, d in result["parity"]["max_abs_diff"].items():
                print(f"parity {case}: max |delta logit| = {d:.2e}")
            print(f"parity {'OK' if ok else 'FAILED'} (tolerance {report.tolerance:g})")
    return 0 if ok else 1
