"""Models exported by `gen export`, run in numpy alone.

An independent reader of gen's safetensors files: it needs numpy and the `safetensors`
package (no PyTorch, no gen), rebuilds the forward pass of an autoencoder (encoder and
decoder) and of a VAE (encoder's posterior mean, decoder's mean) from the file's tensors and
the run configuration in its metadata, and computes in float64.

    import numpy as np
    from gen_reader import load
    model = load("runs/ae-mlp-digits-z8/model.safetensors")
    codes = model.encode(x)            # x: [n, d_input] in the run's data scale
    images = model.decode(codes)       # [n, d_input]

What is supported: the autoencoders (undercomplete, sparse, denoising, contractive; MLP or
conv; with the PCA path) and unconditional VAEs (MLP or conv), in either layout (`burn`:
dense weights [in, out]; `pytorch`: [out, in]). Tensor names and shapes are documented in
README.md beside this file.
"""

from __future__ import annotations

import json

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from safetensors import safe_open

# The encoder's ln σ² is clamped to this range (gen-vae's ENC_LOG_VAR).
ENC_LOG_VAR = (-30.0, 20.0)


def activation(name: str, x: np.ndarray) -> np.ndarray:
    """gen-core's `Activation`, by its serde name."""
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "leaky_relu":
        return np.where(x > 0.0, x, 0.2 * x)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-x))
    if name == "tanh":
        return np.tanh(x)
    if name == "softplus":
        return np.logaddexp(0.0, x)
    if name == "identity":
        return x
    raise ValueError(f"unknown activation {name!r}")


class Tensors:
    """The file's tensors as float64 arrays, dense weights in burn's [in, out] layout."""

    def __init__(self, arrays: dict[str, np.ndarray], layout: str):
        if layout not in ("burn", "pytorch"):
            raise ValueError(f"unknown layout {layout!r}")
        self.arrays = {k: v.astype(np.float64) for k, v in arrays.items()}
        self.layout = layout
        self.used: set[str] = set()

    def get(self, name: str) -> np.ndarray:
        if name not in self.arrays:
            raise KeyError(f"the file has no tensor {name!r}")
        self.used.add(name)
        return self.arrays[name]

    def dense(self, prefix: str) -> tuple[np.ndarray, np.ndarray]:
        """Weight [in, out] and bias of the dense layer at `prefix`."""
        w = self.get(f"{prefix}.weight")
        if self.layout == "pytorch":
            w = w.T
        return w, self.get(f"{prefix}.bias")

    def unused(self) -> list[str]:
        return sorted(set(self.arrays) - self.used)


def mlp(t: Tensors, prefix: str, x: np.ndarray, act: str, out_act: str) -> np.ndarray:
    """gen-core's `Mlp`: dense layers, `act` between them, `out_act` after the last."""
    n = sum(1 for k in t.arrays if k.startswith(f"{prefix}.layers.") and k.endswith(".weight"))
    if n == 0:
        raise KeyError(f"no dense layers under {prefix}.layers")
    h = x
    for i in range(n):
        w, b = t.dense(f"{prefix}.layers.{i}")
        h = activation(act if i < n - 1 else out_act, h @ w + b)
    return h


