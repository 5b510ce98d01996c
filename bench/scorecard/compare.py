"""lendcore's scorecard beside scorecardpy's on the same German Credit splits (#14).

For each seed, scorecardpy's own `split_df` (70/30, stratified) cuts the file once; both
tools train on the 70% and are measured on the 30%:

- scorecardpy as its README runs it: `var_filter` and `woebin` on all 1,000 rows (so the
  held-out rows also shape the bins), an L1 logistic regression (C=0.9, saga) on the WoE;
- scorecardpy with the filter and the bins fitted on the training part only;
- lendcore: `lendcore score train --test-share 0` on the training part, then
  `lendcore score apply` on the held-out part, the AUC from the points it wrote.

Usage: python compare.py PATH/TO/lendcore PATH/TO/germancredit.csv [SEEDS]
(needs `pip install scorecardpy "pandas<3"`: scorecardpy 0.1.9.7's `split_df` drops the
target column under pandas 3; seed 186 is scorecardpy's default).
"""

import os
import subprocess
import sys
import tempfile
import warnings

import pandas as pd
import scorecardpy as sc
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

warnings.filterwarnings("ignore")
Y = "creditability"


def scorecardpy_auc(fit_on, train, test):
    """Held-out AUC of scorecardpy's README pipeline, filter and bins fitted on `fit_on`."""
    kept = sc.var_filter(fit_on, y=Y)
    with open(os.devnull, "w") as quiet:
        stdout, sys.stdout = sys.stdout, quiet
        try:
            bins = sc.woebin(kept, y=Y)
            train_woe = sc.woebin_ply(train[kept.columns], bins)
            test_woe = sc.woebin_ply(test[kept.columns], bins)
        finally:
            sys.stdout = stdout
    x = [c for c in train_woe.columns if c != Y]
    model = LogisticRegression(penalty="l1", C=0.9, solver="saga", max_iter=10000)
    model.fit(train_woe[x], train_woe[Y])
    return roc_auc_score(test_woe[Y], model.predict_proba(test_woe[x])[:, 1])


def lendcore_auc(binary, train, test, work):
    as_text = lambda d: d.assign(**{Y: d[Y].map({1: "bad", 0: "good"})})
    train_csv, test_csv = os.path.join(work, "train.csv"), os.path.join(work, "test.csv")
    card, scored = os.path.join(work, "card.json"), os.path.join(work, "scored.csv")
    as_text(train).to_csv(train_csv, index=False)
    as_text(test).to_csv(test_csv, index=False)
    subprocess.run(
        [binary, "score", "train", "--csv", train_csv, "--target", Y, "--bad", "bad",
         "--test-share", "0", "--out", card],
        check=True, capture_output=True)
    subprocess.run([binary, "score", "apply", "--card", card, "--csv", test_csv, "--out", scored],
                   check=True, capture_output=True)
    points = pd.read_csv(scored)["points"]
    # More points, less risk.
    return roc_auc_score(test[Y].values, -points.values)


def main():
    binary, data = sys.argv[1], sys.argv[2]
    seeds = [int(s) for s in sys.argv[3].split(",")] if len(sys.argv) > 3 else [186] + list(range(1, 21))
    dat = pd.read_csv(data)
    dat[Y] = (dat[Y] == "bad").astype(int)
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for seed in seeds:
            train, test = sc.split_df(dat, Y, ratio=0.7, seed=seed).values()
            row = (seed,
                   scorecardpy_auc(dat, train, test),
                   scorecardpy_auc(train, train, test),
                   lendcore_auc(binary, train, test, work))
            rows.append(row)
            print("seed %4d  scorecardpy (bins on all rows) %.4f  scorecardpy (bins on training) %.4f  lendcore %.4f" % row, flush=True)
    table = pd.DataFrame(rows, columns=["seed", "readme", "train_only", "lendcore"])
    print("mean over %d splits: scorecardpy (bins on all rows) %.4f  scorecardpy (bins on training) %.4f  lendcore %.4f"
          % (len(rows), table.readme.mean(), table.train_only.mean(), table.lendcore.mean()))
    print("lendcore minus scorecardpy (bins on training), per split: mean %+.4f, better on %d of %d"
          % ((table.lendcore - table.train_only).mean(), (table.lendcore > table.train_only).sum(), len(rows)))


if __name__ == "__main__":
    main()
