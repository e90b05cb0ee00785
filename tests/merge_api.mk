# tests/merge_api
