//! Logistic regression by Newton's method (iteratively reweighted least squares), with a light
//! ridge so that two characteristics telling the same story cannot run the fit away. A
//! scorecard has tens of characteristics, not thousands: the Hessian is small and solved
//! directly, which needs no linear algebra library (and no BLAS) in the build.

/// Fitted coefficients: `logit(P(bad)) = intercept + Σ weights[i] × x[i]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Logistic {
    pub intercept: f64,
    pub weights: Vec<f64>,
    /// Newton steps taken.
    pub iterations: usize,
    /// Whether the last step was below the tolerance; otherwise the fit stopped at the step
    /// limit or on a singular system, and its weights are the last ones reached.
    pub converged: bool,
}

impl Logistic {
    pub fn logit(&self, x: &[f64]) -> f64 {
        self.intercept + self.weights.iter().zip(x).map(|(w, v)| w * v).sum::<f64>()
    }
}

const RIDGE: f64 = 1e-6;
const MAX_ITERATIONS: usize = 100;
const TOLERANCE: f64 = 1e-10;

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Fits `rows` (each the same length) to `bad`.
pub fn fit_logistic(rows: &[Vec<f64>], bad: &[bool]) -> Logistic {
    fit_within(rows, bad, MAX_ITERATIONS)
}

fn fit_within(rows: &[Vec<f64>], bad: &[bool], max_iterations: usize) -> Logistic {
    let p = rows.first().map_or(0, Vec::len) + 1;
    let mut beta = vec![0.0; p];
    let prior = bad.iter().filter(|b| **b).count() as f64 / bad.len().max(1) as f64;
    beta[0] = (prior / (1.0 - prior)).ln();
    let mut iterations = 0;
    let mut converged = false;
    for _ in 0..max_iterations {
        iterations += 1;
        let mut gradient = vec![0.0; p];
        let mut hessian = vec![vec![0.0; p]; p];
        for (row, &y) in rows.iter().zip(bad) {
            let x: Vec<f64> = std::iter::once(1.0).chain(row.iter().copied()).collect();
            let z: f64 = beta.iter().zip(&x).map(|(b, v)| b * v).sum();
            let mu = sigmoid(z);
            let w = mu * (1.0 - mu);
            let residual = f64::from(u8::from(y)) - mu;
            for i in 0..p {
                gradient[i] += x[i] * residual;
                for j in 0..=i {
                    hessian[i][j] += w * x[i] * x[j];
                }
            }
        }
        for i in 0..p {
            let lower = hessian[i].clone();
            for (j, value) in lower.iter().enumerate().take(i) {
                hessian[j][i] = *value;
            }
            if i > 0 {
                gradient[i] -= RIDGE * beta[i];
                hessian[i][i] += RIDGE;
            }
        }
        let Some(step) = solve(hessian, gradient) else {
            break;
        };
        let largest = step.iter().fold(0.0_f64, |m, s| m.max(s.abs()));
        for (b, s) in beta.iter_mut().zip(&step) {
            *b += s;
        }
        if largest < TOLERANCE {
            converged = true;
            break;
        }
    }
    Logistic {
        intercept: beta[0],
        weights: beta[1..].to_vec(),
        iterations,
        converged,
    }
}

/// Solves `a × x = b` by Gaussian elimination with partial pivoting; `None` when singular.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-300 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        let pivot_row = a[col].clone();
        for row in col + 1..n {
            let factor = a[row][col] / pivot_row[col];
            for (cell, above) in a[row][col..].iter_mut().zip(&pivot_row[col..]) {
                *cell -= factor * above;
            }
            b[row] -= factor * b[col];
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let rest: f64 = (row + 1..n).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - rest) / a[row][row];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn known_coefficients_are_recovered_from_data_they_generated() {
        // logit(P(bad)) = -1 + 2·x1 - 0.5·x2, sampled.
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let (mut rows, mut bad) = (Vec::new(), Vec::new());
        for _ in 0..20_000 {
            let (x1, x2): (f64, f64) = (rng.random_range(-2.0..2.0), rng.random_range(-2.0..2.0));
            let p = sigmoid(-1.0 + 2.0 * x1 - 0.5 * x2);
            bad.push(rng.random::<f64>() < p);
            rows.push(vec![x1, x2]);
        }
        let fit = fit_logistic(&rows, &bad);
        assert!((fit.intercept + 1.0).abs() < 0.1, "{fit:?}");
        assert!((fit.weights[0] - 2.0).abs() < 0.1, "{fit:?}");
        assert!((fit.weights[1] + 0.5).abs() < 0.1, "{fit:?}");
        assert!(fit.iterations < 20 && fit.converged);
        let cut_short = fit_within(&rows, &bad, 2);
        assert!(
            !cut_short.converged && cut_short.iterations == 2,
            "{cut_short:?}"
        );
    }

    #[test]
    fn a_column_repeated_does_not_run_the_fit_away() {
        let rows: Vec<Vec<f64>> = (0..200)
            .map(|i| {
                let x = f64::from(i % 10) / 10.0;
                vec![x, x]
            })
            .collect();
        let bad: Vec<bool> = (0..200).map(|i| i % 10 >= 6 || i % 7 == 0).collect();
        let fit = fit_logistic(&rows, &bad);
        assert!(fit.weights.iter().all(|w| w.is_finite()), "{fit:?}");
        assert!(
            (fit.weights[0] - fit.weights[1]).abs() < 1e-6,
            "shared evenly: {fit:?}"
        );
    }

    #[test]
    fn gaussian_elimination_solves_and_refuses_a_singular_system() {
        let x = solve(vec![vec![2.0, 1.0], vec![1.0, 3.0]], vec![3.0, 5.0]).unwrap();
        assert!(
            (x[0] - 0.8).abs() < 1e-12 && (x[1] - 1.4).abs() < 1e-12,
            "{x:?}"
        );
        assert!(solve(vec![vec![1.0, 2.0], vec![2.0, 4.0]], vec![1.0, 2.0]).is_none());
    }
}
