"""tracker: an event-sourced log of device upgrade notifications from Huawei IoT platforms."""

__version__ = "0.1.0"
