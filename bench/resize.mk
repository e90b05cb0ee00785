# owned by its module; filled in as files land
