"""Reading hailo-vision's configuration: the file by its lookup order, the environment's overrides.

Lookup order: `--config FILE`, `$HAILO_VISION_CONFIG`, `/etc/hailo/vision/config.yaml`, then the repo's
`etc/config.yaml`. Any key can be overridden with `HAILO_VISION_<SECTION>_<KEY>` (e.g.
`HAILO_VISION_API_PORT=8080`). Each value is held to the rule declared beside its key in
npu_worker.config. Errors name the file (or the variable), the key and the reason, at start; so does
an unknown key in the file or a `HAILO_VISION_*` variable that names none.
"""

from __future__ import annotations

import dataclasses
import json
import os
import typing
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml

from npu_worker.config import DEVICE_DIR_ENV, FACTORY_ENV, REPO_ROOT, Config, ConfigError, Rule

SYSTEM_CONFIG = Path("/etc/hailo/vision/config.yaml")
REPO_CONFIG = REPO_ROOT / "etc" / "config.yaml"
ENV_FILE = "HAILO_VISION_CONFIG"
ENV_PREFIX = "HAILO_VISION_"
# Variables with the prefix that name no key on purpose.
NON_KEY_VARIABLES = frozenset({ENV_FILE, FACTORY_ENV, DEVICE_DIR_ENV, "HAILO_VISION_BENCH_HAILORT"})


def config_from_json(text: str) -> Config:
    """The configuration a parent process wrote with Config.to_json, checked again."""
    data = json.loads(text)
    return _build(data, data.get("source", "<resolved>"), {})


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """`value` as the field's type; strings (from the environment) are parsed."""
    origin = typing.get_origin(annotation)
    if annotation is bool:
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if annotation in (int, float):
        expected = "an integer" if annotation is int else "a number"
        accepted = (int, str) if annotation is int else (int, float, str)
        if isinstance(value, bool) or not isinstance(value, accepted):
            raise ConfigError(f"{where}: expected {expected}, got {value!r}")
        try:
            return annotation(value)
        except ValueError:
            raise ConfigError(f"{where}: expected {expected}, got {value!r}") from None
    if annotation is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    if origin is tuple:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if value is None:
            return ()
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: expected a list of strings, got {value!r}")
        return tuple(value)
    raise ConfigError(f"{where}: unsupported type {annotation}")


def _keys(cls: type) -> dict[str, tuple[Any, Rule | None]]:
    """Each key of a section (or of the top level): its type and its rule."""
    hints = typing.get_type_hints(cls)
    return {f.name: (hints[f.name], f.metadata.get("rule")) for f in fields(cls) if f.name != "source"}


def _is_section(annotation: Any) -> bool:
    return isinstance(annotation, type) and dataclasses.is_dataclass(annotation)


def env_variables() -> dict[str, str]:
    """Every override variable and the key it sets: HAILO_VISION_API_PORT -> "api.port"."""
    names: dict[str, str] = {}
    for name, (kind, _) in _keys(Config).items():
        for key in _keys(kind) if _is_section(kind) else ("",):
            dotted = f"{name}.{key}" if key else name
            names[ENV_PREFIX + dotted.replace(".", "_").upper()] = dotted
    return names


def _check_environment(env: Mapping[str, str]) -> None:
    known = env_variables()
    for name in sorted(env):
        if name.startswith(ENV_PREFIX) and name not in known and name not in NON_KEY_VARIABLES:
            raise ConfigError(
                f"environment {name}: names no configuration key (overrides are "
                f"{ENV_PREFIX}<SECTION>_<KEY>, e.g. {ENV_PREFIX}API_PORT; see etc/config.yaml)"
            )


def _build_keys(cls: type, raw: Mapping[str, Any], prefix: str, source: str, env: Mapping[str, str]) -> Any:
    """An instance of `cls` (a section, or the whole Config) from its file mapping and the environment."""
    known = _keys(cls)
    for key in raw:
        if key not in known and not (cls is Config and key == "source"):
            shown = f"{prefix}{key}" if prefix else repr(key)
            scope = f" in {prefix.rstrip('.')}" if prefix else ""
            raise ConfigError(f"{source}: unknown key {shown} (known{scope}: {', '.join(sorted(known))})")
    defaults = cls()
    values: dict[str, Any] = {}
    for key, (annotation, rule) in known.items():
        dotted = f"{prefix}{key}"
        if _is_section(annotation):
            section = raw.get(key) or {}
            if not isinstance(section, dict):
                raise ConfigError(f"{source}: {dotted}: expected a mapping, got {section!r}")
            values[key] = _build_keys(annotation, section, f"{dotted}.", source, env)
            continue
        env_name = ENV_PREFIX + dotted.replace(".", "_").upper()
        if env_name in env:
            where, value = (
                f"environment {env_name}",
                _coerce(env[env_name], annotation, f"environment {env_name}"),
            )
        else:
            where = f"{source}: {dotted}"
            value = getattr(defaults, key) if raw.get(key) is None else _coerce(raw[key], annotation, where)
        reason = rule.violation(value) if rule is not None else None
        if reason:
            raise ConfigError(f"{where}: {reason}")
        values[key] = value
    return cls(**values)


def _build(data: Any, source: str, env: Mapping[str, str]) -> Config:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections")
    config: Config = _build_keys(Config, data, "", source, env)
    return dataclasses.replace(config, source=source)


def find_config_file(explicit: str | None, env: dict[str, str]) -> Path | None:
    """The config file by precedence, or None when no file exists (built-in defaults apply)."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"{path}: config file given with --config does not exist")
        return path
    if env.get(ENV_FILE):
        path = Path(env[ENV_FILE])
        if not path.is_file():
            raise ConfigError(f"{path}: config file named by ${ENV_FILE} does not exist")
        return path
    for candidate in (SYSTEM_CONFIG, REPO_CONFIG):
        if candidate.is_file():
            return candidate
    return None


def load_config(explicit: str | None = None, env: dict[str, str] | None = None) -> Config:
    """The validated configuration by the lookup order, with environment overrides applied."""
    environ = dict(os.environ if env is None else env)
    _check_environment(environ)
    path = find_config_file(explicit, environ)
    if path is None:
        return _build({}, "<defaults>", environ)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc})") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    config = _build(data, str(path), environ)
    return _resolve_paths(config, path.parent)


def _resolve_paths(config: Config, base: Path) -> Config:
    """Relative model paths in a file are relative to that file's folder."""

    def absolute(p: str) -> str:
        return p if not p or Path(p).is_absolute() else str((base / p).resolve())

    return dataclasses.replace(
        config,
        model=dataclasses.replace(config.model, path=absolute(config.model.path)),
        clip=dataclasses.replace(
            config.clip, path=absolute(config.clip.path), cache_file=absolute(config.clip.cache_file)
        ),
    )
