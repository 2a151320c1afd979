"""The embedded default dataset: taxi-like trips with a "big tipper" label, generated per day from a seed.

Each day is drawn from its own generator seeded by (seed, date), so a day's file does not depend on how many days
were asked for. The label depends on payment type, fare, hour and distance through a noisy logistic model, so a small
DNN beats the majority rate clearly but cannot be perfect.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

DATASET_NAME = "trips"
PAYMENT_TYPES = ["Credit Card", "Cash", "Mobile", "No Charge", "Unknown"]
PAYMENT_WEIGHTS = [0.45, 0.38, 0.1, 0.04, 0.03]
COMPANIES = ["Flash Cab", "Taxi Affiliation", "Yellow Cab", "Blue Diamond", "City Service", "Sun Taxi", "Medallion"]
MISSING_RATES = {"trip_miles": 0.05, "company": 0.12, "pickup_area": 0.03}


def _day_seed(seed: int, day: dt.date) -> int:
    return (seed * 1_000_003 + day.toordinal()) % (2**32)


def tip_probability(frame: pd.DataFrame) -> np.ndarray:
    """The true P(big_tipper) of each row; the Bayes-optimal classifier thresholds it at 0.5."""
    pay = frame["payment_type"].to_numpy()
    fare = frame["fare"].to_numpy(dtype=float)
    hour = frame["trip_start_hour"].to_numpy(dtype=float)
    miles = np.nan_to_num(frame["trip_miles"].to_numpy(dtype=float), nan=3.0)
    logit = (
        np.where(pay == "Credit Card", 2.2, np.where(pay == "Mobile", 1.0, -2.8))
        - 0.045 * (fare - 15.0)
        + 0.9 * np.cos((hour - 22.0) / 24.0 * 2 * np.pi)
        + 0.25 * np.log1p(miles)
        - 0.6
    )
    return 1.0 / (1.0 + np.exp(-logit))


def generate_day(day: dt.date, rows: int, seed: int = 0, drift: bool = False) -> pd.DataFrame:
    """One day of trips; with drift, fares rise, cash dominates and a new company appears."""
    rng = np.random.default_rng(_day_seed(seed, day))
    pay_weights = [0.2, 0.65, 0.08, 0.04, 0.03] if drift else PAYMENT_WEIGHTS
    companies = COMPANIES + (["Drift Cab Co"] * 3 if drift else [])
    hour = rng.integers(0, 24, rows)
    miles = np.round(rng.gamma(2.0, 1.8 if not drift else 3.0, rows), 2)
    seconds = np.maximum(60, (miles * rng.uniform(120, 300, rows)).astype(int))
    fare = np.round(3.25 + 2.25 * miles + seconds / 180.0 + rng.normal(0, 1.0, rows), 2)
    frame = pd.DataFrame(
        {
            "trip_start_hour": hour,
            "pickup_area": rng.integers(1, 21, rows),
            "trip_miles": miles,
            "trip_seconds": seconds,
            "fare": np.maximum(fare, 3.25),
            "payment_type": rng.choice(PAYMENT_TYPES, rows, p=pay_weights),
            "company": rng.choice(companies, rows),
        }
    )
    frame["big_tipper"] = (rng.uniform(size=rows) < tip_probability(frame)).astype(int)
    for column, rate in MISSING_RATES.items():
        frame[column] = frame[column].astype(object).where(rng.uniform(size=rows) >= rate, None)
    return frame


def write_days(
    landing_dir: Path,
    days: int,
    rows_per_day: int,
    end: Optional[dt.date] = None,
    seed: int = 0,
    drift_from: Optional[dt.date] = None,
    name: str = DATASET_NAME,
) -> list[Path]:
    """Write one CSV per day, ending at `end` (default yesterday), as <name>_YYYY-MM-DD.csv; returns the paths."""
    if days < 1 or rows_per_day < 1:
        raise ValueError(f"--days and --rows-per-day must be >= 1, got {days} and {rows_per_day}")
    end = end or (dt.date.today() - dt.timedelta(days=1))
    landing_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for offset in range(days - 1, -1, -1):
        day = end - dt.timedelta(days=offset)
        frame = generate_day(day, rows_per_day, seed, drift=drift_from is not None and day >= drift_from)
        path = landing_dir / f"{name}_{day.isoformat()}.csv"
        tmp = path.with_name(path.name + ".tmp")  # the sensor ignores .tmp files until they are renamed
        frame.to_csv(tmp, index=False)
        os.replace(tmp, path)
        paths.append(path)
    return paths
