"""Boot harness: the patched kernel in a many-vCPU x86_64 QEMU guest."""
