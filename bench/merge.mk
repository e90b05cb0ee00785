# bench/merge
