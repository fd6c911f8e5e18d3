//! Writing an evaluation: `report.json`, `report.md` and SVG plots.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use reprieve_core::time::{format_duration, format_rfc3339};

use crate::error::EvalError;
use crate::evaluate::{EvalReport, Figures, METHODS};

fn io(path: &Path) -> impl Fn(std::io::Error) -> EvalError + '_ {
    move |e| EvalError::Plan(format!("cannot write {}: {e}", path.display()))
}

/// Writes `report.json`, `report.md`, `tradeoff.svg`, `calibration.svg` and `cuts.svg` into `dir`.
pub fn write_report(report: &EvalReport, dir: &Path) -> Result<Vec<PathBuf>, EvalError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let json = dir.join("report.json");
    let text = serde_json::to_string_pretty(report).map_err(|e| EvalError::Plan(e.to_string()))?;
    std::fs::write(&json, text + "\n").map_err(io(&json))?;
    let md = dir.join("report.md");
    std::fs::write(&md, render_markdown(report)).map_err(io(&md))?;
    let plots = [
        (
            dir.join("tradeoff.svg"),
            plot_tradeoff as fn(&EvalReport, &Path) -> Result<(), String>,
        ),
        (dir.join("calibration.svg"), plot_calibration),
        (dir.join("cuts.svg"), plot_cuts),
    ];
    let mut written = vec![json, md];
    for (path, plot) in plots {
        plot(report, &path).map_err(|e| EvalError::Plan(format!("cannot draw {}: {e}", path.display())))?;
        written.push(path);
    }
    Ok(written)
}

fn pct(x: f64) -> String {
    format!("{:.2}%", 100.0 * x)
}

fn figures_table(out: &mut String, rows: &std::collections::BTreeMap<String, Figures>, target: f64) {
    let _ = writeln!(
        out,
        "| method | flagged | false deletes | false-delete rate | 95% upper bound | meets target | unused bytes found | unused objects found |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|:---:|---:|---:|");
    for m in METHODS {
        if let Some(f) = rows.get(m) {
            let meets = if f.flagged == 0 || f.false_delete_rate <= target {
                "yes"
            } else {
                "**no**"
            };
            let _ = writeln!(
                out,
                "| {m} | {} | {} | {} | {} | {meets} | {} | {} |",
                f.flagged,
                f.false_deletes,
                pct(f.false_delete_rate),
                pct(f.false_delete_upper_95),
                pct(f.unused_bytes_found),
                pct(f.unused_objects_found)
            );
        }
    }
}

