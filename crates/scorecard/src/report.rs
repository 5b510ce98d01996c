//! A trained card as a page a risk team reads: how it ranks (AUC, KS, Gini), the ROC and KS
//! curves and the distribution of points for goods and bads (SVG drawn here), and every
//! characteristic's bins with their counts, bad rates, weights of evidence and points. One
//! self-contained file: no script, nothing fetched.

use std::fmt::Write;

use crate::binning::Bin;
use crate::data::Dataset;
use crate::train::Trained;

/// The page for `card`, measured on `learn` and, if given, `held`.
pub fn html(card: &Trained, learn: &Dataset, held: Option<&Dataset>) -> String {
    let measured_on = held.unwrap_or(learn);
    let points: Vec<i64> = card.score(measured_on).iter().map(|(p, _)| *p).collect();
    let mut body = String::new();
    let _ = write!(
        body,
        "<table><tr><th>part</th><th class=n>rows</th><th class=n>AUC</th><th class=n>KS</th><th class=n>Gini</th></tr>"
    );
    for (part, data) in [("training", Some(learn)), ("held out", held)] {
        if let Some(data) = data {
            let r = card.ranking(data);
            let _ = write!(
                body,
                "<tr><td>{part}</td><td class=n>{}</td><td class=n>{:.4}</td><td class=n>{:.4}</td><td class=n>{:.4}</td></tr>",
                data.rows(),
                r.auc,
                r.ks,
                r.gini
            );
        }
    }
    body.push_str("</table>");
    let part = if held.is_some() {
        "held-out"
    } else {
        "training"
    };
    let _ = write!(
        body,
        "<h2>On the {part} rows</h2><div class=charts>{}{}{}</div>",
        roc_svg(&points, &measured_on.bad),
        ks_svg(&points, &measured_on.bad),
        distribution_svg(&points, &measured_on.bad)
    );
    body.push_str("<h2>Characteristics</h2>");
    for c in &card.characteristics {
        let _ = write!(
            body,
            "<h3>{} <span class=muted>IV {:.3}, weight {:.3}</span></h3><table><tr><th>bin</th><th class=n>goods</th><th class=n>bads</th><th class=n>bad rate</th><th class=n>WoE</th><th class=n>points</th></tr>",
            escape(&c.binned.name),
            c.binned.iv,
            c.weight
        );
        for (b, points) in c.binned.bins.iter().zip(&c.points) {
            let rows = b.goods + b.bads;
            let rate = if rows == 0 {
                0.0
            } else {
                b.bads as f64 / rows as f64 * 100.0
            };
            let _ = write!(
                body,
                "<tr><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{rate:.1}%</td><td class=n>{:.3}</td><td class=n>{points}</td></tr>",
                escape(&describe(&b.bin)),
                b.goods,
                b.bads,
                b.woe
            );
        }
        body.push_str("</table>");
    }
    let left: Vec<String> = card
        .all
        .iter()
        .filter(|b| !card.characteristics.iter().any(|c| c.binned.name == b.name))
        .map(|b| format!("{} (IV {:.3})", escape(&b.name), b.iv))
        .collect();
    if !left.is_empty() {
        let _ = write!(body, "<p class=muted>Left off: {}.</p>", left.join(", "));
    }
    format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>Scorecard</title><style>\
         body{{font:15px/1.5 system-ui,sans-serif;max-width:1000px;margin:24px auto;padding:0 16px;color:#1d2430}}\
         table{{border-collapse:collapse;margin:8px 0}}td,th{{border-bottom:1px solid #ddd;padding:3px 10px;text-align:left}}\
         .n{{text-align:right}}.muted{{color:#5a6473;font-weight:normal;font-size:13px}}.charts svg{{margin:0 12px 12px 0}}\
         svg text{{font:11px system-ui,sans-serif;fill:#5a6473}}</style></head><body><h1>Scorecard</h1>{body}</body></html>\n"
    )
}

fn describe(bin: &Bin) -> String {
    match bin {
        Bin::Missing => "missing".to_owned(),
        Bin::Range {
            from: None,
            to: None,
        } => "any".to_owned(),
        Bin::Range {
            from: None,
            to: Some(t),
        } => format!("below {t}"),
        Bin::Range {
            from: Some(f),
            to: None,
        } => format!("{f} and above"),
        Bin::Range {
            from: Some(f),
            to: Some(t),
        } => format!("{f} to below {t}"),
        Bin::Categories { values, others } => {
            let listed = values.join(", ");
            if *others {
                format!("{listed}, and any other")
            } else {
                listed
            }
        }
    }
}

const SIDE: f64 = 280.0;

fn frame(title: &str, inner: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"{title}\">\
         <text x=\"4\" y=\"14\">{title}</text><g transform=\"translate(30,24)\">\
         <rect width=\"{SIDE}\" height=\"{SIDE}\" fill=\"none\" stroke=\"#d9dee5\"/>{inner}</g></svg>",
        w = SIDE + 40.0,
        h = SIDE + 40.0
    )
}

fn polyline(points: &[(f64, f64)], colour: &str) -> String {
    let path: Vec<String> = points
        .iter()
        .map(|(x, y)| format!("{:.1},{:.1}", x * SIDE, SIDE - y * SIDE))
        .collect();
    format!(
        "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\" points=\"{}\"/>",
        path.join(" ")
    )
}

/// Cumulative shares of goods and bads at or below each distinct score, lowest points (the
/// riskiest) first.
fn cumulative(points: &[i64], bad: &[bool]) -> Vec<(f64, f64)> {
    let mut rows: Vec<(i64, bool)> = points.iter().copied().zip(bad.iter().copied()).collect();
    rows.sort_by_key(|r| r.0);
    let bads = rows.iter().filter(|r| r.1).count().max(1) as f64;
    let goods = rows.iter().filter(|r| !r.1).count().max(1) as f64;
    let (mut b, mut g) = (0.0, 0.0);
    let mut out = vec![(0.0, 0.0)];
    let mut i = 0;
    while i < rows.len() {
        let score = rows[i].0;
        while i < rows.len() && rows[i].0 == score {
            if rows[i].1 {
                b += 1.0
            } else {
                g += 1.0
            }
            i += 1;
        }
        out.push((g / goods, b / bads));
    }
    out
}

fn roc_svg(points: &[i64], bad: &[bool]) -> String {
    let curve = cumulative(points, bad);
    frame(
        "ROC: bads caught (up) against goods turned away (across)",
        &format!(
            "{}{}",
            polyline(&[(0.0, 0.0), (1.0, 1.0)], "#c0c6cf"),
            polyline(&curve, "#1f5fa8")
        ),
    )
}

fn ks_svg(points: &[i64], bad: &[bool]) -> String {
    let curve = cumulative(points, bad);
    let n = (curve.len() - 1).max(1) as f64;
    let bads: Vec<(f64, f64)> = curve
        .iter()
        .enumerate()
        .map(|(i, (_, b))| (i as f64 / n, *b))
        .collect();
    let goods: Vec<(f64, f64)> = curve
        .iter()
        .enumerate()
        .map(|(i, (g, _))| (i as f64 / n, *g))
        .collect();
    frame(
        "KS: share of bads (blue) and goods (grey) below each score",
        &format!(
            "{}{}",
            polyline(&goods, "#8a93a0"),
            polyline(&bads, "#1f5fa8")
        ),
    )
}

fn distribution_svg(points: &[i64], bad: &[bool]) -> String {
    let (Some(&lo), Some(&hi)) = (points.iter().min(), points.iter().max()) else {
        return frame("Points", "");
    };
    const BARS: usize = 20;
    let width = ((hi - lo) as f64 / BARS as f64).max(1.0);
    let mut goods = [0usize; BARS];
    let mut bads = [0usize; BARS];
    for (p, b) in points.iter().zip(bad) {
        let k = (((*p - lo) as f64 / width) as usize).min(BARS - 1);
        if *b { bads[k] += 1 } else { goods[k] += 1 }
    }
    let most = goods.iter().chain(&bads).copied().max().unwrap_or(1).max(1) as f64;
    let bar = SIDE / BARS as f64;
    let mut inner = String::new();
    for k in 0..BARS {
        for (count, colour, shift) in [(goods[k], "#8a93a0", 0.0), (bads[k], "#1f5fa8", bar / 2.0)]
        {
            let h = count as f64 / most * SIDE;
            let _ = write!(
                inner,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{colour}\"/>",
                k as f64 * bar + shift,
                SIDE - h,
                bar / 2.0 - 1.0
            );
        }
    }
    let _ = write!(
        inner,
        "<text x=\"0\" y=\"{}\">{lo}</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{hi}</text>",
        SIDE + 12.0,
        SIDE,
        SIDE + 12.0
    );
    frame("Points: goods (grey) and bads (blue)", &inner)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::{TrainOptions, train};

    #[test]
    fn the_page_shows_the_figures_the_curves_and_every_bin_with_no_script() {
        let rows: String = (0..400)
            .map(|i| {
                let bad = i % 50 > 30 || i % 7 == 0;
                // A category that tells goods from bads: on the card, so its name is shown.
                let y = if bad && i % 2 == 0 { "b<c" } else { "a" };
                format!("{},{y},{}\n", i % 50, u8::from(bad))
            })
            .collect();
        let data = Dataset::from_csv(format!("x,y,out\n{rows}").as_bytes(), "out", None, |_| {
            false
        })
        .unwrap();
        let (learn, held) = data.split(0.3, 1);
        let card = train(&learn, TrainOptions::default(), |_| {});
        let page = html(&card, &learn, Some(&held));
        assert!(page.contains("held out") && page.contains("AUC"), "{page}");
        assert_eq!(page.matches("<svg").count(), 3, "ROC, KS and the points");
        assert!(page.contains("missing") && page.contains("<h3>x"), "{page}");
        assert!(
            page.contains("b&lt;c") && !page.contains("b<c"),
            "escaped: {page}"
        );
        assert!(!page.contains("<script"));
    }
}
