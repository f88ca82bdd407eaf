"""The management HTTP API: a RabbitMQ-compatible slice of `rabbitmq_management`'s `/api`.

One module per concern: `app` (the aiohttp application, its listener and routes), `auth`
(HTTP basic auth against the broker's users), `responses` (JSON bodies and RabbitMQ's error
bodies), then one module per resource group (`overview`, `vhosts`, `queues`, `exchanges`,
`connections`, ...; docs/management.md lists them). Handlers only call the domain (vhosts, queues, users, connections); no AMQP
frame logic lives here.
"""
from .app import ManagementListenError, management_listener

__all__ = ["ManagementListenError", "management_listener"]
