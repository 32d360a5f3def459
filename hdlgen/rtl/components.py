"""The RTL side of every engine kind: the component class whose ``from_engine`` builds it from
the engine's spec, fold knobs, packed artifact, input streams and build options, and whose
``latency`` the kind's model side states as its ``depth`` (the tests hold them equal)."""

from ..engines import REGISTRY
from .argmax import ArgMaxUnit
from .mvau import MvauEngine
from .pool import MaxPoolUnit
from .residual import DelayFifo, Decimator, Fork, GlobalSumUnit, SelectThresholdUnit
from .swu import SlidingWindow

COMPONENTS = {
    "mvau": MvauEngine,
    "swu": SlidingWindow,
    "decimate": Decimator,
    "maxpool": MaxPoolUnit,
    "fork": Fork,
    "delay": DelayFifo,
    "select": SelectThresholdUnit,
    "globalsum": GlobalSumUnit,
    "argmax": ArgMaxUnit,
}

_unbuilt = sorted(set(REGISTRY) ^ set(COMPONENTS))
if _unbuilt:
    raise TypeError(f"engine kinds without both a model side and an RTL component: {', '.join(_unbuilt)}")


def component_of(kind: str):
    """The component class of engine kind ``kind``."""
    try:
        return COMPONENTS[kind]
    except KeyError:
        raise ValueError(f"no RTL component for engine kind {kind!r} (known: {', '.join(COMPONENTS)})") from None
