"""vidbench networks and the LightningModule (the five architectures arrive with issue 4)."""