/// The Markdown report.
pub fn render_markdown(r: &EvalReport) -> String {
    let mut out = String::new();
    let c = &r.config;
    let _ = writeln!(out, "# Reprieve evaluation\n");
    let _ = writeln!(
        out,
        "Trace {} to {}: {} objects, {} reads. Horizon {}, cuts every {}, {} tested, {} skipped (too few closed cuts \
         before them). Target false-delete rate {} for delete candidates; thresholds of the model and of \
         `recency_calibrated` are chosen on the {} latest closed cuts before each test cut (the bound must hold \
         pooled and the rate on each of them). The model's working target moves after each closed test cut by {} x \
         (target - realized rate), never above the target (adaptive conformal step; 0 = fixed), and it never flags \
         an object the policy keeps as too new. Feature schema `{}` ({}), model `{}`.\n",
        format_rfc3339(r.log_start),
        format_rfc3339(r.log_end),
        r.objects,
        r.reads,
        format_duration(c.horizon_secs),
        format_duration(c.step_secs),
        r.cuts.len(),
        r.skipped_cuts.len(),
        pct(c.target),
        c.calibration_cuts,
        c.adaptive_gamma,
        r.feature_schema_version,
        r.feature_schema_hash,
        r.model_kind
    );
    let gap = |g: Option<f64>| g.map_or("n/a".to_string(), |g| format!("{g:.3}"));
    let _ = writeln!(out, "## Pooled over the test cuts\n");
    figures_table(&mut out, &r.pooled, c.target);
    let _ = writeln!(
        out,
        "\ngap closed (unused bytes, model vs calibrated recency rule, 1 = oracle): {}\n",
        gap(r.gap_closed)
    );
    let _ = writeln!(
        out,
        "## Recently active objects (last read within 30 days of the cut)\n"
    );
    figures_table(&mut out, &r.pooled_recent, c.target);
    let _ = writeln!(
        out,
        "\ngap closed on recently active objects: {}\n",
        gap(r.gap_closed_recent)
    );
    let _ = writeln!(out, "## Test cuts whose realized rate exceeded the target\n");
    let _ = writeln!(out, "| method | cuts over target (of {}) |\n|---|---:|", r.cuts.len());
    for m in METHODS {
        let _ = writeln!(out, "| {m} | {} |", r.exceedances.get(m).copied().unwrap_or(0));
    }
    let _ = writeln!(out, "\n## Per cut\n");
    let _ = writeln!(
        out,
        "| cut | objects | working target | model threshold (idle / recent) | model flagged | model rate | recent flagged | recent rate | recency D (days) | recency flagged | recency rate | oracle flagged |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for cut in &r.cuts {
        let m = &cut.methods["model"];
        let mr = &cut.methods_recent["model"];
        let rc = &cut.methods["recency_calibrated"];
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.4} / {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            format_rfc3339(cut.at),
            cut.objects,
            pct(cut.working_target),
            cut.model_threshold,
            cut.model_threshold_recent.map_or("-".into(), |t| format!("{t:.4}")),
            m.flagged,
            pct(m.false_delete_rate),
            mr.flagged,
            pct(mr.false_delete_rate),
            cut.recency_calibrated_days.map_or("-".into(), |d| format!("{d:.1}")),
            rc.flagged,
            pct(rc.false_delete_rate),
            cut.methods["oracle"].flagged
        );
    }
    if !r.cohorts.is_empty() {
        let _ = writeln!(out, "\n## Cohorts (false-delete rate, flagged)\n");
        let _ = writeln!(
            out,
            "| cohort | model | recency_calibrated | recency_30d |\n|---|---:|---:|---:|"
        );
        for (cohort, m) in &r.cohorts {
            let cell = |k: &str| {
                m.get(k)
                    .map_or("-".into(), |f| format!("{} of {}", pct(f.false_delete_rate), f.flagged))
            };
            let _ = writeln!(
                out,
                "| {cohort} | {} | {} | {} |",
                cell("model"),
                cell("recency_calibrated"),
                cell("recency_30d")
            );
        }
    }
    let false_deletes: Vec<_> = r
        .cuts
        .iter()
        .flat_map(|c| c.model_false_deletes.iter().map(move |f| (c.at, f)))
        .collect();
    if !false_deletes.is_empty() {
        let _ = writeln!(
            out,
            "\n## The model's false deletes (most confident first, at most {} per cut)\n",
            crate::evaluate::FALSE_DELETE_SAMPLES
        );
        let _ = writeln!(
            out,
            "| cut | key | cohort | P(reuse) | idle days | segment |\n|---|---|---|---:|---:|---|"
        );
        for (at, f) in false_deletes {
            let _ = writeln!(
                out,
                "| {} | `{}` | {} | {:.4} | {:.1} | {} |",
                format_rfc3339(at),
                f.key,
                f.cohort.as_deref().unwrap_or("-"),
                f.probability,
                f.idle_days,
                f.segment
            );
        }
    }
    let _ = writeln!(out, "\n## Calibration of the model on the test cuts\n");
    let _ = writeln!(
        out,
        "| P(reuse) bin | objects | mean predicted | observed |\n|---|---:|---:|---:|"
    );
    for b in &r.calibration {
        let _ = writeln!(
            out,
            "| {:.1}-{:.1} | {} | {:.3} | {:.3} |",
            b.lower, b.upper, b.count, b.mean_predicted, b.observed_rate
        );
    }
    let _ = writeln!(out, "\nPlots: `tradeoff.svg`, `calibration.svg`, `cuts.svg`.");
    out
}

/// (false-delete rate, unused bytes found) as the flag threshold sweeps over `scores` (ascending = flagged first).
fn sweep(scores: &[f64], reused: &[bool], size: &[u64]) -> Vec<(f64, f64)> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let unused_total: u64 = reused.iter().zip(size).filter(|(r, _)| !**r).map(|(_, s)| *s).sum();
    let (mut flagged, mut fd, mut bytes) = (0u64, 0u64, 0u64);
    let mut points = Vec::new();
    let step = (order.len() / 200).max(1);
    for (n, &i) in order.iter().enumerate() {
        flagged += 1;
        if reused[i] {
            fd += 1;
        } else {
            bytes += size[i];
        }
        if n % step == 0 || n + 1 == order.len() {
            points.push((fd as f64 / flagged as f64, bytes as f64 / unused_total.max(1) as f64));
        }
    }
    points
}

/// The 2-D chart every plot here draws on.
type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A labelled line series with its legend entry.
fn labelled_line(
    chart: &mut Chart<'_, '_>,
    points: Vec<(f64, f64)>,
    label: &str,
    color: RGBColor,
) -> Result<(), String> {
    chart
        .draw_series(LineSeries::new(points, color.stroke_width(2)))
        .map_err(|e| e.to_string())?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
    Ok(())
}

