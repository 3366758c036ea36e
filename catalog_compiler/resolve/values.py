"""How values are written into the bundle: exact decimals as strings, params as JSON numbers
(one implementation, the runtime's, so inline configs and compiled ones agree)."""

from runtime.routing.configs import decimal_text as dec
from runtime.routing.configs import number as plain

__all__ = ["dec", "plain"]
