"""``kmod-dups build``: a work tree with the series applied, a small config
merged from Kconfig.fragments/, an out-of-tree ccache build, and ELF checks
on the result.

One job per module:

- :mod:`.fragments`   find, read and merge the config fragments
- :mod:`.kconfig_lang` read the tree's Kconfig files to explain a dropped option
- :mod:`.kconfig`     tinyconfig + merge_config.sh + olddefconfig + subset check
- :mod:`.worktree`    a work tree from the base with the series applied by git am
- :mod:`.toolchain`   the tools a build needs, checked before starting
- :mod:`.make`        the make run: progress, log, first error
- :mod:`.elfcheck`    what vmlinux must (not) contain, read with pyelftools
- :mod:`.pipeline`    the steps in order, and build.json
"""
