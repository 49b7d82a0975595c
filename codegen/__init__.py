"""Generator: jinja2 templates for dups.c, Kconfig and the kmod.c hooks, and
the git format-patch series built from them."""
