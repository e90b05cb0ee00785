# core/merge/methods
