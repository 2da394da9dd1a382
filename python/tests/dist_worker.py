"""One rank of test_live.py's torch.distributed test: init gloo, read the stream with 2 DataLoader workers, write
the keys it got to OUT. Rank and world size come from torch.distributed only (RANK/WORLD_SIZE are unset)."""

import json
import sys

import torch.distributed as dist
from clipstream import ClipStreamDataset
from torch.utils.data import DataLoader

url, rendezvous, rank, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=2)
samples = list(DataLoader(ClipStreamDataset(url, decode="raw"), batch_size=None, num_workers=2))
with open(out, "w") as f:
    json.dump([[s["__key__"], s["json"]["partition"]] for s in samples], f)
dist.barrier()
dist.destroy_process_group()
