# tests/merge_driver
