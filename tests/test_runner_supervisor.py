"""The runner's supervisor on the trade/book engine: risk says no, the journal keeps it all."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.core.bookfills import BookFills
from workbench.core.risk import RiskLimits, RiskManager
from workbench.engine import Context
from workbench.engine.ticks import TickEngine
from workbench.errors import UsageError
from workbench.events import BookChange, Trade
from workbench.runner.journal import Journal
from workbench.runner.metrics import RunnerMetrics
from workbench.runner.supervisor import RunnerSupervisor
from workbench.strategy import Strategy

T0 = 1_704_067_200_000_000
S = 1_000_000


def trade(t: int, price: float) -> Trade:
    return Trade("sim", "BTC-USD", t, t, price, 1.0, "sell", f"t{t}")


def around(t: int, price: float) -> BookChange:
    bids, asks = [(round(price - 0.01, 2), 100.0)], [(round(price + 0.01, 2), 100.0)]
    return BookChange("sim", "BTC-USD", t, t, None, True, bids, asks)


class BuyOnce(Strategy):
    name = "buy_once"

    def on_trade(self, ctx: Context, trade: Trade) -> None:
        if not ctx.open_orders and not ctx.position and trade.recv_ts == T0:
            ctx.buy(10.0)  # 1,000 of notional: beyond the limit
            ctx.buy(4.0)


def falling() -> list[Trade | BookChange]:
    events: list[Trade | BookChange] = []
    for k, price in enumerate((100.0, 99.5, 98.9, 97.9, 97.0)):
        t = T0 + k * S + (1 if k else 0)
        events += [around(t, price), trade(t, price)]
    return events


def supervised(
    tmp_path: Path, limits: RiskLimits, strategy: Strategy | None = None
) -> tuple[TickEngine, RunnerSupervisor]:
    engine = TickEngine(
        strategy or BuyOnce(), falling(), BookFills(), symbol="BTC-USD", cash=10_000.0
    )
    journal = Journal.open(tmp_path / "runner.duckdb", run={"strategy": "buy_once"})
    metrics = RunnerMetrics("buy_once", "BTC-USD")
    engine.supervisor = RunnerSupervisor(
        engine, risk=RiskManager(limits), journal=journal, metrics=metrics
    )
    return engine, engine.supervisor


def test_refusals_intents_fills_and_a_stop_loss_close_all_reach_the_journal(tmp_path: Path) -> None:
    engine, supervisor = supervised(
        tmp_path, RiskLimits(max_order_notional=500.0, stop_loss_pct=0.02)
    )
    result = engine.run()
    journal = supervisor.journal
    journal.flush()
    orders = journal.orders().set_index("client_order_id")
    assert orders["status"].to_dict() == {
        "buy_once-1": "rejected",
        "buy_once-2": "filled",
        "buy_once-3": "filled",  # the stop-loss close
    }
    assert orders.loc["buy_once-1", "reason"].startswith("risk order_notional: ")
    assert orders.loc["buy_once-3", "side"] == "sell" and orders.loc["buy_once-3", "size"] == 4.0
    # The close was decided at the mark where the loss from 100.01 first reached 2% (97.9).
    assert orders.loc["buy_once-3", "created_us"] == T0 + 4 * S
    assert journal.positions_from_fills() == {"BTC-USD": 0.0}
    assert [f.client_order_id for f in result.fills] == journal.fills()["client_order_id"].tolist()
    rules = journal.sql("SELECT rule, accepted FROM risk_decisions ORDER BY time_us, rule")
    assert list(rules.itertuples(index=False, name=None)) == [
        ("accepted", True), ("order_notional", False),  # the two buys
        ("accepted", True), ("stop_loss", False),  # the mark asking to close, and the close
    ]  # fmt: skip
    marks = journal.sql("SELECT ts FROM pnl ORDER BY ts")["ts"].tolist()
    assert marks == [T0 + k * S for k in range(1, 6)]  # the last after the last event
    registry = supervisor.metrics.registry if supervisor.metrics else None
    assert registry is not None
    assert (
        registry.get_sample_value("workbench_risk_rejects_total", {"reason": "order_notional"}) == 1
    )
    assert registry.get_sample_value("workbench_fills_total") == 2
    journal.close()


class BuyTheDip(BuyOnce):
    """Buys as BuyOnce, and one more whenever it is flat again."""

    def on_trade(self, ctx: Context, trade: Trade) -> None:
        super().on_trade(ctx, trade)
        if trade.recv_ts > T0 and not ctx.position and not ctx.open_orders:
            ctx.buy(1.0)


def test_a_drawdown_kills_new_exposure_but_the_close_goes_through(tmp_path: Path) -> None:
    engine, supervisor = supervised(tmp_path, RiskLimits(max_drawdown=0.002), BuyTheDip())
    engine.run()
    journal = supervisor.journal
    journal.flush()
    orders = journal.orders()
    # 10 and 4 bought at T0 (no notional limit here); 29.5 lost by 97.9 is beyond 0.2% of the
    # 10,000 peak: the kill switch closes all 14, and the dip buy after it is refused.
    assert list(zip(orders["side"], orders["size"], orders["status"], strict=True)) == [
        ("buy", 10.0, "filled"), ("buy", 4.0, "filled"), ("sell", 14.0, "filled"),
        ("buy", 1.0, "rejected"),
    ]  # fmt: skip
    assert orders["reason"].iloc[3].startswith("risk kill_switch: ")
    assert supervisor.risk.killed
    kills = journal.sql("SELECT action FROM risk_decisions WHERE rule = 'kill_switch'")
    assert kills["action"].tolist()[0] == "close"
    assert journal.positions_from_fills() == {"BTC-USD": 0.0}
    journal.close()


def test_child_orders_are_refused_until_the_engine_can_place_them(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="max_child_notional"):
        supervised(tmp_path, RiskLimits(max_child_notional=100.0))
