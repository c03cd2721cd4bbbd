"""vidbench networks: one file per architecture, a name -> constructor registry, and the
`VideoClassifier` LightningModule that trains any of them.

    from vidbench.models import create_model
    net = create_model("i3d", num_classes=400, modalities=("rgb", "flow"))
    logits = net({"rgb": rgb, "flow": flow})  # (B, 400)
"""

from vidbench.models import c3d, convnet_lstm, frame_avg, fused_two_stream, i3d, r3d, two_stream  # noqa: F401  (register)
from vidbench.models.classifier import VideoClassifier
from vidbench.models.registry import (
    InputSpec,
    create_model,
    list_models,
    model_options,
    register_model,
)

__all__ = [
    "InputSpec",
    "VideoClassifier",
    "create_model",
    "list_models",
    "model_options",
    "register_model",
]
