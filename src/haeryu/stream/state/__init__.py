"""Making operator state durable: the changelog codec and the checkpoint steps."""
