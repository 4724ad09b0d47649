"""Cache knobs as plain data: the values a knob may take, checked without torch.

A policy's config dataclass declares each knob with `knob(default, low=..., high=..., choices=...)`; the same
rule then checks a value in three places: a request's knobs when the engine builds the policy, the dataclass
itself when built directly, and the API at submission, from the rules a worker publishes in its model profile
(`rules_of`), so a bad value is a 422 naming the knob rather than a failed job.
"""

from __future__ import annotations

from dataclasses import field, fields

_TYPES = {"float": float, "int": int, "bool": bool, "str": str}
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def knob(default, *, low: float | None = None, high: float | None = None, choices: tuple[str, ...] | None = None):
    """A dataclass field whose metadata carries its rule."""
    rule = {"low": low, "high": high, "choices": list(choices) if choices else None}
    return field(default=default, metadata={"knob": {k: v for k, v in rule.items() if v is not None}})


def rules_of(cls, defaults: dict | None = None) -> dict[str, dict]:
    """{knob: {"type", "default", and "low" / "high" / "choices" where set}}, JSON-ready; defaults override the
    dataclass's (a preset's values). Every policy field has a default: requests name only the knobs they change."""
    return {f.name: {"type": type(f.default).__name__, "default": (defaults or {}).get(f.name, f.default),
                     **f.metadata.get("knob", {})} for f in fields(cls)}


def coerce(name: str, value, kind: str):
    """A request's value (JSON, or a string from the CLI) as the knob's type; ValueError names the knob."""
    try:
        if kind == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in _TRUE + _FALSE:
                return value.lower() in _TRUE
            raise ValueError
        if isinstance(value, bool) and kind != "str":
            raise ValueError  # true is not a number
        if kind == "int" and isinstance(value, float) and not value.is_integer():
            raise ValueError  # 4.5 steps is not 4
        return _TYPES[kind](value)
    except (TypeError, ValueError):
        raise ValueError(f"cache knob {name}={value!r}: expected {kind}") from None


def check(name: str, value, rule: dict) -> None:
    """Raise ValueError naming the knob if a value of the right type breaks its rule."""
    low, high, choices = rule.get("low"), rule.get("high"), rule.get("choices")
    if choices is not None and value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    if low is not None and high is not None:
        if not low <= value <= high:
            raise ValueError(f"{name} must lie in [{low:g}, {high:g}], got {value}")
    elif low is not None and value < low:
        raise ValueError(f"{name} must be >= {low:g}, got {value}")
    elif high is not None and value > high:
        raise ValueError(f"{name} must be <= {high:g}, got {value}")


def validate(config) -> None:
    """Check every knob of a policy config dataclass against its declared rule (call from __post_init__)."""
    for f in fields(config):
        if "knob" in f.metadata:
            check(f.name, getattr(config, f.name), f.metadata["knob"])


def unknown_knobs(knobs: dict, policy_rules: dict[str, dict]) -> str | None:
    """'no knob(s) a, b; knobs: ...' when a request names knobs the policy does not have, else None."""
    unknown = sorted(set(knobs) - set(policy_rules))
    return f"no knob(s) {', '.join(unknown)}; knobs: {', '.join(sorted(policy_rules)) or 'none'}" if unknown else None


def check_request(policy_rules: dict[str, dict], knobs: dict) -> list[str]:
    """Problems with a request's knobs against published rules (no torch): unknown names, wrong types, values."""
    unknown = unknown_knobs(knobs, policy_rules)
    problems = [unknown] if unknown else []
    for name in sorted(set(knobs) & set(policy_rules)):
        rule = policy_rules[name]
        try:
            check(name, coerce(name, knobs[name], rule["type"]), rule)
        except ValueError as e:
            problems.append(str(e))
    return problems


def parse_knob_args(items: list[str]) -> dict[str, str]:
    """--cache-knob NAME=VALUE arguments -> {name: value} (values stay strings; `coerce` types them)."""
    knobs = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--cache-knob {item!r}: expected NAME=VALUE")
        knobs[name.strip()] = value.strip()
    return knobs
