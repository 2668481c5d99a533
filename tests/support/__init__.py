"""Helpers shared by every test: Kafka clients, a broker process, a raw wire client, a clock."""
