# tests/checkpoint
