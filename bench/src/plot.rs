//! The SVG plots of BENCHMARKS.md (plotters' SVG backend; no fonts needed).

use crate::model::{Row, Series};
use crate::subject::BenchResult;
use plotters::prelude::*;
use std::path::Path;

/// The rows the ratio chart shows: every row with a ratio whose (workload, metric) carries a
/// target for some subject (the headline metric of a workload: throughput, round trips,
/// connections), so message-io appears next to the drivers.
pub fn ratio_rows(rows: &[Row]) -> Vec<&Row> {
    rows.iter()
        .filter(|r| r.ratio.is_some_and(f64::is_finite))
        .filter(|r| {
            rows.iter()
                .any(|t| t.workload == r.workload && t.metric == r.metric && t.target.is_some())
        })
        .collect()
}

/// The least acceptable ratio in a target like `">= 0.95x raw tokio"`.
fn target_ratio(target: &str) -> Option<f64> {
    target
        .strip_prefix(">=")?
        .trim()
        .split('x')
        .next()?
        .trim()
        .parse()
        .ok()
}

/// A horizontal bar per row: its ratio to the raw baseline of its runtime, green where its
/// target is met, red where missed, grey without a target; a tick marks each target, a line 1.0.
pub fn ratio_chart(path: &Path, rows: &[&Row]) -> BenchResult<()> {
    let n = rows.len().max(1);
    let height = 120 + 34 * n as u32;
    let root = SVGBackend::new(path, (900, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let max = rows.iter().filter_map(|r| r.ratio).fold(1.2f64, f64::max) * 1.1;
    let labels: Vec<String> = rows
        .iter()
        .map(|r| format!("{} {}: {}", r.workload, r.metric, r.subject))
        .collect();
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Throughput ratio to the raw baseline of the same runtime",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(300)
        .build_cartesian_2d(0f64..max, (0..n).into_segmented())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n)
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) if *i < n => {
                labels.get(n - 1 - *i).cloned().unwrap_or_default()
            }
            _ => String::new(),
        })
        .light_line_style(WHITE)
        .x_desc("ratio (1.0 = raw baseline, blue; black tick = target; green met, red missed, grey no target)")
        .draw()?;
    // The first row at the top.
    let at = |i: usize| n - 1 - i;
    chart.draw_series(rows.iter().enumerate().map(|(i, r)| {
        let i = at(i);
        let color = match r.met {
            Some(true) => RGBColor(46, 160, 67),
            Some(false) => RGBColor(207, 34, 46),
            None => RGBColor(140, 140, 140),
        };
        let mut bar = Rectangle::new(
            [
                (0.0, SegmentValue::Exact(i)),
                (r.ratio.unwrap_or(0.0), SegmentValue::Exact(i + 1)),
            ],
            color.filled(),
        );
        bar.set_margin(4, 4, 0, 0);
        bar
    }))?;
    chart.draw_series(rows.iter().enumerate().filter_map(|(i, r)| {
        let i = at(i);
        let t = target_ratio(r.target.as_deref()?)?;
        Some(PathElement::new(
            vec![(t, SegmentValue::Exact(i)), (t, SegmentValue::Exact(i + 1))],
            BLACK.stroke_width(2),
        ))
    }))?;
    chart.draw_series(std::iter::once(PathElement::new(
        vec![(1.0, SegmentValue::Exact(0)), (1.0, SegmentValue::Exact(n))],
        BLUE.stroke_width(1),
    )))?;
    root.present()?;
    Ok(())
}

/// Achieved rate over time (one line) against the target (a flat line).
pub fn series_chart(path: &Path, series: &Series) -> BenchResult<()> {
    let root = SVGBackend::new(path, (900, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let (div, unit) = if series.target_bps >= f64::from(1u32 << 20) {
        (f64::from(1u32 << 20), "MiB/s")
    } else {
        (1024.0, "KiB/s")
    };
    let t_max = series.points.iter().map(|p| p.0).fold(1.0f64, f64::max);
    let y_max = series
        .points
        .iter()
        .map(|p| p.1)
        .filter(|v| v.is_finite())
        .fold(series.target_bps, f64::max)
        / div
        * 1.15;
    let y_max = if y_max > 0.0 { y_max } else { 1.0 };
    let mut chart = ChartBuilder::on(&root)
        .caption(&series.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..t_max, 0f64..y_max)?;
    chart
        .configure_mesh()
        .light_line_style(RGBColor(235, 235, 235))
        .x_desc("seconds")
        .y_desc(unit)
        .draw()?;
    chart
        .draw_series(LineSeries::new(
            vec![
                (0.0, series.target_bps / div),
                (t_max, series.target_bps / div),
            ],
            RED.stroke_width(2),
        ))?
        .label("target")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2)));
    chart
        .draw_series(LineSeries::new(
            series
                .points
                .iter()
                .filter(|p| p.0.is_finite() && p.1.is_finite())
                .map(|&(t, v)| (t, v / div)),
            BLUE.stroke_width(2),
        ))?
        .label("achieved")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        assert_eq!(target_ratio(">= 0.95x raw tokio"), Some(0.95));
        assert_eq!(target_ratio("<= 1 KiB"), None);
    }
}
