# Merge tests: each part lists its own programs.
include tests/merge_methods.mk
include tests/merge_blocks.mk
include tests/merge_driver.mk
include tests/checkpoint.mk
include tests/merge_api.mk
include tests/merge_service.mk
include tests/rotate.mk
include tests/rotate_cache.mk
