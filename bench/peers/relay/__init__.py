"""A stock Channels relay: each socket its own channel in one group; every committed
write ``group_send``s one pre-encoded text, which each consumer forwards as it is."""
