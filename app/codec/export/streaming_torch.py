"""Streaming wrappers around transformers' MimiModel with explicit state I/O (export time only).

Each wrapper is a pure function of (input, conv states, KV cache) -> (output, new conv states, new
KV cache): exactly the published ONNX contract. The weights are the MimiModel's own modules; only the
streaming bookkeeping is ours:

- a causal `conv` keeps the last (effective_kernel - stride) input samples and prepends them to the
  next call (zeros at start = the causal left padding);
- a `conv_tr` keeps the overlapping tail (kernel - stride samples) of its output, without bias, and
  adds it onto the start of the next call's output;
- the transformers take past keys/values, append the new ones (keys already rotated, rotate-half
  layout) and return the whole cache; positions start at the past length.

Tensors are [B, C, T] unless a docstring says otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from transformers.models.mimi import modeling_mimi as mm


@dataclass(frozen=True)
class ConvSlot:
    """One streaming convolution: its state name in state_spec.txt and its state shape."""

    kind: str  # "conv" or "conv_tr"
    name: str
    channels: int
    temporal: int
    module: nn.Module  # the MimiConv1d / MimiConvTranspose1d


def _conv_slot(name: str, layer: nn.Module) -> ConvSlot | None:
    if isinstance(layer, mm.MimiConv1d):
        conv = layer.conv
        effective_kernel = (conv.kernel_size[0] - 1) * conv.dilation[0] + 1
        temporal = effective_kernel - conv.stride[0]
        if temporal == 0:  # 1x1 convolutions carry nothing between calls
            return None
        return ConvSlot("conv", name, conv.in_channels, temporal, layer)
    if isinstance(layer, mm.MimiConvTranspose1d):
        conv = layer.conv
        return ConvSlot("conv_tr", name, conv.out_channels, conv.kernel_size[0] - conv.stride[0], layer)
    raise TypeError(f"not a Mimi convolution: {type(layer).__name__}")


def _state_slot(name: str, layer: nn.Module) -> ConvSlot:
    """The slot of a convolution the wrappers stream through directly (down/upsampling)."""
    slot = _conv_slot(name, layer)
    if slot is None:
        raise NotImplementedError(f"Mimi configs with a stateless {name!r} convolution are not supported")
    return slot


def _seanet_slots(prefix: str, layers: nn.ModuleList) -> list[tuple[nn.Module, list[ConvSlot]]]:
    """Pairs each SEANet layer with the streaming slots it owns, named like the published spec."""
    plan = []
    for index, layer in enumerate(layers):
        if isinstance(layer, mm.MimiResnetBlock):
            slots = [
                _conv_slot(f"{prefix}_{index}_b{sub}", conv)
                for sub, conv in enumerate(layer.block)
                if isinstance(conv, mm.MimiConv1d)
            ]
            if not isinstance(layer.shortcut, nn.Identity):
                raise NotImplementedError("Mimi configs with a conv shortcut are not supported")
            plan.append((layer, [slot for slot in slots if slot is not None]))
        elif isinstance(layer, (mm.MimiConv1d, mm.MimiConvTranspose1d)):
            slot = _conv_slot(f"{prefix}_{index}", layer)
            plan.append((layer, [slot] if slot is not None else []))
        else:
            plan.append((layer, []))
    return plan


def stream_conv(slot: ConvSlot, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Causal conv on x with `state` as its left context; returns (y, new_state)."""
    if slot.kind == "conv":
        padded = torch.cat([state, x], dim=2)
        y = slot.module.conv(padded)
        return y, padded[:, :, -slot.temporal :]
    conv = slot.module.conv
    full = conv(x)
    out_len = x.shape[2] * conv.stride[0]
    head = full[:, :, :out_len]
    head = torch.cat([head[:, :, : slot.temporal] + state, head[:, :, slot.temporal :]], dim=2)
    tail = full[:, :, out_len:]
    if conv.bias is not None:  # the next call adds its own bias over the overlap
        tail = tail - conv.bias[None, :, None]
    return head, tail


def _run_seanet(plan, x: torch.Tensor, states: list[torch.Tensor], new_states: list[torch.Tensor]) -> torch.Tensor:
    cursor = len(new_states)
    for layer, slots in plan:
        if isinstance(layer, mm.MimiResnetBlock):
            residual = x
            for sub in layer.block:
                if isinstance(sub, mm.MimiConv1d):
                    slot = next((s for s in slots if s.module is sub), None)
                    if slot is None:
                        x = sub.conv(x)
                    else:
                        x, state = stream_conv(slot, x, states[cursor])
                        new_states.append(state)
                        cursor += 1
                else:
                    x = sub(x)
            x = residual + x
        elif slots:
            x, state = stream_conv(slots[0], x, states[cursor])
            new_states.append(state)
            cursor += 1
        elif isinstance(layer, mm.MimiConv1d):
            x = layer.conv(x)
        else:
            x = layer(x)
    return x


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


