//! The terminal progress bar: one bar per epoch with loss and throughput, and a summary line.

use std::time::Instant;

use gen_core::train::{EpochMetrics, Observer};
use indicatif::{ProgressBar, ProgressStyle};

/// Shows training progress with indicatif; prints one line per epoch when not on a terminal.
pub struct Progress {
    bar: Option<ProgressBar>,
    start: Instant,
}

impl Progress {
    /// A new observer.
    pub fn new() -> Self {
        Self {
            bar: None,
            start: Instant::now(),
        }
    }
}

impl Observer for Progress {
    fn on_epoch_start(&mut self, epoch: usize, num_epochs: usize, num_steps: usize) {
        let bar = ProgressBar::new(num_steps as u64);
        bar.set_style(
            ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(format!("{epoch}/{num_epochs}"));
        self.bar = Some(bar);
    }

    fn on_step(&mut self, _epoch: usize, step: usize, loss: f64, samples_per_sec: f64) {
        if let Some(bar) = &self.bar {
            bar.set_position(step as u64);
            bar.set_message(format!("loss {loss:.5}  {samples_per_sec:.0} samples/s"));
        }
    }

    fn on_epoch_end(&mut self, m: &EpochMetrics) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        let valid = m.valid_loss.map(|v| format!("  valid {v:.5}")).unwrap_or_default();
        eprintln!(
            "epoch {:>3}  train {:.5}{valid}  {:.0} samples/s  {:.1}s  (elapsed {:.0}s)",
            m.epoch,
            m.train_loss,
            m.samples_per_sec,
            m.seconds,
            self.start.elapsed().as_secs_f64()
        );
        let part = |k: &str| m.parts.iter().find(|(n, _)| n == k).map(|p| p.1);
        if let (Some(g), Some(real), Some(fake)) = (part("g_loss"), part("d_real"), part("d_fake")) {
            let modes = part("modes").map(|v| format!("  {v:.0} classes")).unwrap_or_default();
            eprintln!("           G {g:.4}  D(x) {real:.3}  D(G(z)) {fake:.3}{modes}");
        }
        if part("warn_d_wins") == Some(1.0) {
            eprintln!(
                "           warning: the discriminator wins outright (it rejects the fakes, generator loss rising)"
            );
        }
        if part("warn_collapse") == Some(1.0) {
            eprintln!("           warning: mode collapse suspected (the samples cover few classes)");
        }
    }

    fn on_stage(&mut self, what: &str) {
        eprintln!("{what}");
    }

    fn on_early_stop(&mut self, epoch: usize, best_epoch: usize) {
        eprintln!("early stop after epoch {epoch}: no improvement since epoch {best_epoch}");
    }
}
