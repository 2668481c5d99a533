"""The engine's Kafka adapter: worker, consumer, producer, runner and metrics."""
