"""`kmod-dups generate` and `kmod-dups series`."""

from __future__ import annotations

import argparse
from pathlib import Path

from kmod_dups.codegen import bases, basetree
from kmod_dups.codegen.render import DEFAULT_VARIANT, VARIANTS

TREE_HELP = "kernel source tree to generate for (default: Debian's linux-source-6.1, unpacked into the cache)"


def _tree(args: argparse.Namespace) -> Path:
    return bases.from_args(args) or basetree.default_base_tree()


def _common(parser: argparse.ArgumentParser) -> None:
    bases.add_arguments(parser, tree_help=TREE_HELP)
    parser.add_argument("-o", "--output", metavar="OUT", required=True, type=Path,
                        help="folder to write (refused if it exists and is not empty, unless --force)")
    parser.add_argument("--variant", default=DEFAULT_VARIANT,
                        help=f"{' or '.join(VARIANTS)} (default: {DEFAULT_VARIANT}); as-posted is the seed's "
                        "logic exactly, hardened fixes its races")
    parser.add_argument("--force", action="store_true", help="replace a non-empty output folder")


def cmd_generate(args: argparse.Namespace) -> int:
    from kmod_dups.codegen.generate import DIFF_NAME, generate
    from kmod_dups.codegen.render import check_variant

    check_variant(args.variant)
    files = generate(_tree(args), args.output, args.variant, args.force)
    for rel in sorted(files):
        print(f"  {args.output / rel}")
    print(f"  {args.output / DIFF_NAME}")
    return 0


def cmd_series(args: argparse.Namespace) -> int:
    from kmod_dups.codegen.render import check_variant
    from kmod_dups.codegen.series import write_addressed_series

    check_variant(args.variant)
    tree = _tree(args)
    files, recipients = write_addressed_series(tree, args.output, args.variant, args.signoff, args.force,
                                               reroll=args.reroll_count, previous=args.previous)
    kind = "fix-up series" if basetree.probe(tree).has_dups else f"series ({args.variant})"
    print(f"{kind} for {tree}:")
    for path in files:
        print(f"  {path}")
    print(f"  {recipients.summary()}")
    if args.verify:
        from kmod_dups.codegen.verify import apply_to_scratch

        scratch, summary = apply_to_scratch(tree, files[1:])
        print(f"applied with git am to a scratch copy of the base: {scratch}")
        print(summary, end="")
        print("checkpatch.pl --strict: clean but for what the cover letter names and justifies")
    else:
        glob = files[1].name.split("0001-", 1)[0] + "000[1-9]-*.patch"
        print(f"apply with: git -C {tree} am {args.output.resolve()}/{glob}")
    if args.compile:
        from kmod_dups.codegen.verify import compile_each_step

        print(f"compiling each step with W=1 on a scratch clone of {tree}:")
        compile_each_step(tree, files[1:])
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    gen = subparsers.add_parser(
        "generate", help="render dups.c, Kconfig, Makefile, internal.h and kmod.c for a tree",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Render the feature from the templates for one base tree and variant: every "
        "file it adds or changes, laid out as in the tree, and feature.diff.",
        epilog="examples:\n  kmod-dups generate -o out/\n"
        "  kmod-dups generate --tree ~/src/linux-6.1 --variant as-posted -o out-posted/\n",
    )
    _common(gen)
    gen.set_defaults(func=cmd_generate)

    ser = subparsers.add_parser(
        "series", help="write a git format-patch series (cover letter + patches) for a tree",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Write the feature as a numbered git format-patch series for a base tree: a cover "
        "letter and one patch per logical change, checked with the tree's checkpatch.pl --strict, "
        "addressed (To:/Cc:) by the tree's scripts/get_maintainer.pl. For a tree that already carries "
        "kernel/module/dups.c (6.12, 7.2) it is a fix-up series: one patch per defect found in that "
        "tree's code, each with its reproducer and figures and a Fixes: tag.",
        epilog="examples:\n  kmod-dups series -o series/\n"
        "  kmod-dups series --base 7.2 -o fixups-v1/\n"
        "  kmod-dups series --base 7.2 -v 2 --previous fixups-v1/ -o fixups-v2/\n"
        "  git send-email fixups-v2/*.patch\n"
        "  kmod-dups series -o series/ --verify     # and git am it on a scratch copy of the base\n"
        "  kmod-dups series --tree ~/src/linux-6.1 -o s/ --variant as-posted --signoff 'A U Thor <a@b.org>'\n"
        "  git -C ~/src/linux-6.1 am $PWD/s/000[1-9]-*.patch\n",
    )
    _common(ser)
    ser.add_argument("--signoff", metavar="'NAME <EMAIL>'",
                     help="identity for Signed-off-by and authorship (default: git config user.name/email)")
    ser.add_argument("-v", "--reroll-count", type=int, default=1, metavar="N",
                     help="version of the series: [PATCH vN] subjects, and with --previous the cover "
                     "letter lists what changed since v(N-1) (default: 1)")
    ser.add_argument("--previous", type=Path, metavar="DIR",
                     help="the v(N-1) series folder this tool wrote, to compare with")
    ser.add_argument("--compile", action="store_true",
                     help="also git am the patches one by one on a scratch clone and compile with W=1 "
                     "after each: dups.c and kmod.c with the feature on, kmod.c with it off (minutes: the "
                     "first run configures a build)")
    ser.add_argument("--verify", action="store_true",
                     help="also apply the series with git am to a scratch copy of the tree and summarize")
    ser.set_defaults(func=cmd_series)
