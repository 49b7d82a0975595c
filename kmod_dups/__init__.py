"""kmod-dups: generate, build, boot-test and trace the kmod duplicate-request
suppressor (CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS)."""
