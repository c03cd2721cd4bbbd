"""vidbench networks: one file per architecture, a name -> constructor registry, and the
`VideoClassifier` LightningModule that trains any of them.

    from vidbench.models import create_model
    net = create_model("i3d", num_classes=400, modalities=("rgb", "flow"))
    logits = net({"rgb": rgb, "flow": flow})  # (B, 400)
"""

from vidbench.models import (  # noqa: F401  (each registers its architecture)
    c3d,
    convnet_lstm,
    frame_avg,
    fused_two_stream,
    i3d,
    r3d,
    two_stream,
)
from vidbench.models.classifier import VideoClassifier
from vidbench.models.registry import create_model, list_models, model_options, register_model

__all__ = [
    "VideoClassifier",
    "create_model",
    "list_models",
    "model_options",
    "register_model",
]
