"""git: the environment a store lives in (:mod:`.env`: work tree, identity, ignore rules,
used by the repository) and the link between a store and the code (:mod:`.link`: store
states, sync, hooks; above the repository)."""
