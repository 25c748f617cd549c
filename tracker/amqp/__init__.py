"""The AMQP 1.0 channel: IoTDA's queue, which keeps what is not yet acknowledged.

`endpoint.py` reads the settings (and builds IoTDA's username, `iotda.py`); `link.py` runs the
AMQP client (python-qpid-proton) on a thread of its own; `consumer.py`, on the event loop, puts
each message through the same intake as a POST and settles it by `settlement.py`'s rules, and
reconnects by `backoff.py`'s. Nothing here is imported unless TRACKER_AMQP_URL is set.
"""
