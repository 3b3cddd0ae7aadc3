//! SVG figures: 2-D scatter plots of codes coloured by label, and line plots comparing methods
//! (squared error against latent size, PSNR against bits per image).

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

/// Ten colours that stay apart from one another (Tableau 10); label `l` gets
/// `PALETTE[l mod 10]`, series `i` gets `PALETTE[i mod 10]`.
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// The colour of a label: the same label gets the same colour in every figure.
fn label_colour(label: i64) -> RGBColor {
    PALETTE[label.rem_euclid(PALETTE.len() as i64) as usize]
}

/// The smallest and largest of the finite values, or `None` when there are none.
fn finite_range(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.filter(|v| v.is_finite()).fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

/// A linear axis range covering `range` with a 5% margin on each side; a single value gets a
/// margin of 5% of its magnitude (1 around zero), and no values give [0, 1].
fn padded(range: Option<(f64, f64)>) -> (f64, f64) {
    let Some((lo, hi)) = range else {
        return (0.0, 1.0);
    };
    let span = hi - lo;
    let pad = if span > 0.0 && span.is_finite() {
        0.05 * span
    } else if lo != 0.0 {
        0.05 * lo.abs()
    } else {
        1.0
    };
    let (a, b) = (lo - pad, hi + pad);
    if a < b && a.is_finite() && b.is_finite() {
        (a, b)
    } else {
        (lo - 1.0, hi + 1.0)
    }
}

/// A logarithmic axis range covering the positive `range` with a margin of 5% of its span in
/// log space (a factor of 1.25 around a single value), and [1, 10] when there are no values.
fn padded_log(range: Option<(f64, f64)>) -> (f64, f64) {
    let Some((lo, hi)) = range else {
        return (1.0, 10.0);
    };
    let ratio = (hi / lo).powf(0.05);
    let factor = if ratio > 1.0 && ratio.is_finite() { ratio } else { 1.25 };
    (lo / factor, hi * factor)
}

fn draw_error(path: &Path, e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("cannot draw {}: {e}", path.display())
}

/// Draws a scatter plot of `n` points given as `xy`, `n` rows of (x, y), to an SVG file.
///
/// With `labels`, each point is coloured by its label ([`PALETTE`] by label value, cycling every
/// ten labels) and a legend lists the labels present; without, all points share one colour.
/// Axis ranges cover the finite points with a 5% margin; points with a non-finite coordinate are
/// left out. No points, one point and constant coordinates give a valid figure.
///
/// # Errors
/// If `xy` has an odd length, `labels` does not have one label per point, or the file cannot be
/// written.
pub fn scatter_2d(path: &Path, title: &str, xy: &[f32], labels: Option<&[i64]>) -> anyhow::Result<()> {
    anyhow::ensure!(
        xy.len().is_multiple_of(2),
        "scatter_2d needs (x, y) pairs, got {} values",
        xy.len()
    );
    let n = xy.len() / 2;
    if let Some(labels) = labels {
        anyhow::ensure!(
            labels.len() == n,
            "scatter_2d got {n} points but {} labels",
            labels.len()
        );
    }
    let points: Vec<(f64, f64, Option<i64>)> = xy
        .chunks_exact(2)
        .enumerate()
        .map(|(i, p)| (f64::from(p[0]), f64::from(p[1]), labels.map(|l| l[i])))
        .filter(|(x, y, _)| x.is_finite() && y.is_finite())
        .collect();
    let (x0, x1) = padded(finite_range(points.iter().map(|p| p.0)));
    let (y0, y1) = padded(finite_range(points.iter().map(|p| p.1)));
    let mut present: Vec<i64> = points.iter().filter_map(|p| p.2).collect();
    present.sort_unstable();
    present.dedup();

    let root = SVGBackend::new(path, (720, 640)).into_drawing_area();
    let draw = || -> Result<(), Box<dyn std::error::Error + '_>> {
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        chart.configure_mesh().draw()?;
        if labels.is_none() {
            let colour = PALETTE[0].mix(0.7).filled();
            chart.draw_series(points.iter().map(|&(x, y, _)| Circle::new((x, y), 2, colour)))?;
        } else {
            for &label in &present {
                let colour = label_colour(label);
                chart
                    .draw_series(
                        points
                            .iter()
                            .filter(|p| p.2 == Some(label))
                            .map(|&(x, y, _)| Circle::new((x, y), 2, colour.mix(0.7).filled())),
                    )?
                    .label(label.to_string())
                    .legend(move |(x, y)| Circle::new((x + 10, y), 4, colour.filled()));
            }
            if !present.is_empty() {
                chart
                    .configure_series_labels()
                    .position(SeriesLabelPosition::UpperRight)
                    .border_style(BLACK)
                    .background_style(WHITE.mix(0.8))
                    .draw()?;
            }
        }
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| draw_error(path, e))
}

