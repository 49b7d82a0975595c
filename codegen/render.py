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


# The as-posted variant keeps a completed entry this long before deleting it.
POSTED_DELETE_DELAY = "60 * HZ"
# Test builds may shorten it, but not beyond this.
MAX_LINGER_MS = 60_000


def check_linger(variant: str, linger_ms: int | None) -> int | None:
    """A test build's linger (``--test-linger-ms``): as-posted only, since the
    hardened variant deletes an entry as soon as its first request is done."""
    from kmod_dups.errors import UserError

    if linger_ms is None:
        return None
    if variant != "as-posted":
        raise UserError(f"a test linger applies to the as-posted variant only (the {variant} variant "
                        "keeps no completed entry); drop --test-linger-ms or use --variant as-posted")
    if not 0 <= linger_ms <= MAX_LINGER_MS:
        raise UserError(f"test linger {linger_ms} ms: give 0 to {MAX_LINGER_MS} ms")
    return linger_ms


def delete_delay(linger_ms: int | None) -> str:
    """The C expression for the as-posted delete delay: the posted 60 * HZ,
    or a test build's shorter linger."""
    return POSTED_DELETE_DELAY if linger_ms is None else f"msecs_to_jiffies({linger_ms})"


def render_dups_c(variant: str = DEFAULT_VARIANT, apis: KernelApis = KernelApis(),
                  linger_ms: int | None = None) -> str:
    """kernel/module/dups.c for one variant.  *linger_ms* is for test builds
    only: how long the as-posted variant keeps a completed entry (default:
    the posted 60 s, and the output is then exactly the posted code)."""
    check_variant(variant)
    check_linger(variant, linger_ms)
    return render(
        f"dups.c.{variant}.j2",
        has_wait_for_completion_state=apis.has_wait_for_completion_state,
        delete_delay=delete_delay(linger_ms),
    )
