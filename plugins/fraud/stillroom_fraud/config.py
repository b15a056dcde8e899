"""The fraud vertical's configuration: where the data comes from and how fraud is costed."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from stillroom.contract import DistillConfig, StrictModel


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


class FraudDataConfig(StrictModel):
    """``dataset``: ``fraud.simulated`` (embedded), ``fraud.ulb`` or ``fraud.table`` (any CSV/Parquet)."""

    dataset: Literal["fraud.simulated", "fraud.ulb", "fraud.table"] = "fraud.simulated"
    path: str | None = None
    label: str = "Class"
    features: list[str] | None = None
    time: str | None = None
    group: str | None = None
    drop: list[str] = Field(default_factory=list)
    valid_fraction: float = Field(0.15, gt=0, lt=0.5)
    test_fraction: float = Field(0.2, gt=0, lt=0.5)
    simulation: SimulationConfig = Field(default_factory=SimulationConfig)

    @model_validator(mode="after")
    def _path_for_files(self) -> FraudDataConfig:
        if self.dataset != "fraud.simulated" and not self.path:
            raise ValueError(f"data.path is required for dataset {self.dataset!r}")
        return self


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
