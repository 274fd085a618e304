"""Live notebook widgets (ipywidgets + bqplot), each driven by its own UI pump thread."""

from workbench.notebook.widgets.orderbook import OrderBookWidget
from workbench.notebook.widgets.price import PriceWidget
from workbench.notebook.widgets.status import FeedStatusWidget

__all__ = ["FeedStatusWidget", "OrderBookWidget", "PriceWidget"]
