"""clipstream: stream query-defined image-text samples from `clipstream serve` into PyTorch.

    from clipstream import serve, ClipStreamDataset
    with serve("spec.yaml") as server:
        loader = DataLoader(ClipStreamDataset(server.url), batch_size=64, num_workers=4, collate_fn=collate)

torch is imported only by the dataset: `serve`, the tar reader and the errors work without it.
"""

from .errors import ClipStreamError, ServeError, StateError, StreamError, TarFormatError, TruncatedTar
from .http import list_streams
from .server import Server, serve
from .state import StateTracker

__version__ = "0.1.0"
__all__ = [
    "ClipStreamDataset",
    "ClipStreamError",
    "ServeError",
    "Server",
    "StateError",
    "StateTracker",
    "StreamError",
    "TarFormatError",
    "TruncatedTar",
    "collate",
    "list_streams",
    "serve",
]

_LAZY = {"ClipStreamDataset", "collate", "rank_and_world_size"}


def __getattr__(name):
    if name in _LAZY:
        from . import dataset

        return getattr(dataset, name)
    raise AttributeError(f"module 'clipstream' has no attribute {name!r}")
