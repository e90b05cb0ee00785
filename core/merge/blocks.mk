# core/merge/blocks
