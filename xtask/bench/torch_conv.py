#!/usr/bin/env python3
"""PyTorch counterparts of `gen bench`'s convolutional rows, conv_ae_train and conv_vae_train.

`../shared/bench/torch_reference.py` (the project's PyTorch anchor) has no convolutional
autoencoder or VAE; this script trains the same architectures as gen's rows, on the same batches,
with the anchor's timing protocol, so that `cargo xtask bench` can put a ratio beside them. It
runs in the same rounds as the anchor, right after it.

Usage:
    python torch_conv.py [--threads 2] [--json out.json]

The architectures, as `AutoencoderConfig::conv(ImageShape::grey(28, 28), vec![16, 32], 32)` and
`VaeConfig::conv(ImageShape::grey(28, 28), vec![16, 32], 32)` build them in gen:
- encoder: Conv2d(1→16, k4, s2, p1), ReLU, Conv2d(16→32, k4, s2, p1), ReLU, flatten (32·7·7),
  Linear(1568 → code); the code is 32 values (AE) or 2·32 (VAE: μ and ln σ², clamped to
  [-30, 20])
- decoder: Linear(32 → 1568), ReLU, reshape 32x7x7, ConvTranspose2d(32→16, k4, s2, p1), ReLU,
  ConvTranspose2d(16→1, k4, s2, p1)
- AE: sigmoid output, mean squared error; VAE: Bernoulli decoder (BCE with logits summed over
  the pixels) plus the closed-form KL, both per sample and averaged over the batch
- Adam, learning rate 1e-3, batch 64, random inputs in [0, 1]

Timing as the anchor's: 10 warm-up steps, then the median of 5 runs of 50 steps, 2 threads.
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

WARMUP = 10
RUNS = 5
STEPS = 50
SEED = 0
BATCH = 64


class ConvEncoder(nn.Module):
    def __init__(self, d_out):
        super().__init__()
        self.c1 = nn.Conv2d(1, 16, 4, 2, 1)   # 28 -> 14
        self.c2 = nn.Conv2d(16, 32, 4, 2, 1)  # 14 -> 7
        self.fc = nn.Linear(32 * 7 * 7, d_out)

    def forward(self, x):
        h = F.relu(self.c1(x.view(-1, 1, 28, 28)))
        h = F.relu(self.c2(h))
        return self.fc(h.flatten(1))


class ConvDecoder(nn.Module):
    def __init__(self, d_in):
        super().__init__()
        self.fc = nn.Linear(d_in, 32 * 7 * 7)
        self.d1 = nn.ConvTranspose2d(32, 16, 4, 2, 1)  # 7 -> 14
        self.d2 = nn.ConvTranspose2d(16, 1, 4, 2, 1)   # 14 -> 28

    def forward(self, z):
        h = F.relu(self.fc(z)).view(-1, 32, 7, 7)
        h = F.relu(self.d1(h))
        return self.d2(h).flatten(1)  # logits / pre-activation


def setup_conv_ae():
    torch.manual_seed(SEED)
    enc, dec = ConvEncoder(32), ConvDecoder(32)
    opt = torch.optim.Adam(list(enc.parameters()) + list(dec.parameters()), lr=1e-3)

    def step(x):
        opt.zero_grad(set_to_none=True)
        loss = F.mse_loss(torch.sigmoid(dec(enc(x))), x)
        loss.backward()
        opt.step()
        return loss
    return step


def setup_conv_vae(d=32):
    torch.manual_seed(SEED)
    enc, dec = ConvEncoder(2 * d), ConvDecoder(d)
    opt = torch.optim.Adam(list(enc.parameters()) + list(dec.parameters()), lr=1e-3)

    def step(x):
        opt.zero_grad(set_to_none=True)
        h = enc(x)
        mu, log_var = h[:, :d], h[:, d:].clamp(-30.0, 20.0)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * log_var)
        recon = F.binary_cross_entropy_with_logits(dec(z), x, reduction="none").sum(1)
        kl = -0.5 * (1 + log_var - mu.pow(2) - log_var.exp()).sum(1)
        loss = (recon + kl).mean()
        loss.backward()
        opt.step()
        return loss
    return step


def bench(step, batches):
    for i in range(WARMUP):
        step(batches[i % len(batches)])
    rates = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        for i in range(STEPS):
            step(batches[i % len(batches)])
        rates.append(STEPS * BATCH / (time.perf_counter() - t0))
    return statistics.median(rates), rates


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", metavar="PATH", help="also write the rows as JSON to PATH")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(SEED)
    batches = [torch.rand((BATCH, 784), generator=g) for _ in range(8)]
    rows = []
    for name, setup in [("(f) Conv AE train", setup_conv_ae), ("(g) Conv VAE train", setup_conv_vae)]:
        med, rates = bench(setup(), batches)
        rows.append({"workload": name, "batch": BATCH, "median_per_s": med,
                     "min_per_s": min(rates), "max_per_s": max(rates), "unit": "samples/s"})
        print(f"{name:<22} {BATCH:>5} {med:>10.1f} samples/s  ({min(rates):.0f}-{max(rates):.0f} over {RUNS} runs, "
              f"{torch.get_num_threads()} threads)", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
