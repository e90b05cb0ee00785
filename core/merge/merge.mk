# Checkpoint merge (core/merge): each part lists its own files.
include core/merge/methods.mk
include core/merge/blocks.mk
include core/merge/driver.mk
include core/merge/rotate.mk
include core/merge/rotate_cache.mk
