"""Where events go between services: Kafka in production, an in-process bus for the demo."""
