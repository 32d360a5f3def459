"""Network recipes: one Python file per network in the project's ``models/`` directory.

A recipe file ``models/<name>.py`` defines ``DEFAULTS`` (its configuration dict, JSON values
only) and ``build(**config) -> nn.Module``. The directory can be replaced with the
``HDLGEN_MODELS`` environment variable.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path

import hdlgen

from ..errors import HdlgenError

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def models_dir() -> Path:
    env = os.environ.get("HDLGEN_MODELS")
    return Path(env) if env else Path(hdlgen.__file__).resolve().parent.parent / "models"


def known_recipes() -> list:
    d = models_dir()
    if not d.is_dir():
        return []
    return sorted(p.stem for p in d.glob("*.py") if _NAME.fullmatch(p.stem))


def load_recipe(name: str):
    """Import ``models/<name>.py`` and return the module."""
    d = models_dir()
    path = d / f"{name}.py"
    if not isinstance(name, str) or not _NAME.fullmatch(name) or not path.is_file():
        known = ", ".join(known_recipes()) or "none"
        raise HdlgenError(f"unknown recipe {name!r} (no {path}); known recipes in {d}: {known}")
    module_name = f"hdlgen_recipes.{name}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except HdlgenError:
        raise
    except Exception as e:
        sys.modules.pop(module_name, None)
        raise HdlgenError(f"recipe file {path} failed to import: {type(e).__name__}: {e}") from None
    for attr in ("DEFAULTS", "build"):
        if not hasattr(module, attr):
            raise HdlgenError(f"recipe file {path} defines no {attr}")
    if not isinstance(module.DEFAULTS, dict):
        raise HdlgenError(f"recipe file {path}: DEFAULTS must be a dict")
    return module


def recipe_config(name: str, overrides: dict | None = None) -> dict:
    """The recipe's DEFAULTS updated with ``overrides``; unknown keys are an error."""
    module = load_recipe(name)
    config = dict(module.DEFAULTS)
    for key, value in (overrides or {}).items():
        if key not in config:
            raise HdlgenError(f"recipe {name!r} has no option {key!r} (options: {', '.join(sorted(config))})")
        config[key] = value
    return config


def build_model(name: str, config: dict | None = None):
    """``(model, config)``: the recipe's network built from its full configuration."""
    module = load_recipe(name)
    config = recipe_config(name, config)
    try:
        model = module.build(**config)
    except HdlgenError:
        raise
    except (TypeError, ValueError) as e:
        raise HdlgenError(f"recipe {name!r} cannot be built with config {config}: {e}") from None
    return model, config
