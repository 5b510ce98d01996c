"""Generates annuity_cases.json: reference figures from numpy-financial, independent of lendcore.

    pip install numpy-financial
    python3 crates/domain/tests/reference/generate.py

Amounts are in minor units (fen). Rates are annual nominal; the monthly rate is annual / 12.
Deterministic: the same seed gives the same file.
"""

import json
import random
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy_financial as npf

random.seed(20261122)


def fen(x: float) -> int:
    """Rounds half up to a whole minor unit, through the float's shortest decimal form."""
    return int(Decimal(repr(float(x))).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def annuity_case(principal: int, annual: str, periods: int) -> dict:
    monthly = float(Decimal(annual) / 12)
    pmt = float(-npf.pmt(monthly, periods, principal))
    case = {
        "principal_minor": principal,
        "annual_rate": annual,
        "periods": periods,
        "pmt": repr(pmt),
        "installment_minor": fen(pmt),
    }
    if periods <= 60:
        per = list(range(1, periods + 1))
        case["ipmt"] = [repr(-float(x)) for x in npf.ipmt(monthly, per, periods, principal)]
        case["ppmt"] = [repr(-float(x)) for x in npf.ppmt(monthly, per, periods, principal)]
    if monthly > 0:
        case["rate"] = repr(float(npf.rate(periods, -pmt, principal, 0)))
    return case


def irr_case(principal: int, annual: str, periods: int, upfront: int, per_installment: int) -> dict:
    installment = fen(-npf.pmt(float(Decimal(annual) / 12), periods, principal))
    flows = [-(principal - upfront)] + [installment + per_installment] * periods
    return {"flows": flows, "irr": repr(float(npf.irr(flows)))}


def main() -> None:
    annuities = []
    for annual in ["0", "0.0435", "0.12", "0.18", "0.2399", "0.24", "0.36"]:
        for periods in [1, 3, 6, 12, 24, 36]:
            annuities.append(annuity_case(1_000_000, annual, periods))
    while len(annuities) < 240:
        principal = random.choice([10_000, 100_000, 1_000_000]) * random.randint(1, 500) + random.randint(0, 99)
        annual = str(Decimal(random.randint(0, 3600)) / Decimal(10_000))
        periods = random.choice([1, 2, 3, 6, 9, 12, 18, 24, 36, 48, 60, 120, 240, 360])
        annuities.append(annuity_case(principal, annual, periods))

    irrs = []
    while len(irrs) < 80:
        principal = random.randint(1_000, 500_000) * 100
        annual = str(Decimal(random.randint(1, 3600)) / Decimal(10_000))
        periods = random.choice([1, 3, 6, 12, 24, 36])
        upfront = random.choice([0, principal // 100, principal // 50, 5_000])
        per_installment = random.choice([0, 0, 500, principal // 1000])
        irrs.append(irr_case(principal, annual, periods, upfront, per_installment))

    out = {
        "generator": "numpy-financial " + npf.__version__,
        "annuities": annuities,
        "irr": irrs,
    }
    path = Path(__file__).with_name("annuity_cases.json")
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {len(annuities)} annuity and {len(irrs)} IRR cases to {path}")


if __name__ == "__main__":
    main()
