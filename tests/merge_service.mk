# tests/merge_service
