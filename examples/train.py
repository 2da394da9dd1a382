"""Train a tiny model on a live clipstream stream (CPU), checkpoint it with the loader state, and resume from it.

    # a server of your own:            python examples/train.py --url http://127.0.0.1:PORT
    # or let the script start one:     python examples/train.py --spec my-spec.yaml
    # the demo world (no internet):    clipstream demo --world /tmp/world &   # wait for "demo world ready:"
    #                                  python examples/train.py --spec /tmp/world/spec.yaml

The model learns to tell the stream's queries apart from the images (labels = json["query"]). The script runs
--steps steps, saves model + optimizer + loader state, throws everything away, rebuilds it from the checkpoint
and runs --steps more, then checks that the resumed run saw no sample of the first one again.

The loader is torchdata's StatefulDataLoader when torchdata is installed (it saves the workers' dataset states
itself); otherwise a plain DataLoader and clipstream.StateTracker, which rebuilds the state from the samples
consumed. Both resume exactly: nothing twice, nothing lost.
"""

import argparse
import contextlib

import torch
from clipstream import ClipStreamDataset, StateTracker, collate, list_streams, serve
from torch import nn
from torch.utils.data import DataLoader

try:
    from torchdata.stateful_dataloader import StatefulDataLoader
except ImportError:  # torchdata is optional
    StatefulDataLoader = None


def tiny_model(classes):
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(8 * 16, classes)
    )


def to_float(image):
    return image.float() / 255


class Run:
    """Model, optimizer and loader, built fresh or from a checkpoint."""

    def __init__(self, url, stream, labels, args, checkpoint=None):
        self.labels = labels
        self.model = tiny_model(len(labels))
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.05, momentum=0.9)
        self.dataset = ClipStreamDataset(url, stream, decode="tensor", transform=to_float)
        self.stateful = StatefulDataLoader is not None and not args.plain_dataloader
        options = {"batch_size": args.batch_size, "num_workers": args.num_workers, "collate_fn": collate}
        if checkpoint is not None:
            self.model.load_state_dict(checkpoint["model"])
            self.optimizer.load_state_dict(checkpoint["optimizer"])
        if self.stateful:
            self.loader = StatefulDataLoader(self.dataset, **options)
            if checkpoint is not None:
                self.loader.load_state_dict(checkpoint["loader"])
        else:
            if checkpoint is not None:
                self.dataset.load_state_dict(checkpoint["loader"])  # before the workers copy the dataset
            self.loader = DataLoader(self.dataset, **options)
        self.tracker = StateTracker(self.dataset)
        self.batches = iter(self.loader)

    def train(self, steps):
        seen = []
        for step in range(steps):
            batch = next(self.batches)
            self.tracker.update(batch)
            target = torch.tensor([self.labels.index(meta["query"]) for meta in batch["json"]])
            loss = nn.functional.cross_entropy(self.model(batch["image"]), target)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            seen += [meta["id"] for meta in batch["json"] if not meta.get("repeat")]
            print(f"step {step}: loss {loss.item():.3f} on {len(target)} samples ({batch['__key__'][0]} …)", flush=True)
        return seen

    def checkpoint(self):
        loader = self.loader.state_dict() if self.stateful else self.tracker.state_dict()
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "loader": loader}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--url", help="a running clipstream serve")
    source.add_argument("--spec", help="a spec (or plan) to serve for the run")
    parser.add_argument("--stream", help="stream name (default: the server's only stream)")
    parser.add_argument("--steps", type=int, default=5, help="steps before the checkpoint, and again after it")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--checkpoint", default="clipstream-example.pt")
    parser.add_argument("--plain-dataloader", action="store_true", help="use DataLoader + StateTracker")
    args = parser.parse_args()

    with contextlib.ExitStack() as stack:
        url = args.url or stack.enter_context(serve(args.spec)).url
        streams = list_streams(url)
        stream = args.stream or (streams[0]["name"] if len(streams) == 1 else parser.error("pass --stream"))
        labels = sorted(q["name"] for s in streams if s["name"] == stream for q in s["queries"])
        torch.manual_seed(0)

        first = Run(url, stream, labels, args)
        print(f"loader: {'StatefulDataLoader' if first.stateful else 'DataLoader + StateTracker'}, queries {labels}")
        seen = first.train(args.steps)
        torch.save(first.checkpoint(), args.checkpoint)
        print(f"saved {args.checkpoint} after {len(seen)} samples")
        del first  # workers, prefetched batches: all gone

        resumed = Run(url, stream, labels, args, checkpoint=torch.load(args.checkpoint))
        print(f"resumed from {args.checkpoint}")
        again = resumed.train(args.steps)
        twice = set(seen) & set(again)
        if twice:
            raise SystemExit(f"resume delivered {len(twice)} samples again: {sorted(twice)[:5]}")
        print(f"no sample seen twice: {len(seen)} before the checkpoint, {len(again)} after")


if __name__ == "__main__":
    main()