/// Draws one line with point markers per series, named in a legend, to an SVG file.
///
/// Each series is `(name, points)`, points as (x, y). Axis ranges cover the finite points with a
/// 5% margin. With `log_y` the y axis is logarithmic and points with y <= 0 are left out. No
/// series, empty series, one point and constant values give a valid figure.
///
/// # Errors
/// If the file cannot be written.
pub fn line_plot(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
    log_y: bool,
) -> anyhow::Result<()> {
    let series: Vec<(&str, Vec<(f64, f64)>)> = series
        .iter()
        .map(|(name, pts)| {
            let kept = pts
                .iter()
                .copied()
                .filter(|&(x, y)| x.is_finite() && y.is_finite() && (!log_y || y > 0.0))
                .collect();
            (name.as_str(), kept)
        })
        .collect();
    let all = || series.iter().flat_map(|(_, pts)| pts.iter().copied());
    let x_range = padded(finite_range(all().map(|p| p.0)));
    let y_data = finite_range(all().map(|p| p.1));
    // The legend goes where the lines end furthest away: lower right when they end high.
    let ends_high = y_data.is_some_and(|(lo, hi)| {
        let ends: Vec<f64> = series.iter().filter_map(|(_, pts)| pts.last()).map(|p| p.1).collect();
        let mean = ends.iter().sum::<f64>() / ends.len().max(1) as f64;
        hi > lo && (mean - lo) / (hi - lo) > 0.5
    });
    let legend_at = if ends_high {
        SeriesLabelPosition::LowerRight
    } else {
        SeriesLabelPosition::UpperRight
    };

    let root = SVGBackend::new(path, (720, 420)).into_drawing_area();
    let result = if log_y {
        let (y0, y1) = padded_log(y_data);
        draw_lines(
            &root,
            title,
            x_label,
            y_label,
            &series,
            legend_at,
            x_range,
            (y0..y1).log_scale(),
        )
    } else {
        let (y0, y1) = padded(y_data);
        draw_lines(&root, title, x_label, y_label, &series, legend_at, x_range, y0..y1)
    };
    result.map_err(|e| draw_error(path, e))
}

