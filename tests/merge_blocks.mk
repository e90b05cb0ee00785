# tests/merge_blocks
