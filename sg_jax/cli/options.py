"""Command-line options derived from `Config`'s fields, in both directions.

`add_config_arguments` makes one flag per field (`--field-name`, with the field's help, choices,
type and default), `config_from_args` builds the Config back from parsed arguments, and
`config_to_argv` writes the flags that reproduce a Config. Nothing here lists the fields: a field
added to Config is a flag, a JSON key and a part of the reproduce command at once.
"""

from __future__ import annotations

import argparse
import dataclasses

from sg_jax.config import Config, config_fields
from sg_jax.options import field_kind

# extra spellings kept for users of earlier versions: flag -> (field, value it sets)
ALIASES = {"--fixed-window": ("dynamic_window", False)}


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _words(f: dataclasses.Field) -> tuple[str, ...]:
    """The words a field's metavar offers besides a number, meaning None: "N|auto" -> ("auto",)."""
    return tuple(w.lower() for w in (f.metadata.get("metavar") or "").split("|")[1:])


def _parser_for(f: dataclasses.Field):
    kind = field_kind(f)

    def parse(text: str):
        if kind is str:
            return text
        if "None" in str(f.type) and text.lower() in ("none", "all", *_words(f)):  # --devices all
            return None
        try:
            if kind is int:
                return int(text, 0) if text.lower().startswith(("0x", "0o", "0b")) else int(text)
            value = float(text)
        except ValueError:
            words = "".join(f" or {w}" for w in _words(f))
            raise argparse.ArgumentTypeError(
                f"expected {'a whole number' if kind is int else 'a number'}{words}, got {text!r}") from None
        return value  # NaN and infinities are refused by Config's checks, naming the field

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def _choices_text(f: dataclasses.Field) -> str:
    choices = f.metadata.get("choices")
    if choices is None:
        return ""
    return "{" + ",".join(choices() if callable(choices) else choices) + "}"


def add_config_arguments(parser: argparse.ArgumentParser, *, exclude=(), defaults: dict | None = None) -> None:
    """One flag per Config field, grouped as the fields are (model, data, training).

    exclude: fields the command sets otherwise; defaults: field -> default shown and used instead
    of Config's (e.g. the sweep's preset). Validation happens when the Config is built, so the
    messages are the library's, naming the field."""
    base = Config()
    defaults = defaults or {}
    groups: dict[str, argparse._ArgumentGroup] = {}
    for f in config_fields():
        if f.name in exclude:
            continue
        group = f.metadata.get("group", "training")
        g = groups.get(group) or groups.setdefault(group, parser.add_argument_group(group))
        default = defaults.get(f.name, getattr(base, f.name))
        help_text = f.metadata.get("help", "")
        if field_kind(f) is bool:
            g.add_argument(flag(f.name), dest=f.name, action=argparse.BooleanOptionalAction, default=default,
                           help=help_text + f" (default: {'on' if default else 'off'})")
            continue
        choices = f.metadata.get("choices")
        metavar = f.metadata.get("metavar") or (_choices_text(f) if choices is not None else f.name.upper())
        shown = "" if default is None else f" (default: {default})"
        g.add_argument(flag(f.name), dest=f.name, type=_parser_for(f), default=default, metavar=metavar,
                       help=help_text + shown)
    for alias, (name, value) in ALIASES.items():
        if name not in exclude:
            parser.add_argument(alias, dest=name, action="store_const", const=value, help=argparse.SUPPRESS)


class ArgsDefault:
    """A flag's default that depends on the other flags given (`resolve(args)`), shown in the
    help as `text`."""

    def __init__(self, text: str, resolve):
        self.text, self.resolve = text, resolve

    def __str__(self) -> str:
        return self.text


def config_from_args(args: argparse.Namespace, **overrides) -> Config:
    """The Config the parsed flags describe (fields a command excluded take their default or the
    override), validated."""
    values = {f.name: getattr(args, f.name) for f in config_fields() if hasattr(args, f.name)}
    values = {k: v.resolve(args) if isinstance(v, ArgsDefault) else v for k, v in values.items()}
    values.update(overrides)
    return Config(**values).validate()


def config_to_argv(config: Config, *, exclude=(), defaults: dict | None = None) -> list[str]:
    """The flags that make `config_from_args` return `config` (only fields that differ from the
    defaults the parser uses)."""
    base = Config()
    defaults = defaults or {}
    argv: list[str] = []
    for f in config_fields():
        if f.name in exclude:
            continue
        value, default = getattr(config, f.name), defaults.get(f.name, getattr(base, f.name))
        if value == default and type(value) is type(default):
            continue
        if isinstance(value, bool):
            argv.append(flag(f.name) if value else "--no-" + f.name.replace("_", "-"))
        elif value is None:
            argv += [flag(f.name), "none"]
        else:
            argv += [flag(f.name), repr(value) if isinstance(value, float) else str(value)]
    return argv
