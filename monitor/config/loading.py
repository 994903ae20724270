"""Reading config.yaml: YAML, `MONITOR__SECTION__KEY=value` overrides, precise errors.

`load_config(path)` is the one entry point. It reads YAML, applies the
environment overrides, validates with the models (model.py), and either
returns a `Config` or raises `ConfigError` with one `path: message` line per
problem, for example `sources[3].interval: must be a positive duration`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from monitor.config.model import Config, duplicate_source_ids
from monitor.errors import ConfigError

__all__ = ["ENV_PREFIX", "default_config_path", "load_config"]

ENV_PREFIX = "MONITOR__"
_SECRET_KEYS = frozenset({"sasl_plain_password", "ssl_keyfile_password"})
_SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def default_config_path() -> Path:
    """`$MONITOR_CONFIG`, else `./config.yaml`."""
    return Path(os.environ.get("MONITOR_CONFIG", "config.yaml"))


def load_config(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Config:
    """Read, override from the environment, and validate a config file."""
    origin = str(path)
    raw = _read_yaml(Path(path), origin)
    unapplied = _apply_env_overrides(raw, os.environ if env is None else env)
    if unapplied:
        raise ConfigError(unapplied, origin=origin)
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        problems = _describe(exc)
    # Field errors stop pydantic before the whole-config checks run; report
    # duplicate ids anyway, so one `monitor check` shows every problem.
    sources = raw.get("sources")
    if isinstance(sources, list) and not any("duplicate id" in p for p in problems):
        ids = [s.get("id") for s in sources if isinstance(s, dict) and s.get("id") is not None]
        problems.extend(duplicate_source_ids(ids))
    raise ConfigError(problems, origin=origin)


def _read_yaml(path: Path, origin: str) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{origin}: file not found"], origin=origin) from None
    except OSError as exc:
        raise ConfigError([f"{origin}: cannot be read: {exc.strerror}"], origin=origin) from None
    try:
        # libyaml's loader where PyYAML has it: 4x faster than the pure-Python one,
        # which took 1.2 s of a 2.3 s start with 10,000 sources (bench/memory.py).
        loaded = yaml.load(text, Loader=_SAFE_LOADER)
    except yaml.YAMLError as exc:
        raise ConfigError([f"{origin}: {_yaml_problem(exc)}"], origin=origin) from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(
            [f"(top level): must be a mapping of sections, got {type(loaded).__name__}"],
            origin=origin,
        )
    return loaded


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """`line L, column C: invalid YAML: ...`, at the line a person must fix.

    PyYAML places its problem where it gave up: for an unclosed bracket or quote
    that is the line *after* the mistake. When it also says where the construct
    it was reading began ("while parsing a flow sequence", "... a quoted scalar"),
    that is the line to point at; where it gave up follows in brackets.
    """
    problem_mark = getattr(exc, "problem_mark", None)
    context_mark = getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    # Only for what opens and must close (brackets, quotes): a block mapping's start is
    # usually far above an indentation mistake, which the problem mark points at well.
    if context and context_mark is not None and ("flow" in context or "quoted" in context):
        given_up = (f" (at line {problem_mark.line + 1}, column {problem_mark.column + 1})"
                    if problem_mark is not None else "")
        return (f"line {context_mark.line + 1}, column {context_mark.column + 1}: invalid YAML: "
                f"{context.removeprefix('while ')} started here: {problem}{given_up}")
    where = (f"line {problem_mark.line + 1}, column {problem_mark.column + 1}: "
             if problem_mark is not None else "")
    return f"{where}invalid YAML: {problem}"


def _apply_env_overrides(raw: dict[str, Any], env: Mapping[str, str]) -> list[str]:
    """Apply `MONITOR__KAFKA__BOOTSTRAP_SERVERS=...` style overrides in place.

    Written by hand rather than with pydantic-settings because overrides must
    beat the file (so secrets can stay out of it) and must reach list items
    (`MONITOR__SOURCES__0__INTERVAL=1m`). Values are read as YAML scalars, so
    `true`, `3` and `[a, b]` mean what they say.

    Returns one problem per override that names a list item that does not exist
    (`MONITOR__SOURCES__7__INTERVAL` with one source): silently ignored, it would
    leave the operator sure of a setting the service never had.
    """
    problems = []
    for name in sorted(env):
        if not name.upper().startswith(ENV_PREFIX) or name.upper() == ENV_PREFIX:
            continue
        keys = [part.lower() for part in name[len(ENV_PREFIX) :].split("__") if part]
        if keys:
            # A secret is taken verbatim: as YAML, `123456` is a number, `null` nothing,
            # and `pa ss #word` loses its end to a comment.
            value = env[name] if keys[-1] in _SECRET_KEYS else _parse_env_value(env[name])
            if missing := _set_path(raw, keys, value):
                problems.append(f"{name}: {missing}")
    return problems


def _parse_env_value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _set_path(
    node: MutableMapping[str, Any] | list[Any], keys: list[str], value: Any, where: str = ""
) -> str | None:
    """Set `value` at `keys` under `node`; or say why not (a list item that does not exist)."""
    head, rest = keys[0], keys[1:]
    if isinstance(node, list):
        if not head.isdigit() or int(head) >= len(node):
            return (
                f"{where}[{head}] does not exist ({where} has {len(node)} item"
                f"{'' if len(node) == 1 else 's'}, numbered from 0)"
            )
        if rest:
            return _set_path(node[int(head)], rest, value, f"{where}[{head}]")
        node[int(head)] = value
        return None
    if not rest:
        node[head] = value
        return None
    child = node.get(head)
    if not isinstance(child, dict | list):
        child = node[head] = {}
    return _set_path(child, rest, value, f"{where}.{head}" if where else head)


def _describe(exc: ValidationError) -> list[str]:
    """One `path: message` line per validation error, paths as `sources[3].interval`."""
    problems = []
    for error in exc.errors():
        path = _format_loc(error["loc"])
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown key (check its spelling and the configuration reference)"
        elif error["type"] == "missing":
            message = "is required"
        elif error["type"] in {"duplicate_id", "problems"}:
            problems.extend(error["msg"].split("; "))
            continue
        elif message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        problems.append(f"{path}: {message}" if path else message)
    return problems


def _format_loc(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.startswith(("function-", "literal[", "constrained-")) or part in {
            "float",
            "int",
            "str",
            "bool",
            "none",
            "min-max",
        }:
            continue  # pydantic names the union branch it tried; the user never wrote it
        else:
            path += f".{part}" if path else part
    return path
