# core/merge/driver