#[allow(clippy::too_many_arguments)] // private: the two axis kinds of `line_plot`
fn draw_lines<'a, Y>(
    root: &'a DrawingArea<SVGBackend<'_>, Shift>,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(&str, Vec<(f64, f64)>)],
    legend_at: SeriesLabelPosition,
    (x0, x1): (f64, f64),
    y_range: Y,
) -> Result<(), Box<dyn std::error::Error + 'a>>
where
    Y: plotters::coord::ranged1d::AsRangedCoord<Value = f64>,
    Y::CoordDescType: plotters::coord::ranged1d::ValueFormatter<f64>,
{
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, y_range)?;
    chart.configure_mesh().x_desc(x_label).y_desc(y_label).draw()?;
    for (i, (name, pts)) in series.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), colour.stroke_width(2)).point_size(3))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
    }
    if !series.is_empty() {
        chart
            .configure_series_labels()
            .position(legend_at)
            .border_style(BLACK)
            .background_style(WHITE.mix(0.8))
            .draw()?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scatter test case: title, coordinates, labels.
    type ScatterCase = (&'static str, Vec<f32>, Option<Vec<i64>>);
    /// The series argument of `line_plot`.
    type Series = Vec<(String, Vec<(f64, f64)>)>;

    /// The contents of every `<text>` element of an SVG file, entities left as written.
    fn svg_texts(path: &Path) -> Vec<String> {
        let svg = std::fs::read_to_string(path).unwrap();
        assert!(
            svg.trim_start().starts_with("<svg"),
            "not an SVG: {}",
            &svg[..svg.len().min(80)]
        );
        assert!(svg.trim_end().ends_with("</svg>"));
        let mut texts = Vec::new();
        let mut rest = svg.as_str();
        while let Some(start) = rest.find("<text") {
            let after = &rest[start..];
            let open_end = after.find('>').unwrap() + 1;
            let close = after.find("</text>").unwrap();
            texts.push(after[open_end..close].trim().to_owned());
            rest = &after[close + "</text>".len()..];
        }
        texts
    }

    fn assert_has(texts: &[String], wanted: &str) {
        assert!(texts.iter().any(|t| t == wanted), "no text {wanted:?} in {texts:?}");
    }

    #[test]
    fn scatter_with_labels_has_title_and_legend() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("latent.svg");
        let xy: Vec<f32> = (0..40).map(|i| (i as f32 * 0.7).sin() * 3.0).collect();
        let labels: Vec<i64> = (0..20).map(|i| [3, 7, 12, -1][i % 4]).collect();
        scatter_2d(&path, "latent codes", &xy, Some(&labels)).unwrap();
        let texts = svg_texts(&path);
        assert_has(&texts, "latent codes");
        for label in ["3", "7", "12", "-1"] {
            assert_has(&texts, label);
        }
        assert!(std::fs::read_to_string(&path).unwrap().contains("<circle"));
    }

    #[test]
    fn scatter_without_labels_has_no_legend() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pca.svg");
        scatter_2d(&path, "pca codes", &[0.0, 1.0, 2.0, 3.0], None).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert_has(&svg_texts(&path), "pca codes");
        assert_eq!(svg.matches("<circle").count(), 2);
    }

    #[test]
    fn scatter_degenerate_inputs_do_not_panic() {
        let dir = tempfile::tempdir().unwrap();
        let cases: [ScatterCase; 6] = [
            ("empty", vec![], None),
            ("empty labelled", vec![], Some(vec![])),
            ("one point", vec![2.5, -1.0], Some(vec![4])),
            ("constant", vec![1.0; 10], Some(vec![0; 5])),
            ("zeros", vec![0.0; 6], None),
            (
                "non finite",
                vec![f32::NAN, 1.0, f32::INFINITY, 2.0, 3.0, 3.0],
                Some(vec![1, 2, 3]),
            ),
        ];
        for (i, (title, xy, labels)) in cases.iter().enumerate() {
            let path = dir.path().join(format!("{i}.svg"));
            scatter_2d(&path, title, xy, labels.as_deref()).unwrap();
            assert_has(&svg_texts(&path), title);
        }
    }

    #[test]
    fn scatter_rejects_mismatched_input() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.svg");
        assert!(scatter_2d(&path, "t", &[1.0, 2.0, 3.0], None).is_err());
        assert!(scatter_2d(&path, "t", &[1.0, 2.0], Some(&[1, 2])).is_err());
    }

    fn error_curves() -> Series {
        let sizes = [2.0, 4.0, 8.0, 16.0, 32.0];
        vec![
            ("autoencoder".to_owned(), sizes.iter().map(|&d| (d, 40.0 / d)).collect()),
            ("PCA".to_owned(), sizes.iter().map(|&d| (d, 60.0 / d.sqrt())).collect()),
        ]
    }

    #[test]
    fn line_plot_has_title_axes_and_legend() {
        let dir = tempfile::tempdir().unwrap();
        for log_y in [false, true] {
            let path = dir.path().join(format!("error-{log_y}.svg"));
            let title = "squared error per image vs latent size";
            line_plot(&path, title, "latent size", "squared error", &error_curves(), log_y).unwrap();
            let texts = svg_texts(&path);
            for wanted in [title, "latent size", "squared error", "autoencoder", "PCA"] {
                assert_has(&texts, wanted);
            }
        }
    }

    #[test]
    fn line_plot_of_rising_curves() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("psnr.svg");
        let series = vec![("png".to_owned(), vec![(800.0, 20.0), (1600.0, 30.0), (3200.0, 45.0)])];
        line_plot(
            &path,
            "PSNR vs bits per image",
            "bits per image",
            "PSNR (dB)",
            &series,
            false,
        )
        .unwrap();
        let texts = svg_texts(&path);
        assert_has(&texts, "PSNR vs bits per image");
        assert_has(&texts, "png");
    }

    #[test]
    fn line_plot_degenerate_inputs_do_not_panic() {
        let dir = tempfile::tempdir().unwrap();
        let s = |name: &str, pts: Vec<(f64, f64)>| (name.to_owned(), pts);
        let cases: Vec<(&str, Series)> = vec![
            ("no series", vec![]),
            ("empty series", vec![s("nothing", vec![])]),
            ("one point", vec![s("single", vec![(3.0, 7.0)])]),
            ("constant", vec![s("flat", vec![(1.0, 5.0), (2.0, 5.0), (3.0, 5.0)])]),
            ("zeros", vec![s("zero", vec![(0.0, 0.0), (0.0, 0.0)])]),
            (
                "non finite",
                vec![s("nan", vec![(f64::NAN, 1.0), (1.0, f64::INFINITY), (2.0, 3.0)])],
            ),
            (
                "non positive",
                vec![s("neg", vec![(1.0, -1.0), (2.0, 0.0)]), s("ok", vec![(1.0, 1e-3)])],
            ),
        ];
        for (i, (title, series)) in cases.iter().enumerate() {
            for log_y in [false, true] {
                let path = dir.path().join(format!("{i}-{log_y}.svg"));
                line_plot(&path, title, "x", "y", series, log_y).unwrap();
                let texts = svg_texts(&path);
                assert_has(&texts, title);
                for (name, _) in series {
                    assert_has(&texts, name);
                }
            }
        }
    }

    #[test]
    fn padded_ranges() {
        assert_eq!(padded(None), (0.0, 1.0));
        let (a, b) = padded(Some((0.0, 10.0)));
        assert!((a + 0.5).abs() < 1e-12 && (b - 10.5).abs() < 1e-12);
        let (a, b) = padded(Some((4.0, 4.0)));
        assert!(a < 4.0 && b > 4.0);
        let (a, b) = padded(Some((0.0, 0.0)));
        assert!(a < 0.0 && b > 0.0);
        let (a, b) = padded_log(Some((2.0, 2.0)));
        assert!(a > 0.0 && a < 2.0 && b > 2.0);
    }
}
