# tests/merge_methods
