"""amqp-broker: an AMQP 0-9-1 message broker that RabbitMQ clients use unchanged."""

__version__ = "0.1.0"

from .broker import Broker  # noqa: E402  (Broker imports modules that read __version__)

__all__ = ["Broker", "__version__"]