/// The grey "target" line with its legend entry.
fn target_line(chart: &mut Chart<'_, '_>, points: Vec<(f64, f64)>) -> Result<(), String> {
    chart
        .draw_series(std::iter::once(PathElement::new(points, BLACK.mix(0.4))))
        .map_err(|e| e.to_string())?
        .label("target")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK.mix(0.4)));
    Ok(())
}

/// The legend box.
fn draw_legend<'a, 'b: 'a>(chart: &mut Chart<'a, 'b>) -> Result<(), String> {
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(|e| e.to_string())
}

fn plot_tradeoff(r: &EvalReport, path: &Path) -> Result<(), String> {
    let root = SVGBackend::new(path, (800, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let x_max = (r.config.target * 5.0).max(0.05);
    let mut chart = ChartBuilder::on(&root)
        .caption("False-delete rate vs share of unused bytes found", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..x_max, 0f64..1f64)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("false-delete rate")
        .y_desc("unused bytes found")
        .draw()
        .map_err(|e| e.to_string())?;
    let cv = &r.curves;
    let idle: Vec<f64> = cv.idle_secs.iter().map(|&s| -(s as f64)).collect();
    for (label, scores, color) in [
        ("model (sweep)", cv.probability.clone(), BLUE),
        ("recency (sweep)", idle, RED),
    ] {
        let pts: Vec<(f64, f64)> = sweep(&scores, &cv.reused, &cv.size)
            .into_iter()
            .filter(|p| p.0 <= x_max)
            .collect();
        labelled_line(&mut chart, pts, label, color)?;
    }
    target_line(&mut chart, vec![(r.config.target, 0.0), (r.config.target, 1.0)])?;
    for (m, color) in [
        ("model", BLUE),
        ("recency_calibrated", RED),
        ("recency_30d", MAGENTA),
        ("recency_90d", GREEN),
    ] {
        if let Some(f) = r.pooled.get(m) {
            let point = (f.false_delete_rate.min(x_max), f.unused_bytes_found);
            chart
                .draw_series(std::iter::once(Circle::new(point, 5, color.filled())))
                .map_err(|e| e.to_string())?
                .label(format!("{m} (realized)"))
                .legend(move |(x, y)| Circle::new((x + 8, y), 4, color.filled()));
        }
    }
    draw_legend(&mut chart)?;
    root.present().map_err(|e| e.to_string())
}

fn plot_calibration(r: &EvalReport, path: &Path) -> Result<(), String> {
    let root = SVGBackend::new(path, (560, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Calibration on the test cuts", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..1f64, 0f64..1f64)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("mean predicted P(reuse)")
        .y_desc("observed reuse rate")
        .draw()
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(LineSeries::new(vec![(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.3)))
        .map_err(|e| e.to_string())?;
    let pts: Vec<(f64, f64)> = r
        .calibration
        .iter()
        .map(|b| (b.mean_predicted, b.observed_rate))
        .collect();
    chart
        .draw_series(LineSeries::new(pts.clone(), BLUE.stroke_width(2)))
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(pts.into_iter().map(|p| Circle::new(p, 4, BLUE.filled())))
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

fn plot_cuts(r: &EvalReport, path: &Path) -> Result<(), String> {
    let root = SVGBackend::new(path, (800, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let n = r.cuts.len();
    let y_max = r
        .cuts
        .iter()
        .flat_map(|c| ["model", "recency_calibrated", "recency_30d"].map(|m| c.methods[m].false_delete_rate))
        .fold(r.config.target * 3.0, f64::max)
        .min(1.0);
    let mut chart = ChartBuilder::on(&root)
        .caption("Realized false-delete rate per test cut", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..(n.max(1) as f64), 0f64..y_max)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("test cut")
        .y_desc("false-delete rate")
        .draw()
        .map_err(|e| e.to_string())?;
    for (m, color) in [("model", BLUE), ("recency_calibrated", RED), ("recency_30d", MAGENTA)] {
        let pts: Vec<(f64, f64)> = r
            .cuts
            .iter()
            .enumerate()
            .map(|(i, c)| (i as f64 + 0.5, c.methods[m].false_delete_rate))
            .collect();
        labelled_line(&mut chart, pts, m, color)?;
    }
    target_line(&mut chart, vec![(0.0, r.config.target), (n as f64, r.config.target)])?;
    draw_legend(&mut chart)?;
    root.present().map_err(|e| e.to_string())
}
