"""What stands between the strategy and the broker in the runner: risk, the journal, metrics.

:class:`RunnerSupervisor` is the :class:`~workbench.engine.ticks.Supervisor` the runner sets
on its :class:`~workbench.engine.ticks.TickEngine`; a backtest runs the same engine without
one. For each order the strategy decides:

1. the risk manager checks it against the live book and the account
   (:meth:`RiskManager.check <workbench.core.risk.RiskManager.check>`), and the decision, with
   its reason and numbers, goes to ``risk_decisions`` whatever it is;
2. the order goes to the journal's ``orders`` and is committed (``intent``) — refused ones
   too, as ``rejected``, so the journal holds every order id the strategy was given and a
   restart numbers on from the last;
3. only then does an accepted order travel to the broker.

Fills, closed orders and the account's marks are journaled as they happen (committed at each
mark, and by each intent). At each mark the risk manager updates its day and peak and checks
the position's stop-loss and take-profit; a decision asking to close the position is acted
on at once, through the strategy's own Context (a reduce-only market order the risk manager
lets through). Each risk decision that is not a plain acceptance is also an alert.

``max_child_notional`` is refused for now: the engine sends an order as one, and splitting
it would need the engine to place and track the children.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

from workbench.clock import WALL
from workbench.core.clock import Clock
from workbench.core.risk import RiskDecision, RiskManager
from workbench.engine.bars import OrderRecord
from workbench.engine.ticks import TickEngine
from workbench.errors import UsageError
from workbench.events import Fill, Order
from workbench.runner.alerts import WebhookAlerter
from workbench.runner.journal import Journal
from workbench.runner.metrics import RunnerMetrics

log = logging.getLogger(__name__)

_ALERTS = {
    "kill_switch": "kill_switch",
    "daily_loss": "risk_breach",
    "stop_loss": "risk_breach",
    "take_profit": "risk_breach",
}
"""Mark decisions that alert the operator, and the alert kind each raises."""


class RunnerSupervisor:
    """Supervises ``engine``'s orders with ``risk``, recording into ``journal`` (see the
    module docstring); ``received_us`` gives the receipt time (µs, on ``clock``) of the
    event being processed, from which each decision's latency is measured."""

    def __init__(
        self,
        engine: TickEngine,
        *,
        risk: RiskManager,
        journal: Journal,
        metrics: RunnerMetrics | None = None,
        alerts: WebhookAlerter | None = None,
        received_us: Callable[[], int] | None = None,
        clock: Clock = WALL,
    ) -> None:
        if risk.limits.max_child_notional is not None:
            raise UsageError(
                "max_child_notional is not supported by the runner yet: the engine sends an "
                "order whole; remove the limit"
            )
        self.engine = engine
        self.risk = risk
        self.journal = journal
        self.metrics = metrics
        self.alerts = alerts
        self._received_us = received_us
        self._clock = clock
        self._start_equity = engine.portfolio.cash

    def admit(self, order: Order) -> str | None:
        engine = self.engine
        if self.metrics is not None and self._received_us is not None:
            latency_s = (self._clock.time_us() - self._received_us()) / 1e6
            self.metrics.decision(max(0.0, latency_s))
        price = engine.last_price
        if math.isnan(price):
            decision = RiskDecision(
                order.created_us, order.client_order_id, "no_price", False,
                "no price yet to value the order at (no print and an empty book)",
                symbol=order.symbol,
            )  # fmt: skip
        else:
            portfolio = engine.portfolio
            decision = self.risk.check(
                order,
                time_us=order.created_us,
                price=price,
                position=portfolio.position,
                equity=portfolio.equity(price),
                book=engine.book,
                fills=engine.fills,
            )
        self.journal.risk(decision.as_row())
        self.journal.intent(order)
        if decision.accepted:
            return None
        if self.metrics is not None:
            self.metrics.reject(decision.rule)
        log.warning("risk refused %s: %s", order.client_order_id, decision.reason)
        return f"risk {decision.rule}: {decision.reason}"

    def filled(self, fill: Fill, record: OrderRecord) -> None:
        portfolio = self.engine.portfolio
        self.journal.fill(fill)
        self.journal.position(
            fill.symbol, position=portfolio.position, cash=portfolio.cash, updated_us=fill.ts
        )
        if self.metrics is not None:
            self.metrics.fill()

    def closed(self, record: OrderRecord) -> None:
        self.journal.order_status(
            record.order.client_order_id,
            record.status,
            updated_us=record.closed_us or self.engine.clock.us,
            reason=record.reason,
            filled=record.filled,
            average_price=record.average_price,
        )
        if self.metrics is not None:
            self.metrics.order(record.status)

    def marked(self, time_us: int, price: float, position: float, cash: float) -> None:
        engine = self.engine
        equity = cash + position * price if position else cash
        decisions = []
        if not math.isnan(price):
            decisions = self.risk.mark(
                time_us,
                equity,
                position,
                price,
                engine.portfolio.entry_price,
                symbol=engine.symbol,
            )
        for decision in decisions:
            self.journal.risk(decision.as_row())
            kind = _ALERTS.get(decision.rule)
            if kind is not None:
                log.warning("risk %s: %s", decision.rule, decision.reason)
                if self.alerts is not None:
                    self.alerts.alert(kind, decision.reason, rule=decision.rule)
        if any(d.action == "close" for d in decisions) and position:
            engine.context.close()
        self.journal.pnl(
            ts=time_us,
            equity=equity,
            cash=cash,
            position=position,
            price=price,
            fees_paid=engine.portfolio.fees_paid,
        )
        self.journal.flush()
        if self.metrics is not None:
            self.metrics.account(equity=equity, pnl=equity - self._start_equity, position=position)
            self.metrics.risk_state(self.risk.state)
