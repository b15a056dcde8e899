"""Dataset hooks of the fraud vertical: the config's ``data`` section -> a DataBundle."""

from __future__ import annotations

from stillroom.contract import DataBundle

from . import loaders
from .config import FraudDataConfig


def load_simulated(cfg: FraudDataConfig, seed: int) -> DataBundle:
    """The embedded default: simulated transactions with engineered features."""
    sim = cfg.simulation
    bundle = loaders.simulated_bundle(
        n_customers=sim.n_customers,
        n_terminals=sim.n_terminals,
        n_days=sim.n_days,
        seed=seed,
        delay_days=sim.delay_days,
        train_days=sim.train_days,
        validation_days=sim.validation_days,
        test_days=sim.test_days,
        start_date=sim.start_date,
    )
    bundle.caveats.append(
        "The embedded default data is simulated (the Fraud Detection Handbook's generator): its figures say "
        "nothing about a bank's own fraud."
    )
    return bundle


def load_transactions_file(cfg: FraudDataConfig, seed: int) -> DataBundle:
    """A raw transaction log (CSV/Parquet files or a folder), features and a split by calendar dates."""
    section = cfg.transactions
    bundle = loaders.load_transactions(cfg.path, section.raw_format(), section.split_plan(), group=cfg.group)
    bundle.drop_setting = "data.transactions.extra_features (remove the column from the list)"
    return bundle


def load_ulb_file(cfg: FraudDataConfig, seed: int) -> DataBundle:
    """A file in the ULB credit-card format (Time, V1..V28, Amount, Class)."""
    bundle = loaders.load_ulb(
        cfg.path, seed=seed, valid_fraction=cfg.valid_fraction, test_fraction=cfg.test_fraction, card=cfg.card
    )
    bundle.drop_setting = "data.dataset=fraud.table and data.drop=[column] (the ULB format's inputs are fixed)"
    return bundle


def load_table_file(cfg: FraudDataConfig, seed: int) -> DataBundle:
    """Any CSV/Parquet with a named label column and optional time and group columns."""
    bundle = loaders.load_table(
        cfg.path,
        label=cfg.label,
        features=cfg.features,
        time=cfg.time,
        group=cfg.group,
        seed=seed,
        valid_fraction=cfg.valid_fraction,
        test_fraction=cfg.test_fraction,
        drop=tuple(cfg.drop),
        card=cfg.card,
    )
    bundle.drop_setting = "data.drop=[column] (or name the inputs in data.features)"
    return bundle
