"""Checks that numpy, reading a `gen export` file alone, reproduces gen's own outputs.

    python3 python/check_export.py RUN/model.safetensors \
        --inputs rec-inputs.npy --reconstructions rec.npy --codes codes-test.npy [--sigma S.npy]

`rec.npy` and `rec-inputs.npy` come from `gen reconstruct --output rec.npy`, the codes from
`gen encode` (a VAE's `codes-test-mu.npy`, and `codes-test-sigma.npy` for --sigma); the first
rows of the codes are those of the inputs. Prints one JSON line with the largest absolute
difference of each output and exits 1 if any exceeds --tol or a tensor of the file was left
unread (the reader would then be ignoring part of the model).
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from gen_reader import Vae, load


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model")
    p.add_argument("--inputs", required=True)
    p.add_argument("--reconstructions", required=True)
    p.add_argument("--codes", required=True)
    p.add_argument("--sigma")
    p.add_argument("--tol", type=float, default=1e-5)
    a = p.parse_args()

    model = load(a.model)
    x = np.load(a.inputs).astype(np.float64)
    n = x.shape[0]
    want_rec = np.load(a.reconstructions)
    want_codes = np.load(a.codes)[:n]
    if isinstance(model, Vae):
        mu, log_var = model.posterior(x)
        got_codes = mu
    else:
        got_codes = model.encode(x)
    got_rec = model.decode(got_codes)
    diffs = {
        "codes": float(np.max(np.abs(got_codes - want_codes))),
        "reconstructions": float(np.max(np.abs(got_rec - want_rec))),
    }
    if a.sigma:
        diffs["sigma"] = float(np.max(np.abs(np.exp(0.5 * log_var) - np.load(a.sigma)[:n])))
    unused = model.t.unused()
    report = {
        "model": a.model,
        "kind": type(model).__name__,
        "layout": model.t.layout,
        "rows": n,
        "max_abs_diff": diffs,
        "tol": a.tol,
        "unread_tensors": unused,
    }
    print(json.dumps(report))
    ok = all(d <= a.tol for d in diffs.values()) and not unused
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
