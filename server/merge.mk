# server/merge
