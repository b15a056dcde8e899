"""The fraud vertical's configuration: where the data comes from and how fraud is costed."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field, model_validator

from stillroom.contract import ConfigError, DataSettings, DistillConfig, StrictModel

from .features import DEFAULT_WINDOWS, FeatureSettings
from .splits import SplitPlan
from .transactions import RawFormat


class SimulationConfig(StrictModel):
    """Size and seed-independent shape of the embedded transaction simulator."""

    n_customers: int = Field(1000, gt=0)
    n_terminals: int = Field(2000, gt=0)
    n_days: int = Field(120, gt=0)
    start_date: str = "2026-04-01"
    delay_days: int = Field(7, ge=0)
    train_days: int = Field(35, gt=0)
    validation_days: int = Field(7, gt=0)
    test_days: int = Field(7, gt=0)

    def raw_format(self) -> RawFormat:
        """The simulator's transactions are a raw log in the handbook's layout."""
        return RawFormat(features=FeatureSettings(delay_days=self.delay_days))

    def split_plan(self) -> SplitPlan:
        """The simulator's split ends on its last day."""
        return SplitPlan(self.train_days, self.validation_days, self.test_days)


class TransactionColumns(StrictModel):
    """Names of the raw log's columns (defaults: the handbook's)."""

    time: str = "TX_DATETIME"
    card: str = Field("CUSTOMER_ID", description="card or customer id: the key of the spending windows")
    terminal: str = Field("TERMINAL_ID", description="terminal or merchant id: the key of the risk windows")
    amount: str = "TX_AMOUNT"
    label: str = Field("TX_FRAUD", description="1 fraud, 0 genuine, empty where not known yet")
    time_format: str | None = Field(None, description="strftime layout of text times; default ISO 8601")


class TransactionsConfig(StrictModel):
    """``fraud.transactions``: a raw log's columns, its features and a split by calendar dates."""

    columns: TransactionColumns = Field(default_factory=TransactionColumns)
    windows: list[int] = Field(default_factory=lambda: list(DEFAULT_WINDOWS), description="feature windows in days")
    extra_features: list[str] = Field(default_factory=list, description="numeric log columns used as they are")
    train_start: date | None = Field(None, description="first training day; default: the test period ends on the last day")
    train_days: int = Field(7, gt=0)
    delay_days: int = Field(7, ge=0, description="days until a label is known: the gaps and the terminal-risk lag")
    validation_days: int = Field(7, gt=0)
    test_days: int = Field(7, gt=0)
    drop_known_compromised: bool = True

    @model_validator(mode="after")
    def _valid_format(self) -> TransactionsConfig:
        try:
            self.raw_format()
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return self

    def raw_format(self) -> RawFormat:
        columns = self.columns.model_dump()
        features = FeatureSettings(tuple(self.windows), self.delay_days)
        return RawFormat(**columns, features=features, extra_features=tuple(self.extra_features))

    def split_plan(self) -> SplitPlan:
        return SplitPlan(self.train_days, self.validation_days, self.test_days, self.train_start, self.drop_known_compromised)


class FraudDataConfig(DataSettings):
    """``dataset``: ``fraud.simulated`` (embedded), ``fraud.transactions`` (a raw transaction log),
    ``fraud.ulb`` or ``fraud.table`` (any CSV/Parquet of model inputs)."""

    dataset: Literal["fraud.simulated", "fraud.transactions", "fraud.ulb", "fraud.table"] = "fraud.simulated"
    path: str | list[str] | None = Field(None, description="a file; for fraud.transactions also a folder or a list")
    card: str | None = Field(None, description="fraud.ulb / fraud.table: card id column, for card precision@k")
    label: str = "Class"
    features: list[str] | None = None
    time: str | None = None
    group: str | None = None
    drop: list[str] = Field(default_factory=list)
    valid_fraction: float = Field(0.15, gt=0, lt=0.5)
    test_fraction: float = Field(0.2, gt=0, lt=0.5)
    simulation: SimulationConfig = Field(default_factory=SimulationConfig)
    transactions: TransactionsConfig = Field(default_factory=TransactionsConfig)

    @model_validator(mode="after")
    def _path_for_files(self) -> FraudDataConfig:
        if self.dataset != "fraud.simulated" and not self.path:
            raise ValueError(f"data.path is required for dataset {self.dataset!r}")
        if isinstance(self.path, list) and self.dataset != "fraud.transactions":
            raise ValueError(f"dataset {self.dataset!r} reads one file; a list of files is for fraud.transactions")
        return self

    def raw_format(self) -> RawFormat | None:
        """How raw transactions become this run's model inputs; None for a table of ready inputs."""
        if self.dataset == "fraud.simulated":
            return self.simulation.raw_format()
        if self.dataset == "fraud.transactions":
            return self.transactions.raw_format()
        return None


class FraudMetricsConfig(StrictModel):
    """Costs and budgets behind the business metrics (per transaction, in the same currency)."""

    cost_false_negative: float = Field(100.0, ge=0, description="average loss of a missed fraud")
    cost_false_positive: float = Field(5.0, ge=0, description="cost of reviewing a false alert")
    alert_budget: float = Field(0.005, gt=0, lt=1, description="share of transactions analysts can review")
    card_precision_k: int = Field(100, gt=0)


class FraudConfig(DistillConfig):
    task: Literal["fraud"] = "fraud"
    data: FraudDataConfig = Field(default_factory=FraudDataConfig)
    fraud: FraudMetricsConfig = Field(default_factory=FraudMetricsConfig)
