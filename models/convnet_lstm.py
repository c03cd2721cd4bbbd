"""ConvNet+LSTM, docs/protocol.md 1a: Inception-v1 features per frame -> BN -> LSTM (512) -> FC.

The paper's LSTM has batch normalisation: recurrent batch norm (Cooijmans et al., ICLR
2017), the default here; `lstm="plain"` gives PyTorch's cuDNN LSTM. Trained with
cross-entropy on every time step's output (`training_logits`); at test time only the last
frame's output counts (`forward`). 25 RGB frames, 1 of every 5 at 25 fps.
"""

from __future__ import annotations

import torch
from torch import nn

from vidbench.datasets.clip_spec import ClipSpec
from vidbench.models.backbones import create_backbone, per_frame
from vidbench.models.registry import register_model


class BatchNormLSTM(nn.Module):
    """An LSTM with recurrent batch normalisation: the input and the recurrent
    pre-activations are normalised separately, and the cell state before its tanh, with
    population statistics per time step and a scale and shift shared by all steps (the
    scales start at 0.1, as Cooijmans et al. advise). At test time a step later than any
    trained on uses the last trained step's statistics (the paper tests on 50 steps,
    trains on 25). (B, T, input_size) -> (B, T, hidden)."""

    def __init__(self, input_size: int, hidden: int, max_steps: int = 64) -> None:
        super().__init__()
        self.hidden = hidden
        self.input_weights = nn.Linear(input_size, 4 * hidden, bias=False)
        self.recurrent_weights = nn.Linear(hidden, 4 * hidden, bias=False)
        self.bias = nn.Parameter(torch.zeros(4 * hidden))  # the gates' shift, all steps
        nn.init.orthogonal_(self.recurrent_weights.weight)
        self.scale_input = nn.Parameter(torch.full((4 * hidden,), 0.1))
        self.scale_recurrent = nn.Parameter(torch.full((4 * hidden,), 0.1))
        self.scale_cell = nn.Parameter(torch.full((hidden,), 0.1))
        self.shift_cell = nn.Parameter(torch.zeros(hidden))
        steps = range(max_steps)  # statistics only: the scales and shifts above are shared
        self.norm_input = nn.ModuleList(nn.BatchNorm1d(4 * hidden, affine=False) for _ in steps)
        self.norm_recurrent = nn.ModuleList(nn.BatchNorm1d(4 * hidden, affine=False) for _ in steps)
        self.norm_cell = nn.ModuleList(nn.BatchNorm1d(hidden, affine=False) for _ in steps)
        self.trained_steps = 0  # the longest sequence trained on (kept in the state dict)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, steps, _ = x.shape
        if self.training:
            self.trained_steps = max(self.trained_steps, steps)
        last = len(self.norm_cell) - 1
        if not self.training and self.trained_steps > 0:
            last = min(last, self.trained_steps - 1)
        inputs = self.input_weights(x)  # (B, T, 4 hidden)
        h = c = x.new_zeros(b, self.hidden)
        outputs = []
        for t in range(steps):
            k = min(t, last)
            gates = (
                self.scale_input * self.norm_input[k](inputs[:, t])
                + self.scale_recurrent * self.norm_recurrent[k](self.recurrent_weights(h))
                + self.bias
            )  # (B, 4 hidden)
            i, f, g, o = gates.chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            cell = self.scale_cell * self.norm_cell[k](c) + self.shift_cell
            h = torch.sigmoid(o) * torch.tanh(cell)
            outputs.append(h)
        return torch.stack(outputs, dim=1)

    def get_extra_state(self) -> dict[str, int]:
        return {"trained_steps": self.trained_steps}

    def set_extra_state(self, state: dict[str, int]) -> None:
        self.trained_steps = int(state["trained_steps"])


LSTMS = ("batchnorm", "plain")


@register_model("convnet_lstm")
class ConvNetLSTM(nn.Module):
    """`rgb` (B, 3, T, H, W) -> logits (B, num_classes) of the last time step."""

    # trained on 25 frames 1 in 5 (5 s); tested on 50 (10 s), the last step's output
    # (docs/protocol.md 1a)
    imagenet_option = "backbone_weights"
    input_spec = ClipSpec(
        modalities=("rgb",), clip_len=25, frame_interval=5, crop_size=224, test_clip_len=50
    )
    rgb_motion = "pooled"

    def __init__(
        self,
        num_classes: int,
        backbone: str = "inception_v1",
        width: float = 1.0,
        hidden: int = 512,
        dropout: float = 0.5,
        backbone_weights: str | None = None,
        lstm: str = "batchnorm",
    ) -> None:
        """num_classes: classes of the head; backbone: `inception_v1` (the paper's) or a
        timm model; width: channel multiplier of the Inception trunk; hidden: LSTM units
        (the paper's 512); dropout: before the head; backbone_weights: ImageNet weights of
        the trunk (a torchvision googlenet state dict); lstm: `batchnorm` (recurrent batch
        normalisation, the paper's) or `plain` (PyTorch's LSTM)."""
        super().__init__()
        if lstm not in LSTMS:
            raise ValueError(f"convnet_lstm lstm {lstm!r} is not one of {LSTMS}")
        self.backbone = create_backbone(backbone, 3, width, backbone_weights)
        features = self.backbone.num_features
        self.norm = nn.BatchNorm1d(features)
        self.lstm = (
            BatchNormLSTM(features, hidden)
            if lstm == "batchnorm"
            else nn.LSTM(features, hidden, batch_first=True)
        )
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden, num_classes)

    def training_logits(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits at every time step: (B, T, num_classes)."""
        features = per_frame(self.backbone, inputs["rgb"]).mean(dim=(-2, -1))  # (B, T, F)
        sequence = self.norm(features.flatten(0, 1)).view_as(features)
        hidden = self.lstm(sequence)  # (B, T, hidden)
        hidden = hidden[0] if isinstance(hidden, tuple) else hidden  # nn.LSTM: (out, state)
        return self.fc(self.dropout(hidden))

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.training_logits(inputs)[:, -1]

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.fc = nn.Linear(self.fc.in_features, num_classes)
