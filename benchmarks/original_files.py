"""A Graph Challenge network and its inputs as the original SDS-Inf's workers read them from S3.

The original ships no converter; its readers fix the formats (`src/sds-inf-queue/sds_inf_queue_worker.py`):

- `nnp.K` (`readDNNP`), worker K's weights: for each layer in order, a line `LAYER NNZ`, then NNZ
  lines `OUT IN WEIGHT` of the layer's rows that K owns (its output neurons: the original computes
  `W[layer] * H`, so W is the Graph Challenge matrix transposed).
- `train.K` (`readInferenceData`), worker K's inputs: lines `INPUT NEURON VALUE` of K's neurons.
- `conn.L` (`readConnectivity`), layer L's sends, read by every worker: a line per neuron,
  `NEURON OWNER TARGET...`, the targets being the other workers whose output rows read that neuron.

Ids are 0-based; the partition is the original's 1-D row partition (skydeck's `row_partition`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from lambda_src.sdsinf.partition import plans, row_partition


def owned_entries(coo: sp.coo_matrix, mine: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The entries `mine` marks (a mask over coo's entries) as the original's files list them: sorted by
    row, then column; values in float32, as its readers parse them."""
    rows, cols, vals = coo.row[mine], coo.col[mine], coo.data[mine].astype(np.float32)
    order = np.lexsort((cols, rows))
    return rows[order], cols[order], vals[order]


def _lines(coo: sp.coo_matrix, mine: np.ndarray) -> list[str]:
    """`ROW COL VALUE` lines of the entries `mine` marks, values exact in float32."""
    return [f"{r} {c} {float(v):.9g}" for r, c, v in zip(*owned_entries(coo, mine), strict=True)]


def write(root: Path, layers: list[sp.csr_matrix], inputs: sp.csr_matrix, workers: int) -> dict[str, Path]:
    """Writes weights/nnp.K, inference/train.K and connectivity/conn.L under `root`; the three folders."""
    neurons = layers[0].shape[0]
    owner = row_partition(neurons, workers)
    folders = {name: root / name for name in ("weights", "inference", "connectivity")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    transposed = [sp.coo_matrix(w.T) for w in layers]
    images = sp.coo_matrix(inputs)
    for k in range(workers):
        keep = owner == k
        with open(folders["weights"] / f"nnp.{k}", "w") as out:
            for i, w in enumerate(transposed):
                lines = _lines(w, keep[w.row])
                out.write(f"{i} {len(lines)}\n")
                if lines:
                    out.write("\n".join(lines) + "\n")
        # train.K holds (input, neuron) pairs of K's neurons: the inputs' columns that K owns
        lines = _lines(images, keep[images.col])
        (folders["inference"] / f"train.{k}").write_text("\n".join(lines) + ("\n" if lines else ""))
    for i, plan in enumerate(plans(layers, [owner] * (len(layers) + 1))):
        targets: list[list[int]] = [[] for _ in range(neurons)]
        for (_src, dst), rows in sorted(plan.sends.items()):
            for r in rows:
                targets[int(r)].append(dst)
        text = "".join(
            f"{r} {owner[r]}{''.join(f' {t}' for t in sorted(targets[r]))}\n" for r in range(neurons)
        )
        (folders["connectivity"] / f"conn.{i}").write_text(text)
    return folders
