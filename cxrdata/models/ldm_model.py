"""The frozen chest X-ray LDM (MONAI bundle ``cxr_image_synthesis_latent_diffusion_model``).

Networks come from MONAI itself (``AutoencoderKL``, ``DiffusionModelUNet``, ``DDIMScheduler``) with the
settings of the recipe's ``model`` section; weights from local files only:

- ``--ldm BUNDLE``: the bundle folder; the autoencoder and U-Net checkpoints are found by the bundle's file
  names (``model.bundle_files``, e.g. ``models/autoencoder.pth``, ``models/diffusion_model.pth``). Checkpoints
  of the old MONAI Generative package load through each network's ``load_old_state_dict``.
- ``--clip PATH``: a transformers folder with the CLIP text encoder and tokenizer, either side by side or in
  ``text_encoder/`` and ``tokenizer/`` (the Stable Diffusion 2.1 layout the bundle uses).

Timesteps: step ``i`` of the ``num_inference_steps`` schedule is timestep ``t_i = i * T // n`` (T = 1000,
n = 100: t = 0, 10, ..., 990), MONAI's "leading" spacing; steps are counted in DDIM-inversion order (clean
latent first), as the published heatmap code counts them (it uses "trailing" spacing, t = 10 i + 9: see
docs/decisions.md). DDIM inversion runs ``x_{t_i} -> x_{t_(i+1)}`` with the empty prompt, starting from the
clean latent at ``i = 0``.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cxrdata.errors import CxrdataError
from cxrdata.models.runtime import autocast, checkpoint_blocks, compile_blocks

BUNDLE_NAME = "cxr_image_synthesis_latent_diffusion_model"


def build_autoencoder(cfg: Mapping[str, Any]) -> nn.Module:
    from monai.networks.nets import AutoencoderKL

    return AutoencoderKL(**dict(cfg))


def build_unet(cfg: Mapping[str, Any]) -> nn.Module:
    try:
        from monai.networks.nets import DiffusionModelUNet

        return DiffusionModelUNet(**dict(cfg))
    except ImportError as exc:  # MONAI's OptionalImportError for einops subclasses ImportError
        raise CxrdataError(f"the LDM U-Net needs einops: pip install 'cxrdata[train]' ({exc})") from None


def resnet_blocks(unet: nn.Module) -> list[nn.Module]:
    """The U-Net's residual convolution blocks (``DiffusionUNetResnetBlock``): most of its activation memory and
    FLOPs at 64 x 64 latents, and free of the cross-attention blocks that :mod:`ldm_attention` hooks."""
    from monai.networks.nets.diffusion_model_unet import DiffusionUNetResnetBlock

    return [m for m in unet.modules() if isinstance(m, DiffusionUNetResnetBlock)]


def build_scheduler(cfg: Mapping[str, Any]) -> Any:
    from monai.networks.schedulers import DDIMScheduler

    return DDIMScheduler(**dict(cfg))


def find_bundle_file(bundle: Path, candidates: Sequence[str], what: str) -> Path:
    """The first of ``candidates`` (relative paths) present in ``bundle``; else one clear error naming them."""
    if not bundle.is_dir():
        raise CxrdataError(f"--ldm {bundle}: not a folder (expected the MONAI bundle {BUNDLE_NAME} holding "
                           f"{', '.join(candidates)})")
    for rel in candidates:
        if (bundle / rel).is_file():
            return bundle / rel
    raise CxrdataError(f"--ldm {bundle}: no {what} checkpoint; expected one of {', '.join(candidates)} "
                       f"(the files of the MONAI bundle {BUNDLE_NAME})")


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A checkpoint's tensors (``.pth``/``.pt`` via ``torch.load(weights_only=True)``, or ``.safetensors``)."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling and safetensors errors have many types
        raise CxrdataError(f"{path}: not a readable checkpoint ({str(exc).splitlines()[0]})") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CxrdataError(f"{path}: not a state dict of tensors")
    return state


def load_weights(net: nn.Module, state: dict[str, torch.Tensor], path: Path, what: str) -> None:
    """Load a new-format state dict, else an old MONAI Generative one; any mismatch is a CxrdataError."""
    own = net.state_dict()
    try:
        if set(state) == set(own):
            net.load_state_dict(state)
        else:
            with contextlib.redirect_stdout(io.StringIO()):
                net.load_old_state_dict(dict(state))
    except (RuntimeError, KeyError, ValueError) as exc:
        detail = str(exc).strip().splitlines()[0][:300]
        raise CxrdataError(f"{path}: does not fit the recipe's {what} (model.{what} in the recipe; "
                           f"{detail})") from None


def clip_dirs(path: Path) -> tuple[Path, Path]:
    """``(tokenizer folder, text encoder folder)`` of ``--clip PATH``."""
    if not path.is_dir():
        raise CxrdataError(f"--clip {path}: not a folder (expected a transformers CLIP text encoder + tokenizer)")
    text = path / "text_encoder" if (path / "text_encoder" / "config.json").is_file() else path
    tok = path / "tokenizer" if (path / "tokenizer" / "vocab.json").is_file() else path
    missing = [str(p) for p in (text / "config.json", tok / "vocab.json", tok / "merges.txt") if not p.is_file()]
    weights = [text / n for n in ("model.safetensors", "pytorch_model.bin", "model.fp16.safetensors")]
    if not any(p.is_file() for p in weights):
        missing.append(f"{text}/model.safetensors (or pytorch_model.bin, model.fp16.safetensors)")
    if missing:
        raise CxrdataError(f"--clip {path}: missing {', '.join(missing)} (a transformers CLIPTextModel + "
                           "CLIPTokenizer folder, or one with text_encoder/ and tokenizer/ as in Stable Diffusion 2.1)")
    return tok, text


def load_clip(path: Path) -> tuple[Any, nn.Module]:
    """``(CLIPTokenizer, CLIPTextModel)`` from local files only."""
    from transformers import CLIPTextModel, CLIPTokenizer

    tok_dir, text_dir = clip_dirs(path)
    try:
        tokenizer = CLIPTokenizer.from_pretrained(str(tok_dir), local_files_only=True)
        plain = any((text_dir / n).is_file() for n in ("model.safetensors", "pytorch_model.bin"))
        model = CLIPTextModel.from_pretrained(str(text_dir), local_files_only=True,
                                              **({} if plain else {"variant": "fp16"})).float()
    except (OSError, ValueError) as exc:
        raise CxrdataError(f"--clip {path}: not loadable ({str(exc).splitlines()[0]})") from None
    return tokenizer, model


def ddim_inverse_step(output: torch.Tensor, x: torch.Tensor, alpha_t: torch.Tensor, alpha_next: torch.Tensor,
                      prediction_type: str) -> torch.Tensor:
    """One deterministic DDIM step from ``t`` to a later ``t'`` (cumulative alphas ``alpha_t``, ``alpha_next``)."""
    a, b = alpha_t.sqrt(), (1 - alpha_t).sqrt()
    if prediction_type == "v_prediction":
        x0, eps = a * x - b * output, a * output + b * x
    elif prediction_type == "epsilon":
        x0, eps = (x - b * output) / a, output
    else:  # sample
        x0, eps = output, (x - a * output) / b
    return alpha_next.sqrt() * x0 + (1 - alpha_next).sqrt() * eps


