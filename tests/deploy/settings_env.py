"""The environment variables each service reads, found by introspecting its settings classes at test time.

Nothing here is a hand-kept list: a field added to a service's settings is a variable the deployment
files must set, and the tests that use this fail until they do.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

from pydantic import AliasChoices, AliasPath, BaseModel
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from cartera.services import SERVICES
from cartera_common.settings import ServiceSettings

REPO = Path(__file__).resolve().parents[2]
SERVICE_NAMES = tuple(spec.name for spec in SERVICES)


def settings_classes(service: str) -> list[type[ServiceSettings]]:
    """Every ServiceSettings subclass defined in the service's settings module."""
    module = importlib.import_module(f"{service}.settings")
    return [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, ServiceSettings)
        and obj is not ServiceSettings
        and obj.__module__ == module.__name__
    ]


def env_names(settings: type[BaseSettings]) -> set[str]:
    """The variable names pydantic-settings reads for these settings (upper-cased)."""
    config = settings.model_config
    prefix = str(config.get("env_prefix") or "")
    delimiter = config.get("env_nested_delimiter")
    names: set[str] = set()
    for field_name, field in settings.model_fields.items():
        base = _field_env_name(field_name, field, prefix)
        nested = _nested_model(field)
        if nested is not None and delimiter:
            names |= {f"{base}{delimiter}{sub}" for sub in _model_env_names(nested, str(delimiter))}
        else:
            names.add(base)
    return {name.upper() for name in names}


def service_env_names(service: str) -> set[str]:
    classes = settings_classes(service)
    if not classes:
        raise AssertionError(f"services/{service}: no ServiceSettings subclass in {service}.settings")
    return set().union(*(env_names(cls) for cls in classes))


def _field_env_name(field_name: str, field: FieldInfo, prefix: str) -> str:
    alias = field.validation_alias
    if isinstance(alias, str):
        return alias  # an alias is read as is, without the prefix
    if isinstance(alias, AliasChoices):
        first = alias.choices[0]
        return first if isinstance(first, str) else ".".join(str(p) for p in first.path)
    if isinstance(alias, AliasPath):
        return str(alias.path[0])
    return prefix + field_name


def _nested_model(field: FieldInfo) -> type[BaseModel] | None:
    annotation = field.annotation
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _model_env_names(model: type[BaseModel], delimiter: str) -> set[str]:
    names: set[str] = set()
    for name, field in model.model_fields.items():
        nested = _nested_model(field)
        if nested is None:
            names.add(name)
        else:
            names |= {f"{name}{delimiter}{sub}" for sub in _model_env_names(nested, delimiter)}
    return names
