"""The core's own behaviour, registered as default plugins through the same hooks as any outside plugin."""
