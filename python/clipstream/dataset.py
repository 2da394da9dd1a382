"""ClipStreamDataset: a torch IterableDataset over `clipstream serve`'s partition tars (docs/streaming.md)."""

import json
import os
import urllib.parse

import torch
from torch.utils.data import IterableDataset, get_worker_info

from . import http
from .decode import DECODES, IMAGE_EXTS, decode_image, jpeg_to_tensor
from .errors import StateError, StreamError
from .state import check_state, empty_state, partition_mismatch
from .tar import ERROR_KEY, group_samples, tar_members


class SampleJson(dict):
    """A sample's json (a plain dict to use). torch's default collate keeps a batch of them as a list of dicts:
    collating them field by field would fail on img2dataset's null fields and on keys that differ by sample."""


def _collate_as_list(batch, *, collate_fn_map=None):
    return list(batch)


try:  # torch >= 1.13: the documented way to extend default_collate
    from torch.utils.data._utils.collate import default_collate_fn_map

    default_collate_fn_map[SampleJson] = _collate_as_list
except ImportError:  # older torch: pass collate_fn=clipstream.collate
    pass


def rank_and_world_size():
    """(rank, world_size) from torch.distributed when initialised, else RANK/WORLD_SIZE, else (0, 1)."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    rank, world = os.environ.get("RANK"), os.environ.get("WORLD_SIZE")
    if rank is not None and world is not None:
        return int(rank), int(world)
    return 0, 1


class ClipStreamDataset(IterableDataset):
    """Streams one epoch of a clipstream stream; splits itself by rank and DataLoader worker.

    url: the server (`http://127.0.0.1:PORT`, or the object `serve()` returns).
    stream: the stream's name; may be omitted when the server serves exactly one.
    decode: "pil" (RGB PIL image), "tensor" (CHW uint8 tensor) or "raw" (the encoded bytes). With the spec's
        `image.encode_format: npy` the server sends the resized pixels themselves and nothing is decoded here.
    transform: applied to the decoded image (a torchvision transform, say), like torchvision datasets.
    epoch: the epoch to stream (each epoch delivers the same samples in a new order). A completed pass advances it by one,
        so persistent workers move on by themselves; `set_epoch(e)` sets it.
    infinite: stream epoch after epoch without end (the server's `infinite=1`): train by steps, not epochs.
    rank, world_size: override torch.distributed / RANK, WORLD_SIZE.
    token: the server's token when it asks for one (`clipstream serve --token`), sent as `Authorization: Bearer`;
        default: the token of the `serve()` passed as url, else $CLIPSTREAM_TOKEN.
    timeout: seconds any socket operation may wait (connect, each read), so a dead server never hangs a worker.
    retries, backoff: on a dropped or refused connection, a timeout, a 5xx or a truncated tar, reconnect up to
        `retries` times in a row (backoff × 2^n seconds apart, jittered), resuming after the last sample
        received; then raise StreamError. A 4xx (bad state, unknown stream) raises at once.

    Yields {"image", "caption", "json", "__key__", "__state__"}; `__state__` is the partition's resume state after
    this sample (see StateTracker).
    """

    def __init__(
        self,
        url,
        stream=None,
        decode="pil",
        transform=None,
        epoch=0,
        *,
        infinite=False,
        rank=None,
        world_size=None,
        token=None,
        timeout=120.0,
        retries=5,
        backoff=1.0,
        max_backoff=30.0,
    ):
        super().__init__()
        if decode not in DECODES:
            raise ValueError(f"Expected one of {', '.join(DECODES)} for decode but received {decode!r}")
        if (rank is None) != (world_size is None):
            raise ValueError("rank and world_size go together: give both or neither")
        if world_size is not None and not 0 <= rank < world_size:
            raise ValueError(f"Expected 0 <= rank < world_size but received rank={rank}, world_size={world_size}")
        self.token = http.token_for(url, token)
        self.url = http.base_url(url)
        self.decode = decode
        if decode == "tensor":
            jpeg_to_tensor()  # imported here, once: forked DataLoader workers inherit it (each would take ~0.3 s)
        self.transform = transform
        self.rank, self.world_size = rank, world_size
        self.timeout, self.retries, self.backoff, self.max_backoff = timeout, retries, backoff, max_backoff
        self.stream = stream if stream is not None else self._only_stream()
        self.infinite = bool(infinite)
        self._state = empty_state(self.stream, int(epoch))

    @property
    def epoch(self):
        """The epoch streamed next: kept in the resume state only, so state_dict() and the dataset agree."""
        return self._state["epoch"]

    def _only_stream(self):
        names = [s["name"] for s in http.list_streams(self.url, self.timeout, self.retries, self.backoff, self.token)]
        if len(names) != 1:
            served = ", ".join(names) or "none"
            raise StreamError(f"{self.url} serves {len(names)} streams ({served}): pass stream=NAME", url=self.url)
        return names[0]

    # -- partitioning -------------------------------------------------------------------------------------------

    def partition(self):
        """(p, P) this process reads: P = world_size × num_workers, p = rank × num_workers + worker."""
        rank, world = (self.rank, self.world_size) if self.rank is not None else rank_and_world_size()
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        return rank * workers + worker, world * workers

    def info(self, partitions):
        """`GET /streams/NAME/info?partitions=P`: {"samples_per_partition", "total", "queries": [{name, quota}]}."""
        url = f"{self.url}/streams/{urllib.parse.quote(self.stream, safe='')}/info?partitions={int(partitions)}"
        return http.with_retries(lambda: http.get_json(url, self.timeout, self.token), url, self.retries, self.backoff)

    # -- state ----------------------------------------------------------------------------------------------------

    def set_epoch(self, epoch):
        """Streams `epoch` next; drops resume states that belong to another epoch."""
        if int(epoch) != self.epoch:
            self._state = empty_state(self.stream, int(epoch))

    def state_dict(self):
        """The resume state: the epoch and, per partition read so far, the server state after the last sample
        yielded. StatefulDataLoader calls it on each worker's copy; a plain DataLoader with workers needs
        StateTracker."""
        return dict(self._state, states=dict(self._state["states"]))

    def load_state_dict(self, state):
        """Continues after the samples that `state` says were consumed: nothing twice, nothing lost. Sets the
        epoch to the state's. A state of another stream, or (at iteration) of another partition count, is refused
        with StateError."""
        state = check_state(state)
        if state["stream"] is not None and state["stream"] != self.stream:
            raise StateError(f"this resume state is for stream {state['stream']!r}, this dataset reads {self.stream!r}")
        state["stream"] = self.stream
        self._state = state

    # -- iteration ------------------------------------------------------------------------------------------------

    def __iter__(self):
        p, partitions = self.partition()
        saved = self._state["partitions"]
        if saved is not None and saved != partitions and self._state["states"]:
            raise partition_mismatch(saved, partitions)
        self._state["partitions"] = partitions
        return self._samples(p, partitions)

    def _samples(self, p, partitions):
        key = str(p)
        epoch = self.epoch
        state = self._state["states"].get(key)
        if state is not None and self.infinite:
            epoch = json.loads(state)["epoch"]  # an infinite partition's state may be epochs ahead of the dataset's
        for raw in self._raw_samples(p, partitions, epoch, state):
            sample = self._decode(raw)
            self._state["states"][key] = sample["__state__"]
            if self.infinite:
                self._state["epoch"] = sample["json"].get("epoch", self.epoch)
            yield sample
        # The pass is complete: the next one streams the next epoch from its start.
        self._state["states"].pop(key, None)
        if self.epoch == epoch:
            self._state["epoch"] = epoch + 1

    def _raw_samples(self, p, partitions, epoch, state):
        """Undecoded samples of partition p; reconnects with the last received state on retryable failures."""
        retrier = http.Retrier(self.retries, self.backoff, self.max_backoff)
        while True:
            url = http.partition_url(self.url, self.stream, p, partitions, epoch, state, self.infinite)
            try:
                with http.open_url(url, self.timeout, self.token) as response:
                    announced = response.headers.get("X-Clipstream-Samples")
                    received = 0
                    try:
                        for raw in group_samples(tar_members(response.read)):
                            if raw["__key__"] == ERROR_KEY:
                                raise self._server_failure(raw, url, p, partitions)
                            if "state" not in raw:
                                raise StreamError(f"{url}: sample {raw['__key__']} has no .state member", url=url)
                            received += 1
                            retrier.progressed()
                            state = raw["state"].decode("utf-8")
                            yield raw
                    except http.READ_ERRORS as err:
                        raise http.RetryableError(http.describe(err)) from err
                    if announced is not None and announced.isdigit() and received != int(announced):
                        raise http.RetryableError(
                            f"the partition tar ended after {received} samples, the server announced {announced}"
                        )
                return
            except http.RetryableError as err:
                retrier.failed(
                    err,
                    url,
                    f"stream {self.stream!r} partition {p} of {partitions} at {self.url}: {err}; gave up after "
                    f"{self.retries} retries (resume with state_dict(), or the last sample's __state__)",
                )

    def _server_failure(self, raw, url, p, partitions):
        """The StreamError for a partition the server ended with `__error__.json` (not retried: it said why)."""
        try:
            message, code = http.server_error(json.loads(raw.get("json", b"")))
        except ValueError:
            message, code = None, None
        return StreamError(
            f"stream {self.stream!r} partition {p} of {partitions} failed on the server: {message or 'no reason given'}",
            url=url,
            code=code,
        )

    def _decode(self, raw):
        ext = next((e for e in IMAGE_EXTS if e in raw), None)
        if ext is None:
            raise StreamError(f"sample {raw['__key__']} has no image member (members: {sorted(raw)})")
        image = decode_image(raw[ext], ext, self.decode, raw["__key__"])
        if self.transform is not None:
            image = self.transform(image)
        return {
            "image": image,
            "caption": raw.get("txt", b"").decode("utf-8"),
            "json": SampleJson(json.loads(raw["json"]) if "json" in raw else {}),
            "__key__": raw["__key__"],
            "__state__": raw["state"].decode("utf-8"),
        }


def collate(samples):
    """A collate_fn for DataLoader(batch_size=…): stacks tensor images of one shape, keeps everything else
    (PIL images, bytes, captions, json dicts, keys, states) as lists."""
    batch = {key: [sample[key] for sample in samples] for key in samples[0]}
    images = batch["image"]
    if images and all(isinstance(i, torch.Tensor) for i in images) and len({i.shape for i in images}) == 1:
        batch["image"] = torch.stack(images)
    return batch
