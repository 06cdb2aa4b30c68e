"""The Inception networks, with the module names and state_dict keys of the implementations users
already hold weights for. ``create_model(name, **kwargs)``, ``list_models()``."""

from inception_core.models._registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model"]