class StreamingTransformer(nn.Module):
    """MimiTransformerModel step over [B, T, C] with an explicit KV cache per layer."""

    def __init__(self, transformer: mm.MimiTransformerModel):
        super().__init__()
        self.layers = transformer.layers
        config = transformer.config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        if config.num_key_value_heads != config.num_attention_heads:
            raise NotImplementedError("grouped-query attention is not part of Mimi")
        exponents = torch.arange(0, self.head_dim, 2).float() / self.head_dim
        inv_freq = 1.0 / (config.rope_parameters["rope_theta"] ** exponents)
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        # Reference only (never exported): hide keys older than (call start - window), the same keys
        # a cache trimmed to `window` entries before each call holds.
        self.reference_window: int | None = None

    def forward(self, x: torch.Tensor, past: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """x: [B, T, C]; past: [k0, v0, k1, v1, ...] each [B, H, P, D]."""
        batch, steps, _ = x.shape
        past_len = past[0].shape[2]
        positions = torch.arange(steps, device=x.device).float() + past_len
        freqs = positions[:, None] * self.inv_freq[None, :]
        emb = torch.cat([freqs, freqs], dim=-1)
        cos, sin = emb.cos()[None, None], emb.sin()[None, None]
        # Causal over past + new: query i (absolute P + i) sees keys j <= P + i.
        key_index = torch.arange(steps + past_len, device=x.device)[None, :]
        query_index = torch.arange(steps, device=x.device)[:, None] + past_len
        visible = key_index <= query_index
        if self.reference_window is not None:
            visible = visible & (key_index >= past_len - self.reference_window)
        mask = torch.where(visible, 0.0, float("-inf"))
        scale = 1.0 / math.sqrt(self.head_dim)
        present = []
        for index, layer in enumerate(self.layers):
            attn = layer.self_attn
            h = layer.input_layernorm(x)
            q = attn.q_proj(h).view(batch, steps, self.num_heads, self.head_dim).transpose(1, 2)
            k = attn.k_proj(h).view(batch, steps, self.num_heads, self.head_dim).transpose(1, 2)
            v = attn.v_proj(h).view(batch, steps, self.num_heads, self.head_dim).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            keys = torch.cat([past[2 * index], k], dim=2)
            values = torch.cat([past[2 * index + 1], v], dim=2)
            present += [keys, values]
            weights = torch.softmax(q @ keys.transpose(2, 3) * scale + mask, dim=-1)
            out = (weights @ values).transpose(1, 2).reshape(batch, steps, -1)
            x = x + layer.self_attn_layer_scale(attn.o_proj(out))
            x = x + layer.mlp_layer_scale(layer.mlp(layer.post_attention_layernorm(x)))
        return x, present


def codebook_tables(model: mm.MimiModel, codebooks: int) -> list[torch.Tensor]:
    """The first `codebooks` codebook tables [codebook_size, dim], semantic first."""
    quantizer = model.quantizer
    layers = list(quantizer.semantic_residual_vector_quantizer.layers) + list(
        quantizer.acoustic_residual_vector_quantizer.layers
    )
    return [layer.codebook.embed.detach().clone() for layer in layers[:codebooks]]


class StreamingEncoder(nn.Module):
    """input_values [B, 1, 1920 n], conv states, KV -> audio_codes [B, K, n], states, KV."""

    def __init__(self, model: mm.MimiModel, codebooks: int):
        super().__init__()
        encoder = model.encoder
        self.seanet = encoder.encoder_seanet
        self.plan = _seanet_slots("enc", self.seanet.layers)
        self.transformer = StreamingTransformer(encoder.encoder_transformer)
        self.downsample_conv = encoder.downsample  # registered so its weights trace as parameters
        self.downsample = _state_slot("ds", encoder.downsample)
        self.slots = [slot for _, slots in self.plan for slot in slots] + [self.downsample]
        self.num_layers = len(self.transformer.layers)
        quantizer = model.quantizer
        self.semantic_count = quantizer.num_semantic_quantizers
        self.semantic_proj = quantizer.semantic_residual_vector_quantizer.input_proj
        self.acoustic_proj = quantizer.acoustic_residual_vector_quantizer.input_proj
        tables = codebook_tables(model, codebooks)
        for index, table in enumerate(tables):
            # Nearest centroid by ||x||^2 - 2 x.e + ||e||^2; ||x||^2 is the same for every e.
            self.register_buffer(f"codebook_{index}", table)
            self.register_buffer(f"codebook_t_{index}", table.t().contiguous())
            self.register_buffer(f"codebook_norm_{index}", (table * table).sum(dim=1))
        self.codebooks = codebooks

    def _quantize(self, latent: torch.Tensor, first: int, count: int) -> list[torch.Tensor]:
        residual = latent.transpose(1, 2)  # [B, n, dim]
        codes = []
        for index in range(first, first + count):
            table = getattr(self, f"codebook_{index}")
            scores = getattr(self, f"codebook_norm_{index}") - 2.0 * (residual @ getattr(self, f"codebook_t_{index}"))
            code = scores.argmin(dim=-1)
            codes.append(code)
            residual = residual - F.embedding(code, table)
        return codes

    def forward(self, input_values: torch.Tensor, *state: torch.Tensor):
        conv_states = list(state[: len(self.slots)])
        past = list(state[len(self.slots) :])
        new_states: list[torch.Tensor] = []
        x = _run_seanet(self.plan, input_values, conv_states, new_states)
        x, present = self.transformer(x.transpose(1, 2), past)
        x, ds_state = stream_conv(self.downsample, x.transpose(1, 2), conv_states[-1])
        new_states.append(ds_state)
        semantic = min(self.semantic_count, self.codebooks)
        codes = self._quantize(self.semantic_proj(x), 0, semantic)
        if self.codebooks > semantic:
            codes += self._quantize(self.acoustic_proj(x), semantic, self.codebooks - semantic)
        return (torch.stack(codes, dim=1), *new_states, *present)


class StreamingDecoder(nn.Module):
    """audio_codes [B, K, n], conv states, KV -> audio_values [B, 1, 1920 n], states, KV."""

    def __init__(self, model: mm.MimiModel, codebooks: int):
        super().__init__()
        decoder = model.decoder
        self.upsample_conv = decoder.upsample  # registered so its weights trace as parameters
        self.upsample = _state_slot("us", decoder.upsample)
        self.transformer = StreamingTransformer(decoder.decoder_transformer)
        self.seanet = decoder.decoder_seanet
        self.plan = _seanet_slots("dec", self.seanet.layers)
        self.slots = [self.upsample] + [slot for _, slots in self.plan for slot in slots]
        self.num_layers = len(self.transformer.layers)
        quantizer = model.quantizer
        self.semantic_count = quantizer.num_semantic_quantizers
        self.semantic_out = quantizer.semantic_residual_vector_quantizer.output_proj
        self.acoustic_out = quantizer.acoustic_residual_vector_quantizer.output_proj
        for index, table in enumerate(codebook_tables(model, codebooks)):
            self.register_buffer(f"codebook_{index}", table)
        self.codebooks = codebooks

    def _dequantize(self, codes: torch.Tensor, first: int, count: int) -> torch.Tensor:
        total = F.embedding(codes[:, first], getattr(self, f"codebook_{first}"))
        for index in range(first + 1, first + count):
            total = total + F.embedding(codes[:, index], getattr(self, f"codebook_{index}"))
        return total.transpose(1, 2)  # [B, dim, n]

    def forward(self, audio_codes: torch.Tensor, *state: torch.Tensor):
        conv_states = list(state[: len(self.slots)])
        past = list(state[len(self.slots) :])
        semantic = min(self.semantic_count, self.codebooks)
        latent = self.semantic_out(self._dequantize(audio_codes, 0, semantic))
        if self.codebooks > semantic:
            latent = latent + self.acoustic_out(self._dequantize(audio_codes, semantic, self.codebooks - semantic))
        x, us_state = stream_conv(self.upsample, latent, conv_states[0])
        new_states = [us_state]
        x, present = self.transformer(x.transpose(1, 2), past)
        x = _run_seanet(self.plan, x.transpose(1, 2), conv_states, new_states)
        return (x, *new_states, *present)


def initial_state(wrapper: StreamingEncoder | StreamingDecoder, batch: int = 1,
                  past_len: int = 0) -> list[torch.Tensor]:
    """Zero conv states and a KV cache of `past_len` (zeros) per layer."""
    transformer = wrapper.transformer
    conv = [torch.zeros(1, slot.channels, slot.temporal) for slot in wrapper.slots]
    kv = [torch.zeros(batch, transformer.num_heads, past_len, transformer.head_dim)
          for _ in range(2 * wrapper.num_layers)]
    return conv + kv
