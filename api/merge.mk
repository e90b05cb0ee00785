# api/merge
