"""Compression pipeline: float network -> filter pruning at rate r (ThiNet or L1, per layer or
global) -> fine-tuning -> binarization -> fine-tuning, with a results table (Markdown + JSON)
of accuracy, weight bits, compression ratio, FLOPs and binary operations.

A recipe takes part when its ``build(**config)`` accepts ``binary`` (False: the float network,
True: the same architecture with +-1 weights and sign activations, whose parameters have the
same names and shapes, so a float state dict initializes it) and it defines
``pruned_config(model, config)``, the configuration that rebuilds a pruned model's shapes.

Binarized training modules (float32 latent weights, straight-through gradients):
:class:`SignConv2d`, :class:`SignFC` and :class:`SignActivation`. Their exact integer
semantics are those of the IR's binarized layers: +-1 weights, +-1 activations (sign(0) = +1),
padding with -1 for +-1 inputs (0 for pixels).

Command line (``results.md``, ``results.json``, ``log.txt`` and one checkpoint per model in
``--out``)::

    python -m hdlgen.nn.compress resnet14 --data DIR --dataset cifar10 --out runs/r14 \
        --rates 0,0.3,0.5 --method thinet --mode layer --epochs 30,10,30
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import HdlgenError
from .checkpoint import make_checkpoint, read_checkpoint, save_checkpoint, source_revision
from . import distributed
from .conv import Conv2d, conv2d
from .distributed import Group
from .data import dataset_classes, default_augmentation, load_dataset
from .evaluate import _device
from .layers import sign_ste
from .loop import accuracy, train_epochs
from .recipes import load_recipe, recipe_config
from .stages import StageStore
from .train import add_run_arguments, set_threads
from .prune import MODES, METHODS, SCOPES, count_ops, prune


class SignActivation(nn.Module):
    """+1 where x >= 0 else -1, with the straight-through gradient of :func:`sign_ste`."""

    def forward(self, x):
        return sign_ste(x)


class SignConv2d(Conv2d):
    """Conv2d without bias whose latent weights are binarized to +-1; positions outside the
    image take ``pad_value`` (-1 for +-1 inputs, 0 for pixel inputs)."""

    binary_weights = True
    binarize = True   # False: float weights (binarized activations only; see set_weight_binarization)

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, pad_value=-1.0):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, bias=False)
        self.pad_value = float(pad_value)

    def effective_weight(self):
        return sign_ste(self.weight) if self.binarize else self.weight

    def forward(self, x):
        ph, pw = self.padding
        if ph or pw:
            x = F.pad(x, (pw, pw, ph, ph), value=self.pad_value)
        return conv2d(x, self.effective_weight().to(x.dtype), None, self.stride, 0, self.dilation)

    def integer_weight(self) -> np.ndarray:
        """The +-1 weights as int8 (out, in, kh, kw)."""
        return np.where(self.weight.detach().cpu().numpy() >= 0, 1, -1).astype(np.int8)

    def extra_repr(self):
        return super().extra_repr() + f", pad_value={self.pad_value:g}"


class SignFC(nn.Linear):
    """Output layer without bias: +-1 weights; the scores are multiplied by a learnable
    positive scale for the loss (it does not change the argmax)."""

    binary_weights = True
    binarize = True

    def __init__(self, in_features, out_features):
        super().__init__(in_features, out_features, bias=False)
        self.log_scale = nn.Parameter(torch.tensor(-0.5 * math.log(in_features)))

    def effective_weight(self):
        return sign_ste(self.weight) if self.binarize else self.weight

    def forward(self, x):
        return F.linear(x, self.effective_weight().to(x.dtype)) * self.log_scale.exp()

    def integer_weight(self) -> np.ndarray:
        return np.where(self.weight.detach().cpu().numpy() >= 0, 1, -1).astype(np.int8)


def residual_sign_thresholds(bn, fan_in: int):
    """Integer form of a binarized residual add ``sign(bn(A) + s)`` with ``A`` the integer
    accumulator of a +-1 x +-1 convolution of ``fan_in`` terms and ``s`` a +-1 shortcut value.

    Returns ``(thresholds, negate)``: int64 (C, 2) and bool (C,). Channel ``c`` outputs +1
    exactly where ``(-A if negate[c] else A) >= thresholds[c, (s + 1) // 2]``: the shortcut
    selects one of two thresholds (``bn`` evaluated with running statistics; the bias shifted
    by ``s``)."""
    from ..ir import BIPOLAR
    from ..ir.ops import accumulator
    from .layers import bn_sign_thresholds

    acc = accumulator(int(fan_in), BIPOLAR, BIPOLAR)
    gamma = bn.weight.detach().double().cpu().numpy()
    beta = bn.bias.detach().double().cpu().numpy()
    mean = bn.running_mean.detach().double().cpu().numpy()
    var = bn.running_var.detach().double().cpu().numpy()
    out, negate = [], None
    for shift in (-1.0, 1.0):
        t, negate = bn_sign_thresholds(gamma, beta + shift, mean, var, bn.eps, 1, acc)
        out.append(t)
    return np.stack(out, 1), negate


def binary_weights(model) -> dict:
    """``{layer name: int8 array of -1 / +1}`` of every binarized layer of ``model``."""
    return {name: m.integer_weight() for name, m in model.named_modules()
            if getattr(m, "binary_weights", False) and hasattr(m, "integer_weight")}


def load_float_into_binary(binary, float_state: dict):
    """Initialize a binarized model from the float model of the same shapes. Parameters that
    only the binarized model has (the output scale) keep their initial values."""
    try:
        result = binary.load_state_dict(float_state, strict=False)
    except RuntimeError as e:
        detail = " ".join(ln.strip() for ln in str(e).splitlines()[1:3])
        raise HdlgenError(f"the float and binarized models differ in shape: {detail[:300]}") from None
    missing = [k for k in result.missing_keys if not k.endswith("log_scale")]
    if missing or result.unexpected_keys:
        raise HdlgenError(f"the float and binarized models differ: missing {missing}, "
                          f"unexpected {result.unexpected_keys}")
    return binary


# -- the pipeline -------------------------------------------------------------------------------

@dataclass(frozen=True)
class CompressSettings:
    rates: tuple = (0.0, 0.3, 0.5)
    method: str = "thinet"
    mode: str = "layer"
    scope: str = "all"
    float_epochs: int = 1
    prune_epochs: int = 1
    binary_epochs: int = 1
    act_epochs: int = 0         # two-step binarization: epochs with binary activations, float weights
    batch_size: int = 128
    lr: float = 2e-3
    prune_lr: float = 1e-3
    binary_lr: float = 1e-3
    act_lr: float = 1e-3
    samples: int = 4096
    calib_images: int = 256
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "rates", tuple(float(r) for r in self.rates))
        for r in self.rates:
            if not 0 <= r < 1:
                raise HdlgenError(f"pruning rate {r} must lie in [0, 1)")
        for label, v, allowed in (("method", self.method, METHODS), ("mode", self.mode, MODES),
                                  ("scope", self.scope, SCOPES)):
            if v not in allowed:
                raise HdlgenError(f"unknown {label} {v!r} (expected one of {', '.join(allowed)})")
        for label in ("float_epochs", "prune_epochs", "binary_epochs", "act_epochs"):
            if getattr(self, label) < 0:
                raise HdlgenError(f"{label} must not be negative")
        if self.batch_size < 2:
            raise HdlgenError(f"batch_size must be at least 2, not {self.batch_size}")

    def to_json(self) -> dict:
        d = asdict(self)
        d["rates"] = list(self.rates)
        return d

    @classmethod
    def from_json(cls, d: dict) -> "CompressSettings":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise HdlgenError(f"unknown compression settings {sorted(unknown)}")
        return cls(**d)


def _accuracy(model, test, device, float_reference=True):
    model.to(device)
    acc = accuracy(model, test[0], test[1], float_reference=float_reference, device=device)
    model.to("cpu")
    return acc


def _integer_figures(model, test, device) -> dict:
    """For a binarized model that exports to the IR: the accuracy of its integer path (the
    IR's arithmetic, bit-exact with the golden model) and the weight bits of its IR graph."""
    from .export import export

    try:
        graph = export(model, "compressed")
    except HdlgenError:
        return {}
    return {"accuracy_integer": _accuracy(model, test, device, float_reference=False),
            "ir_weight_bits": graph.weight_bits()}


def set_weight_binarization(model, enabled: bool):
    """Binarize the weights of every +-1-weight layer (``enabled``) or train them as floats
    with binarized activations (the first step of two-step binarization)."""
    for m in model.modules():
        if getattr(m, "binary_weights", False):
            m.binarize = bool(enabled)


@dataclass
class RunOptions:
    """How the pipeline runs, apart from what it computes: device, logging, per-epoch
    evaluation subset, checkpoint period and the store that makes it resumable."""
    aug: tuple = (0, False)
    device: str = "cpu"
    log: object = print
    eval_images: int = 1000
    log_every: int = 100
    checkpoint_seconds: float = 600.0
    store: object = None        # a StageStore, or None (not resumable)
    on_model: object = None     # on_model(tag, model, config, row) for every finished model
    group: Group = Group()      # the training processes (hdlgen.nn.distributed)
    amp: bool = False           # bfloat16 autocast in the forward pass


def compress(build, pruned_config, config: dict, train, test, settings: CompressSettings, *,
             options: RunOptions | None = None, float_state: dict | None = None) -> dict:
    """Run the pipeline; returns ``{"settings", "config", "rows", "reference"}``.

    ``build(**config, binary=...)`` makes a model, ``pruned_config(model, config)`` the config
    of a pruned one. ``train``/``test``: ``(x uint8 (N, H, W, C), y)``. ``float_state``: the
    trained float weights (skips the float training). With ``options.store`` every stage
    resumes where the last run stopped: finished stages are loaded, not trained again.
    """
    s = settings
    o = options or RunOptions()
    log, device, store = o.log, o.device, o.store
    config = {k: v for k, v in config.items() if k != "binary"}
    eval_data = (test[0][:o.eval_images], test[1][:o.eval_images])
    example = np.asarray(train[0][:2])
    rows = []
    ref = None

    def stage(tag, model, cfg, epochs, lr, seed, rate, report=None, integer=False):
        """Train ``model`` as stage ``tag`` (or restore it), then measure and record its row."""
        done = store.finished(tag) if store else None
        if done is not None:
            model.load_state_dict(done[0])
            model.to("cpu").eval()
            log(f"{tag}: finished in an earlier run, loaded")
            rows.append(done[1])
            return
        resume = store.in_progress(tag) if store else None
        if resume is not None:
            model.load_state_dict(resume[0])
            log(f"{tag}: resuming at epoch {resume[1]['epoch'] + 1}, batch {resume[1]['batch']}")
        if epochs > 0:
            log(f"{tag}: {epochs} epochs, lr {lr:g}")
            save = (lambda position: store.save_progress(tag, model, position)) if store else None
            train_epochs(model, train, eval_data, integer_eval=integer, epochs=epochs, batch_size=s.batch_size, lr=lr, seed=seed, device=device, aug=o.aug,
                         log=log, log_every=o.log_every, resume=resume[1] if resume else None, label=tag,
                         on_checkpoint=save, on_epoch=(lambda position, record: save(position)) if save else None,
                         checkpoint_seconds=o.checkpoint_seconds, group=o.group, amp=o.amp)
        model.to("cpu").eval()
        row = _row(tag, rate, model, cfg, report, integer)
        rows.append(row)
        if o.on_model is not None and o.group.main:
            o.on_model(tag, model, cfg, row)
        if store:
            store.finish(tag, row)

    def _row(tag, rate, model, cfg, report, integer):
        ops = count_ops(model, example)
        r = {"model": tag, "rate": rate, "method": s.method if rate else "-", "mode": s.mode if rate else "-",
             "accuracy": _accuracy(model, test, device), "weight_bits": ops["weight_bits"],
             "weight_mb": ops["weight_mb"], "compression": ref["weight_bits"] / ops["weight_bits"],
             "params": ops["params"], "macs": ops["macs"], "flops": ops["flops"], "bops": ops["bops"],
             "macs_reduction": 1 - ops["macs"] / ref["macs"], "config": cfg}
        if report is not None:
            r["pruning"] = report
        if integer:
            r.update(_integer_figures(model, test, device))
        if "accuracy_integer" in r:
            log(f"{tag}: integer (IR) accuracy {100 * r['accuracy_integer']:.2f}%, "
                f"{r['ir_weight_bits'] / 1e6:.3f} Mb of IR weights")
        log(f"{tag}: accuracy {100 * r['accuracy']:.2f}% on {len(test[0])} test images, "
            f"{ops['weight_mb']:.3f} Mb of weights ({r['compression']:.1f}x), {ops['macs'] / 1e6:.2f} M MACs "
            f"({100 * r['macs_reduction']:.1f}% fewer), {ops['bops'] / 1e6:.2f} M binary ops")
        return r

    torch.manual_seed(s.seed)
    base = build(**config, binary=False)
    ref = count_ops(base, example)
    if float_state is not None:
        base.load_state_dict(float_state)
    stage("float", base, dict(config), 0 if float_state is not None else s.float_epochs, s.lr, s.seed, 0.0)
    calib = np.asarray(train[0][:max(2, s.calib_images)])
    for i, rate in enumerate(s.rates):
        seed = s.seed + 1000 * (i + 1)
        if rate > 0:
            pruned, report = prune(base, calib, rate, method=s.method, mode=s.mode, scope=s.scope,
                                   samples=s.samples, seed=seed)
            cfg = pruned_config(pruned, config)
            check = build(**cfg, binary=False)
            check.load_state_dict(pruned.state_dict())  # the config rebuilds the pruned shapes
            log(f"pruned {100 * rate:g}% ({s.method}, {s.mode}, {s.scope}): {cfg}")
            stage(f"float-pruned-{rate:g}", pruned, cfg, s.prune_epochs, s.prune_lr, seed, rate, report)
        else:
            pruned, cfg, report = base, dict(config), None
        torch.manual_seed(seed)
        binary = build(**cfg, binary=True)
        load_float_into_binary(binary, pruned.state_dict())
        if s.act_epochs:
            set_weight_binarization(binary, False)
            stage(f"binary-acts-{rate:g}", binary, cfg, s.act_epochs, s.act_lr, seed + 2, rate, report)
            set_weight_binarization(binary, True)
        stage(f"binary-{rate:g}", binary, cfg, s.binary_epochs, s.binary_lr, seed + 1, rate, report, integer=True)
    return {"settings": s.to_json(), "config": dict(config), "rows": rows,
            "reference": {k: ref[k] for k in ("macs", "flops", "bops", "weight_bits", "params")}}


def results_markdown(result: dict, title: str = "Compression results") -> str:
    ref = result["reference"]
    lines = [f"# {title}", "",
             f"Reference (unpruned float network): {ref['params']} weights, "
             f"{ref['weight_bits'] / 1e6:.2f} Mb at 32 bits, {ref['macs'] / 1e6:.2f} M MACs per image.",
             "Weight bits: 1 per binary weight, 32 per float weight (BatchNorm not counted; it folds "
             "into thresholds). FLOPs: multiply-accumulates with a multi-bit operand; BOPs: "
             "+-1 x +-1 multiply-accumulates (XNOR-popcount).", "",
             "Accuracy: the float computation; integer: the exported IR's integer arithmetic "
             "(binarized models).", "",
             "| model | rate | method | accuracy | integer | weights (Mb) | compression | params | MACs (M) | "
             "FLOPs (M) | BOPs (M) | MACs vs unpruned |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def pct(v):
        return "n/a" if v is None or v != v else f"{100 * v:.2f}%"

    for r in result["rows"]:
        acc, integer = pct(r["accuracy"]), pct(r.get("accuracy_integer"))
        lines.append(f"| {r['model']} | {r['rate']:g} | {r['method']} | {acc} | {integer} | {r['weight_mb']:.3f} | "
                     f"{r['compression']:.1f}x | {r['params']} | {r['macs'] / 1e6:.2f} | "
                     f"{r['flops'] / 1e6:.2f} | {r['bops'] / 1e6:.2f} | -{100 * r['macs_reduction']:.1f}% |")
    return "\n".join(lines) + "\n"


def write_results(result: dict, out_dir, title: str = "Compression results"):
    """Write ``results.json`` and ``results.md`` into ``out_dir``; returns both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    j, m = out / "results.json", out / "results.md"
    j.write_text(json.dumps(result, indent=1, default=float) + "\n")
    m.write_text(results_markdown(result, title))
    return j, m


# -- command line -------------------------------------------------------------------------------

def compress_parser(prog="python -m hdlgen.nn.compress"):
    from .data import dataset_names

    p = argparse.ArgumentParser(prog=prog, description="Prune, binarize and fine-tune a recipe; "
                                "write results.md / results.json and one checkpoint per model.")
    p.add_argument("recipe")
    p.add_argument("--data", required=True)
    p.add_argument("--dataset", required=True, choices=dataset_names())
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--config", default=None, help="JSON object overriding recipe options")
    p.add_argument("--settings", default=None, help="JSON object of CompressSettings fields")
    p.add_argument("--rates", default=None, help="comma-separated pruning rates, e.g. 0,0.3,0.5")
    p.add_argument("--method", choices=METHODS, default=None)
    p.add_argument("--mode", choices=MODES, default=None)
    p.add_argument("--scope", choices=SCOPES, default=None)
    p.add_argument("--epochs", default=None, help="float,prune,binary epochs, e.g. 30,10,30")
    p.add_argument("--float-checkpoint", default=None, help="start from this trained float checkpoint")
    p.add_argument("--limit-train", type=int, default=None, help="use only the first N training images")
    p.add_argument("--limit-test", type=int, default=None, help="use only the first N test images")
    p.add_argument("--act-epochs", type=int, default=None,
                   help="two-step binarization: epochs with binary activations and float weights "
                        "before the binary epochs (default 0)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    return add_run_arguments(p)


def _run_definition(args) -> dict:
    """What the run computes, from the command line: recipe, data, settings, configuration."""
    settings = {}
    try:
        overrides = json.loads(args.config) if args.config else {}
        if args.settings:
            settings.update(json.loads(args.settings))
    except json.JSONDecodeError as e:
        raise HdlgenError(f"--config / --settings is not valid JSON: {e}") from None
    if args.rates:
        settings["rates"] = [float(r) for r in args.rates.split(",")]
    for k in ("method", "mode", "scope"):
        if getattr(args, k):
            settings[k] = getattr(args, k)
    if args.epochs:
        parts = [int(e) for e in args.epochs.split(",")]
        if len(parts) != 3:
            raise HdlgenError("--epochs takes three numbers: float,prune,binary")
        settings.update(zip(("float_epochs", "prune_epochs", "binary_epochs"), parts))
    if args.act_epochs is not None:
        settings["act_epochs"] = args.act_epochs
    return {"recipe": args.recipe, "dataset": args.dataset, "overrides": overrides,
            "settings": CompressSettings.from_json(settings).to_json(),
            "float_checkpoint": args.float_checkpoint, "limit_train": args.limit_train,
            "limit_test": args.limit_test}


def cli_compress(argv=None) -> int:
    args = compress_parser().parse_args(argv)
    device = _device(args.device)
    if args.eval_images < 0 or not args.checkpoint_minutes >= 0:
        raise HdlgenError(f"--eval-images and --checkpoint-minutes must not be negative "
                          f"({args.eval_images}, {args.checkpoint_minutes})")
    threads = set_threads(args.threads, device)
    group = distributed.current()
    try:
        return _cli_compress(args, device, threads, group)
    finally:
        distributed.close()


def _cli_compress(args, device, threads, group) -> int:
    out = Path(args.out)
    run = _run_definition(args)
    store = StageStore(out, run, resume=args.resume, writes=group.main)
    distributed.barrier()   # every process has read the folder before the first one writes to it
    if args.resume:
        for key in ("recipe", "dataset"):
            if store.run[key] != run[key]:
                raise HdlgenError(f"--resume: {out} is a run of {key} {store.run[key]!r}, not {run[key]!r}")
        run = store.run
    s = CompressSettings.from_json(run["settings"])
    module = load_recipe(args.recipe)
    if not hasattr(module, "pruned_config"):
        raise HdlgenError(f"recipe {args.recipe!r} defines no pruned_config(model, config); it cannot be compressed")
    train = load_dataset(args.data, args.dataset, "train")
    test = load_dataset(args.data, args.dataset, "test")
    if run["limit_train"]:
        train = (train[0][:run["limit_train"]], train[1][:run["limit_train"]])
    if run["limit_test"]:
        test = (test[0][:run["limit_test"]], test[1][:run["limit_test"]])
    classes = dataset_classes(args.dataset)
    base = {"input_shape": list(train[0].shape[1:]), "classes": len(classes)}
    base.update(run["overrides"])
    base.pop("binary", None)
    config = recipe_config(args.recipe, base)
    config.pop("binary", None)
    float_state = None
    if run["float_checkpoint"]:
        ck = read_checkpoint(run["float_checkpoint"])
        float_state, config = ck["state_dict"], {k: v for k, v in ck["config"].items() if k != "binary"}
    store.run["config"] = config
    out.mkdir(parents=True, exist_ok=True)
    logf = open(out / "log.txt", "a") if group.main else None

    def log(line):
        if logf is None:
            return
        print(line, flush=True)
        logf.write(line + "\n")
        logf.flush()

    def on_model(tag, model, cfg, row):
        meta = {"name": f"{args.recipe}-{tag}", "dataset": args.dataset, "classes": classes,
                "accuracy": {"float": row["accuracy"]}, "compression": {k: row[k] for k in (
                    "rate", "method", "mode", "weight_bits", "macs", "flops", "bops")},
                "settings": s.to_json(), "source_revision": source_revision(), "torch": str(torch.__version__)}
        full = dict(cfg, binary=tag.startswith("binary"))
        save_checkpoint(make_checkpoint(model, args.recipe, full, meta), out / f"{tag}.pt")

    log(f"{'resume' if args.resume else 'compress'} {args.recipe} {json.dumps(config)} on {args.dataset}: "
        f"{len(train[0])} train, {len(test[0])} test images; settings {json.dumps(s.to_json())}; "
        f"torch {torch.__version__}, {threads} thread(s), device {device}, {group.world} process(es)")
    options = RunOptions(aug=default_augmentation(args.dataset), device=device, log=log,
                         eval_images=args.eval_images, log_every=args.log_every,
                         checkpoint_seconds=60 * args.checkpoint_minutes,
                         store=store, on_model=on_model, group=group, amp=args.amp)
    try:
        result = compress(lambda **kw: module.build(**kw), module.pruned_config, config, train, test, s,
                          options=options, float_state=float_state)
        result.update({"recipe": args.recipe, "dataset": args.dataset, "train_images": len(train[0]),
                       "test_images": len(test[0])})
        if group.main:
            paths = write_results(result, out, f"{args.recipe} on {args.dataset}")
            log(f"wrote {paths[0]} and {paths[1]}")
    finally:
        if logf is not None:
            logf.close()
    return 0


def main(argv=None) -> int:
    try:
        return cli_compress(argv)
    except HdlgenError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
