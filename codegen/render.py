"""Render the jinja2 templates.  Python decides (variant, base layout);
the templates hold the C and Kconfig text."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import jinja2

VARIANTS = ("hardened", "as-posted")
DEFAULT_VARIANT = "hardened"


@dataclass(frozen=True)
class KernelApis:
    """What the base tree offers that the generated code depends on."""

    has_wait_for_completion_state: bool = True


@functools.cache
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("kmod_dups.codegen", "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def render(template: str, **context: object) -> str:
    return environment().get_template(template).render(**context)


def check_variant(variant: str) -> str:
    from kmod_dups.errors import UserError

    if variant not in VARIANTS:
        raise UserError(
            f"unknown variant {variant!r}: choose one of {', '.join(VARIANTS)}"
        )
    return variant


def render_dups_c(variant: str = DEFAULT_VARIANT, apis: KernelApis = KernelApis()) -> str:
    """kernel/module/dups.c for one variant."""
    check_variant(variant)
    return render(
        f"dups.c.{variant}.j2",
        has_wait_for_completion_state=apis.has_wait_for_completion_state,
    )
