//! How well scores rank bads above goods: AUC (the chance a random bad scores riskier than a
//! random good, ties counting half), Gini (`2 × AUC − 1`) and KS (the widest gap between the
//! shares of bads and of goods at or above any cut-off).

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ranking {
    pub auc: f64,
    pub gini: f64,
    pub ks: f64,
}

/// `risk` is higher for riskier rows (a probability of bad, or minus the points).
pub fn ranking(risk: &[f64], bad: &[bool]) -> Ranking {
    let mut rows: Vec<(f64, bool)> = risk.iter().copied().zip(bad.iter().copied()).collect();
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    let bads = rows.iter().filter(|r| r.1).count() as f64;
    let goods = rows.len() as f64 - bads;
    if bads == 0.0 || goods == 0.0 {
        return Ranking {
            auc: 0.5,
            gini: 0.0,
            ks: 0.0,
        };
    }
    // Mann-Whitney by ranks, ties sharing their average rank.
    let mut rank_sum_bad = 0.0;
    let mut i = 0;
    while i < rows.len() {
        let mut j = i;
        while j < rows.len() && rows[j].0 == rows[i].0 {
            j += 1;
        }
        let average_rank = (i + 1 + j) as f64 / 2.0;
        rank_sum_bad += average_rank * rows[i..j].iter().filter(|r| r.1).count() as f64;
        i = j;
    }
    let auc = (rank_sum_bad - bads * (bads + 1.0) / 2.0) / (bads * goods);
    // KS over cut-offs between distinct scores, riskiest first.
    let (mut seen_bad, mut seen_good, mut ks) = (0.0, 0.0, 0.0_f64);
    let mut k = rows.len();
    while k > 0 {
        let score = rows[k - 1].0;
        while k > 0 && rows[k - 1].0 == score {
            if rows[k - 1].1 {
                seen_bad += 1.0;
            } else {
                seen_good += 1.0;
            }
            k -= 1;
        }
        ks = ks.max((seen_bad / bads - seen_good / goods).abs());
    }
    Ranking {
        auc,
        gini: 2.0 * auc - 1.0,
        ks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_random_and_tied_rankings_read_as_they_should() {
        let bad = [false, false, true, true];
        let perfect = ranking(&[0.1, 0.2, 0.8, 0.9], &bad);
        assert_eq!((perfect.auc, perfect.gini, perfect.ks), (1.0, 1.0, 1.0));
        let backwards = ranking(&[0.9, 0.8, 0.2, 0.1], &bad);
        assert_eq!(backwards.auc, 0.0);
        let tied = ranking(&[0.5, 0.5, 0.5, 0.5], &bad);
        assert_eq!((tied.auc, tied.ks), (0.5, 0.0));
        // One bad outranked by one good: 3 of the 4 pairs in order.
        let mixed = ranking(&[0.1, 0.7, 0.6, 0.9], &bad);
        assert_eq!(mixed.auc, 0.75);
        assert_eq!(mixed.ks, 0.5);
    }
}
