"""``hdlgen train``: train a recipe with :mod:`hdlgen.nn.loop` (Adam, cosine learning rate,
latent weights kept in [-1, 1]). A resumable checkpoint (model, optimizer, the loop's position
and generator state) is written every few minutes and after every epoch; the final checkpoint
holds the model alone, with the golden model's accuracy on the whole test set.

Deterministic for a given seed on CPU: the initial weights come from ``torch.manual_seed(seed)``
and the loop is exact on resume, so a resumed run ends with the same weights as an
uninterrupted one. On CPU one torch thread is the default: on a machine with other work it
trains about twice as fast as two.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import torch

from ..errors import HdlgenError
from . import distributed
from .checkpoint import make_checkpoint, read_checkpoint, save_checkpoint, source_revision
from .data import dataset_classes, dataset_names, default_augmentation, load_dataset
from .evaluate import _device
from .loop import accuracy, train_epochs
from .recipes import build_model, load_recipe

DEFAULT_BATCH = 128
DEFAULT_LR = 1e-2
DEFAULT_SEED = 0
DEFAULT_EVAL_IMAGES = 1000
DEFAULT_CHECKPOINT_MINUTES = 10.0


def set_threads(threads: int | None, device) -> int:
    """Use ``threads`` torch threads (default: 1 on CPU); returns the number in use."""
    if threads is None:
        threads = 1 if torch.device(device).type == "cpu" else torch.get_num_threads()
    if threads < 1:
        raise HdlgenError(f"--threads must be at least 1, not {threads}")
    torch.set_num_threads(threads)
    return threads


def add_run_arguments(p):
    """Options of every long training command (train, compress)."""
    p.add_argument("--log-every", type=int, default=100, help="progress line every N batches (0: none)")
    p.add_argument("--amp", action="store_true",
                   help="bfloat16 autocast in the forward pass (for CUDA; the exported integer model "
                        "is derived from float32 weights and statistics as without it)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads (default 1 on CPU: faster than two while anything else runs)")
    p.add_argument("--eval-images", type=int, default=DEFAULT_EVAL_IMAGES,
                   help=f"test images evaluated after each epoch (default {DEFAULT_EVAL_IMAGES}; the whole "
                        "test set is evaluated at the end)")
    p.add_argument("--checkpoint-minutes", type=float, default=DEFAULT_CHECKPOINT_MINUTES,
                   help=f"write the resumable checkpoint this often within an epoch (default "
                        f"{DEFAULT_CHECKPOINT_MINUTES:g}; it is also written after every epoch)")
    return p


def add_train_arguments(p):
    p.add_argument("recipe", help="recipe name (a file in models/)")
    p.add_argument("--data", required=True, help="folder holding the dataset files")
    p.add_argument("--dataset", required=True, choices=dataset_names())
    p.add_argument("--epochs", type=int, required=True)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--out", required=True, help="checkpoint file to write")
    p.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    p.add_argument("--force", action="store_true", help="overwrite an existing --out")
    p.add_argument("--batch-size", type=int, default=None, help=f"default {DEFAULT_BATCH}")
    p.add_argument("--lr", type=float, default=None, help=f"peak learning rate, default {DEFAULT_LR}")
    p.add_argument("--seed", type=int, default=None, help=f"default {DEFAULT_SEED}")
    p.add_argument("--config", default=None, help="JSON object overriding recipe options")
    p.add_argument("--log", default=None, help="also append the log to this file")
    p.add_argument("--name", default=None, help="model name stored in the checkpoint")
    return add_run_arguments(p)


def _command(args, batch, lr, seed) -> str:
    parts = ["python", "-m", "hdlgen", "train", args.recipe, "--data", str(args.data), "--dataset",
             args.dataset, "--epochs", str(args.epochs), "--device", args.device, "--out", str(args.out),
             "--batch-size", str(batch), "--lr", repr(lr), "--seed", str(seed)]
    if args.config:
        parts += ["--config", args.config]
    return " ".join(shlex.quote(p) for p in parts)


def train_parser(prog: str = "hdlgen train") -> argparse.ArgumentParser:
    return add_train_arguments(argparse.ArgumentParser(
        prog=prog, description="Train a binarized recipe from models/ and save a checkpoint."))


def cli_train(args) -> int:
    """Run the ``train`` command; ``args`` is a parsed namespace or the argument list."""
    if isinstance(args, (list, tuple)):
        args = train_parser().parse_args(list(args))
    out = Path(args.out)
    device = _device(args.device)
    if args.epochs < 1:
        raise HdlgenError(f"--epochs must be at least 1, not {args.epochs}")
    if args.eval_images < 0 or not args.checkpoint_minutes >= 0:
        raise HdlgenError(f"--eval-images and --checkpoint-minutes must not be negative "
                          f"({args.eval_images}, {args.checkpoint_minutes})")
    set_threads(args.threads, device)
    group = distributed.current()
    logfile = open(args.log, "a") if getattr(args, "log", None) and group.main else None

    def log(line):
        if not group.main:
            return
        print(line, flush=True)
        if logfile:
            logfile.write(line + "\n")
            logfile.flush()

    try:
        return _cli_train(args, out, device, log, group)
    finally:
        if logfile:
            logfile.close()
        distributed.close()


def _cli_train(args, out: Path, device, log, group) -> int:
    overrides = {}
    if args.config:
        try:
            overrides = json.loads(args.config)
        except json.JSONDecodeError as e:
            raise HdlgenError(f"--config is not valid JSON: {e}") from None
        if not isinstance(overrides, dict):
            raise HdlgenError("--config must be a JSON object such as '{\"hidden\": [64, 64]}'")
    resume = None
    if args.resume:
        if not out.exists():
            raise HdlgenError(f"--resume: {out} does not exist")
        resume = read_checkpoint(out)
        if "train_state" not in resume:
            raise HdlgenError(f"--resume: {out} holds a finished model without training state "
                              f"(trained {resume['meta'].get('epochs')} epochs); start a new run")
        if resume["recipe"] != args.recipe or resume["meta"].get("dataset") != args.dataset:
            raise HdlgenError(f"--resume: {out} was trained with recipe {resume['recipe']!r} on "
                              f"{resume['meta'].get('dataset')!r}, not {args.recipe!r} on {args.dataset!r}")
    elif out.exists() and not args.force:
        raise HdlgenError(f"{out} already exists; pass --resume to continue it or --force to overwrite it")

    state = resume["train_state"] if resume else {}
    batch = state.get("batch_size", args.batch_size or DEFAULT_BATCH)
    lr = state.get("lr", args.lr if args.lr is not None else DEFAULT_LR)
    seed = state.get("seed", args.seed if args.seed is not None else DEFAULT_SEED)
    for label, given, used in (("--batch-size", args.batch_size, batch), ("--lr", args.lr, lr),
                               ("--seed", args.seed, seed)):
        if resume and given is not None and given != used:
            log(f"note: resuming keeps {label} {used} of the saved run (ignoring {given})")
    if batch < 2:
        raise HdlgenError(f"--batch-size must be at least 2, not {batch}")
    if not lr > 0:
        raise HdlgenError(f"--lr must be positive, not {lr}")

    train_x, train_y = load_dataset(args.data, args.dataset, "train")
    test_x, test_y = load_dataset(args.data, args.dataset, "test")
    classes = dataset_classes(args.dataset)

    if resume:
        config = resume["config"]
    else:
        defaults = load_recipe(args.recipe).DEFAULTS
        config = {}
        if "input_shape" in defaults:
            config["input_shape"] = list(train_x.shape[1:])
        if "classes" in defaults:
            config["classes"] = len(classes)
        config.update(overrides)
    torch.manual_seed(seed)
    model, config = build_model(args.recipe, config)
    want = tuple(getattr(model, "input_shape", train_x.shape[1:]))
    if want != tuple(train_x.shape[1:]):
        raise HdlgenError(f"recipe {args.recipe!r} takes images {want} but {args.dataset} images are "
                          f"{tuple(train_x.shape[1:])}")
    if resume:
        model.load_state_dict(resume["state_dict"])
    start = state.get("epoch", 0)
    history = list(state.get("history", []))
    command = _command(args, batch, lr, seed)
    name = args.name or (out.parent.name if out.name == "checkpoint.pt" else out.stem)
    aug = default_augmentation(args.dataset)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"train {args.recipe} {json.dumps(config)} on {args.dataset}: {len(train_x)} train, "
        f"{len(test_x)} test images; {n_params} parameters")
    log(f"epochs {args.epochs}, batch {batch}, Adam lr {lr} (cosine), seed {seed}, device {device}, "
        f"{group.world} process(es), "
        f"augmentation pad {aug[0]} flip {aug[1]}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    log(f"command: {command}")
    if state.get("batch"):
        log(f"resuming epoch {start + 1} after batch {state['batch']} from {out}")
    elif start:
        log(f"resuming after epoch {start} from {out}")
        if state.get("epochs", args.epochs) != args.epochs:
            log(f"note: the saved run planned {state['epochs']} epochs; the cosine schedule now "
                f"spans {args.epochs}")
    if start >= args.epochs:
        log(f"nothing to do: {out} already has {start} of {args.epochs} epochs")
        return 0
    t_start = time.monotonic() - state.get("seconds", 0.0)

    def meta(epochs_done):
        last = history[-1] if history else {}
        return {
            "name": name, "recipe": args.recipe, "config": config,
            "dataset": args.dataset, "classes": classes,
            "accuracy": {"float": last.get("test_float"), "integer": last.get("test_integer")},
            "test_images": len(test_x), "epochs": epochs_done, "epochs_planned": args.epochs,
            "batch_size": batch, "lr": lr, "seed": seed, "augmentation": {"pad": aug[0], "flip": aug[1]},
            "command": command, "source_revision": source_revision(), "torch": str(torch.__version__),
            "train_seconds": round(time.monotonic() - t_start, 1), "history": history,
        }

    def save(position):
        train_state = dict(position, batch_size=batch, lr=lr, seed=seed, epochs=args.epochs,
                           seconds=time.monotonic() - t_start)
        save_checkpoint(make_checkpoint(model, args.recipe, config, meta(position["epoch"]), train_state), out)
        where = f"epoch {position['epoch']}" + (f", batch {position['batch']}" if position["batch"] else "")
        log(f"saved {out} ({where}, resumable)")

    def on_epoch(position, record):
        history.append(record)
        if position["epoch"] < args.epochs:
            save(position)

    eval_data = (test_x[:args.eval_images], test_y[:args.eval_images])
    train_epochs(model, (train_x, train_y), eval_data, epochs=args.epochs, batch_size=batch, lr=lr,
                 seed=seed, device=device, resume=state or None, aug=aug, log=log,
                 log_every=args.log_every, on_epoch=on_epoch, on_checkpoint=save,
                 checkpoint_seconds=60 * args.checkpoint_minutes, group=group, amp=args.amp)
    if not group.main:
        return 0

    model.to("cpu").eval()
    final = meta(args.epochs)
    log(f"evaluating all {len(test_x)} test images")
    final["accuracy"]["float"] = accuracy(model, test_x, test_y, float_reference=True)
    final["accuracy"]["integer"] = accuracy(model, test_x, test_y)
    if has_integer_form(model):
        final["accuracy"]["golden"] = _golden_accuracy(model, name, final, test_x, test_y)
    else:
        final["accuracy"]["golden"] = None
        log("note: a float network has no integer IR (build the recipe with binary=True); "
            "golden accuracy not measured")
    save_checkpoint(make_checkpoint(model, args.recipe, config, final), out)
    acc = final["accuracy"]
    golden = "n/a" if acc["golden"] is None else f"{100 * acc['golden']:.2f}%"
    log(f"final test accuracy on {len(test_x)} images: float {100 * acc['float']:.2f}%, "
        f"integer {100 * acc['integer']:.2f}%, golden IR {golden}")
    log(f"saved {out} ({out.stat().st_size} bytes, {final['train_seconds']:.0f} s of training)")
    return 0


def has_integer_form(model) -> bool:
    """False for float networks (a residual recipe built with binary=False), which the IR
    cannot hold; every other trainable recipe is binarized."""
    from .export_resnet import is_resnet

    return not is_resnet(model) or bool(getattr(model, "binary", False))


def _golden_accuracy(model, name, meta, x, y) -> float:
    from ..golden import classify
    from .export import export

    graph = export(model, name, {k: meta[k] for k in ("dataset", "classes", "recipe", "config")})
    return float((classify(graph, x) == y).mean()) if len(x) else float("nan")


def main(argv=None) -> int:
    args = train_parser("python -m hdlgen.nn.train").parse_args(argv)
    try:
        return cli_train(args)
    except HdlgenError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
