"""A connection's states, in the order it goes through them (used by the engine and the
connection-class handlers)."""

HEADER, START_OK, TUNE_OK, OPEN, OPENED, CLOSING, CLOSED = range(7)

# as RabbitMQ names them in its 504 "unexpected method in connection state ..." text
STATE_NAMES = {START_OK: "starting", TUNE_OK: "tuning", OPEN: "opening", OPENED: "running"}
