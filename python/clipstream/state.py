"""The dataset's resume state, and StateTracker for plain DataLoaders with workers.

A dataset state is a small dict, the same whoever builds it:

    {"clipstream": 1, "stream": "cats", "epoch": 0, "partitions": 4,
     "states": {"0": "<.state of the last sample consumed from partition 0>", "3": "…"}}

`states` maps a partition index (as a string, so the dict survives JSON) to the server's resume state of that
partition, passed back unchanged as `state=`. A partition without an entry starts from its beginning.
"""

import json
from collections.abc import Mapping

from .errors import StateError

VERSION = 1


def empty_state(stream, epoch):
    return {"clipstream": VERSION, "stream": stream, "epoch": epoch, "partitions": None, "states": {}}


def parse_partition_state(text):
    """The server's state JSON → dict; StateError if it is not one."""
    try:
        state = json.loads(text)
        int(state["p"]), int(state["P"]), int(state["epoch"])
    except (ValueError, TypeError, KeyError) as err:
        raise StateError(f"not a clipstream partition state: {text!r:.200}") from err
    return state


def check_state(state):
    """Validates a dataset state dict (from a checkpoint) and returns a normalised copy."""
    if not isinstance(state, Mapping) or state.get("clipstream") != VERSION:
        raise StateError(
            "Expected a clipstream dataset state ({'clipstream': 1, 'stream', 'epoch', 'partitions', 'states'}) "
            f"but received {str(state)[:200]}"
        )
    partitions = state.get("partitions")
    states = {}
    for key, text in dict(state.get("states") or {}).items():
        parsed = parse_partition_state(text)
        if partitions is None or parsed["P"] != partitions or parsed["p"] != int(key):
            raise StateError(
                f"inconsistent clipstream state: partition {key} holds a state for partition "
                f"{parsed['p']} of {parsed['P']}, the state says {partitions} partitions"
            )
        states[str(int(key))] = text
    return {
        "clipstream": VERSION,
        "stream": state.get("stream"),
        "epoch": int(state.get("epoch") or 0),
        "partitions": partitions,
        "states": states,
    }


def partition_mismatch(saved, current):
    return StateError(
        f"this resume state was saved with {saved} partitions (world_size × num_workers) and this run reads "
        f"{current}: a partition's state only resumes the same partition. Resume with the same world size and "
        "num_workers, or start the epoch without the state."
    )


class StateTracker:
    """Builds the dataset state from the samples a training loop consumed.

    With a plain `torch.utils.data.DataLoader` and `num_workers > 0`, the dataset object in the main process never
    sees progress (each worker iterates its own copy). Every sample carries its partition's resume state in
    `__state__`; feed each consumed sample or batch to `update()` and checkpoint `state_dict()`:

        tracker = StateTracker(dataset)
        for batch in loader:
            tracker.update(batch)
            ...
        torch.save({"data": tracker.state_dict(), …}, path)
        # later: dataset.load_state_dict(checkpoint["data"]) before iterating a new DataLoader over it

    Samples prefetched by the loader but never passed to update() are delivered again after a resume: nothing is
    lost, nothing consumed is repeated.
    """

    def __init__(self, dataset=None):
        self.stream = getattr(dataset, "stream", None)
        self.epoch = getattr(dataset, "epoch", 0)
        # An infinite stream's partitions cross epoch boundaries each on its own: keep them all.
        self.infinite = getattr(dataset, "infinite", False)
        self.partitions = None
        self.states = {}

    def update(self, batch):
        """Records a sample dict, a list of sample dicts, or a collated batch ({"__state__": [...]})."""
        if isinstance(batch, Mapping):
            states = batch["__state__"]
            states = [states] if isinstance(states, str) else list(states)
        else:
            states = [sample["__state__"] for sample in batch]
        for text in states:
            parsed = parse_partition_state(text)
            if parsed["epoch"] != self.epoch and not self.infinite:
                self.epoch, self.states = parsed["epoch"], {}  # a new epoch: the last one's states are spent
            if self.partitions is not None and parsed["P"] != self.partitions:
                self.states = {}
            self.partitions = parsed["P"]
            self.states[str(parsed["p"])] = text
        return batch

    def state_dict(self):
        epoch = self.epoch
        if self.infinite and self.states:
            epoch = min(parse_partition_state(text)["epoch"] for text in self.states.values())
        return {
            "clipstream": VERSION,
            "stream": self.stream,
            "epoch": epoch,
            "partitions": self.partitions,
            "states": dict(self.states),
        }