class FrozenLDM:
    """VAE + U-Net + CLIP text encoder, all frozen and in eval mode, on one device."""

    def __init__(self, model_cfg: Mapping[str, Any], autoencoder: nn.Module, unet: nn.Module, tokenizer: Any,
                 text_encoder: nn.Module, device: torch.device, precision: str = "fp32") -> None:
        self.cfg = model_cfg
        self.device = device
        self.precision = precision
        self.tokenizer = tokenizer
        self.autoencoder = autoencoder.to(device).eval().requires_grad_(False)
        self.unet = unet.to(device).eval().requires_grad_(False)
        self.text_encoder = text_encoder.to(device).eval().requires_grad_(False)
        hidden = int(text_encoder.config.hidden_size)
        if hidden != int(model_cfg["unet"]["cross_attention_dim"]):
            raise CxrdataError(f"CLIP's hidden size {hidden} does not match the U-Net's cross_attention_dim "
                               f"{model_cfg['unet']['cross_attention_dim']}: another CLIP or another recipe")
        if int(text_encoder.config.max_position_embeddings) < int(model_cfg["max_tokens"]):
            raise CxrdataError(f"CLIP takes {text_encoder.config.max_position_embeddings} positions, the recipe "
                               f"asks for {model_cfg['max_tokens']}")
        scheduler = build_scheduler(model_cfg["scheduler"])
        self.prediction_type = str(model_cfg["scheduler"]["prediction_type"])
        self.alphas_cumprod = scheduler.alphas_cumprod.to(device=device, dtype=torch.float32)
        self.train_timesteps = int(model_cfg["scheduler"]["num_train_timesteps"])
        self.inference_steps = int(model_cfg["num_inference_steps"])
        self.latent_scale = float(model_cfg["latent_scale"])

    @classmethod
    def load(cls, model_cfg: Mapping[str, Any], ldm: str | Path, clip: str | Path, device: torch.device,
             precision: str = "fp32") -> FrozenLDM:
        """Build the networks from the recipe and load ``--ldm`` / ``--clip`` (local files only)."""
        bundle = Path(ldm)
        files = model_cfg["bundle_files"]
        ae_path = find_bundle_file(bundle, files["autoencoder"], "autoencoder")
        unet_path = find_bundle_file(bundle, files["unet"], "unet")
        autoencoder, unet = build_autoencoder(model_cfg["autoencoder"]), build_unet(model_cfg["unet"])
        load_weights(autoencoder, read_state_dict(ae_path), ae_path, "autoencoder")
        load_weights(unet, read_state_dict(unet_path), unet_path, "unet")
        tokenizer, text_encoder = load_clip(Path(clip))
        return cls(model_cfg, autoencoder, unet, tokenizer, text_encoder, device, precision)

    def speed_up(self, compile_unet: bool = False, gradient_checkpointing: bool = False) -> None:
        """Optional GPU settings for the U-Net's residual blocks (:func:`resnet_blocks`).

        MONAI's ``DiffusionModelUNet`` has no gradient-checkpointing switch of its own, so ours wraps each residual
        block in ``torch.utils.checkpoint``. The transformer blocks are left out on purpose: their ``attn2``
        carry the attention hooks, which would run again during recomputation after :meth:`AttentionRecorder.run`
        returned (the recomputed graph would then differ from the recorded one), and the early-exit exception
        would escape a recomputation. ``compile_unet``: ``torch.compile`` the same blocks (the hooked blocks and
        the early exit stay eager)."""
        blocks = resnet_blocks(self.unet)
        if gradient_checkpointing:
            checkpoint_blocks(blocks)
        if compile_unet:
            compile_blocks(blocks)

    def timestep(self, step: int) -> int:
        """Timestep of inference step ``step`` (leading spacing)."""
        return step * (self.train_timesteps // self.inference_steps)

    def autocast(self) -> Any:
        return autocast(self.device, self.precision)

    @torch.no_grad()
    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 1, S, S)`` images in [0, 1] -> latents ``(B, C, S/8, S/8)``: posterior mean x latent scale."""
        with self.autocast():
            mu, _ = self.autoencoder.encode(images.to(self.device))
        return mu.float() * self.latent_scale

    def encode_text(self, ids: torch.Tensor) -> torch.Tensor:
        """Virtual token ids ``(B, L)`` -> CLIP's last hidden state ``(B, L, D)`` (float32)."""
        with self.autocast():
            out = self.text_encoder(input_ids=ids.to(self.device)).last_hidden_state
        return out.float()

    def unet_forward(self, x: torch.Tensor, steps: Sequence[int] | torch.Tensor, context: torch.Tensor) -> Any:
        """The U-Net at inference steps ``steps`` (one per batch item)."""
        t = torch.as_tensor([self.timestep(int(s)) for s in steps], dtype=torch.long, device=self.device)
        with self.autocast():
            return self.unet(x.to(self.device), timesteps=t, context=context.to(self.device))

    @torch.no_grad()
    def invert(self, latents: torch.Tensor, uncond: torch.Tensor, keep: Sequence[int]) -> torch.Tensor:
        """DDIM inversion with the empty prompt; ``(B, len(keep), C, h, w)`` latents at inference steps ``keep``."""
        keep = list(keep)
        last = max(keep)
        if last >= self.inference_steps:
            raise CxrdataError(f"step {last} is outside the {self.inference_steps}-step schedule")
        x = latents.to(self.device, torch.float32)
        context = uncond.to(self.device).expand(len(x), -1, -1)
        kept: dict[int, torch.Tensor] = {}
        for i in range(last + 1):
            if i in keep:
                kept[i] = x
            if i == last:
                break
            out = self.unet_forward(x, [i] * len(x), context).float()
            x = ddim_inverse_step(out, x, self.alphas_cumprod[self.timestep(i)],
                                  self.alphas_cumprod[self.timestep(i + 1)], self.prediction_type)
        return torch.stack([kept[i] for i in keep], dim=1)

    def noised(self, latents: torch.Tensor, steps: Sequence[int], noise: torch.Tensor) -> torch.Tensor:
        """``q(x_t | x_0)``: ``(B, len(steps), C, h, w)`` from ``noise`` of that shape."""
        a = self.alphas_cumprod[[self.timestep(s) for s in steps]].view(1, -1, 1, 1, 1)
        x0 = latents.to(self.device, torch.float32).unsqueeze(1)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise.to(self.device)