def conv2d_s2(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Kernel 4, stride 2, padding 1: x [n, c, h, w], w [out, c, 4, 4] -> [n, out, h/2, w/2]."""
    p = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    win = sliding_window_view(p, (4, 4), axis=(2, 3))[:, :, ::2, ::2]  # [n, c, h/2, w/2, 4, 4]
    return np.einsum("nchwij,ocij->nohw", win, w, optimize=True) + b[None, :, None, None]


def conv_transpose2d_s2(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Kernel 4, stride 2, padding 1: x [n, c, h, w], w [c, out, 4, 4] -> [n, out, 2h, 2w]."""
    n, _, h, wd = x.shape
    contrib = np.einsum("nchw,coij->nohwij", x, w, optimize=True)
    full = np.zeros((n, w.shape[1], 2 * h + 2, 2 * wd + 2))
    for i in range(4):
        for j in range(4):
            full[:, :, i : i + 2 * h : 2, j : j + 2 * wd : 2] += contrib[..., i, j]
    return full[:, :, 1:-1, 1:-1] + b[None, :, None, None]


def conv_encoder(t: Tensors, prefix: str, x: np.ndarray, image: dict, act: str, out_act: str) -> np.ndarray:
    """gen-core's `ConvEncoder`: stride-2 convolutions, then a dense layer."""
    h = x.reshape(x.shape[0], image["channels"], image["height"], image["width"])
    i = 0
    while f"{prefix}.convs.{i}.weight" in t.arrays:
        h = activation(act, conv2d_s2(h, t.get(f"{prefix}.convs.{i}.weight"), t.get(f"{prefix}.convs.{i}.bias")))
        i += 1
    w, b = t.dense(f"{prefix}.fc")
    return activation(out_act, h.reshape(h.shape[0], -1) @ w + b)


def conv_decoder(t: Tensors, prefix: str, z: np.ndarray, image: dict, act: str, out_act: str) -> np.ndarray:
    """gen-core's `ConvDecoder`: a dense layer to a feature map, then transposed convolutions."""
    n_deconv = sum(1 for k in t.arrays if k.startswith(f"{prefix}.deconvs.") and k.endswith(".weight"))
    c0 = t.get(f"{prefix}.deconvs.0.weight").shape[0]
    f = 2**n_deconv
    w, b = t.dense(f"{prefix}.fc")
    h = activation(act, z @ w + b).reshape(z.shape[0], c0, image["height"] // f, image["width"] // f)
    for i in range(n_deconv):
        a = act if i < n_deconv - 1 else out_act
        h = activation(a, conv_transpose2d_s2(h, t.get(f"{prefix}.deconvs.{i}.weight"), t.get(f"{prefix}.deconvs.{i}.bias")))
    return h.reshape(h.shape[0], -1)


class Autoencoder:
    """gen-ae's `Autoencoder`: `encode`, `decode`, `reconstruct`."""

    def __init__(self, cfg: dict, t: Tensors):
        self.cfg, self.t = cfg, t
        self.kind = cfg["architecture"]["kind"]
        self.pca = cfg.get("pca_path", False)
        if self.pca:
            self.mean, self.axes = t.get("pca.mean"), t.get("pca.axes")
        if self.kind not in ("mlp", "conv"):
            raise ValueError(f"unknown architecture {self.kind!r}")

    def encode(self, x: np.ndarray) -> np.ndarray:
        c, x = self.cfg, np.asarray(x, dtype=np.float64)
        if self.kind == "mlp":
            z = mlp(self.t, "encoder", x, c["activation"], c["latent_activation"])
        else:
            z = conv_encoder(self.t, "encoder", x, c["image"], c["activation"], c["latent_activation"])
        if self.pca:
            z = z + (x - self.mean) @ self.axes
        return z

    def decode(self, z: np.ndarray) -> np.ndarray:
        c, z = self.cfg, np.asarray(z, dtype=np.float64)
        out_act = "sigmoid" if c["loss"] == "bce" else c["output_activation"]
        if self.kind == "mlp":
            out = mlp(self.t, "decoder", z, c["activation"], out_act)
        else:
            out = conv_decoder(self.t, "decoder", z, c["image"], c["activation"], out_act)
        if self.pca:
            out = out + z @ self.axes.T + self.mean
        return out

    def reconstruct(self, x: np.ndarray) -> np.ndarray:
        return self.decode(self.encode(x))


class Vae:
    """gen-vae's `Vae` (unconditional): the posterior's mean and ln σ², the decoder's mean."""

    def __init__(self, cfg: dict, t: Tensors):
        if cfg.get("n_classes"):
            raise ValueError("conditional VAEs are not supported by this reader")
        self.cfg, self.t = cfg, t
        self.kind = cfg["architecture"]["kind"]
        if "decoder_log_var" in t.arrays:
            t.get("decoder_log_var")  # the learned likelihood's variance; the mean does not use it

    def posterior(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c, x = self.cfg, np.asarray(x, dtype=np.float64)
        if self.kind == "mlp":
            h = mlp(self.t, "encoder", x, c["activation"], "identity")
        else:
            h = conv_encoder(self.t, "encoder", x, c["image"], c["activation"], "identity")
        d = c["d_latent"]
        return h[:, :d], np.clip(h[:, d:], *ENC_LOG_VAR)

    def encode(self, x: np.ndarray) -> np.ndarray:
        return self.posterior(x)[0]

    def decode(self, z: np.ndarray) -> np.ndarray:
        c, z = self.cfg, np.asarray(z, dtype=np.float64)
        out_act = "sigmoid" if c["likelihood"]["kind"] == "bernoulli" else c["output_activation"]
        if self.kind == "mlp":
            return mlp(self.t, "decoder", z, c["activation"], out_act)
        return conv_decoder(self.t, "decoder", z, c["image"], c["activation"], out_act)

    def reconstruct(self, x: np.ndarray) -> np.ndarray:
        return self.decode(self.encode(x))


def read(path: str) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    """The file's metadata and tensors."""
    with safe_open(path, framework="numpy") as f:
        metadata = f.metadata() or {}
        arrays = {k: f.get_tensor(k) for k in f.keys()}
    return metadata, arrays


def load(path: str):
    """The model in a file written by `gen export`: an `Autoencoder` or a `Vae`."""
    metadata, arrays = read(path)
    if "gen.config" not in metadata:
        raise ValueError(f"{path} has no gen.config metadata: not written by gen export")
    config = json.loads(metadata["gen.config"])
    t = Tensors(arrays, metadata.get("gen.layout", "burn"))
    kind = metadata.get("gen.model")
    if kind == "autoencoder":
        model = Autoencoder(config["autoencoder"], t)
    elif kind == "vae":
        model = Vae(config["vae"], t)
    else:
        raise ValueError(f"{path} holds a {kind}; this reader runs autoencoders and VAEs")
    return model
