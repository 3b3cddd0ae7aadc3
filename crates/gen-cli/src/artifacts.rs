//! Figures and files a run leaves behind: image grids (PNG), the loss curve (SVG), CSV tables.

use std::path::Path;

use anyhow::Context;
use gen_core::nn::ImageShape;
use plotters::prelude::*;

/// Writes rows of images as one PNG: `rows[r]` is drawn as row `r`, images side by side, each
/// value in [0, 1] mapped to grey, scaled up `scale` times (nearest neighbour), with a 1-pixel gap.
pub fn save_image_grid(path: &Path, rows: &[Vec<&[f32]>], shape: ImageShape, scale: u32) -> anyhow::Result<()> {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0) as u32;
    let (h, w) = (shape.height as u32 * scale, shape.width as u32 * scale);
    let gap = 1;
    let width = cols * (w + gap) + gap;
    let height = rows.len() as u32 * (h + gap) + gap;
    let mut img = image::GrayImage::from_pixel(width.max(1), height.max(1), image::Luma([128]));
    for (r, row) in rows.iter().enumerate() {
        for (c, values) in row.iter().enumerate() {
            let (x0, y0) = (gap + c as u32 * (w + gap), gap + r as u32 * (h + gap));
            for y in 0..h {
                for x in 0..w {
                    // The first channel only: grey images.
                    let v = values[(y / scale) as usize * shape.width + (x / scale) as usize];
                    img.put_pixel(x0 + x, y0 + y, image::Luma([(v.clamp(0.0, 1.0) * 255.0).round() as u8]));
                }
            }
        }
    }
    img.save(path)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Writes rows of images as one PNG, each row's images one after another in `rows[r]` (as the
/// figures of gen-vae and gen-gan return them), at [`grid_scale`].
pub fn save_image_rows(path: &Path, rows: &[Vec<f32>], shape: ImageShape) -> anyhow::Result<()> {
    let grid: Vec<Vec<&[f32]>> = rows.iter().map(|r| r.chunks(shape.numel()).collect()).collect();
    save_image_grid(path, &grid, shape, grid_scale(shape))
}

/// The magnification of an image grid: 4x for sides under 16 pixels, else 2x.
pub fn grid_scale(shape: ImageShape) -> u32 {
    if shape.height < 16 { 4 } else { 2 }
}

/// Plots training and validation loss per epoch from `metrics.csv` as an SVG.
pub fn plot_loss_curve(metrics: &Path, out: &Path) -> anyhow::Result<()> {
    let (cols, rows) = gen_core::train::MetricsLog::new(metrics).read()?;
    let col = |name: &str| cols.iter().position(|c| c == name);
    let (Some(ie), Some(it)) = (col("epoch"), col("train_loss")) else {
        anyhow::bail!("{} has no epoch/train_loss columns", metrics.display());
    };
    let iv = col("valid_loss");
    let series = |i: usize| -> Vec<(f64, f64)> {
        rows.iter()
            .filter(|r| r[i].is_finite())
            .map(|r| (r[ie], r[i]))
            .collect()
    };
    let train = series(it);
    let valid = iv.map(series).unwrap_or_default();
    let all: Vec<f64> = train.iter().chain(&valid).map(|p| p.1).collect();
    if all.is_empty() {
        return Ok(());
    }
    let (lo, hi) = all
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    let x_max = train.last().map(|p| p.0).unwrap_or(1.0).max(2.0);
    let root = SVGBackend::new(out, (720, 420)).into_drawing_area();
    let draw = || -> Result<(), Box<dyn std::error::Error + '_>> {
        root.fill(&WHITE)?;
        let pad = 0.05 * (hi - lo).max(1e-9);
        let mut chart = ChartBuilder::on(&root)
            .caption("loss per epoch", ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(1f64..x_max, (lo - pad)..(hi + pad))?;
        chart.configure_mesh().x_desc("epoch").y_desc("loss").draw()?;
        chart
            .draw_series(LineSeries::new(train.clone(), &BLUE))?
            .label("train")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
        if !valid.is_empty() {
            chart
                .draw_series(LineSeries::new(valid.clone(), &RED))?
                .label("validation")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE)
            .draw()?;
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| anyhow::anyhow!("cannot draw {}: {e}", out.display()))
}

/// Writes a CSV with a header row.
pub fn write_csv(path: &Path, header: &[String], rows: impl Iterator<Item = Vec<String>>) -> anyhow::Result<()> {
    let mut text = header.join(",");
    text.push('\n');
    for row in rows {
        text.push_str(&row.join(","));
        text.push('\n');
    }
    gen_core::train::write_atomic(path, text.as_bytes())?;
    Ok(())
}

/// Whether `path` names a `.npy` file.
pub fn is_npy(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy"))
}

/// Writes `outputs` (rows of width `d`) to the `.npy` file `path`, and `inputs` (as many rows,
/// of their own width) to `STEM-inputs.npy` beside it.
pub fn write_npy_pair(path: &Path, inputs: &[f32], outputs: &[f32], d: usize) -> anyhow::Result<()> {
    let rows = outputs.len() / d.max(1);
    gen_data::export::write_npy(path, outputs, rows, d)?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let inputs_path = path.with_file_name(format!("{stem}-inputs.npy"));
    gen_data::export::write_npy(&inputs_path, inputs, rows, inputs.len() / rows.max(1))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_has_the_expected_size_and_pixels() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("g.png");
        let a = vec![0.0f32; 4];
        let b = vec![1.0f32; 4];
        save_image_grid(&p, &[vec![&a, &b], vec![&b, &a]], ImageShape::grey(2, 2), 3).unwrap();
        let img = image::open(&p).unwrap().to_luma8();
        assert_eq!(img.dimensions(), (2 * 7 + 1, 2 * 7 + 1));
        assert_eq!(img.get_pixel(1, 1).0, [0]);
        assert_eq!(img.get_pixel(8, 1).0, [255]);
    }

    #[test]
    fn loss_curve_is_an_svg() {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path().join("metrics.csv");
        std::fs::write(&m, "epoch,train_loss,valid_loss\n1,0.5,0.6\n2,0.3,0.4\n3,0.2,0.35\n").unwrap();
        let out = dir.path().join("loss.svg");
        plot_loss_curve(&m, &out).unwrap();
        let svg = std::fs::read_to_string(&out).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("validation"),
            "{}",
            &svg[..100.min(svg.len())]
        );
    }
}
